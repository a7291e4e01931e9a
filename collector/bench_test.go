package collector

import (
	"bytes"
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
	defaultBenchPods   = 110
	benchContainers    = 3
	benchTrackedSuffix = "/kubepods"
	// benchPodsEnv sizes the bench tree (make bench-500 sets 500).
	benchPodsEnv = "KSS_BENCH_PODS"
)

// benchPods is how many pods the bench tree holds: KSS_BENCH_PODS, or 110
// (the kubelet's default max-pods).
func benchPods(b *testing.B) int {
	b.Helper()
	value := os.Getenv(benchPodsEnv)
	if value == "" {
		return defaultBenchPods
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive number of pods", benchPodsEnv, value)
	}
	return n
}

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
		pods := benchPods(b)
		for pod := 0; pod < pods; pod++ {
			podName := lc.name(fmt.Sprintf("kubepods/burstable/pod%08x-0000-4000-8000-%012x", pod, pod))
			for container := 0; container < benchContainers; container++ {
				name := fmt.Sprintf("%s/%064x", podName, pod*benchContainers+container)
				lc.mkdir(name)
				lc.startSleep(name)
			}
		}
		b.Logf("bench tree: %d pods × %d containers with a process each, built in %s", pods, benchContainers, time.Since(start))
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
	want := 1 + 2 + benchPods(b)*(1+benchContainers) // root, kubepods, burstable, pods, containers
	if view := c.Housekeep(ctx); len(view.Cgroups) != want {
		b.Fatalf("collector tracks %d cgroups, want %d", len(view.Cgroups), want)
	}
	return c
}

// BenchmarkHousekeep is one housekeeping pass over the bench tree (444
// cgroups at 110 pods, 2,003 at 500), with one worker (the default on 2
// CPUs) and two.
func BenchmarkHousekeep(b *testing.B) {
	lc := setupBenchTree(b)
	for _, workers := range []int{1, 2} {
		b.Run("workers="+strconv.Itoa(workers), func(b *testing.B) {
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

// filesReadByPass lists the files one Housekeep pass of c reads, in its
// order: what the readers were built to read (state.go), the pressure and
// I/O files, cgroup.procs and the network namespaces' net/dev. Checked
// with strace against a real pass.
func filesReadByPass(c *Collector) []string {
	var files []string
	netPIDs := map[string]int{}
	for _, e := range c.store.list() {
		st := e.state.Load()
		files = append(files, controllerFiles(st.reader)...)
		if e.name == "/" && st.spec.HasMemory {
			files = append(files, filepath.Join(c.cfg.ProcRoot, "meminfo"))
		}
		dirs := c.dirs(e.name, st)
		for i, file := range pressureFiles {
			if st.pressure[i] && (i != 1 || st.spec.HasMemory) {
				files = append(files, dirs.pressure.file(file))
			}
		}
		files = append(files, ioFilesRead(&st.spec.io, dirs.io)...)
		procs := dirs.procs.file("cgroup.procs")
		files = append(files, procs)
		if e.pod != "" && netPIDs[e.pod] == 0 {
			if data, err := os.ReadFile(procs); err == nil {
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

// controllerFiles lists the controller files a reader opens.
func controllerFiles(reader controllerReader) []string {
	var files []string
	add := func(dir cgroupDir, names ...string) {
		for _, name := range names {
			files = append(files, dir.file(name))
		}
	}
	switch r := reader.(type) {
	case *v1Reader:
		if r.has.has(hMemory) {
			memory := r.dir(hMemory)
			add(memory, "memory.stat", "memory.usage_in_bytes", "memory.max_usage_in_bytes", "memory.failcnt")
			if !r.root {
				add(memory, "memory.limit_in_bytes")
				if r.memsw {
					add(memory, "memory.memsw.limit_in_bytes")
				}
				add(memory, "memory.oom_control")
			}
		}
		if r.has.has(hPids) {
			add(r.dir(hPids), "pids.current", "pids.max")
		}
		if r.has.has(hCPU) {
			add(r.dir(hCPU), "cpu.stat")
		}
		if r.has.has(hCPUAcct) {
			add(r.dir(hCPUAcct), "cpuacct.stat", "cpuacct.usage_percpu", "cpuacct.usage")
		}
	case *v2Reader:
		if r.memory {
			add(r.dir, "memory.stat")
			if !r.root {
				add(r.dir, "memory.current", "memory.max")
				if r.peak {
					add(r.dir, "memory.peak")
				}
				if r.swap {
					add(r.dir, "memory.swap.current", "memory.swap.max")
				}
				add(r.dir, "memory.events")
			}
		}
		if r.pids {
			add(r.dir, "pids.current", "pids.max")
		}
		add(r.dir, "cpu.stat")
	}
	return files
}

// ioFilesRead lists the I/O files readDiskIO opens: io.stat, or the blkio
// pairs up to the first whose io_serviced lists a device.
func ioFilesRead(io *ioFiles, dir cgroupDir) []string {
	if io.stat {
		return []string{dir.file("io.stat")}
	}
	var files []string
	for i := range int(io.blkio.n) {
		pair := io.blkio.files(i)
		files = append(files, dir.file(pair.serviced))
		if data, err := os.ReadFile(dir.file(pair.serviced)); err == nil && bytes.Contains(data, []byte(":")) {
			return append(files, dir.file(pair.serviceBytes))
		}
	}
	return files
}
