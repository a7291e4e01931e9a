package cadvisor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	benchPods          = 110
	benchContainers    = 3
	benchTrackedSuffix = "/kubepods"
)

// benchTree is the real cgroup tree both benchmarks read: 110 pods × 3
// containers laid out like /<parent>/kubepods/burstable/pod<uid>/<id>, a
// sleeping process in each container. Built once, removed by TestMain.
var benchTree struct {
	once sync.Once
	lc   *liveCgroups
}

func setupBenchTree(b *testing.B) *liveCgroups {
	b.Helper()
	skipUnlessLiveV1(b)
	benchTree.once.Do(func() {
		lc := newUnmanagedLiveCgroups(b)
		benchTree.lc = lc
		start := time.Now()
		for pod := 0; pod < benchPods; pod++ {
			podName := lc.name(fmt.Sprintf("kubepods/burstable/pod%08x-0000-4000-8000-%012x", pod, pod))
			for container := 0; container < benchContainers; container++ {
				name := fmt.Sprintf("%s/%064x", podName, pod*benchContainers+container)
				lc.mkdir(name)
				lc.startSleep(name)
			}
		}
		b.Logf("bench tree: %d pods × %d containers with a process each, built in %s", benchPods, benchContainers, time.Since(start))
	})
	if benchTree.lc == nil {
		b.Skip("bench tree setup failed")
	}
	return benchTree.lc
}

func cleanupBenchTree() {
	if benchTree.lc == nil {
		return
	}
	if err := benchTree.lc.cleanup(); err != nil {
		fmt.Fprintln(os.Stderr, "bench tree cleanup:", err)
	}
}

func newBenchCollector(b *testing.B, lc *liveCgroups, workers int) *Collector {
	b.Helper()
	c, err := New(Config{Tracked: []string{lc.parent + benchTrackedSuffix}, RescanInterval: time.Hour, Workers: workers})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	want := 1 + 2 + benchPods*(1+benchContainers) // root, kubepods, burstable, pods, containers
	if view := c.Housekeep(ctx); len(view.Cgroups) != want {
		b.Fatalf("collector tracks %d cgroups, want %d", len(view.Cgroups), want)
	}
	return c
}

// BenchmarkHousekeep is one housekeeping pass over the bench tree (444
// cgroups), with one worker and with the default pool.
func BenchmarkHousekeep(b *testing.B) {
	lc := setupBenchTree(b)
	for _, workers := range []int{1, 0} {
		label := "workers=" + strconv.Itoa(workers)
		if workers == 0 {
			label = "workers=default"
		}
		b.Run(label, func(b *testing.B) {
			c := newBenchCollector(b, lc, workers)
			ctx := context.Background()
			b.ReportAllocs()
			cpu := startCPUMeter(b)
			for i := 0; i < b.N; i++ {
				c.Housekeep(ctx)
			}
			cpu.report()
			b.ReportMetric(float64(len(c.store.list())), "cgroups")
		})
	}
}

// BenchmarkReadFloor reads exactly the files one pass reads, with
// os.ReadFile in a tight loop and no parsing: what a pass cannot go below.
func BenchmarkReadFloor(b *testing.B) {
	lc := setupBenchTree(b)
	c := newBenchCollector(b, lc, 1)
	files := filesReadByPass(c)
	b.ReportAllocs()
	cpu := startCPUMeter(b)
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			_, _ = os.ReadFile(f)
		}
	}
	cpu.report()
	b.ReportMetric(float64(len(files)), "files")
}

// BenchmarkReadFloorRaw is a lower floor than BenchmarkReadFloor: the same
// files with bare open/read/close into one reused buffer (no fstat, no
// allocation), i.e. about what the kernel alone costs.
func BenchmarkReadFloorRaw(b *testing.B) {
	lc := setupBenchTree(b)
	c := newBenchCollector(b, lc, 1)
	files := filesReadByPass(c)
	buf := make([]byte, 64<<10)
	b.ReportAllocs()
	cpu := startCPUMeter(b)
	for i := 0; i < b.N; i++ {
		for _, f := range files {
			buf, _ = readInto(buf, f)
			buf = buf[:cap(buf)]
		}
	}
	cpu.report()
	b.ReportMetric(float64(len(files)), "files")
}

// cpuMeter reports the process's CPU time (user+system) per op next to the
// wall time: on a shared machine wall time swings with other load, CPU time
// much less.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPUMeter(b *testing.B) cpuMeter {
	b.ResetTimer()
	return cpuMeter{b: b, start: processCPUTime()}
}

func (m cpuMeter) report() {
	m.b.ReportMetric(float64((processCPUTime()-m.start).Nanoseconds())/float64(m.b.N), "cpu-ns/op")
}

func processCPUTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// v1FilesRead lists, per v1 controller, the files opencontainers/cgroups
// v0.1.0 opens in Stats (fs/memory.go, fs/cpu.go, fs/cpuacct.go,
// fs/pids.go), in its order. Checked with strace against a real pass.
var v1FilesRead = map[string][]string{
	"memory": {
		"memory.stat",
		"memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt", "memory.limit_in_bytes",
		"memory.memsw.usage_in_bytes", "memory.memsw.max_usage_in_bytes", "memory.memsw.failcnt", "memory.memsw.limit_in_bytes",
		"memory.kmem.usage_in_bytes", "memory.kmem.max_usage_in_bytes", "memory.kmem.failcnt", "memory.kmem.limit_in_bytes",
		"memory.kmem.tcp.usage_in_bytes", "memory.kmem.tcp.max_usage_in_bytes", "memory.kmem.tcp.failcnt", "memory.kmem.tcp.limit_in_bytes",
		"memory.use_hierarchy", "memory.numa_stat",
	},
	"cpu":     {"cpu.stat"},
	"cpuacct": {"cpuacct.stat", "cpuacct.usage", "cpuacct.usage_percpu", "cpuacct.usage_all"},
	"pids":    {"pids.current", "pids.max"},
}

// filesReadByPass lists the files one Housekeep pass of c reads on v1.
func filesReadByPass(c *Collector) []string {
	var files []string
	netPIDs := map[string]int{}
	for _, e := range c.store.list() {
		st := e.state.Load()
		for _, controller := range []string{"memory", "cpu", "cpuacct", "pids"} {
			dir, ok := st.paths.v1[controller]
			if !ok || (controller == "pids" && e.name == "/") {
				continue
			}
			for _, f := range v1FilesRead[controller] {
				files = append(files, filepath.Join(dir, f))
			}
		}
		if st.spec.HasMemory && e.name != "/" {
			files = append(files, filepath.Join(st.paths.v1["memory"], "memory.oom_control"))
		}
		if e.name == "/" {
			files = append(files, filepath.Join(c.cfg.ProcRoot, "meminfo"))
		}
		for _, f := range []string{st.cpuPressure, st.memoryPressure, st.ioPressure, st.procsFile} {
			if f != "" {
				files = append(files, f)
			}
		}
		if e.pod != "" && netPIDs[e.pod] == 0 {
			if data, err := os.ReadFile(st.procsFile); err == nil {
				if _, pid := countProcs(data); pid != 0 {
					netPIDs[e.pod] = pid
				}
			}
		}
	}
	if c.store.get("/").state.Load().spec.HasNetwork {
		files = append(files, filepath.Join(c.cfg.ProcRoot, "1", "net", "dev"))
	}
	for _, pid := range netPIDs {
		files = append(files, filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid), "net", "dev"))
	}
	return files
}
