package provider

import (
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// cpuCacheTTL drops entries of containers not seen for this long
// (the kubelet's cleanupOutdatedCaches).
const cpuCacheTTL = 10 * time.Minute

// cpuUsageRecord is the last CRI cpu sample of one container and the rate
// computed when it arrived.
type cpuUsageRecord struct {
	usageCoreNanoSeconds uint64
	timestamp            int64
	usageNanoCores       *uint64
}

// cpuRateCache turns successive CRI cumulative cpu samples into
// usageNanoCores for containers the collector cannot see, like the kubelet's
// cpuUsageCache in update mode. It is advanced once per housekeeping tick,
// from one goroutine, never from a request.
type cpuRateCache struct {
	records map[string]cpuUsageRecord
	// maxNanoCores is the machine's cores × 1e9, the highest rate there
	// can be; 0 when the machine is unknown.
	maxNanoCores uint64
}

func newCPURateCache() *cpuRateCache {
	return &cpuRateCache{records: make(map[string]cpuUsageRecord)}
}

// withCores bounds the cache's rates by the machine's cores (0: unknown, no
// bound), as the collector's cadvisor.NanoCores does: a stats read that
// stalls between the usage and its timestamp skews the runtime's samples
// too.
func (c *cpuRateCache) withCores(cores int) *cpuRateCache {
	if cores > 0 {
		c.maxNanoCores = uint64(cores) * 1e9
	}
	return c
}

// update records the container's sample and returns its rate: CRI's own
// usage_nano_cores when sent, nil for a first sample or after a counter
// reset, and the cached rate when time did not move; each at most the
// machine's cores.
func (c *cpuRateCache) update(containerID string, cpu *runtimeapi.CpuUsage) *uint64 {
	if cpu == nil {
		return nil
	}
	if cpu.UsageNanoCores != nil {
		return ptrTo(c.clamp(cpu.UsageNanoCores.Value))
	}
	if cpu.UsageCoreNanoSeconds == nil {
		return nil
	}
	current := cpuUsageRecord{usageCoreNanoSeconds: cpu.UsageCoreNanoSeconds.Value, timestamp: cpu.Timestamp}
	previous, found := c.records[containerID]
	if !found || current.usageCoreNanoSeconds < previous.usageCoreNanoSeconds {
		c.records[containerID] = current
		return nil
	}
	elapsed := current.timestamp - previous.timestamp
	if elapsed <= 0 {
		// The runtime answered from the same sample again; keep the rate.
		return previous.usageNanoCores
	}
	rate := c.clamp(uint64(float64(current.usageCoreNanoSeconds-previous.usageCoreNanoSeconds) / float64(elapsed) * 1e9))
	current.usageNanoCores = &rate
	c.records[containerID] = current
	return ptrTo(rate)
}

func (c *cpuRateCache) clamp(rate uint64) uint64 {
	if c.maxNanoCores > 0 {
		return min(rate, c.maxNanoCores)
	}
	return rate
}

// expire drops containers whose last sample is older than the TTL.
func (c *cpuRateCache) expire(now time.Time) {
	cutoff := now.Add(-cpuCacheTTL).UnixNano()
	for id, record := range c.records {
		if record.timestamp < cutoff {
			delete(c.records, id)
		}
	}
}
