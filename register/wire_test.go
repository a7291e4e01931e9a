package register

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/rest"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/internal/kubeclient"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from this run instead of comparing")

// wireClient is the production client of the API server at url, as
// cmd wires it.
func wireClient(t *testing.T, url string) Client {
	client, err := kubeclient.New(&rest.Config{Host: url})
	if err != nil {
		t.Fatal(err)
	}
	return RESTClient(client)
}

// startEvents starts posting r's events until the test ends.
func startEvents(t *testing.T, r *Registrar, _ Client) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.recorder.run(ctx)
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWireRequests pins what registration sends over HTTP, request by
// request, against testdata/wire-*.golden: the node, its status patches,
// the lease, the mirror pods, and the Events with their fields and their
// count patch when one repeats.
func TestWireRequests(t *testing.T) {
	api := newFakeAPIServer(t)
	client := wireClient(t, api.URL)
	src := &fakeSource{owners: map[string][3]string{"/kubepods/podrt-web/abc": {"team", "web", "app"}}}
	cfg := testConfig(t, nil, src)
	cfg.Client = client
	r := New(cfg)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	startEvents(t, r, client)
	ctx := context.Background()

	node, err := r.tryRegister(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.tryRegister(ctx); err != nil {
		t.Fatalf("registering again: %v", err)
	}
	now = now.Add(10 * time.Second)
	for _, notReady := range []error{nil, errors.New("stalled")} {
		if err := r.patchStatus(ctx, notReady); err != nil {
			t.Fatal(err)
		}
	}
	// The NodeNotReady event is posted in the background; the API server
	// numbers the objects it creates, so it must come before the lease.
	eventually(t, waitLimit, "the NodeNotReady event", func() error {
		if len(api.log("/events", false)) < 1 {
			return errors.New("not yet")
		}
		return nil
	})
	r.lease.init(client, testNode, node.UID, r.now, r.logger)
	r.lease.renew(ctx)
	now = now.Add(10 * time.Second)
	r.lease.renew(ctx)

	r.mirrors.setNode(node)
	src.setPods(runtimePod("web", "rt-web", false, "app"))
	r.mirrors.sync(ctx)
	oom := cadvisor.OOMKill{PID: 42, ProcessName: "work", Cgroup: "/kubepods/podrt-web/abc", LimitCgroup: "/kubepods/podrt-web/abc"}
	r.RecordOOMKill(oom)
	r.RecordOOMKill(oom)
	r.RecordOOMKill(cadvisor.OOMKill{PID: 7, ProcessName: "java", Cgroup: "/kubepods/podrt-web/abc", LimitCgroup: "/"})
	src.setPods()
	r.mirrors.sync(ctx)

	// NodeNotReady, OOMKilling, its repeat, then SystemOOM and OOMKilling
	// of the machine-wide kill.
	eventually(t, waitLimit, "five event requests", func() error {
		if n := len(api.log("/events", false)); n < 5 {
			return errors.New("fewer")
		}
		return nil
	})
	checkWire(t, "wire-objects.golden", api.log("/events", true))
	checkWire(t, "wire-events.golden", api.log("/events", false))
}

// Timestamps and event names (the involved object's name and the time in
// hex) differ from run to run, the architecture from machine to machine.
var (
	wireTime      = regexp.MustCompile(`"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z"`)
	wireEventName = regexp.MustCompile(`\.[0-9a-f]{16}\b`)
)

func checkWire(t *testing.T, name string, requests []wireRequest) {
	t.Helper()
	var b strings.Builder
	for _, r := range requests {
		b.WriteString(r.String())
		b.WriteString("\n")
	}
	got := wireEventName.ReplaceAllString(wireTime.ReplaceAllString(b.String(), `"<time>"`), ".<hex>")
	// The node's labels and nodeInfo name the machine's architecture.
	got = strings.ReplaceAll(got, `"`+runtime.GOARCH+`"`, `"<arch>"`)
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s: requests differ (run with -update to see them in git diff)\ngot:\n%s", name, got)
	}
}
