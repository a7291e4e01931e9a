package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// historyBase is the first pass of historySnapshot, 10 s before the next.
var historyBase = time.Unix(1_800_000_000, 0)

func pass(i int, jitter time.Duration) time.Time {
	return historyBase.Add(time.Duration(i)*10*time.Second + jitter)
}

func cgroupSample(at time.Time, cpuNanos, workingSet, oomKills uint64, rx, tx uint64, network bool) *cadvisor.Sample {
	s := &cadvisor.Sample{
		Timestamp: at,
		CPU:       cadvisor.CPUStats{UsageTotal: cpuNanos},
		Memory:    cadvisor.MemoryStats{WorkingSet: workingSet, OOMKills: oomKills},
	}
	if network {
		s.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{{Name: "eth0", RxBytes: rx, TxBytes: tx}}}
	}
	return s
}

// historySnapshot is a node sampled in three passes with one pod whose
// app container was OOM-killed in the last, a container the collector does
// not track, and a pod the legacy view does not know.
func historySnapshot() *snapshot.Snapshot {
	spec := cadvisor.Spec{HasCPU: true, HasMemory: true}
	const jitter = 100 * time.Millisecond
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{
		"/": {Name: "/", Spec: spec, Samples: []*cadvisor.Sample{
			cgroupSample(pass(0, 0), 0, 1<<30, 0, 0, 0, true),
			cgroupSample(pass(1, 0), 5e9, 1<<30, 0, 10000, 5000, true),
			cgroupSample(pass(2, 0), 10e9, 1<<30, 0, 30000, 5000, true),
		}},
		"/kubepods/podu1": {Name: "/kubepods/podu1", Spec: spec, Samples: []*cadvisor.Sample{
			cgroupSample(pass(0, jitter), 0, 10<<20+600, 0, 0, 0, true),
			cgroupSample(pass(1, jitter), 1e6, 10<<20+600, 0, 1000, 0, true),
			cgroupSample(pass(2, jitter), 250e6, 10<<20+600, 0, 2000, 0, true),
		}},
		"/kubepods/podu1/c1": {Name: "/kubepods/podu1/c1", Spec: spec, Samples: []*cadvisor.Sample{
			cgroupSample(pass(1, jitter), 0, 5<<20, 0, 0, 0, false),
			cgroupSample(pass(2, jitter), 1.5e9, 5<<20, 1, 0, 0, false),
		}},
	}}
	legacy := snapshot.NewCgroups(view, &cadvisor.Machine{NumCores: 4, MemoryCapacity: 8 << 30}, []snapshot.Pod{{
		Namespace: "default", Name: "web", UID: "u1", Cgroup: "/kubepods/podu1",
		Containers: []snapshot.Container{{Name: "app", Cgroup: "/kubepods/podu1/c1"}, {Name: "sidecar"}},
	}})
	at := metav1.NewTime(pass(2, 0))
	cpu := func(n uint64) *statsapi.CPUStats { return &statsapi.CPUStats{Time: at, UsageNanoCores: &n} }
	mem := func(n uint64) *statsapi.MemoryStats { return &statsapi.MemoryStats{Time: at, WorkingSetBytes: &n} }
	summary := &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName: "node-a", CPU: cpu(500e6), Memory: mem(1 << 30),
			Fs:      &statsapi.FsStats{UsedBytes: ptr(uint64(40 << 30)), CapacityBytes: ptr(uint64(100 << 30))},
			Runtime: &statsapi.RuntimeStats{ImageFs: &statsapi.FsStats{UsedBytes: ptr(uint64(3 << 30)), CapacityBytes: ptr(uint64(100 << 30))}},
			Network: &statsapi.NetworkStats{Interfaces: []statsapi.InterfaceStats{
				{Name: "eth0", RxBytes: ptr(uint64(30000)), TxBytes: ptr(uint64(5000))},
				{Name: "cni0", RxBytes: ptr(uint64(12)), TxBytes: ptr(uint64(34))},
			}},
		},
		Pods: []statsapi.PodStats{
			{
				PodRef: statsapi.PodReference{Namespace: "default", Name: "web", UID: "u1"}, CPU: cpu(24_900_000), Memory: mem(10<<20 + 600),
				Containers: []statsapi.ContainerStats{
					{Name: "app", CPU: cpu(150e6), Memory: mem(5 << 20)},
					{Name: "sidecar", CPU: &statsapi.CPUStats{Time: at}, Memory: mem(1024)},
				},
			},
			{PodRef: statsapi.PodReference{Namespace: "kube-system", Name: "orphan", UID: "u2"}},
		},
	}
	return &snapshot.Snapshot{Generation: 7, Time: historyBase.Add(21 * time.Second), Summary: summary, Cgroups: legacy}
}

// historySnapshotJSON is historySnapshot's document: summary values as they
// are, series in millicores, KiB and B/s on the three passes.
const historySnapshotJSON = `{
 "node": "node-a", "time": "2027-01-15T08:00:20Z", "generation": 7,
 "passes": [1800000000000, 1800000010000, 1800000020000],
 "cores": 4, "memoryCapacity": 8589934592,
 "nodeStats": {
  "cpu": 500000000, "memory": 1073741824,
  "fs": {"used": 42949672960, "capacity": 107374182400},
  "imageFs": {"used": 3221225472, "capacity": 107374182400},
  "rx": 30012, "tx": 5034,
  "history": {"cpu": [null, 500, 500], "mem": [1048576, 1048576, 1048576], "rx": [null, 1000, 2000], "tx": [null, 500, 0]}
 },
 "pods": [
  {"namespace": "default", "name": "web", "uid": "u1", "cpu": 24900000, "memory": 10486360,
   "history": {"cpu": [null, 0.1, 24.9], "mem": [10241, 10241, 10241], "rx": [null, 100, 100], "tx": [null, 0, 0], "oom": [2]},
   "containers": [
    {"name": "app", "cpu": 150000000, "memory": 5242880,
     "history": {"cpu": [null, null, 150], "mem": [null, 5120, 5120], "oom": [2], "oomTotal": 1}},
    {"name": "sidecar", "cpu": null, "memory": 1024}
   ]},
  {"namespace": "kube-system", "name": "orphan", "uid": "u2", "cpu": null, "memory": null, "containers": []}
 ]
}`

func TestHistoryDocument(t *testing.T) {
	body, err := encodeHistory(historySnapshot())
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := json.Compact(&want, []byte(historySnapshotJSON)); err != nil {
		t.Fatal(err)
	}
	if string(body) != want.String() {
		t.Errorf("history document:\n got %s\nwant %s", body, want.String())
	}
}

// TestHistoryDocumentWithoutLegacyView: a snapshot without the collector's
// view (tests, or a tick that built none) still has the summary's values.
func TestHistoryDocumentWithoutLegacyView(t *testing.T) {
	body, err := encodeHistory(&snapshot.Snapshot{Generation: 1, Time: sampleTime, Summary: craftedSummary()})
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"node":"node-a","time":"2026-11-22T13:22:34Z","generation":1,"passes":[],` +
		`"nodeStats":{"cpu":null,"memory":52428800},` +
		`"pods":[{"namespace":"default","name":"web-0","uid":"0b5a7e2c","cpu":null,"memory":null,"containers":[]}]}`
	if string(body) != want {
		t.Errorf("got  %s\nwant %s", body, want)
	}
	if _, err := encodeHistory(&snapshot.Snapshot{Generation: 1}); err == nil {
		t.Error("a snapshot without a summary encoded")
	}
}

func TestHistoryEndpoint(t *testing.T) {
	src := &fakeSource{}
	ts := newTestServer(t, Config{}, src)
	resp, body := do(t, http.MethodGet, ts.URL+historyPath, "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "10" || body != notReadyMessage {
		t.Errorf("before the first snapshot: %d Retry-After %q %q, want 503, 10 and %q", resp.StatusCode, resp.Header.Get("Retry-After"), body, notReadyMessage)
	}

	snap := historySnapshot()
	src.snapshot.Store(snap)
	resp, body = do(t, http.MethodGet, ts.URL+historyPath, "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" || !strings.HasPrefix(body, `{"node":"node-a"`) {
		t.Fatalf("GET %s = %d %q %.40s, want 200 application/json and the document", historyPath, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	etag := resp.Header.Get("ETag")
	if etag == "" || resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("ETag %q, Cache-Control %q: want a tag and no-cache", etag, resp.Header.Get("Cache-Control"))
	}
	resp, body = do(t, http.MethodGet, ts.URL+historyPath, "", "", "If-None-Match", etag)
	if resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("same snapshot with If-None-Match = %d %q, want 304 without a body", resp.StatusCode, body)
	}

	next := *snap
	next.Generation++
	next.Time = next.Time.Add(10 * time.Second)
	src.snapshot.Store(&next)
	resp, _ = do(t, http.MethodGet, ts.URL+historyPath, "", "", "If-None-Match", etag)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("ETag") == etag {
		t.Errorf("next snapshot with the old tag = %d, ETag %q: want 200 and a new tag", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if resp, _ := do(t, http.MethodPost, ts.URL+historyPath, "", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST %s = %d, want 405", historyPath, resp.StatusCode)
	}
}

// TestHistoryEncodedOncePerSnapshot: every request for one snapshot shares
// one encoding, and a slow request for an older snapshot does not evict it.
func TestHistoryEncodedOncePerSnapshot(t *testing.T) {
	h := &snapshotBody{encode: encodeHistory}
	old := historySnapshot()
	first, err := h.get(old)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := h.get(old); &again[0] != &first[0] {
		t.Error("a second request for the same snapshot encoded again")
	}
	newer := *old
	newer.Generation++
	newer.Summary = craftedSummary()
	fresh, _ := h.get(&newer)
	if !strings.Contains(string(fresh), "web-0") {
		t.Errorf("generation %d body = %s, want the new snapshot's", newer.Generation, fresh)
	}
	if stale, _ := h.get(old); !strings.Contains(string(stale), `"orphan"`) {
		t.Errorf("generation %d body = %s, want its own pods", old.Generation, stale)
	}
	if cached, _ := h.get(&newer); &cached[0] != &fresh[0] {
		t.Error("an older snapshot's request evicted the newer body")
	}
}

// BenchmarkHistoryDocument is what the page costs a snapshot once: the
// projection and encoding of 500 pods of two containers, 13 samples each
// (2 min at 10 s).
func BenchmarkHistoryDocument(b *testing.B) {
	snap := syntheticHistorySnapshot(500, 2, 13)
	b.ReportAllocs()
	var size int
	for range b.N {
		body, err := encodeHistory(snap)
		if err != nil {
			b.Fatal(err)
		}
		size = len(body)
	}
	b.ReportMetric(float64(size), "bytes/body")
}

// syntheticHistorySnapshot is syntheticSummary with a legacy view whose
// every pod and container cgroup has samples in every pass.
func syntheticHistorySnapshot(pods, containers, passes int) *snapshot.Snapshot {
	summary := syntheticSummary(pods, containers)
	spec := cadvisor.Spec{HasCPU: true, HasMemory: true}
	samples := func(network bool) []*cadvisor.Sample {
		out := make([]*cadvisor.Sample, passes)
		for i := range out {
			out[i] = cgroupSample(pass(i, time.Millisecond), uint64(i)*3e8, 200<<20+uint64(i)<<16, 0, uint64(i)*1e5, uint64(i)*5e4, network)
		}
		return out
	}
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{"/": {Name: "/", Spec: spec, Samples: samples(true)}}}
	var legacyPods []snapshot.Pod
	for _, pod := range summary.Pods {
		lp := snapshot.Pod{Namespace: pod.PodRef.Namespace, Name: pod.PodRef.Name, UID: pod.PodRef.UID, Cgroup: "/kubepods/pod" + pod.PodRef.UID}
		view.Cgroups[lp.Cgroup] = &cadvisor.CgroupInfo{Name: lp.Cgroup, Spec: spec, Samples: samples(true)}
		for _, c := range pod.Containers {
			cgroup := fmt.Sprintf("%s/%s", lp.Cgroup, c.Name)
			view.Cgroups[cgroup] = &cadvisor.CgroupInfo{Name: cgroup, Spec: spec, Samples: samples(false)}
			lp.Containers = append(lp.Containers, snapshot.Container{Name: c.Name, Cgroup: cgroup})
		}
		legacyPods = append(legacyPods, lp)
	}
	legacy := snapshot.NewCgroups(view, &cadvisor.Machine{NumCores: 8, MemoryCapacity: 32 << 30}, legacyPods)
	return &snapshot.Snapshot{Generation: 1, Time: pass(passes, 0), Summary: summary, Cgroups: legacy}
}
