package load

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// profileEnv names the directory TestProfile writes its profiles to.
const profileEnv = "KSS_PROFILE"

// TestProfile runs the collector, the provider and the read-only handler in
// this process over a generated tree (or KSS_PROFILE_ROOT, a parent laid out
// like TestLoad's) and writes where CPU and memory go: a CPU profile and an
// allocation profile of the housekeeping ticks, a heap profile of what a
// full ring retains, and both for the first /metrics/cadvisor scrape of a
// snapshot. `go tool pprof -top <dir>/<name>.prof` reads them.
func TestProfile(t *testing.T) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		t.Skip("profiles: run with KSS_PROFILE=<dir> (and KSS_LOAD_PODS, default 500)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parent := os.Getenv("KSS_PROFILE_ROOT")
	if parent == "" {
		parent = layOutPods(t, podsFromEnv(t, 500))
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	podRoot := parent + "/kubepods"
	sampler, err := collector.New(collector.Config{Tracked: []string{podRoot}, RescanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := sampler.Start(ctx); err != nil {
		t.Fatal(err)
	}
	machine, err := collector.ReadMachine("/proc", "/sys")
	if err != nil {
		t.Fatal(err)
	}
	stats := provider.New(provider.Config{
		NodeName:      "profile",
		RootDir:       t.TempDir(),
		SystemCgroups: []provider.SystemCgroup{{Name: statsapi.SystemContainerPods, Cgroup: podRoot}},
		Interval:      10 * time.Second,
		Sampler:       sampler,
		FsStats:       collector.DirFsStats,
		Rlimit:        func() cadvisor.Rlimit { return collector.ReadRlimit("/proc") },
		PodRoot:       podRoot,
		Machine:       machine,
		PodLogsDir:    t.TempDir(),
	})
	handler := server.NewReadOnlyHandler(server.Config{}, stats, stats)

	// Fill the rings (2 min of retention at 10 s) before measuring.
	const ticks = 14
	stats.Tick(ctx)
	tickCost := measure(t, filepath.Join(dir, "tick"), func() {
		for i := 1; i < ticks; i++ {
			stats.Tick(ctx)
		}
	})
	t.Logf("tick: %s per tick", tickCost.per(ticks-1))
	writeHeapProfile(t, filepath.Join(dir, "heap-ticks.prof"))

	scrape := func(path string) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", path, rec.Code)
		}
	}
	scrape("/stats/summary")
	resource := measure(t, filepath.Join(dir, "resource"), func() { scrape("/metrics/resource") })
	t.Logf("/metrics/resource, first scrape of a snapshot: %s", resource.per(1))
	cadvisorBuild := measure(t, filepath.Join(dir, "cadvisor"), func() { scrape("/metrics/cadvisor") })
	t.Logf("/metrics/cadvisor, first scrape of a snapshot: %s", cadvisorBuild.per(1))
	writeHeapProfile(t, filepath.Join(dir, "heap-scraped.prof"))
	runtime.KeepAlive(stats)
}

// cost is what a measured function took: wall and CPU time of the process,
// and bytes and objects allocated.
type cost struct {
	wall, cpu      time.Duration
	bytes, objects uint64
}

func (c cost) per(n int) string {
	return fmt.Sprintf("%s wall, %s CPU, %.1f MB and %d objects allocated",
		(c.wall / time.Duration(n)).Round(time.Millisecond), (c.cpu / time.Duration(n)).Round(time.Millisecond),
		float64(c.bytes)/float64(n)/1e6, c.objects/uint64(n))
}

// measure runs fn under a CPU profile (<prefix>-cpu.prof) and writes the
// allocation profiles before and after it (<prefix>-allocs-before.prof,
// <prefix>-allocs.prof): `go tool pprof -sample_index=alloc_space
// -diff_base <prefix>-allocs-before.prof <prefix>-allocs.prof` shows what
// fn allocated.
func measure(t *testing.T, prefix string, fn func()) cost {
	t.Helper()
	f, err := os.Create(prefix + "-cpu.prof")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	writeProfile(t, "allocs", prefix+"-allocs-before.prof")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if err := pprof.StartCPUProfile(f); err != nil {
		t.Fatal(err)
	}
	start, cpuStart := time.Now(), processCPU()
	fn()
	c := cost{wall: time.Since(start), cpu: processCPU() - cpuStart}
	pprof.StopCPUProfile()
	runtime.ReadMemStats(&after)
	c.bytes, c.objects = after.TotalAlloc-before.TotalAlloc, after.Mallocs-before.Mallocs
	runtime.GC() // publishes the allocations of fn in the profile
	writeProfile(t, "allocs", prefix+"-allocs.prof")
	return c
}

func writeHeapProfile(t *testing.T, path string) {
	t.Helper()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	t.Logf("%s: live heap %.1f MB in %d objects", filepath.Base(path), float64(m.HeapAlloc)/1e6, m.HeapObjects)
	writeProfile(t, "heap", path)
}

func writeProfile(t *testing.T, name, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup(name).WriteTo(f, 0); err != nil {
		t.Fatal(err)
	}
}

func processCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestProfileServer runs the server itself (app.Run, as the binary does,
// read-only port only) in this process over the tree, scrapes
// /metrics/cadvisor every 15 s like a Prometheus, and writes heap profiles
// after the first ticks and after the scrapes (KSS_PROFILE=<dir>): where
// the resident memory of TestLoad's process goes.
func TestProfileServer(t *testing.T) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		t.Skip("profiles: run with KSS_PROFILE=<dir> (and KSS_LOAD_PODS, default 500)")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	parent := os.Getenv("KSS_PROFILE_ROOT")
	if parent == "" {
		parent = layOutPods(t, podsFromEnv(t, 500))
	}
	base := startInProcess(t, "--cgroup-root="+parent, "--cgroup-driver=cgroupfs")
	client := &http.Client{}
	var logs bytes.Buffer
	waitForPodsContainer(t, client, base, &logs)
	time.Sleep(30 * time.Second) // three ticks: the measured state, not synchronisation
	writeHeapProfile(t, filepath.Join(dir, "server-idle.prof"))
	for range 6 {
		get(t, client, base+"/metrics/cadvisor", "gzip")
		time.Sleep(15 * time.Second) // the scrape interval being measured
	}
	writeHeapProfile(t, filepath.Join(dir, "server-scraped.prof"))
}
