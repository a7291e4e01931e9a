package cadvisor

import (
	"errors"
	"time"

	"github.com/opencontainers/cgroups"
)

// NanoCores is the CPU rate between two samples in nanocores, computed like
// cAdvisor's InstCpuStats (info/v2/conversion.go): float64 math truncated to
// uint64, and never above the machine's CPUs × 1e9 (the timestamps are
// taken as close to the usage reads as we can, but a read that stalls
// between the two still skews them a little). ok is false when either
// sample is missing, time did not move forward, the number of CPUs changed,
// or a cumulative counter went backwards (the cgroup was recreated under the
// same name).
func NanoCores(prev, cur *Sample) (uint64, bool) {
	if prev == nil || cur == nil || !cur.Timestamp.After(prev.Timestamp) {
		return 0, false
	}
	if len(prev.CPU.PerCPU) != len(cur.CPU.PerCPU) {
		return 0, false
	}
	if cur.CPU.UsageTotal < prev.CPU.UsageTotal ||
		cur.CPU.UsageUser < prev.CPU.UsageUser ||
		cur.CPU.UsageSystem < prev.CPU.UsageSystem {
		return 0, false
	}
	for i := range cur.CPU.PerCPU {
		if cur.CPU.PerCPU[i] < prev.CPU.PerCPU[i] {
			return 0, false
		}
	}
	elapsed := cur.Timestamp.Sub(prev.Timestamp).Nanoseconds()
	delta := cur.CPU.UsageTotal - prev.CPU.UsageTotal
	rate := uint64(float64(delta) / float64(elapsed) * 1e9)
	if cur.cpus > 0 {
		rate = min(rate, uint64(cur.cpus)*1e9)
	}
	return rate, true
}

// readStats reads a cgroup's controllers, the CPU one last, and returns
// the time to stamp the sample with: the clock right after the CPU read. A
// rate is Δusage/Δtimestamp, so a delay between clock and usage read that
// differs from one sample to the next counts CPU time from outside the
// interval. With the clock read first and memory.stat (slow under load; the
// root's sums up the machine) read before cpuacct.usage, a fully busy
// 2-core node showed 2.002 cores.
func readStats(st *entryState) (*cgroups.Stats, time.Time, error) {
	cpu := st.options.Controllers & cgroups.CPU
	rest := st.options.Controllers &^ cgroups.CPU
	if cpu == 0 || rest == 0 {
		stats, err := st.manager.Stats(&st.options)
		return stats, time.Now(), err
	}
	stats, err := st.manager.Stats(&cgroups.StatsOptions{Controllers: rest})
	if err != nil && !st.tolerateStatsErrors {
		return nil, time.Time{}, err
	}
	cpuStats, cpuErr := st.manager.Stats(&cgroups.StatsOptions{Controllers: cpu})
	at := time.Now()
	switch {
	case cpuStats == nil:
	case stats == nil:
		stats = cpuStats
	default:
		stats.CpuStats = cpuStats.CpuStats
	}
	return stats, at, errors.Join(err, cpuErr)
}

// WorkingSet is usage minus inactive file pages, floored at 0: what the
// kernel cannot reclaim easily and what the kubelet evicts on.
func WorkingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}
