package collector

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// heapProfileEnv names a file BenchmarkCollectorHeap writes a heap profile
// to at the moment it measures (`go tool pprof -sample_index=inuse_space
// -top <file>`; -test.memprofilerate=512 for a fine one).
const heapProfileEnv = "KSS_HEAP_PROFILE"

// BenchmarkCollectorHeap is the collector's live heap over the bench tree
// (2,003 cgroups at KSS_BENCH_PODS=500) with full rings: what a collector,
// its readers, its inotify watches, its retained samples and the view of
// its last pass keep reachable after a GC. One op builds a collector and
// runs as many passes as the ring holds.
func BenchmarkCollectorHeap(b *testing.B) {
	lc := setupBenchTree(b)
	var heap, cgroups, watches float64
	for i := 0; i < b.N; i++ {
		heap, cgroups, watches = collectorHeap(b, lc)
	}
	b.ReportMetric(heap/1e6, "heap-MB")
	b.ReportMetric(heap/cgroups, "heap-B/cgroup")
	b.ReportMetric(cgroups, "cgroups")
	b.ReportMetric(watches, "watches")
}

// collectorHeap measures one collector's live heap; see
// BenchmarkCollectorHeap.
func collectorHeap(b *testing.B, lc *liveCgroups) (heap, cgroups, watches float64) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := liveHeap()
	c, err := New(Config{Tracked: []string{lc.parent + benchTrackedSuffix}, RescanInterval: time.Hour, Workers: 1})
	if err != nil {
		b.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	var view *cadvisor.View
	for range c.ringSize + 1 {
		view = c.Housekeep(ctx)
	}
	heap = float64(liveHeap()) - float64(before)
	if path := os.Getenv(heapProfileEnv); path != "" {
		writeHeapProfile(b, path)
	}
	if full := view.Get(lc.parent + benchTrackedSuffix).SampleCount(); full != c.ringSize {
		b.Fatalf("the ring holds %d samples, want %d", full, c.ringSize)
	}
	c.discovery.mu.Lock()
	watches = float64(len(c.discovery.watches))
	c.discovery.mu.Unlock()
	runtime.KeepAlive(c)
	runtime.KeepAlive(view)
	return heap, float64(len(view.Cgroups)), watches
}

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

func writeHeapProfile(b *testing.B, path string) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
