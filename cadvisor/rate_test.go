package cadvisor

import (
	"testing"
	"time"
)

func TestNanoCores(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	sample := func(at time.Duration, total uint64, perCPU ...uint64) *Sample {
		return &Sample{Timestamp: t0.Add(at), CPU: CPUStats{UsageTotal: total, PerCPU: perCPU}}
	}
	// onCPUs is a sample read on a machine with cpus CPUs.
	onCPUs := func(cpus int, at time.Duration, total uint64) *Sample {
		s := sample(at, total)
		s.CPUs = cpus
		return s
	}
	tests := []struct {
		name      string
		prev, cur *Sample
		want      uint64
		wantOK    bool
	}{
		{name: "no previous", cur: sample(time.Second, 1)},
		{name: "no current", prev: sample(0, 1)},
		{name: "one core busy", prev: sample(0, 1e9), cur: sample(10*time.Second, 11e9), want: 1e9, wantOK: true},
		{name: "half a core over 1.5s", prev: sample(0, 0), cur: sample(1500*time.Millisecond, 750e6), want: 500e6, wantOK: true},
		{name: "idle", prev: sample(0, 5), cur: sample(time.Second, 5), want: 0, wantOK: true},
		{name: "truncated not rounded", prev: sample(0, 0), cur: sample(3*time.Second, 2), want: 0, wantOK: true},
		{name: "sub-nanocore precision", prev: sample(0, 0), cur: sample(3*time.Second, 10), want: 3, wantOK: true},
		{name: "counter decreased", prev: sample(0, 2e9), cur: sample(time.Second, 1e9)},
		{name: "equal time", prev: sample(time.Second, 1), cur: sample(time.Second, 2)},
		{name: "time went backwards", prev: sample(2*time.Second, 1), cur: sample(time.Second, 2)},
		{name: "cpu count changed", prev: sample(0, 1, 1), cur: sample(time.Second, 2, 1, 1)},
		{name: "per-cpu counter decreased", prev: sample(0, 1, 5, 0), cur: sample(time.Second, 2, 4, 2)},
		{name: "per-cpu counters grow", prev: sample(0, 1, 1, 0), cur: sample(time.Second, 2e9+1, 1e9+1, 1e9), want: 2e9, wantOK: true},
		// The incident: 2,002,004,473 on a 2-core node under full load.
		{name: "above the machine's CPUs clamped", prev: onCPUs(2, 0, 0), cur: onCPUs(2, 10*time.Second, 20020044730), want: 2e9, wantOK: true},
		{name: "far above clamped", prev: onCPUs(2, 0, 0), cur: onCPUs(2, time.Second, 7e9), want: 2e9, wantOK: true},
		{name: "exactly the machine's CPUs", prev: onCPUs(2, 0, 0), cur: onCPUs(2, 10*time.Second, 20e9), want: 2e9, wantOK: true},
		{name: "just below the machine's CPUs", prev: onCPUs(2, 0, 0), cur: onCPUs(2, 10*time.Second, 19999999990), want: 1999999999, wantOK: true},
		{name: "the newer sample's CPU count applies", prev: onCPUs(1, 0, 0), cur: onCPUs(4, time.Second, 3e9), want: 3e9, wantOK: true},
		{name: "unknown CPU count not clamped", prev: onCPUs(0, 0, 0), cur: onCPUs(0, 10*time.Second, 20020044730), want: 2002004473, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := NanoCores(tt.prev, tt.cur)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("NanoCores = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestWorkingSet(t *testing.T) {
	tests := []struct {
		usage, inactive, want uint64
	}{
		{usage: 100, inactive: 30, want: 70},
		{usage: 100, inactive: 100, want: 0},
		{usage: 100, inactive: 130, want: 0},
		{usage: 0, inactive: 0, want: 0},
		{usage: ^uint64(0), inactive: 1, want: ^uint64(0) - 1},
	}
	for _, tt := range tests {
		if got := WorkingSet(tt.usage, tt.inactive); got != tt.want {
			t.Errorf("WorkingSet(%d, %d) = %d, want %d", tt.usage, tt.inactive, got, tt.want)
		}
	}
}

// every lists from, from+step, ... up to to.
func every(step, from, to int) []int {
	var out []int
	for s := from; s <= to; s += step {
		out = append(out, s)
	}
	return out
}
