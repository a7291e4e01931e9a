package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"weak"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// TestEncodeSummaryMatchesKubelet decodes the kubelet's own bodies and wants
// our encoding to give back the same bytes.
func TestEncodeSummaryMatchesKubelet(t *testing.T) {
	for _, file := range []string{"summary.json", "summary-only-cpu-and-memory.json"} {
		t.Run(file, func(t *testing.T) {
			kubelet, err := os.ReadFile("testdata/kubelet-v1.36.3/" + file)
			if err != nil {
				t.Fatal(err)
			}
			var s statsapi.Summary
			if err := json.Unmarshal(kubelet, &s); err != nil {
				t.Fatal(err)
			}
			ours, err := encodeSummary(&s)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ours, kubelet) {
				t.Errorf("re-encoding the kubelet's body changed it\n got: %s\nwant: %s", ours, kubelet)
			}
		})
	}
}

func TestEncodeSummaryShape(t *testing.T) {
	body, err := encodeSummary(craftedSummary())
	if err != nil {
		t.Fatal(err)
	}
	if string(body) != craftedSummaryJSON {
		t.Errorf("got:\n%s\nwant:\n%s", body, craftedSummaryJSON)
	}

	var decoded statsapi.Summary
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Fatalf("body does not decode into a Summary: %v", err)
	}
	if got, want := decoded.Node.CPU.Time.Time, sampleTime.Truncate(time.Second); !got.Equal(want) {
		t.Errorf("cpu time decoded as %v, want %v (whole seconds)", got, want)
	}
	if !decoded.Node.StartTime.IsZero() {
		t.Errorf("null startTime decoded as %v", decoded.Node.StartTime)
	}
	if decoded.Node.CPU.UsageNanoCores != nil {
		t.Errorf("nil usageNanoCores came back as %d", *decoded.Node.CPU.UsageNanoCores)
	}
	if p := decoded.Node.CPU.UsageCoreNanoSeconds; p == nil || *p != 0 {
		t.Errorf("zero usageCoreNanoSeconds came back as %v", p)
	}

	for _, tc := range []struct {
		pods []statsapi.PodStats
		want string
	}{
		{[]statsapi.PodStats{}, "{\n \"node\": {\n  \"nodeName\": \"n\",\n  \"startTime\": null\n },\n \"pods\": []\n}"},
		{nil, "{\n \"node\": {\n  \"nodeName\": \"n\",\n  \"startTime\": null\n },\n \"pods\": null\n}"},
	} {
		body, err := encodeSummary(&statsapi.Summary{Node: statsapi.NodeStats{NodeName: "n"}, Pods: tc.pods})
		if err != nil {
			t.Fatal(err)
		}
		if string(body) != tc.want {
			t.Errorf("pods %#v: got %q, want %q", tc.pods, body, tc.want)
		}
	}
}

func TestSummaryBodiesOneEncodingPerGenerationAndMode(t *testing.T) {
	var encodes atomic.Int64
	bodies := newSummaryBodies(func(s *statsapi.Summary) ([]byte, error) {
		encodes.Add(1)
		return encodeSummary(s)
	})
	snap := func(gen uint64) *snapshot.Snapshot {
		return &snapshot.Snapshot{Generation: gen, Summary: craftedSummary(), CPUAndMemory: cpuAndMemorySummary()}
	}
	mustBody := func(s *snapshot.Snapshot, cpuAndMemory bool) []byte {
		t.Helper()
		b, err := bodies.body(s, cpuAndMemory)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	wantEncodes := func(n int64) {
		t.Helper()
		if got := encodes.Load(); got != n {
			t.Fatalf("%d encodings, want %d", got, n)
		}
	}

	gen1 := snap(1)
	first := mustBody(gen1, false)
	second := mustBody(gen1, false)
	if &first[0] != &second[0] {
		t.Errorf("two requests for one snapshot got different copies")
	}
	wantEncodes(1)
	if string(mustBody(gen1, true)) != string(must(encodeSummary(cpuAndMemorySummary()))) {
		t.Errorf("CPU-and-memory body is not the CPUAndMemory summary")
	}
	wantEncodes(2)
	// The same generation published again (another pointer) still shares.
	mustBody(snap(1), false)
	wantEncodes(2)

	gen3 := snap(3)
	mustBody(gen3, false)
	wantEncodes(3)
	// A slow request still holding generation 1 is answered from its own
	// snapshot and does not evict generation 3.
	mustBody(gen1, false)
	wantEncodes(4)
	mustBody(gen3, false)
	wantEncodes(4)
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// TestConcurrentRequestsShareOneEncoding sends many simultaneous requests
// over loopback for one snapshot and wants exactly one encoding, then one
// more for the next generation.
func TestConcurrentRequestsShareOneEncoding(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	const clients = 32
	run := func(target string) []string {
		start := make(chan struct{})
		bodies := make([]string, clients)
		var wg sync.WaitGroup
		for i := range clients {
			wg.Go(func() {
				<-start
				resp, body := do(t, "GET", ts.URL+target, "", "")
				if resp.StatusCode != http.StatusOK {
					t.Errorf("client %d: %s", i, resp.Status)
				}
				bodies[i] = body
			})
		}
		close(start)
		wg.Wait()
		for i, b := range bodies {
			if b != bodies[0] {
				t.Fatalf("client %d got a different body", i)
			}
		}
		return bodies
	}

	if got := run("/stats/summary"); got[0] != craftedSummaryJSON {
		t.Errorf("body %q", got[0])
	}
	if n := ts.encodes.Load(); n != 1 {
		t.Errorf("%d concurrent requests for one snapshot caused %d encodings, want 1", clients, n)
	}

	next := craftedSummary()
	next.Node.NodeName = "node-b"
	ts.source.publish(2, next, cpuAndMemorySummary())
	got := run("/stats/summary")
	if want := string(must(encodeSummary(next))); got[0] != want {
		t.Errorf("generation 2 body %q, want %q", got[0], want)
	}
	if n := ts.encodes.Load(); n != 2 {
		t.Errorf("after a new generation: %d encodings, want 2", n)
	}
	run("/stats/summary?only_cpu_and_memory=true")
	if n := ts.encodes.Load(); n != 3 {
		t.Errorf("after the CPU-and-memory mode: %d encodings, want 3", n)
	}
}

// TestCachesDoNotKeepSnapshots wants every per-snapshot cache of the
// handler to let its snapshot go once the provider has a newer one: a
// snapshot is many times the size of its bodies, and one kept by a cache
// stays alive beside the provider's next until the next request.
func TestCachesDoNotKeepSnapshots(t *testing.T) {
	src := &fakeSource{}
	h := NewReadOnlyHandler(Config{}, src, nil)
	gone := weak.Make(src.publish(1, &statsapi.Summary{}, &statsapi.Summary{}))
	for _, path := range []string{"/stats/summary", "/stats/summary?only_cpu_and_memory=true", "/metrics/resource", "/metrics/cadvisor", "/pods", "/history"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body)
		}
	}
	src.publish(2, &statsapi.Summary{}, &statsapi.Summary{})
	runtime.GC()
	if gone.Value() != nil {
		t.Error("the handler keeps the snapshot it last answered from alive after the provider published a newer one")
	}
	runtime.KeepAlive(h) // the caches live as long as the handler
}

// TestSummaryBodyFromTheTick: a snapshot that carries the tick's encoding
// of its summary is answered with it, whoever asks first, and the
// CPU-and-memory mode is still encoded on demand.
func TestSummaryBodyFromTheTick(t *testing.T) {
	var encodes atomic.Int64
	bodies := newSummaryBodies(func(s *statsapi.Summary) ([]byte, error) {
		encodes.Add(1)
		return encodeSummary(s)
	})
	tickBody := must(encodeSummary(craftedSummary()))
	snap := &snapshot.Snapshot{Generation: 1, Summary: craftedSummary(), SummaryBody: tickBody, CPUAndMemory: cpuAndMemorySummary()}
	if got := must(bodies.body(snap, false)); &got[0] != &tickBody[0] {
		t.Error("the full summary was not answered with the tick's body")
	}
	if encodes.Load() != 0 {
		t.Errorf("%d encodings of a summary the tick encoded", encodes.Load())
	}
	must(bodies.body(snap, true))
	if encodes.Load() != 1 {
		t.Errorf("%d encodings for the CPU-and-memory mode, want 1", encodes.Load())
	}
}
