package cadvisor

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"
)

func TestMemoryFromStats(t *testing.T) {
	v1Stats := map[string]uint64{
		"cache": 10, "rss": 20, "mapped_file": 30, "swap": 40, "pgfault": 50, "pgmajfault": 60,
		"total_cache": 110, "total_rss": 120, "total_mapped_file": 130, "total_swap": 140,
		"total_active_file": 150, "total_inactive_file": 160, "active_file": 1, "inactive_file": 2,
	}
	v1 := func(useHierarchy bool) *cgroups.MemoryStats {
		return &cgroups.MemoryStats{
			Usage:        cgroups.MemoryData{Usage: 1000, MaxUsage: 2000, Failcnt: 3, Limit: 4000},
			SwapUsage:    cgroups.MemoryData{Usage: 1040, Limit: 8000},
			UseHierarchy: useHierarchy,
			Stats:        v1Stats,
		}
	}
	tests := []struct {
		name    string
		in      *cgroups.MemoryStats
		unified bool
		want    MemoryStats
	}{
		{
			name: "v1 hierarchical: total_ keys, memsw limit",
			in:   v1(true),
			want: MemoryStats{
				Usage: 1000, MaxUsage: 2000, Failcnt: 3, Limit: 4000, WorkingSet: 1000 - 160,
				RSS: 120, Cache: 110, MappedFile: 130, SwapUsage: 140, SwapLimit: 8000,
				ActiveFile: 150, InactiveFile: 160, PageFaults: 50, MajorPageFaults: 60,
			},
		},
		{
			name: "v1 flat: own keys, but total_ file keys like cAdvisor",
			in:   v1(false),
			want: MemoryStats{
				Usage: 1000, MaxUsage: 2000, Failcnt: 3, Limit: 4000, WorkingSet: 1000 - 160,
				RSS: 20, Cache: 10, MappedFile: 30, SwapUsage: 40, SwapLimit: 8000,
				ActiveFile: 150, InactiveFile: 160, PageFaults: 50, MajorPageFaults: 60,
			},
		},
		{
			name:    "v2: flat keys, swap only counters",
			unified: true,
			in: &cgroups.MemoryStats{
				Usage:         cgroups.MemoryData{Usage: 1000, MaxUsage: 1500, Limit: math.MaxUint64},
				SwapUsage:     cgroups.MemoryData{Usage: 1100, Limit: math.MaxUint64},
				SwapOnlyUsage: cgroups.MemoryData{Usage: 100, Limit: 500},
				Stats: map[string]uint64{
					"anon": 300, "file": 600, "file_mapped": 70, "active_file": 200, "inactive_file": 400,
					"pgfault": 9, "pgmajfault": 1,
				},
				PSI: &cgroups.PSIStats{Some: cgroups.PSIData{Total: 5, Avg10: 1.5}},
			},
			want: MemoryStats{
				Usage: 1000, MaxUsage: 1500, Limit: math.MaxUint64, WorkingSet: 600,
				RSS: 300, Cache: 600, MappedFile: 70, SwapUsage: 100, SwapLimit: 500,
				ActiveFile: 200, InactiveFile: 400, PageFaults: 9, MajorPageFaults: 1,
				PSI: &PSIStats{Some: PSIData{Total: 5, Avg10: 1.5}},
			},
		},
		{
			name:    "inactive file above usage floors the working set",
			unified: true,
			in: &cgroups.MemoryStats{
				Usage: cgroups.MemoryData{Usage: 100},
				Stats: map[string]uint64{"inactive_file": 400},
			},
			want: MemoryStats{Usage: 100, InactiveFile: 400},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := memoryFromStats(tt.in, tt.unified); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("memoryFromStats\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCPUFromStats(t *testing.T) {
	in := &cgroups.CpuStats{
		CpuUsage: cgroups.CpuUsage{
			TotalUsage: 100, UsageInUsermode: 60, UsageInKernelmode: 40, PercpuUsage: []uint64{70, 30},
		},
		ThrottlingData: cgroups.ThrottlingData{Periods: 5, ThrottledPeriods: 2, ThrottledTime: 1000},
	}
	want := CPUStats{UsageTotal: 100, UsageUser: 60, UsageSystem: 40, PerCPU: []uint64{70, 30}, Periods: 5, ThrottledPeriods: 2, ThrottledTime: 1000}
	if got := cpuFromStats(in); !reflect.DeepEqual(got, want) {
		t.Errorf("cpuFromStats = %+v, want %+v", got, want)
	}
	// Empty per-cpu (v2, or cpuacct skipped) is nil, not an empty slice.
	if got := cpuFromStats(&cgroups.CpuStats{CpuUsage: cgroups.CpuUsage{PercpuUsage: []uint64{}}}); got.PerCPU != nil {
		t.Errorf("PerCPU = %#v, want nil", got.PerCPU)
	}
}

func TestUnifiedRootUsage(t *testing.T) {
	if got := unifiedRootUsage(map[string]uint64{"anon": 3, "file": 4, "kernel": 100}); got != 7 {
		t.Errorf("unifiedRootUsage = %d, want anon+file 7", got)
	}
}

func TestSpecFromInputs(t *testing.T) {
	boot := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name     string
		in       specInputs
		numCores int
		want     cgroupSpec
	}{
		{
			name:     "v1 unlimited",
			in:       specInputs{hasCPU: true, hasMem: true, shares: "1024", quota: "-1", period: "100000", reservation: "9223372036854771712", oldest: boot.Add(time.Hour)},
			numCores: 2,
			want: cgroupSpec{Spec: Spec{CreationTime: boot.Add(time.Hour), HasCPU: true, HasMemory: true, HasProcesses: true,
				CPUShares: 1024, CPUQuota: -1, CPUPeriod: 100000, CPUMask: "0-1"}, reservation: 9223372036854771712},
		},
		{
			name:     "v1 quota and cpuset",
			in:       specInputs{hasCPU: true, shares: "512", quota: "50000", period: "100000", cpuMask: "1\n", oldest: boot.Add(-time.Hour)},
			numCores: 4,
			want: cgroupSpec{Spec: Spec{CreationTime: boot, HasCPU: true, HasProcesses: true,
				CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUMask: "1"}},
		},
		{
			name:     "v2 weight and max",
			in:       specInputs{unified: true, hasCPU: true, hasMem: true, weight: "1", cpuMax: "max 100000", cpuMask: "0-3", reservation: "4096"},
			numCores: 4,
			want: cgroupSpec{Spec: Spec{HasCPU: true, HasMemory: true, HasProcesses: true,
				CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000, CPUMask: "0-3"}, reservation: 4096},
		},
		{
			name:     "v2 quota, top weight, one core",
			in:       specInputs{unified: true, hasCPU: true, weight: "10000", cpuMax: "25000 50000"},
			numCores: 1,
			want: cgroupSpec{Spec: Spec{HasCPU: true, HasProcesses: true,
				CPUShares: 262144, CPUQuota: 25000, CPUPeriod: 50000, CPUMask: "0"}},
		},
		{
			name:     "v2 weight out of range and garbage",
			in:       specInputs{unified: true, weight: "0", cpuMax: "nonsense"},
			numCores: 2,
			want:     cgroupSpec{Spec: Spec{HasProcesses: true, CPUQuota: -1, CPUMask: "0-1"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := specFromInputs(tt.in, boot, tt.numCores); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("specFromInputs\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestCountProcs(t *testing.T) {
	tests := []struct {
		data  string
		count uint64
		first int
	}{
		{"", 0, 0},
		{"42\n", 1, 42},
		{"42\n43\n44\n", 3, 42},
		{"7\n\n8", 2, 7},
	}
	for _, tt := range tests {
		count, first := countProcs([]byte(tt.data))
		if count != tt.count || first != tt.first {
			t.Errorf("countProcs(%q) = %d, %d; want %d, %d", tt.data, count, first, tt.count, tt.first)
		}
	}
}

func TestParseTrimmedUint(t *testing.T) {
	tests := []struct {
		data string
		want uint64
		ok   bool
	}{
		{"4096\n", 4096, true},
		{"max\n", math.MaxUint64, true},
		{"-1\n", 0, false},
		{"", 0, false},
		{" 7 ", 7, true},
	}
	for _, tt := range tests {
		got, ok := parseTrimmedUint([]byte(tt.data))
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseTrimmedUint(%q) = %d, %v; want %d, %v", tt.data, got, ok, tt.want, tt.ok)
		}
	}
}

func TestHierarchyString(t *testing.T) {
	for h, want := range map[Hierarchy]string{HierarchyV1: "v1", HierarchyV2: "v2", HierarchyHybrid: "hybrid", 0: "Hierarchy(0)"} {
		if got := h.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(h), got, want)
		}
	}
}
