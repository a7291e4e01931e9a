package provider

import (
	"strconv"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func criCPU(at time.Time, usage uint64, nanoCores *uint64) *runtimeapi.CpuUsage {
	cpu := &runtimeapi.CpuUsage{Timestamp: at.UnixNano(), UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: usage}}
	if nanoCores != nil {
		cpu.UsageNanoCores = &runtimeapi.UInt64Value{Value: *nanoCores}
	}
	return cpu
}

// TestCPURateCacheClampsToTheMachine: a rate from the runtime's samples, or
// the runtime's own, never exceeds the machine's cores (a stalled stats
// read skews the runtime's timestamps, as in the collector).
func TestCPURateCacheClampsToTheMachine(t *testing.T) {
	tests := []struct {
		name    string
		machine *cadvisor.Machine
		second  *runtimeapi.CpuUsage
		want    uint64
	}{
		{"computed rate within the cores", &cadvisor.Machine{NumCores: 2}, criCPU(sampleTime.Add(time.Second), 2.5e9, nil), 1.5e9},
		{"computed rate above the cores", &cadvisor.Machine{NumCores: 2}, criCPU(sampleTime.Add(time.Second), 4e9, nil), 2e9},
		{"runtime's rate above the cores", &cadvisor.Machine{NumCores: 2}, criCPU(sampleTime.Add(time.Second), 2e9, ptrTo(uint64(5e9))), 2e9},
		{"unknown machine: no clamp", nil, criCPU(sampleTime.Add(time.Second), 4e9, nil), 3e9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := New(Config{Machine: tt.machine})
			if rate := p.rates.update("c1", criCPU(sampleTime, 1e9, nil)); rate != nil {
				t.Fatalf("first sample rate = %s, want none", rateString(rate))
			}
			rate := p.rates.update("c1", tt.second)
			if rate == nil || *rate != tt.want {
				t.Fatalf("rate = %s, want %d", rateString(rate), tt.want)
			}
			repeated := p.rates.update("c1", tt.second)
			if repeated == nil || *repeated != tt.want {
				t.Errorf("rate of a repeated sample = %s, want %d", rateString(repeated), tt.want)
			}
		})
	}
}

func rateString(rate *uint64) string {
	if rate == nil {
		return "none"
	}
	return strconv.FormatUint(*rate, 10)
}
