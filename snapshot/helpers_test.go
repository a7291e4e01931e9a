package snapshot

import (
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

var sampleTime = time.Date(2026, 11, 22, 13, 22, 34, 500_000_000, time.UTC)

func sampleAt(t time.Time, cpuTotal uint64, mem cadvisor.MemoryStats) *cadvisor.Sample {
	return &cadvisor.Sample{Timestamp: t, CPU: cadvisor.CPUStats{UsageTotal: cpuTotal}, Memory: mem}
}

func ptrTo[T any](v T) *T { return &v }
