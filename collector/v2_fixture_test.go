package collector

import (
	"context"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

const (
	fixturePod        = "/kubepods/burstable/pod5c0ffee0-1111-4222-8333-444455556666"
	fixtureContainer  = fixturePod + "/9be25294016e2dc0340dd605ce1f57b492039b267a6a618a7ad2a7a58a740f32"
	fixtureContainer2 = fixturePod + "/0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
	fixtureBootTime   = 1700000000
	fixtureMemTotal   = 16384000 * 1024
)

// v2Fixture copies testdata/v2 into a temp dir (tests modify it) and returns
// a started collector over it. The fixture is a regular filesystem, so the
// library is told not to insist on cgroupfs.
func v2Fixture(t *testing.T, tracked ...string) (*Collector, string) {
	t.Helper()
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	root := t.TempDir()
	copyTree(t, "testdata/v2", root)
	if len(tracked) == 0 {
		tracked = []string{"/kubepods"}
	}
	c, err := New(Config{
		CgroupMount:    filepath.Join(root, "cgroup"),
		ProcRoot:       filepath.Join(root, "proc"),
		SysRoot:        filepath.Join(root, "sys"),
		Tracked:        tracked,
		RescanInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return c, root
}

func TestV2FixtureHierarchy(t *testing.T) {
	c, _ := v2Fixture(t)
	if c.Hierarchy() != HierarchyV2 {
		t.Fatalf("Hierarchy() = %v, want v2", c.Hierarchy())
	}
	view := c.Housekeep(context.Background())
	var names []string
	for name := range view.Cgroups {
		names = append(names, name)
	}
	want := []string{"/", "/kubepods", "/kubepods/burstable", fixturePod, fixtureContainer, fixtureContainer2}
	if len(names) != len(want) {
		t.Fatalf("tracked %q, want %q", names, want)
	}
	for _, name := range want {
		if view.Get(name).Latest() == nil {
			t.Errorf("%s has no sample", name)
		}
	}
	if view.Get("/system.slice") != nil {
		t.Error("untracked /system.slice is in the view")
	}
}

func TestV2FixtureRoot(t *testing.T) {
	c, _ := v2Fixture(t)
	root := c.Housekeep(context.Background()).Get("/")
	s := root.Latest()
	if s == nil {
		t.Fatal("no root sample")
	}
	wantMem := cadvisor.MemoryStats{
		Usage:           1500000000, // anon + file: the v2 root has no memory.current
		WorkingSet:      1300000000,
		RSS:             1000000000,
		Cache:           500000000,
		MappedFile:      10000000,
		ActiveFile:      300000000,
		InactiveFile:    200000000,
		PageFaults:      5000,
		MajorPageFaults: 50,
		Limit:           fixtureMemTotal,
		SwapUsage:       (2097152 - 1048576) * 1024,
		SwapLimit:       2097152 * 1024,
		PSI: &cadvisor.PSIStats{
			Some: cadvisor.PSIData{Avg10: 0.1, Avg60: 0.2, Avg300: 0.3, Total: 2000},
			Full: cadvisor.PSIData{Avg10: 0.01, Avg60: 0.02, Avg300: 0.03, Total: 200},
		},
	}
	if !reflect.DeepEqual(s.Memory, wantMem) {
		t.Errorf("root memory\n got %+v\nwant %+v", s.Memory, wantMem)
	}
	wantCPU := cadvisor.CPUStats{
		UsageTotal:  123456789000,
		UsageUser:   100000000000,
		UsageSystem: 23456789000,
		PSI: &cadvisor.PSIStats{
			Some: cadvisor.PSIData{Avg10: 1, Avg60: 2, Avg300: 3, Total: 1000},
			Full: cadvisor.PSIData{Avg10: 0.5, Avg60: 0.25, Avg300: 0.12, Total: 500},
		},
	}
	if !reflect.DeepEqual(s.CPU, wantCPU) {
		t.Errorf("root cpu\n got %+v\nwant %+v", s.CPU, wantCPU)
	}
	wantIO := &cadvisor.PSIStats{Some: cadvisor.PSIData{Avg10: 4, Avg60: 5, Avg300: 6, Total: 3000}, Full: cadvisor.PSIData{Avg10: 7, Avg60: 8, Avg300: 9, Total: 300}}
	if !reflect.DeepEqual(s.IOPressure, wantIO) {
		t.Errorf("root io pressure %+v, want %+v", s.IOPressure, wantIO)
	}
	if s.Processes != (cadvisor.ProcessStats{Count: 2}) {
		t.Errorf("root processes %+v, want 2 processes and no pids controller", s.Processes)
	}
	// pid 1's namespace, filtered, in file order.
	wantNet := &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{
		{Name: "ens3", RxBytes: 1000000, RxPackets: 2000, RxErrors: 1, RxDropped: 2, TxBytes: 500000, TxPackets: 1500, TxErrors: 3, TxDropped: 4},
		{Name: "eth1", RxBytes: 4000, RxPackets: 40, TxBytes: 3000, TxPackets: 30},
	}}
	if !reflect.DeepEqual(s.Network, wantNet) {
		t.Errorf("root network %+v, want %+v", s.Network, wantNet)
	}
	if !root.Spec.HasCPU || !root.Spec.HasMemory || !root.Spec.HasNetwork || root.Spec.CPUMask != "0-1" {
		t.Errorf("root spec %+v", root.Spec)
	}
}

func TestV2FixtureContainer(t *testing.T) {
	c, _ := v2Fixture(t)
	info := c.Housekeep(context.Background()).Get(fixtureContainer)
	s := info.Latest()
	if s == nil {
		t.Fatal("no container sample")
	}
	wantMem := cadvisor.MemoryStats{
		Usage:           104857600,
		MaxUsage:        209715200,
		WorkingSet:      104857600 - 20971520,
		RSS:             52428800,
		Cache:           41943040,
		MappedFile:      1048576,
		ActiveFile:      20971520,
		InactiveFile:    20971520,
		PageFaults:      1234,
		MajorPageFaults: 12,
		Limit:           268435456,
		Reservation:     1048576,
		SwapUsage:       1048576,
		SwapLimit:       math.MaxUint64,
		OOMKills:        1,
		PSI:             &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 21}, Full: cadvisor.PSIData{Total: 22}},
	}
	if !reflect.DeepEqual(s.Memory, wantMem) {
		t.Errorf("container memory\n got %+v\nwant %+v", s.Memory, wantMem)
	}
	wantCPU := cadvisor.CPUStats{
		UsageTotal:       5000000000,
		UsageUser:        3000000000,
		UsageSystem:      2000000000,
		Periods:          100,
		ThrottledPeriods: 7,
		ThrottledTime:    350000000,
		PSI:              &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 11}, Full: cadvisor.PSIData{Total: 12}},
	}
	if !reflect.DeepEqual(s.CPU, wantCPU) {
		t.Errorf("container cpu\n got %+v\nwant %+v", s.CPU, wantCPU)
	}
	if want := (cadvisor.ProcessStats{Count: 2, ThreadsCount: 6, ThreadsLimit: 0}); s.Processes != want {
		t.Errorf("container processes %+v, want %+v", s.Processes, want)
	}
	if want := (&cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 31}, Full: cadvisor.PSIData{Total: 32}}); !reflect.DeepEqual(s.IOPressure, want) {
		t.Errorf("container io pressure %+v, want %+v", s.IOPressure, want)
	}
	if s.Network != nil {
		t.Errorf("container has network %+v; only pods and the root do", s.Network)
	}
	wantSpec := cadvisor.Spec{
		CreationTime: info.Spec.CreationTime, // checked in TestV2FixtureCreationTime
		HasCPU:       true,
		HasMemory:    true,
		HasProcesses: true,
		HasDiskIO:    true, // cAdvisor: every cgroup2 cgroup
		CPUShares:    2046, // cpu.weight 79
		CPUQuota:     50000,
		CPUPeriod:    100000,
		CPUMask:      "0-1",
	}
	if info.Spec != wantSpec {
		t.Errorf("container spec\n got %+v\nwant %+v", info.Spec, wantSpec)
	}
}

func TestV2FixtureOptionalFiles(t *testing.T) {
	c, _ := v2Fixture(t)
	s := c.Housekeep(context.Background()).Get(fixtureContainer2).Latest()
	if s == nil {
		t.Fatal("no sample")
	}
	// memory.max 0 reads as the machine's capacity; no swap files, no pids
	// controller, no processes.
	if s.Memory.Limit != fixtureMemTotal || s.Memory.SwapUsage != 0 || s.Memory.SwapLimit != 0 {
		t.Errorf("memory %+v", s.Memory)
	}
	if s.Processes != (cadvisor.ProcessStats{}) {
		t.Errorf("processes %+v", s.Processes)
	}
}

func TestV2FixturePod(t *testing.T) {
	c, _ := v2Fixture(t)
	info := c.Housekeep(context.Background()).Get(fixturePod)
	s := info.Latest()
	if s == nil {
		t.Fatal("no pod sample")
	}
	if s.Memory.Limit != math.MaxUint64 {
		t.Errorf("pod memory limit %d, want unlimited (max)", s.Memory.Limit)
	}
	// cpu.weight 100 is cAdvisor's 2 + (100-1)*262142/9999 = 2597 shares.
	if info.Spec.CPUQuota != -1 || info.Spec.CPUPeriod != 100000 || info.Spec.CPUShares != 2597 {
		t.Errorf("pod cpu spec %+v", info.Spec)
	}
	if !info.Spec.HasNetwork {
		t.Error("pod spec has no network")
	}
	// The network of the namespace of a process in a child cgroup.
	wantNet := &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{
		{Name: "eth0", RxBytes: 123456, RxPackets: 789, RxErrors: 5, RxDropped: 6, TxBytes: 65432, TxPackets: 321, TxErrors: 7, TxDropped: 8},
	}}
	if !reflect.DeepEqual(s.Network, wantNet) {
		t.Errorf("pod network %+v, want %+v", s.Network, wantNet)
	}
}

func TestV2FixtureCreationTime(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	root := t.TempDir()
	copyTree(t, "testdata/v2", root)
	boot := time.Unix(fixtureBootTime, 0)
	dirTime := boot.Add(3 * time.Hour)
	eventsTime := boot.Add(2 * time.Hour)
	containerDir := filepath.Join(root, "cgroup", fixtureContainer)
	setMtime(t, containerDir, dirTime)
	setMtime(t, filepath.Join(containerDir, "cgroup.events"), eventsTime)
	// Older than boot: clamped.
	podDir := filepath.Join(root, "cgroup", fixturePod)
	setMtime(t, podDir, boot.Add(-time.Hour))
	setMtime(t, filepath.Join(podDir, "cgroup.events"), boot.Add(-time.Hour))

	c, err := New(Config{CgroupMount: filepath.Join(root, "cgroup"), ProcRoot: filepath.Join(root, "proc"),
		SysRoot: filepath.Join(root, "sys"), Tracked: []string{"/kubepods"}, RescanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	view := c.Housekeep(ctx)
	if got := view.Get(fixtureContainer).Spec.CreationTime; !got.Equal(eventsTime) {
		t.Errorf("container creation %v, want the older cgroup.events mtime %v", got, eventsTime)
	}
	if got := view.Get(fixturePod).Spec.CreationTime; !got.Equal(boot) {
		t.Errorf("pod creation %v, want boot time %v", got, boot)
	}
}

// TestV2FixtureDiscovery exercises inotify discovery without root: cgroups
// created, renamed in and removed after Start, and a tracked root that only
// appears later.
func TestV2FixtureDiscovery(t *testing.T) {
	c, root := v2Fixture(t, "/kubepods", "/kubepods.slice")
	mount := filepath.Join(root, "cgroup")
	ctx := context.Background()
	if view := c.Housekeep(ctx); view.Get("/kubepods.slice") != nil {
		t.Fatal("/kubepods.slice tracked before it exists")
	}

	// A new container: staged elsewhere, then renamed in, so it appears with
	// its files (a real cgroupfs creates them with the directory).
	newContainer := fixturePod + "/new-container"
	stageCgroup(t, root, filepath.Join(mount, fixtureContainer), "staged1")
	mustRename(t, filepath.Join(root, "staged1"), filepath.Join(mount, newContainer))
	// A tracked root that did not exist, with a child.
	stageCgroup(t, root, filepath.Join(mount, "kubepods"), "staged2")
	mustRename(t, filepath.Join(root, "staged2"), filepath.Join(mount, "kubepods.slice"))
	// A plain mkdir: empty cgroup directory on this fake filesystem.
	if err := os.Mkdir(filepath.Join(mount, "kubepods", "mkdir-only"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Untracked: must stay out.
	if err := os.Mkdir(filepath.Join(mount, "system.slice", "other.service"), 0o755); err != nil {
		t.Fatal(err)
	}

	view := c.Housekeep(ctx)
	for _, name := range []string{newContainer, "/kubepods.slice", "/kubepods.slice/burstable", "/kubepods/mkdir-only"} {
		if view.Get(name) == nil {
			t.Errorf("%s not discovered by the next Housekeep", name)
		}
	}
	if got := view.Get(newContainer).Latest(); got == nil || got.CPU.UsageTotal != 5000000000 {
		t.Errorf("new container sample %+v", got)
	}
	if view.Get("/system.slice/other.service") != nil || view.Get("/system.slice") != nil {
		t.Error("untracked cgroups discovered")
	}

	if err := os.RemoveAll(filepath.Join(mount, newContainer)); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(mount, "kubepods.slice")); err != nil {
		t.Fatal(err)
	}
	view = c.Housekeep(ctx)
	for _, name := range []string{newContainer, "/kubepods.slice", "/kubepods.slice/burstable"} {
		if view.Get(name) != nil {
			t.Errorf("%s still in the view after removal", name)
		}
	}
	// The removed tracked root is watched for again.
	stageCgroup(t, root, filepath.Join(mount, "kubepods"), "staged3")
	mustRename(t, filepath.Join(root, "staged3"), filepath.Join(mount, "kubepods.slice"))
	if c.Housekeep(ctx).Get("/kubepods.slice") == nil {
		t.Error("/kubepods.slice not rediscovered after it came back")
	}
}

// TestV2FixtureSamplesAccumulate checks the ring buffer through the real
// path: samples are kept oldest first and published slices never change.
func TestV2FixtureSamplesAccumulate(t *testing.T) {
	c, root := v2Fixture(t)
	ctx := context.Background()
	first := c.Housekeep(ctx)
	cpuStat := filepath.Join(root, "cgroup", fixtureContainer, "cpu.stat")
	if err := os.WriteFile(cpuStat, []byte("usage_usec 6000000\nuser_usec 3500000\nsystem_usec 2500000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	second := c.Housekeep(ctx)
	if n := len(first.Get(fixtureContainer).Samples); n != 1 {
		t.Errorf("first view has %d samples, want 1", n)
	}
	info := second.Get(fixtureContainer)
	if len(info.Samples) != 2 {
		t.Fatalf("second view has %d samples, want 2", len(info.Samples))
	}
	if info.Previous().CPU.UsageTotal != 5000000000 || info.Latest().CPU.UsageTotal != 6000000000 {
		t.Errorf("samples out of order: %d then %d", info.Previous().CPU.UsageTotal, info.Latest().CPU.UsageTotal)
	}
	if _, ok := cadvisor.NanoCores(info.Previous(), info.Latest()); !ok {
		t.Error("no rate between two passes")
	}
	if first.Get(fixtureContainer).Latest() != info.Previous() {
		t.Error("the first view's sample is not the second view's previous one")
	}
}

func setMtime(t *testing.T, path string, at time.Time) {
	t.Helper()
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func mustRename(t *testing.T, from, to string) {
	t.Helper()
	if err := os.Rename(from, to); err != nil {
		t.Fatal(err)
	}
}

// stageCgroup copies a fixture cgroup (files of src only, plus its direct
// subdirectories' files) to root/name.
func stageCgroup(t *testing.T, root, src, name string) {
	t.Helper()
	copyTree(t, src, filepath.Join(root, name))
}

// copyTree copies a directory tree of regular files.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if fi.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		in, err := os.Open(path)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.Create(target)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}
