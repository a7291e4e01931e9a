package collector

import (
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// v1MemoryStat is a v1 memory.stat with every key the collector reads
// and some it skips, in the kernel's order.
const v1MemoryStat = `cache 10
rss 20
rss_huge 0
shmem 0
mapped_file 30
dirty 0
writeback 0
swap 40
pgpgin 1000
pgpgout 900
pgfault 50
pgmajfault 60
inactive_anon 0
active_anon 0
inactive_file 2
active_file 1
unevictable 0
hierarchical_memory_limit 9223372036854771712
hierarchical_memsw_limit 9223372036854771712
total_cache 110
total_rss 120
total_rss_huge 0
total_mapped_file 130
total_swap 140
total_pgfault 500
total_inactive_file 160
total_active_file 150
`

func TestMemoryStat(t *testing.T) {
	v1, err := parseMemoryStat([]byte(v1MemoryStat))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		apply func(*cadvisor.MemoryStats)
		want  cadvisor.MemoryStats
	}{
		{
			name:  "v1 hierarchical: total_ keys",
			apply: func(m *cadvisor.MemoryStats) { v1.applyV1(m, true) },
			want: cadvisor.MemoryStats{RSS: 120, Cache: 110, MappedFile: 130, SwapUsage: 140,
				ActiveFile: 150, InactiveFile: 160, PageFaults: 50, MajorPageFaults: 60},
		},
		{
			name:  "v1 flat: own keys, but total_ file keys like cAdvisor",
			apply: func(m *cadvisor.MemoryStats) { v1.applyV1(m, false) },
			want: cadvisor.MemoryStats{RSS: 20, Cache: 10, MappedFile: 30, SwapUsage: 40,
				ActiveFile: 150, InactiveFile: 160, PageFaults: 50, MajorPageFaults: 60},
		},
		{
			name: "v2: flat keys",
			apply: func(m *cadvisor.MemoryStats) {
				v2, err := parseMemoryStat([]byte("anon 300\nfile 600\nkernel 5\nfile_mapped 70\nactive_file 200\ninactive_file 400\npgfault 9\npgmajfault 1\n"))
				if err != nil {
					t.Fatal(err)
				}
				v2.applyV2(m)
				if got := v2.unifiedRootUsage(); got != 900 {
					t.Errorf("unifiedRootUsage = %d, want anon+file 900", got)
				}
			},
			want: cadvisor.MemoryStats{RSS: 300, Cache: 600, MappedFile: 70, ActiveFile: 200, InactiveFile: 400, PageFaults: 9, MajorPageFaults: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got cadvisor.MemoryStats
			tt.apply(&got)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestParseErrors: a counter the collector uses that does not parse is an
// error, as in the library; keys it skips are not parsed at all; negative
// values (kernel bugs) read as 0.
func TestParseErrors(t *testing.T) {
	if _, err := parseMemoryStat([]byte("cache x\n")); err == nil {
		t.Error("memory.stat with a malformed cache: no error")
	}
	if _, err := parseMemoryStat([]byte("numa_whatever x y z\ncache 1\n")); err != nil {
		t.Errorf("memory.stat with a malformed unused key: %v", err)
	}
	if m, err := parseMemoryStat([]byte("total_rss -4096\n")); err != nil || m.totalRSS != 0 {
		t.Errorf("negative total_rss: %d, %v; want 0", m.totalRSS, err)
	}
	if _, err := parseCPUStat([]byte("nr_periods 1.5\n")); err == nil {
		t.Error("cpu.stat with a malformed nr_periods: no error")
	}
	if _, _, err := parseCPUAcctStat([]byte("user 1\n")); err == nil {
		t.Error("cpuacct.stat without system: no error")
	}
	if _, err := parsePerCPU([]byte("1 x 3\n"), nil); err == nil {
		t.Error("cpuacct.usage_percpu with garbage: no error")
	}
	if _, err := valueOfKey([]byte("oom_kill nope\n"), "oom_kill"); err == nil {
		t.Error("oom_kill garbage: no error")
	}
}

func TestCPUStat(t *testing.T) {
	v1, err := parseCPUStat([]byte("nr_periods 5\nnr_throttled 2\nthrottled_time 1000\nnr_bursts 0\nburst_time 0\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuStat{periods: 5, throttledPeriods: 2, throttled: 1000}); v1 != want {
		t.Errorf("v1 cpu.stat = %+v, want %+v", v1, want)
	}
	v2, err := parseCPUStat([]byte("usage_usec 100\nuser_usec 60\nsystem_usec 40\ncore_sched.force_idle_usec 0\nnr_periods 5\nnr_throttled 2\nthrottled_usec 7\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (cpuStat{usageUsec: 100, userUsec: 60, systemUsec: 40, periods: 5, throttledPeriods: 2, throttled: 7}); v2 != want {
		t.Errorf("v2 cpu.stat = %+v, want %+v", v2, want)
	}
	user, system, err := parseCPUAcctStat([]byte("user 150\nsystem 25\n"))
	if err != nil || user != 1500000000 || system != 250000000 {
		t.Errorf("cpuacct.stat = %d, %d, %v; want USER_HZ ticks in ns: 1.5e9, 2.5e8", user, system, err)
	}
	perCPU, err := parsePerCPU([]byte("70 30 \n"), nil)
	if err != nil || !reflect.DeepEqual(perCPU, []uint64{70, 30}) {
		t.Errorf("usage_percpu = %v, %v; want [70 30]", perCPU, err)
	}
}

func TestParseCgroupValue(t *testing.T) {
	tests := []struct {
		data string
		want uint64
		ok   bool
	}{
		{"4096\n", 4096, true},
		{"max\n", math.MaxUint64, true},
		{"-1\n", 0, true}, // negative counters read as 0, like the library
		{"-99999999999999999999999\n", 0, true},
		{"99999999999999999999999\n", 0, false},
		{"", 0, false},
		{"12ab\n", 0, false},
	}
	for _, tt := range tests {
		got, err := parseCgroupValue([]byte(tt.data))
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("parseCgroupValue(%q) = %d, %v; want %d, ok %v", tt.data, got, err, tt.want, tt.ok)
		}
	}
	for data, want := range map[string]uint64{"oom_kill_disable 0\nunder_oom 0\noom_kill 3\n": 3, "low 0\nhigh 0\n": 0} {
		if got, err := valueOfKey([]byte(data), "oom_kill"); got != want || err != nil {
			t.Errorf("valueOfKey(%q) = %d, %v; want %d", data, got, err, want)
		}
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
			want: cgroupSpec{Spec: cadvisor.Spec{CreationTime: boot.Add(time.Hour), HasCPU: true, HasMemory: true, HasProcesses: true,
				CPUShares: 1024, CPUQuota: -1, CPUPeriod: 100000, CPUMask: "0-1"}, reservation: 9223372036854771712},
		},
		{
			name:     "v1 quota and cpuset",
			in:       specInputs{hasCPU: true, shares: "512", quota: "50000", period: "100000", cpuMask: "1\n", oldest: boot.Add(-time.Hour)},
			numCores: 4,
			want: cgroupSpec{Spec: cadvisor.Spec{CreationTime: boot, HasCPU: true, HasProcesses: true,
				CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUMask: "1"}},
		},
		{
			name:     "v2 weight and max",
			in:       specInputs{unified: true, hasCPU: true, hasMem: true, weight: "1", cpuMax: "max 100000", cpuMask: "0-3", reservation: "4096"},
			numCores: 4,
			want: cgroupSpec{Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, HasProcesses: true,
				CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000, CPUMask: "0-3"}, reservation: 4096},
		},
		{
			name:     "v2 quota, top weight, one core",
			in:       specInputs{unified: true, hasCPU: true, weight: "10000", cpuMax: "25000 50000"},
			numCores: 1,
			want: cgroupSpec{Spec: cadvisor.Spec{HasCPU: true, HasProcesses: true,
				CPUShares: 262144, CPUQuota: 25000, CPUPeriod: 50000, CPUMask: "0"}},
		},
		{
			name:     "v2 weight out of range and garbage",
			in:       specInputs{unified: true, weight: "0", cpuMax: "nonsense"},
			numCores: 2,
			want:     cgroupSpec{Spec: cadvisor.Spec{HasProcesses: true, CPUQuota: -1, CPUMask: "0-1"}},
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
