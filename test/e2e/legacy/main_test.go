// Package legacy runs real pods under a real containerd and checks the
// kubelet's cAdvisor JSON endpoints of the real binary (/stats/,
// /stats/container, /stats/{pod}/{container},
// /stats/{namespace}/{pod}/{uid}/{container}, /spec/): the issue "The
// kubelet's cAdvisor JSON endpoints".
package legacy

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"kubelet-stats-server/test/e2e/framework"
	"kubelet-stats-server/test/serverproc"
)

var serverBinary string

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "skipping: the end-to-end tests need root")
		os.Exit(0)
	}
	ctx := context.Background()
	if err := framework.EnsureInstalled(ctx, func(format string, args ...any) { fmt.Fprintf(os.Stderr, format+"\n", args...) }); err != nil {
		fmt.Fprintln(os.Stderr, "install containerd:", err)
		os.Exit(1)
	}
	binary, cleanup, err := serverproc.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = binary
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// cluster is one containerd plus a cgroup root of our own, so that pods of
// this test never mix with anything else on the machine.
type cluster struct {
	runtime    *framework.Runtime
	cgroupRoot string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	cgroupRoot := fmt.Sprintf("/kss-e2e-legacy-%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	rt, err := framework.StartContainerd(context.Background(), framework.Options{
		Logf:         t.Logf,
		CgroupParent: cgroupRoot + "/kubepods/burstable",
		PodLogDir:    t.TempDir(),
	})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	if err := rt.ImportTestImages(context.Background()); err != nil {
		t.Fatalf("import test images: %v", err)
	}
	return &cluster{runtime: rt, cgroupRoot: cgroupRoot}
}

// serverArgs point the binary at this cluster.
func (c *cluster) serverArgs(extra ...string) []string {
	return append([]string{
		"--container-runtime-endpoint=" + c.runtime.Endpoint(),
		"--cgroup-root=" + c.cgroupRoot,
		"--cgroup-driver=cgroupfs",
		"--pod-logs-dir=" + c.runtime.PodLogDir(),
		"--root-dir=" + c.runtime.RootDir(),
	}, extra...)
}

// request sends method path with body and returns status and body.
func request(t *testing.T, srv *serverproc.Server, method, path, body string) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	status, _, data := serverproc.Do(t, method, srv.Base+path, nil, reader)
	return status, data
}

// get does a request that must answer 200 and decodes the body into T, an
// upstream cAdvisor type, refusing fields the type does not have.
func get[T any](t *testing.T, srv *serverproc.Server, method, path, body string) T {
	t.Helper()
	status, data := request(t, srv, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s %s = %d: %s", method, path, body, status, data)
	}
	var out T
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s %s into %T: %v", method, path, out, err)
	}
	return out
}

// cgroupFile reads a v1 controller file of a cgroup.
func cgroupFile(t *testing.T, controller, cgroup, file string) string {
	t.Helper()
	data, err := os.ReadFile("/sys/fs/cgroup/" + controller + cgroup + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
