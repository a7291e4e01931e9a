package guest

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

// TestLiveCollector builds one pod in the booted layout's naming with real
// processes, and compares every value the collector reads with the
// kernel's own v2 files, read just before and just after the pass.
func TestLiveCollector(t *testing.T) {
	lay := currentLayout(t)
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers")); err != nil {
		t.Fatalf("no cgroup2 at %s: %v", cgroupMount, err)
	}
	tr := newTree(t, "kss-live")
	uid := newUID()
	pod := lay.pod(lay.burstable(lay.podsRoot(tr.root)), uid)
	containers := map[string]string{}
	for _, name := range []string{"busy", "holder", "reader", "idle", "oomer"} {
		id := randomHex(32)
		containers[name] = lay.container(pod, id)
		tr.mkdir(containers[name])
		if got := cadvisor.ContainerIDFromCgroup(containers[name]); got != id {
			t.Errorf("ContainerIDFromCgroup(%s) = %q, want %q", containers[name], got, id)
		}
	}
	// What the kubelet and runc write: a pod memory and pids limit, half a
	// CPU for the spinner with the weight of cpu.shares 1024, a limit and a
	// memory.min for the holder, and a small swapless limit for the oomer.
	tr.write(pod, "memory.max", fmt.Sprint(512<<20))
	tr.write(pod, "pids.max", "200")
	tr.write(containers["busy"], "cpu.max", "50000 100000")
	tr.write(containers["busy"], "cpu.weight", "39")
	tr.write(containers["holder"], "memory.max", fmt.Sprint(128<<20))
	tr.write(containers["holder"], "memory.min", fmt.Sprint(16<<20))
	tr.write(containers["oomer"], "memory.max", fmt.Sprint(16<<20))
	tr.write(containers["oomer"], "memory.swap.max", "0")
	if got, _ := cadvisor.PodUIDFromCgroup(pod); got != uid {
		t.Errorf("PodUIDFromCgroup(%s) = %q, want %q", pod, got, uid)
	}
	created := time.Now()
	tr.start(containers["busy"], "burn")
	tr.start(containers["holder"], "hold")
	tr.start(containers["reader"], "read")
	tr.start(containers["idle"], "sleep")

	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger, sink := newErrorLogger()
	c, err := collector.New(collector.Config{Tracked: []string{tr.root}, RescanInterval: time.Hour, Interval: time.Second, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if c.Hierarchy() != collector.HierarchyV2 {
		t.Fatalf("Hierarchy() = %v, want v2", c.Hierarchy())
	}
	first := c.Housekeep(ctx)
	// Let the spinner run long enough for a rate to mean something.
	busy := raw{t, containers["busy"]}
	framework.Eventually(t, time.Minute, "the spinner to use 200ms of CPU", func() bool {
		return busy.keyed("cpu.stat", "usage_usec") >= first.Get(containers["busy"]).Latest().CPU.UsageTotal/1000+200_000
	})

	names := append([]string{"/", pod}, mapValues(containers)...)
	before := readCounters(t, names)
	view := c.Housekeep(ctx)
	after := readCounters(t, names)

	for _, name := range names {
		info := view.Get(name)
		if info == nil || info.Latest() == nil {
			t.Errorf("no sample for %s", name)
			continue
		}
		checkSample(t, name, info.Latest(), before[name], after[name])
		if name != "/" {
			checkSpec(t, name, info.Spec, created)
		}
	}
	checkRoot(t, view.Get("/").Latest(), before["/"], after["/"])
	checkWorkloads(t, view, containers, first)

	t.Run("OOM kill in memory.events and kmsg", func(t *testing.T) {
		testOOMKill(t, ctx, c, tr, containers["oomer"])
	})
	t.Run("cgroups found and dropped by inotify", func(t *testing.T) {
		added := lay.container(pod, randomHex(32))
		tr.mkdir(added)
		if c.Housekeep(ctx).Get(added) == nil {
			t.Errorf("new cgroup %s not sampled by the next pass", added)
		}
		if err := rmdirCgroup(filepath.Join(cgroupMount, added)); err != nil {
			t.Fatal(err)
		}
		if c.Housekeep(ctx).Get(added) != nil {
			t.Errorf("removed cgroup %s still listed after the next pass", added)
		}
	})
	if msgs := sink.errorMessages(); len(msgs) > 0 {
		t.Errorf("collector logged %d errors: %q", len(msgs), msgs)
	}
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// counters are the kernel's values of one cgroup at one moment.
type counters struct {
	usage, user, system, periods, throttled, throttledUsec uint64
	cpuSome, memSome, memFull, ioSome                      uint64
	current, peak, swap, swapMax, limit, min               uint64
	anon, file, fileMapped, activeFile, inactiveFile       uint64
	pgfault, pgmajfault, oomKills, pids, pidsMax, procs    uint64
	// io is io.stat per "major:minor": rbytes, wbytes, rios, wios.
	io map[string][4]uint64
}

func readCounters(t *testing.T, names []string) map[string]counters {
	t.Helper()
	out := map[string]counters{}
	for _, name := range names {
		r := raw{t, name}
		c := counters{
			usage:  r.keyed("cpu.stat", "usage_usec") * 1000,
			user:   r.keyed("cpu.stat", "user_usec") * 1000,
			system: r.keyed("cpu.stat", "system_usec") * 1000,
			anon:   r.keyed("memory.stat", "anon"), file: r.keyed("memory.stat", "file"),
			fileMapped: r.keyed("memory.stat", "file_mapped"), activeFile: r.keyed("memory.stat", "active_file"),
			inactiveFile: r.keyed("memory.stat", "inactive_file"),
			pgfault:      r.keyed("memory.stat", "pgfault"), pgmajfault: r.keyed("memory.stat", "pgmajfault"),
			cpuSome: r.pressureTotal("cpu.pressure", "some"),
			memSome: r.pressureTotal("memory.pressure", "some"), memFull: r.pressureTotal("memory.pressure", "full"),
			ioSome: r.pressureTotal("io.pressure", "some"),
			procs:  r.procs(),
			io:     ioStat(r.text("io.stat")),
		}
		if name != "/" {
			c.periods = r.keyed("cpu.stat", "nr_periods")
			c.throttled = r.keyed("cpu.stat", "nr_throttled")
			c.throttledUsec = r.keyed("cpu.stat", "throttled_usec") * 1000
			c.current = r.uint("memory.current", 0)
			c.peak = r.uint("memory.peak", 0)
			c.swap = r.uint("memory.swap.current", 0)
			c.swapMax = r.uint("memory.swap.max", math.MaxUint64)
			c.limit = r.uint("memory.max", math.MaxUint64)
			c.min = r.uint("memory.min", 0)
			c.oomKills = r.keyed("memory.events", "oom_kill")
			c.pids = r.uint("pids.current", 0)
			c.pidsMax = r.uint("pids.max", 0)
		}
		out[name] = c
	}
	return out
}

// ioStat parses io.stat lines "254:16 rbytes=1 wbytes=2 rios=3 wios=4 ...".
func ioStat(content string) map[string][4]uint64 {
	out := map[string][4]uint64{}
	for _, line := range strings.Split(content, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var v [4]uint64
		for _, f := range fields[1:] {
			key, value, _ := strings.Cut(f, "=")
			n, _ := strconv.ParseUint(value, 10, 64) // io.stat values are decimal
			switch key {
			case "rbytes":
				v[0] = n
			case "wbytes":
				v[1] = n
			case "rios":
				v[2] = n
			case "wios":
				v[3] = n
			}
		}
		out[fields[0]] = v
	}
	return out
}

// between checks lo <= got <= hi (lo and hi in either order) widened by
// slack: counters read before and after the sample must bracket it;
// gauges of idle workloads get a little slack.
func between(t *testing.T, what string, got, a, b, slack uint64) {
	t.Helper()
	lo, hi := min(a, b), max(a, b)
	if lo > slack {
		lo -= slack
	} else {
		lo = 0
	}
	if hi < math.MaxUint64-slack {
		hi += slack
	}
	if got < lo || got > hi {
		t.Errorf("%s = %d, the kernel said %d before and %d after the pass", what, got, a, b)
	}
}

// gaugeSlack covers what an idle process's cgroup charges or frees between
// two reads (kernel stacks, page tables, per-CPU charge batches).
const gaugeSlack = 1 << 20

func checkSample(t *testing.T, name string, s *cadvisor.Sample, b, a counters) {
	t.Helper()
	between(t, name+" cpu usage", s.CPU.UsageTotal, b.usage, a.usage, 0)
	between(t, name+" cpu user", s.CPU.UsageUser, b.user, a.user, 0)
	between(t, name+" cpu system", s.CPU.UsageSystem, b.system, a.system, 0)
	if s.CPU.PSI == nil || s.Memory.PSI == nil || s.IOPressure == nil {
		t.Errorf("%s: PSI missing: cpu %v memory %v io %v", name, s.CPU.PSI, s.Memory.PSI, s.IOPressure)
	} else {
		between(t, name+" cpu.pressure some total", s.CPU.PSI.Some.Total, b.cpuSome, a.cpuSome, 0)
		between(t, name+" memory.pressure some total", s.Memory.PSI.Some.Total, b.memSome, a.memSome, 0)
		between(t, name+" memory.pressure full total", s.Memory.PSI.Full.Total, b.memFull, a.memFull, 0)
		between(t, name+" io.pressure some total", s.IOPressure.Some.Total, b.ioSome, a.ioSome, 0)
	}
	between(t, name+" processes", s.Processes.Count, b.procs, a.procs, 0)
	checkDiskIO(t, name, s.DiskIO, b.io, a.io)
	if name == "/" {
		return // the root has no memory.current, cpu.max, pids files: checkRoot
	}
	between(t, name+" throttling periods", s.CPU.Periods, b.periods, a.periods, 0)
	between(t, name+" throttled periods", s.CPU.ThrottledPeriods, b.throttled, a.throttled, 0)
	between(t, name+" throttled time", s.CPU.ThrottledTime, b.throttledUsec, a.throttledUsec, 0)
	m := s.Memory
	between(t, name+" memory usage", m.Usage, b.current, a.current, gaugeSlack)
	between(t, name+" memory max usage (memory.peak)", m.MaxUsage, b.peak, a.peak, 0)
	between(t, name+" rss (anon)", m.RSS, b.anon, a.anon, gaugeSlack)
	between(t, name+" cache (file)", m.Cache, b.file, a.file, gaugeSlack)
	between(t, name+" mapped_file", m.MappedFile, b.fileMapped, a.fileMapped, gaugeSlack)
	between(t, name+" active_file", m.ActiveFile, b.activeFile, a.activeFile, gaugeSlack)
	between(t, name+" inactive_file", m.InactiveFile, b.inactiveFile, a.inactiveFile, gaugeSlack)
	between(t, name+" pgfault", m.PageFaults, b.pgfault, a.pgfault, 0)
	between(t, name+" pgmajfault", m.MajorPageFaults, b.pgmajfault, a.pgmajfault, 0)
	between(t, name+" swap", m.SwapUsage, b.swap, a.swap, gaugeSlack)
	if want := cadvisor.WorkingSet(m.Usage, m.InactiveFile); m.WorkingSet != want {
		t.Errorf("%s working set %d, want usage %d - inactive_file %d", name, m.WorkingSet, m.Usage, m.InactiveFile)
	}
	exact(t, name+" memory limit (memory.max)", m.Limit, a.limit)
	exact(t, name+" swap limit (memory.swap.max)", m.SwapLimit, a.swapMax)
	exact(t, name+" reservation (memory.min)", m.Reservation, a.min)
	exact(t, name+" oom kills (memory.events)", m.OOMKills, a.oomKills)
	exact(t, name+" threads (pids.current)", s.Processes.ThreadsCount, a.pids)
	exact(t, name+" threads limit (pids.max)", s.Processes.ThreadsLimit, a.pidsMax)
}

func exact(t *testing.T, what string, got, want uint64) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %d, the kernel says %d", what, got, want)
	}
}

// checkDiskIO compares the per-device I/O with io.stat.
func checkDiskIO(t *testing.T, name string, got []cadvisor.DiskIO, b, a map[string][4]uint64) {
	t.Helper()
	if len(got) != len(a) {
		t.Errorf("%s: %d devices in DiskIO, io.stat lists %d", name, len(got), len(a))
	}
	for _, d := range got {
		dev := fmt.Sprintf("%d:%d", d.Major, d.Minor)
		before, after := b[dev], a[dev]
		between(t, name+" "+dev+" read bytes", d.Bytes[cadvisor.IORead], before[0], after[0], 0)
		between(t, name+" "+dev+" write bytes", d.Bytes[cadvisor.IOWrite], before[1], after[1], 0)
		between(t, name+" "+dev+" reads", d.IOs[cadvisor.IORead], before[2], after[2], 0)
		between(t, name+" "+dev+" writes", d.IOs[cadvisor.IOWrite], before[3], after[3], 0)
	}
}

// checkSpec compares the spec with cpu.weight, cpu.max and
// cpuset.cpus.effective, converted as cAdvisor does.
func checkSpec(t *testing.T, name string, spec cadvisor.Spec, created time.Time) {
	t.Helper()
	r := raw{t, name}
	weight := r.uint("cpu.weight", 0)
	if want := 2 + ((weight-1)*262142)/9999; spec.CPUShares != want {
		t.Errorf("%s cpu shares %d, cpu.weight %d converts to %d", name, spec.CPUShares, weight, want)
	}
	quota, period, _ := strings.Cut(r.text("cpu.max"), " ")
	wantQuota := int64(-1)
	if quota != "max" {
		wantQuota, _ = strconv.ParseInt(quota, 10, 64)
	}
	if spec.CPUQuota != wantQuota || fmt.Sprint(spec.CPUPeriod) != period {
		t.Errorf("%s cpu quota %d period %d, cpu.max says %q", name, spec.CPUQuota, spec.CPUPeriod, r.text("cpu.max"))
	}
	if want := r.text("cpuset.cpus.effective"); spec.CPUMask != want {
		t.Errorf("%s cpu mask %q, cpuset.cpus.effective %q", name, spec.CPUMask, want)
	}
	if !spec.HasCPU || !spec.HasMemory {
		t.Errorf("%s spec has cpu %v memory %v", name, spec.HasCPU, spec.HasMemory)
	}
	if spec.CreationTime.Before(created.Add(-time.Minute)) || spec.CreationTime.After(time.Now()) {
		t.Errorf("%s created %v, the test made it at %v", name, spec.CreationTime, created)
	}
}

// checkRoot checks the root's memory as cAdvisor's raw handler fills it:
// limits from /proc/meminfo, usage anon+file, swap SwapTotal-SwapFree.
func checkRoot(t *testing.T, s *cadvisor.Sample, b, a counters) {
	t.Helper()
	memTotal, swapTotal, swapFree := meminfo(t, "MemTotal"), meminfo(t, "SwapTotal"), meminfo(t, "SwapFree")
	exact(t, "root memory limit (MemTotal)", s.Memory.Limit, memTotal)
	exact(t, "root swap limit (SwapTotal)", s.Memory.SwapLimit, swapTotal)
	if swapTotal == 0 {
		t.Error("the VM has no swap: zram was not set up")
	}
	between(t, "root swap usage", s.Memory.SwapUsage, swapTotal-swapFree, swapTotal-swapFree, 8<<20)
	// The whole VM's memory moves while the test runs: a few MiB of slack.
	between(t, "root memory usage (anon+file)", s.Memory.Usage, b.anon+b.file, a.anon+a.file, 8<<20)
}

// meminfo reads one /proc/meminfo line in bytes.
func meminfo(t *testing.T, key string) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, key+":"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	t.Fatalf("no %s in /proc/meminfo", key)
	return 0
}

// checkWorkloads checks that each workload shows where it should: the
// spinner as a throttled rate under its half CPU, the holder's 64 MiB as
// anon memory, the reader's direct I/O on vdb.
func checkWorkloads(t *testing.T, view *cadvisor.View, containers map[string]string, first *cadvisor.View) {
	t.Helper()
	busy := view.Get(containers["busy"]).Latest()
	rate, ok := cadvisor.NanoCores(first.Get(containers["busy"]).Latest(), busy)
	// cpu.max allows 0.5 CPU; the kernel may run a period's quota late.
	if !ok || rate == 0 || rate > 0.6e9 {
		t.Errorf("spinner under cpu.max 50000/100000 used %d nanocores (ok %v), want (0, 0.6e9]", rate, ok)
	}
	if busy.CPU.ThrottledPeriods == 0 {
		t.Error("spinner under half a CPU was never throttled")
	}
	if holder := view.Get(containers["holder"]).Latest(); holder.Memory.RSS < 64<<20 {
		t.Errorf("holder rss %d, it touched 64 MiB", holder.Memory.RSS)
	}
	var vdb unix.Stat_t
	if err := unix.Stat("/dev/vdb", &vdb); err != nil {
		t.Fatal(err)
	}
	major, minor := uint64(unix.Major(vdb.Rdev)), uint64(unix.Minor(vdb.Rdev))
	reader := view.Get(containers["reader"]).Latest()
	found := false
	for _, d := range reader.DiskIO {
		if d.Major == major && d.Minor == minor {
			found = true
			if d.Bytes[cadvisor.IORead] < directReadBytes {
				t.Errorf("reader read %d bytes of vdb, it read %d with O_DIRECT", d.Bytes[cadvisor.IORead], directReadBytes)
			}
		}
	}
	if !found {
		t.Errorf("reader's DiskIO %+v lacks vdb (%d:%d)", reader.DiskIO, major, minor)
	}
}

// testOOMKill has the kernel OOM-kill a hog under a 16 MiB swapless limit
// and expects the kill in memory.events (the sample's OOMKills) and in
// /dev/kmsg (WatchOOMKills), with the cgroup named.
func testOOMKill(t *testing.T, ctx context.Context, c *collector.Collector, tr *tree, cgroup string) {
	kills := make(chan cadvisor.OOMKill, 16)
	watchCtx, stop := context.WithCancel(ctx)
	defer stop()
	watching := make(chan error, 1)
	go func() {
		watching <- collector.WatchOOMKills(watchCtx, func(k cadvisor.OOMKill) { kills <- k })
	}()
	// The watcher seeks to the end of kmsg before reading: give it a pass
	// of the collector's worth of time to get there before the kill.
	c.Housekeep(ctx)
	hog := tr.start(cgroup, "hog")
	exited := make(chan error, 1)
	go func() { exited <- hog.Wait() }()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatal("the hog exited without being killed")
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the hog was not OOM-killed within 2 minutes")
	}
	r := raw{t, cgroup}
	if got := r.keyed("memory.events", "oom_kill"); got != 1 {
		t.Errorf("memory.events oom_kill = %d after one kill", got)
	}
	sample := c.Housekeep(ctx).Get(cgroup).Latest()
	if sample == nil || sample.Memory.OOMKills != 1 {
		t.Errorf("sample OOMKills = %v, memory.events says 1", sample)
	}
	select {
	case k := <-kills:
		if k.Cgroup != cgroup || k.LimitCgroup != cgroup || k.Constraint != "CONSTRAINT_MEMCG" {
			t.Errorf("kmsg kill %+v, want cgroup and limit cgroup %s under CONSTRAINT_MEMCG", k, cgroup)
		}
	case err := <-watching:
		t.Fatalf("kmsg watcher ended: %v", err)
	case <-time.After(time.Minute):
		t.Error("no OOM kill read from /dev/kmsg within a minute")
	}
}

// errorSink is a logr sink that keeps error-level messages, to assert that
// the collector logged none.
type errorSink struct {
	mu   sync.Mutex
	msgs []string
}

func newErrorLogger() (logr.Logger, *errorSink) {
	s := &errorSink{}
	return logr.New(s), s
}

func (s *errorSink) Init(logr.RuntimeInfo)          {}
func (s *errorSink) Enabled(level int) bool         { return level <= 2 }
func (s *errorSink) Info(int, string, ...any)       {}
func (s *errorSink) WithValues(...any) logr.LogSink { return s }
func (s *errorSink) WithName(string) logr.LogSink   { return s }
func (s *errorSink) Error(err error, msg string, kv ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, fmt.Sprintf("%s: %v %v", msg, err, kv))
}

func (s *errorSink) errorMessages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}
