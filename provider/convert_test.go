package provider

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

var sampleTime = time.Date(2026, 11, 22, 13, 22, 34, 500_000_000, time.UTC)

func cgroupWithSamples(spec cadvisor.Spec, samples ...*cadvisor.Sample) *cadvisor.CgroupInfo {
	return &cadvisor.CgroupInfo{Name: "/test", Spec: spec, Samples: samples}
}

// samplesEverySecond returns n samples one second apart ending at sampleTime,
// with cpu total i*1e9.
func samplesEverySecond(n int) []*cadvisor.Sample {
	out := make([]*cadvisor.Sample, n)
	for i := range out {
		out[i] = sampleAt(sampleTime.Add(time.Duration(i-n+1)*time.Second), uint64(i+1)*1e9, cadvisor.MemoryStats{})
	}
	return out
}

func sampleAt(t time.Time, cpuTotal uint64, mem cadvisor.MemoryStats) *cadvisor.Sample {
	return &cadvisor.Sample{Timestamp: t, CPU: cadvisor.CPUStats{UsageTotal: cpuTotal}, Memory: mem}
}

func TestCPUStats(t *testing.T) {
	tests := []struct {
		name          string
		samples       []*cadvisor.Sample
		wantNanoCores *uint64
		wantTotal     uint64
	}{
		{
			name:      "single sample has no rate",
			samples:   []*cadvisor.Sample{sampleAt(sampleTime, 5e9, cadvisor.MemoryStats{})},
			wantTotal: 5e9,
		},
		{
			name: "two samples give the rate between them",
			samples: []*cadvisor.Sample{
				sampleAt(sampleTime, 5e9, cadvisor.MemoryStats{}),
				sampleAt(sampleTime.Add(10*time.Second), 7e9, cadvisor.MemoryStats{}),
			},
			wantNanoCores: ptrTo(uint64(2e8)),
			wantTotal:     7e9,
		},
		{
			name: "counter reset gives no rate",
			samples: []*cadvisor.Sample{
				sampleAt(sampleTime, 5e9, cadvisor.MemoryStats{}),
				sampleAt(sampleTime.Add(10*time.Second), 1e9, cadvisor.MemoryStats{}),
			},
			wantTotal: 1e9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cpuStats(cgroupWithSamples(cadvisor.Spec{HasCPU: true}, tt.samples...))
			if got == nil {
				t.Fatal("cpuStats returned nil for a cgroup with samples")
			}
			if *got.UsageCoreNanoSeconds != tt.wantTotal {
				t.Errorf("usageCoreNanoSeconds = %d, want %d", *got.UsageCoreNanoSeconds, tt.wantTotal)
			}
			switch {
			case tt.wantNanoCores == nil && got.UsageNanoCores != nil:
				t.Errorf("usageNanoCores = %d, want none", *got.UsageNanoCores)
			case tt.wantNanoCores != nil && (got.UsageNanoCores == nil || *got.UsageNanoCores != *tt.wantNanoCores):
				t.Errorf("usageNanoCores = %v, want %d", got.UsageNanoCores, *tt.wantNanoCores)
			}
			if got.PSI == nil {
				t.Error("psi is nil; the kubelet always emits it for cgroup-sourced cpu")
			}
		})
	}
	if cpuStats(cgroupWithSamples(cadvisor.Spec{})) != nil {
		t.Error("cpuStats of a cgroup without samples must be nil")
	}
}

func TestMemoryStats(t *testing.T) {
	tests := []struct {
		name          string
		spec          cadvisor.Spec
		mem           cadvisor.MemoryStats
		wantAvailable *uint64
		wantUsage     *uint64
	}{
		{
			name:          "limited: available is limit minus working set",
			spec:          cadvisor.Spec{HasMemory: true},
			mem:           cadvisor.MemoryStats{Usage: 60 << 20, WorkingSet: 50 << 20, Limit: 100 << 20},
			wantAvailable: ptrTo(uint64(50 << 20)),
			wantUsage:     ptrTo(uint64(60 << 20)),
		},
		{
			name:      "unlimited: no available",
			spec:      cadvisor.Spec{HasMemory: true},
			mem:       cadvisor.MemoryStats{Usage: 1, WorkingSet: 1, Limit: math.MaxInt64 &^ 4095},
			wantUsage: ptrTo(uint64(1)),
		},
		{
			name:          "working set above limit floors at zero",
			spec:          cadvisor.Spec{HasMemory: true},
			mem:           cadvisor.MemoryStats{Usage: 200, WorkingSet: 150, Limit: 100},
			wantAvailable: ptrTo(uint64(0)),
			wantUsage:     ptrTo(uint64(200)),
		},
		{
			name: "no memory controller: only a zero working set",
			spec: cadvisor.Spec{},
			mem:  cadvisor.MemoryStats{Usage: 5},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := memoryStats(cgroupWithSamples(tt.spec, sampleAt(sampleTime, 0, tt.mem)))
			if !equalPtr(got.AvailableBytes, tt.wantAvailable) {
				t.Errorf("availableBytes = %v, want %v", deref(got.AvailableBytes), deref(tt.wantAvailable))
			}
			if !equalPtr(got.UsageBytes, tt.wantUsage) {
				t.Errorf("usageBytes = %v, want %v", deref(got.UsageBytes), deref(tt.wantUsage))
			}
			if got.WorkingSetBytes == nil {
				t.Error("workingSetBytes must always be present")
			}
		})
	}
}

func TestSwapStats(t *testing.T) {
	limited := swapStats(cgroupWithSamples(cadvisor.Spec{HasMemory: true},
		sampleAt(sampleTime, 0, cadvisor.MemoryStats{SwapUsage: 10, SwapLimit: 200 << 20})))
	if value(limited.SwapAvailableBytes) != 200<<20-10 || value(limited.SwapUsageBytes) != 10 {
		t.Errorf("limited swap = %+v", limited)
	}
	unlimited := swapStats(cgroupWithSamples(cadvisor.Spec{HasMemory: true},
		sampleAt(sampleTime, 0, cadvisor.MemoryStats{SwapLimit: math.MaxUint64})))
	if unlimited.SwapAvailableBytes != nil || unlimited.SwapUsageBytes == nil {
		t.Errorf("unlimited swap = %+v, want usage only", unlimited)
	}
	if swapStats(cgroupWithSamples(cadvisor.Spec{}, sampleAt(sampleTime, 0, cadvisor.MemoryStats{}))) != nil {
		t.Error("swap of a cgroup without memory controller must be nil")
	}
}

func TestNetworkStatsDefaultInterfaceOnlyForEth0(t *testing.T) {
	sample := sampleAt(sampleTime, 0, cadvisor.MemoryStats{})
	sample.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{
		{Name: "ens3", RxBytes: 1}, {Name: "eth0", RxBytes: 2, TxBytes: 3},
	}}
	got := networkStats(cgroupWithSamples(cadvisor.Spec{}, sample))
	if got.Name != "eth0" || value(got.RxBytes) != 2 || value(got.TxBytes) != 3 || len(got.Interfaces) != 2 {
		t.Errorf("network = %+v", got)
	}
	sample.Network.Interfaces = sample.Network.Interfaces[:1]
	got = networkStats(cgroupWithSamples(cadvisor.Spec{}, sample))
	if got.Name != "" || got.RxBytes != nil {
		t.Errorf("without eth0 the default block must be empty, got %+v", got.InterfaceStats)
	}
}

// TestJSONShape pins the wire format details clients depend on: nil is
// omitted, zero is present, times are whole seconds in UTC.
func TestJSONShape(t *testing.T) {
	info := cgroupWithSamples(cadvisor.Spec{HasMemory: true, HasCPU: true},
		sampleAt(sampleTime, 0, cadvisor.MemoryStats{Limit: math.MaxUint64, SwapLimit: math.MaxUint64}))
	body, err := json.Marshal(cgroupContainerStats("pods", info))
	if err != nil {
		t.Fatal(err)
	}
	text := string(body)
	for _, want := range []string{`"usageCoreNanoSeconds":0`, `"time":"2026-11-22T13:22:34Z"`, `"startTime":null`,
		`"swapUsageBytes":0`, `"psi":{"full":{"total":0,"avg10":0,"avg60":0,"avg300":0}`} {
		if !strings.Contains(text, want) {
			t.Errorf("JSON lacks %s:\n%s", want, text)
		}
	}
	for _, absent := range []string{"usageNanoCores", "availableBytes", "swapAvailableBytes", "rootfs", "logs"} {
		if strings.Contains(text, absent) {
			t.Errorf("JSON has %s, want it omitted:\n%s", absent, text)
		}
	}
}

func equalPtr(a, b *uint64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func deref(p *uint64) any {
	if p == nil {
		return nil
	}
	return *p
}
