package collector

import (
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// startLiveCollector starts a collector over the real hierarchies tracking
// the given names, with the rescan pushed out of the way so that discovery
// must come from inotify.
func startLiveCollector(t *testing.T, tracked ...string) (*Collector, *errorCountingSink) {
	t.Helper()
	logger, sink := newErrorCountingLogger(t)
	c, err := New(Config{Tracked: tracked, RescanInterval: time.Hour, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, sink
}

func assertNoErrorsLogged(t *testing.T, sink *errorCountingSink) {
	t.Helper()
	if msgs := sink.errorMessages(); len(msgs) > 0 {
		t.Errorf("collector logged %d errors: %q", len(msgs), msgs)
	}
}

func TestLiveHierarchy(t *testing.T) {
	skipUnlessLiveV1(t)
	c, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := HierarchyV1
	if fileExists(filepath.Join(liveMount, "unified", "cgroup.controllers")) {
		want = HierarchyHybrid
	}
	if c.Hierarchy() != want {
		t.Errorf("Hierarchy() = %v, want %v", c.Hierarchy(), want)
	}
}

// TestLiveCPUAndMemory compares the collector with the kernel's own files
// for a CPU burner under a quota and a process holding 64 MiB.
func TestLiveCPUAndMemory(t *testing.T) {
	lc := newLiveCgroups(t)
	busy, holder := lc.name("busy"), lc.name("holder")
	lc.mkdir(busy)
	lc.mkdir(holder)
	// Half a CPU for the burner, so that throttling shows; 256 MiB for the holder.
	lc.write("cpu", busy, "cpu.cfs_quota_us", "50000")
	lc.write("memory", holder, "memory.limit_in_bytes", strconv.Itoa(256<<20))
	lc.start(busy, "burn")
	lc.start(holder, "hold")

	c, sink := startLiveCollector(t, lc.parent)
	ctx := context.Background()

	before := lc.readUint("cpuacct", busy, "cpuacct.usage")
	wallBefore := time.Now()
	first := c.Housekeep(ctx)
	after := lc.readUint("cpuacct", busy, "cpuacct.usage")

	busyFirst := first.Get(busy).Latest()
	if busyFirst == nil {
		t.Fatal("no sample for the busy cgroup")
	}
	// The collector read cpuacct.usage between our two reads.
	if got := busyFirst.CPU.UsageTotal; got < before || got > after {
		t.Errorf("busy cpu usage %d not within the kernel's %d..%d", got, before, after)
	}
	if n := len(busyFirst.CPU.PerCPU); n != c.machine.NumCores {
		t.Errorf("per-cpu usage has %d entries, want %d", n, c.machine.NumCores)
	}
	var perCPUSum uint64
	for _, v := range busyFirst.CPU.PerCPU {
		perCPUSum += v
	}
	if perCPUSum < before/2 || perCPUSum > after {
		t.Errorf("per-cpu sum %d implausible against total %d..%d", perCPUSum, before, after)
	}

	holderInfo := first.Get(holder)
	holderMem := holderInfo.Latest().Memory
	kernelUsage := lc.readUint("memory", holder, "memory.usage_in_bytes")
	kernelInactive := lc.memoryStat(holder, "total_inactive_file")
	if diff := math.Abs(float64(holderMem.Usage) - float64(kernelUsage)); diff > 512<<10 {
		t.Errorf("holder memory usage %d, kernel says %d", holderMem.Usage, kernelUsage)
	}
	if want := cadvisor.WorkingSet(kernelUsage, kernelInactive); math.Abs(float64(holderMem.WorkingSet)-float64(want)) > 512<<10 {
		t.Errorf("holder working set %d, kernel says %d", holderMem.WorkingSet, want)
	}
	if holderMem.RSS < 64<<20 {
		t.Errorf("holder rss %d, want at least 64 MiB", holderMem.RSS)
	}
	if holderMem.Limit != 256<<20 {
		t.Errorf("holder limit %d, want 256 MiB", holderMem.Limit)
	}
	if holderMem.PageFaults < (64<<20)/4096 {
		t.Errorf("holder page faults %d, want at least one per touched page", holderMem.PageFaults)
	}
	if p := holderInfo.Latest().Processes; p.Count != 1 || p.ThreadsCount < 1 {
		t.Errorf("holder processes %+v, want 1 process", p)
	}

	// A rate needs two samples; the burner keeps burning in between.
	time.Sleep(time.Second)
	second := c.Housekeep(ctx)
	kernelEnd := lc.readUint("cpuacct", busy, "cpuacct.usage")
	wallEnd := time.Now()
	info := second.Get(busy)
	rate, ok := cadvisor.NanoCores(info.Previous(), info.Latest())
	if !ok {
		t.Fatal("no rate for the busy cgroup")
	}
	burned := float64(kernelEnd-before) / float64(wallEnd.Sub(wallBefore).Nanoseconds()) * 1e9
	if math.Abs(float64(rate)-burned) > 0.2*burned {
		t.Errorf("busy rate %d nanocores, the kernel says %.0f burned", rate, burned)
	}
	if rate == 0 || rate > 5.5e8 {
		t.Errorf("busy rate %d nanocores, want up to half a core (quota)", rate)
	}
	// Whether the burner gets throttled depends on the scheduler and on other
	// load; that the CFS counters are read at all does not.
	cpu := info.Latest().CPU
	if cpu.Periods == 0 {
		t.Errorf("busy cgroup has no CFS periods under a quota: %+v", cpu)
	}
	if want := lc.readStatField("cpu", busy, "cpu.stat", "nr_throttled"); cpu.ThrottledPeriods > want {
		t.Errorf("throttled periods %d exceed the kernel's %d read afterwards", cpu.ThrottledPeriods, want)
	}
	if cpu.UsageUser+cpu.UsageSystem == 0 {
		t.Errorf("busy user/system split missing: %+v", cpu)
	}
	if spec := info.Spec; spec.CPUQuota != 50000 || spec.CPUPeriod != 100000 || spec.CPUShares != 1024 || !spec.HasCPU || !spec.HasMemory {
		t.Errorf("busy spec %+v", spec)
	}
	if spec := second.Get(holder).Spec; spec.CPUQuota != -1 {
		t.Errorf("holder quota %d, want -1 (unlimited)", spec.CPUQuota)
	}

	if c.Hierarchy() == HierarchyHybrid {
		s := info.Latest()
		if s.CPU.PSI == nil || s.Memory.PSI == nil || s.IOPressure == nil {
			t.Errorf("hybrid cgroup without PSI: cpu %v memory %v io %v", s.CPU.PSI, s.Memory.PSI, s.IOPressure)
		} else if s.CPU.PSI.Some.Total == 0 && cpu.ThrottledPeriods > 0 {
			t.Error("a throttled burner shows no cpu pressure")
		}
	}
	assertNoErrorsLogged(t, sink)
}

func TestLiveRoot(t *testing.T) {
	skipUnlessLiveV1(t)
	c, sink := startLiveCollector(t)
	view := c.Housekeep(context.Background())
	if len(view.Cgroups) != 1 {
		t.Errorf("tracking nothing but / gives %d cgroups", len(view.Cgroups))
	}
	root := view.Get("/")
	s := root.Latest()
	if s == nil {
		t.Fatal("no root sample")
	}
	kernelUsage, err := os.ReadFile(filepath.Join(liveMount, "cpuacct", "cpuacct.usage"))
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := strconv.ParseUint(string(kernelUsage[:len(kernelUsage)-1]), 10, 64); s.CPU.UsageTotal == 0 || s.CPU.UsageTotal > after {
		t.Errorf("root cpu usage %d, kernel says %d after", s.CPU.UsageTotal, after)
	}
	if s.Memory.Limit != c.machine.MemoryCapacity || s.Memory.SwapLimit != c.machine.SwapCapacity {
		t.Errorf("root limits %d/%d, want machine %d/%d", s.Memory.Limit, s.Memory.SwapLimit, c.machine.MemoryCapacity, c.machine.SwapCapacity)
	}
	if s.Memory.Usage == 0 || s.Memory.WorkingSet == 0 || s.Memory.WorkingSet > s.Memory.Usage {
		t.Errorf("root memory %+v", s.Memory)
	}
	if s.Processes.Count == 0 {
		t.Error("root has no processes")
	}
	data, err := os.ReadFile("/proc/1/net/dev")
	if err != nil {
		t.Fatal(err)
	}
	kernelIfaces, err := parseNetDev(data)
	if err != nil {
		t.Fatal(err)
	}
	want := interfaceNames(FilterInterfaces(kernelIfaces))
	if !root.Spec.HasNetwork {
		if len(c.machine.NetworkDevices) > 0 {
			t.Error("root spec has no network on a machine with network devices")
		}
	} else if s.Network == nil || !reflect.DeepEqual(interfaceNames(s.Network.Interfaces), want) {
		t.Errorf("root network %+v, want interfaces %q", s.Network, want)
	}
	if c.Hierarchy() == HierarchyHybrid && (s.CPU.PSI == nil || s.Memory.PSI == nil || s.IOPressure == nil) {
		t.Error("hybrid root without PSI")
	}
	if root.Spec.CreationTime.Before(c.machine.BootTime) {
		t.Errorf("root creation %v before boot %v", root.Spec.CreationTime, c.machine.BootTime)
	}
	assertNoErrorsLogged(t, sink)
}

// TestLivePodNetwork lays out a pod the kubelet's way and checks that the
// pod cgroup reports the network namespace of the process in its container.
func TestLivePodNetwork(t *testing.T) {
	lc := newLiveCgroups(t)
	pod := lc.name("kubepods/burstable/pod" + testPodUID)
	container := pod + "/" + testContainerID
	lc.mkdir(container)
	p := lc.startSleep(container)

	c, sink := startLiveCollector(t, lc.name("kubepods"))
	view := c.Housekeep(context.Background())
	podInfo := view.Get(pod)
	if podInfo == nil || podInfo.Latest() == nil {
		t.Fatalf("pod cgroup %s not sampled", pod)
	}
	if !podInfo.Spec.HasNetwork {
		t.Error("pod spec has no network")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", p.pid))
	if err != nil {
		t.Fatal(err)
	}
	kernelIfaces, err := parseNetDev(data)
	if err != nil {
		t.Fatal(err)
	}
	// The sleep runs in the host namespace, like a host-network pod.
	network := podInfo.Latest().Network
	if network == nil || !reflect.DeepEqual(interfaceNames(network.Interfaces), interfaceNames(FilterInterfaces(kernelIfaces))) {
		t.Errorf("pod network %+v, want the interfaces of pid %d", network, p.pid)
	}
	if got := view.Get(container).Latest(); got == nil || got.Network != nil || got.Processes.Count != 1 {
		t.Errorf("container sample %+v, want one process and no network", got)
	}
	for _, name := range []string{lc.name("kubepods"), lc.name("kubepods/burstable")} {
		if info := view.Get(name); info == nil || info.Latest() == nil || info.Latest().Network != nil {
			t.Errorf("%s: want a sample without network, got %+v", name, info)
		}
	}
	assertNoErrorsLogged(t, sink)
}

// TestLiveDiscovery checks inotify discovery: created after Start, removed,
// and a tracked root that only appears later, each visible at the very next
// Housekeep with the rescan an hour away.
func TestLiveDiscovery(t *testing.T) {
	lc := newLiveCgroups(t)
	later := lc.name("later")
	c, sink := startLiveCollector(t, lc.parent+"/tracked", later)
	ctx := context.Background()
	if view := c.Housekeep(ctx); len(view.Cgroups) != 1 {
		t.Fatalf("view has %d cgroups before any tracked one exists", len(view.Cgroups))
	}

	tracked := lc.name("tracked")
	created := tracked + "/created/deeper"
	lc.mkdir(created)
	proc := lc.start(created, "sleep")
	lc.mkdir(later)
	view := c.Housekeep(ctx)
	for _, name := range []string{tracked, tracked + "/created", created, later} {
		if info := view.Get(name); info == nil || info.Latest() == nil {
			t.Errorf("%s created after Start is not sampled by the next Housekeep", name)
		}
	}
	if got := view.Get(created).Latest(); got != nil && got.Processes.Count != 1 {
		t.Errorf("%s has %d processes, want 1", created, got.Processes.Count)
	}
	if view.Get(lc.parent) != nil {
		t.Errorf("untracked parent %s is in the view", lc.parent)
	}

	lc.stop(proc)
	lc.rmdir(created)
	lc.rmdir(later)
	view = c.Housekeep(ctx)
	for _, name := range []string{created, later} {
		if view.Get(name) != nil {
			t.Errorf("%s removed but still in the view", name)
		}
	}
	if view.Get(tracked+"/created") == nil {
		t.Error("the parent of a removed cgroup went away too")
	}

	// A removed tracked root is picked up again when it comes back.
	lc.mkdir(later + "/child")
	view = c.Housekeep(ctx)
	if view.Get(later) == nil || view.Get(later+"/child") == nil {
		t.Error("re-created tracked root not discovered")
	}
	assertNoErrorsLogged(t, sink)
}

// TestLiveVanishedMidPass removes a cgroup behind the collector's back (no
// inotify running) so that the pass itself finds it gone: it is dropped
// without an error-level log.
func TestLiveVanishedMidPass(t *testing.T) {
	lc := newLiveCgroups(t)
	gone := lc.name("gone")
	lc.mkdir(gone)
	logger, sink := newErrorCountingLogger(t)
	c, err := New(Config{Tracked: []string{lc.parent}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Populate the store as Start would, without starting inotify.
	c.discovery.mu.Lock()
	c.discovery.rescan()
	c.discovery.mu.Unlock()
	if c.Housekeep(context.Background()).Get(gone) == nil {
		t.Fatal("cgroup not tracked")
	}
	lc.rmdir(gone)
	view := c.Housekeep(context.Background())
	if view.Get(gone) != nil {
		t.Error("vanished cgroup still in the view")
	}
	if view.Get(lc.parent).Latest() == nil {
		t.Error("parent lost its sample")
	}
	assertNoErrorsLogged(t, sink)
}

// TestLiveChurn creates and removes cgroups while housekeeping runs, for
// the race detector and for the invariants that every published cgroup
// exists or existed, no error is logged for routine removal and no inotify
// watch is left behind.
func TestLiveChurn(t *testing.T) {
	lc := newLiveCgroups(t)
	c, sink := startLiveCollector(t, lc.parent)
	ctx := context.Background()
	c.Housekeep(ctx)
	baseline := kernelWatchCount(t, c)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			name := lc.name(fmt.Sprintf("churn-%d", i%5))
			for _, mount := range lc.mounts {
				_ = os.Mkdir(filepath.Join(mount, name), 0o755)
			}
			for _, mount := range lc.mounts {
				_ = removeCgroupDir(filepath.Join(mount, name))
			}
		}
	}()
	var views []*cadvisor.View
	for i := 0; i < 30; i++ {
		views = append(views, c.Housekeep(ctx))
	}
	close(stop)
	wg.Wait()
	final := c.Housekeep(ctx)
	for name := range final.Cgroups {
		if name != "/" && name != lc.parent {
			t.Errorf("%s still tracked after churn ended", name)
		}
	}
	if got := kernelWatchCount(t, c); got != baseline {
		t.Errorf("%d inotify watches after churn ended, baseline %d", got, baseline)
	}
	// Published views are immutable: every sample slice is still sorted.
	for _, v := range views {
		for name, info := range v.Cgroups {
			for i := 1; i < len(info.Samples); i++ {
				if !info.Samples[i].Timestamp.After(info.Samples[i-1].Timestamp) {
					t.Fatalf("%s: samples out of order in a published view", name)
				}
			}
		}
	}
	assertNoErrorsLogged(t, sink)
}

func interfaceNames(in []cadvisor.InterfaceStats) []string {
	out := []string{}
	for _, i := range in {
		out = append(out, i.Name)
	}
	return out
}
