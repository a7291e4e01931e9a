package cadvisor

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/fs"
	"golang.org/x/sys/unix"
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
	wantMemory := MemoryStats{
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
	wantMemory.WorkingSet = WorkingSet(wantMemory.Usage, wantMemory.InactiveFile)
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

// TestEncodedSampleRoundTrip: a sample with every field set comes back from
// its compact form, relative to the sample after it, equal: pressure
// averages that are not two-decimal numbers, counters that went down
// (resets) and devices and interfaces that the sample after it lists
// differently or not at all included.
func TestEncodedSampleRoundTrip(t *testing.T) {
	psi := func(base uint64, avg float64) *PSIStats {
		return &PSIStats{Some: PSIData{Total: base, Avg10: avg, Avg60: 0.29, Avg300: 100},
			Full: PSIData{Total: base + 1, Avg10: math.Pi, Avg60: 1e-9, Avg300: 0}}
	}
	full := &Sample{
		Timestamp: time.Unix(1700000000, 123456789),
		CPU: CPUStats{UsageTotal: 1 << 40, UsageUser: 3, UsageSystem: 4, PerCPU: []uint64{5, 1 << 63},
			Periods: 6, ThrottledPeriods: 7, ThrottledTime: 8, PSI: psi(9, 0.5)},
		Memory: MemoryStats{Usage: 10, MaxUsage: 11, WorkingSet: 12, RSS: 13, Cache: 14, MappedFile: 15, ActiveFile: 16,
			InactiveFile: 17, Failcnt: 18, PageFaults: 19, MajorPageFaults: 20, Limit: math.MaxUint64, Reservation: 21,
			SwapUsage: 22, SwapLimit: 23, OOMKills: 24, PSI: psi(25, 12.34)},
		IOPressure: psi(26, 99.99),
		DiskIO: []DiskIO{
			{Major: 8, Minor: 0, Bytes: [NumIOOps]uint64{1, 2, 3, 4, 5, 6}, IOs: [NumIOOps]uint64{7, 8, 9, 10, 11, 12},
				HasBytes: 0x3f, HasIOs: 0x3f},
			{Major: 254, Minor: 1, Bytes: [NumIOOps]uint64{100, 200}, HasBytes: 3, Cost: &IOCost{Usage: 1, Wait: 2, Indebt: 3, Indelay: 4}},
		},
		Processes: ProcessStats{Count: 27, ThreadsCount: 28, ThreadsLimit: 29},
		Network: &NetworkStats{Interfaces: []InterfaceStats{
			{Name: "eth0", RxBytes: 30, RxPackets: 31, RxErrors: 32, RxDropped: 33, TxBytes: 34, TxPackets: 35, TxErrors: 36, TxDropped: 37},
			{Name: "net1"},
		}},
		cpus: 2,
	}
	// The sample after full: one CPU fewer, counters up and down, the
	// first device and interface the same, the second ones different.
	after := &Sample{
		Timestamp: time.Unix(1700000010, 0),
		CPU:       CPUStats{UsageTotal: 1<<40 + 5e9, UsageUser: 1, PerCPU: []uint64{1 << 62}, PSI: psi(1<<40, 0.25)},
		Memory:    MemoryStats{Usage: math.MaxUint64, Limit: 1 << 30, SwapLimit: 23, OOMKills: 25, PSI: psi(0, 0)},
		DiskIO: []DiskIO{
			{Major: 8, Minor: 0, Bytes: [NumIOOps]uint64{10, 2, 3, 4, 5, 60}, HasBytes: 0x3f, Cost: &IOCost{Usage: 9}},
			{Major: 259, Minor: 0, Bytes: [NumIOOps]uint64{7}},
		},
		Processes: ProcessStats{Count: 26, ThreadsCount: 28},
		Network: &NetworkStats{Interfaces: []InterfaceStats{
			{Name: "eth0", RxBytes: 300, RxPackets: 310, TxBytes: 1},
			{Name: "net2", RxBytes: 5},
		}},
		cpus: 4,
	}
	bare := &Sample{Timestamp: time.Unix(-5, 0), Network: &NetworkStats{Interfaces: []InterfaceStats{}}}
	empty := &Sample{Timestamp: time.Unix(0, 0)}
	for name, tt := range map[string]struct{ s, ref *Sample }{
		"every field, after itself": {full, full}, "every field, after another": {full, after},
		"every field, after nothing": {full, empty}, "another, after every field": {after, full},
		"bare": {bare, full}, "empty": {empty, empty},
	} {
		got, err := decodeSample(encodeSample(nil, tt.s, tt.ref), tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, tt.s) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, tt.s)
		}
	}
	if n := len(encodeSample(nil, full, empty)); n > 300 {
		t.Errorf("a full sample takes %d bytes encoded", n)
	}
	// What a container keeps: two-decimal pressure, no devices.
	container := &Sample{Timestamp: full.Timestamp, CPU: full.CPU, Memory: full.Memory, Processes: full.Processes, cpus: 2}
	container.CPU.PSI, container.Memory.PSI = psi(9, 0.5), psi(25, 12.34)
	container.CPU.PSI.Full.Avg10, container.CPU.PSI.Full.Avg60 = 0, 0
	container.Memory.PSI.Full.Avg10, container.Memory.PSI.Full.Avg60 = 0, 0
	if n := len(encodeSample(nil, container, container)); n > 64 {
		t.Errorf("a container's sample takes %d bytes encoded after an equal one", n)
	}
	data := encodeSample(nil, full, after)
	for _, corrupt := range [][]byte{nil, data[:len(data)-1], append(append([]byte(nil), data...), 0)} {
		if _, err := decodeSample(corrupt, after); err == nil {
			t.Errorf("decoding %d of %d bytes: no error", len(corrupt), len(data))
		}
	}
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
