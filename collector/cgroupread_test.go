package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// TestLiveReaderMatchesLibrary reads one real v1 cgroup (a process holding
// 64 MiB under a limit and a CPU quota) with the collector's own readers and
// with opencontainers/cgroups, which they replace: every value the samples
// take from the library must be what the library reads, in cAdvisor's
// reading (setMemoryStats). Values that move while a process sleeps
// (usage, CPU time) must fall between two library reads.
func TestLiveReaderMatchesLibrary(t *testing.T) {
	lc := newLiveCgroups(t)
	name := lc.name("holder")
	lc.mkdir(name)
	lc.write("memory", name, "memory.limit_in_bytes", strconv.Itoa(256<<20))
	lc.write("memory", name, "memory.soft_limit_in_bytes", strconv.Itoa(64<<20))
	lc.write("cpu", name, "cpu.cfs_quota_us", "50000")
	lc.start(name, "hold")

	c, sink := startLiveCollector(t, lc.parent)
	paths := map[string]string{}
	for _, controller := range []string{"memory", "cpu", "cpuacct", "pids"} {
		paths[controller] = liveMount + "/" + controller + name
	}
	manager, err := fs.NewManager(&cgroups.Cgroup{Resources: &cgroups.Resources{}}, paths)
	if err != nil {
		t.Fatal(err)
	}
	libraryStats := func() *cgroups.Stats {
		t.Helper()
		stats, err := manager.GetStats()
		if err != nil {
			t.Fatal(err)
		}
		return stats
	}
	before := libraryStats()
	ours := c.Housekeep(context.Background()).Get(name).Latest()
	after := libraryStats()
	oomKills, err := manager.OOMKillCount()
	if err != nil {
		t.Fatal(err)
	}
	if ours == nil {
		t.Fatal("no sample")
	}

	lib := after.MemoryStats
	hierarchy := map[bool]string{true: "total_", false: ""}[lib.UseHierarchy]
	wantMemory := cadvisor.MemoryStats{
		Usage:           ours.Memory.Usage, // checked against both reads below
		MaxUsage:        lib.Usage.MaxUsage,
		RSS:             lib.Stats[hierarchy+"rss"],
		Cache:           lib.Stats[hierarchy+"cache"],
		MappedFile:      lib.Stats[hierarchy+"mapped_file"],
		ActiveFile:      lib.Stats["total_active_file"],
		InactiveFile:    lib.Stats["total_inactive_file"],
		Failcnt:         lib.Usage.Failcnt,
		PageFaults:      lib.Stats["pgfault"],
		MajorPageFaults: lib.Stats["pgmajfault"],
		Limit:           lib.Usage.Limit,
		Reservation:     64 << 20,
		SwapUsage:       lib.Stats[hierarchy+"swap"],
		SwapLimit:       lib.SwapUsage.Limit,
		OOMKills:        oomKills,
		PSI:             ours.Memory.PSI, // not the library's on hybrid
	}
	wantMemory.WorkingSet = cadvisor.WorkingSet(wantMemory.Usage, wantMemory.InactiveFile)
	if !reflect.DeepEqual(ours.Memory, wantMemory) {
		t.Errorf("memory\n ours    %+v\n library %+v", ours.Memory, wantMemory)
	}
	if lo, hi := min(before.MemoryStats.Usage.Usage, lib.Usage.Usage), max(before.MemoryStats.Usage.Usage, lib.Usage.Usage); ours.Memory.Usage < lo-lo/100 || ours.Memory.Usage > hi+hi/100 {
		t.Errorf("usage %d, library read %d then %d", ours.Memory.Usage, before.MemoryStats.Usage.Usage, lib.Usage.Usage)
	}

	cpu := after.CpuStats
	if got := ours.CPU.UsageTotal; got < before.CpuStats.CpuUsage.TotalUsage || got > cpu.CpuUsage.TotalUsage {
		t.Errorf("cpu usage %d, library read %d then %d", got, before.CpuStats.CpuUsage.TotalUsage, cpu.CpuUsage.TotalUsage)
	}
	if len(ours.CPU.PerCPU) != len(cpu.CpuUsage.PercpuUsage) {
		t.Errorf("per-cpu %v, library %v", ours.CPU.PerCPU, cpu.CpuUsage.PercpuUsage)
	}
	for i, got := range ours.CPU.PerCPU {
		if got < before.CpuStats.CpuUsage.PercpuUsage[i] || got > cpu.CpuUsage.PercpuUsage[i] {
			t.Errorf("cpu%d usage %d, library read %d then %d", i, got, before.CpuStats.CpuUsage.PercpuUsage[i], cpu.CpuUsage.PercpuUsage[i])
		}
	}
	between := func(what string, got, lo, hi uint64) {
		if got < lo || got > hi {
			t.Errorf("%s %d, library read %d then %d", what, got, lo, hi)
		}
	}
	between("user", ours.CPU.UsageUser, before.CpuStats.CpuUsage.UsageInUsermode, cpu.CpuUsage.UsageInUsermode)
	between("system", ours.CPU.UsageSystem, before.CpuStats.CpuUsage.UsageInKernelmode, cpu.CpuUsage.UsageInKernelmode)
	between("periods", ours.CPU.Periods, before.CpuStats.ThrottlingData.Periods, cpu.ThrottlingData.Periods)
	between("throttled periods", ours.CPU.ThrottledPeriods, before.CpuStats.ThrottlingData.ThrottledPeriods, cpu.ThrottlingData.ThrottledPeriods)
	between("throttled time", ours.CPU.ThrottledTime, before.CpuStats.ThrottlingData.ThrottledTime, cpu.ThrottlingData.ThrottledTime)

	pids := after.PidsStats
	if ours.Processes.ThreadsCount != pids.Current || ours.Processes.ThreadsLimit != pids.Limit {
		t.Errorf("threads %d (limit %d), library %d (limit %d)", ours.Processes.ThreadsCount, ours.Processes.ThreadsLimit, pids.Current, pids.Limit)
	}
	assertNoErrorsLogged(t, sink)
}

// TestParseHundredthsMatchesParseFloat: the fast path for pressure
// averages gives the very float strconv does, for every value the kernel
// can print up to 100.00 and some beyond.
func TestParseHundredthsMatchesParseFloat(t *testing.T) {
	check := func(n uint64) {
		text := strconv.FormatUint(n/100, 10) + "." + fmt.Sprintf("%02d", n%100)
		got, ok := parseHundredths([]byte(text))
		want, err := strconv.ParseFloat(text, 64)
		if !ok || err != nil || got != want {
			t.Fatalf("%s: parseHundredths %v (ok %v), ParseFloat %v (%v)", text, got, ok, want, err)
		}
	}
	for n := uint64(0); n <= 10000; n++ {
		check(n)
	}
	for _, n := range []uint64{123456789, 99999999999999, 1 << 40} {
		check(n)
	}
	for _, text := range []string{"1.5", "1.234", "x.10", "1.-1", ".12", "1e3"} {
		if v, ok := parseHundredths([]byte(text)); ok {
			t.Errorf("%q parsed as %v; only n.dd is the fast path's", text, v)
		}
	}
}

// TestReadFileAtGrows: a file larger than the buffer is read whole, by path
// and relative to a directory descriptor, and an empty one reads empty.
func TestReadFileAtGrows(t *testing.T) {
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789"), 1000)
	if err := os.WriteFile(filepath.Join(dir, "big"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	dirfd, err := openDir(plainDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	for _, fd := range []int{unix.AT_FDCWD, dirfd} {
		got, err := readFileAt(make([]byte, 16), fd, plainDir(dir), "big")
		if err != nil || !bytes.Equal(got, big) {
			t.Errorf("dirfd %d: read %d bytes (%v), want %d", fd, len(got), err, len(big))
		}
		if got, err := readFileAt(make([]byte, 16), fd, plainDir(dir), "empty"); err != nil || len(got) != 0 {
			t.Errorf("dirfd %d: empty file read as %q (%v)", fd, got, err)
		}
	}
	if _, err := readFileAt(nil, dirfd, plainDir(dir), "missing"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
