package cadvisor

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
	if cur.CPUs > 0 {
		rate = min(rate, uint64(cur.CPUs)*1e9)
	}
	return rate, true
}

// WorkingSet is usage minus inactive file pages, floored at 0: what the
// kernel cannot reclaim easily and what the kubelet evicts on.
func WorkingSet(usage, inactiveFile uint64) uint64 {
	if inactiveFile > usage {
		return 0
	}
	return usage - inactiveFile
}
