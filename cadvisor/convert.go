package cadvisor

import (
	"github.com/opencontainers/cgroups"
)

// cpuFromStats copies the library's CPU counters (cAdvisor setCPUStats).
func cpuFromStats(in *cgroups.CpuStats) CPUStats {
	out := CPUStats{
		UsageTotal:       in.CpuUsage.TotalUsage,
		UsageUser:        in.CpuUsage.UsageInUsermode,
		UsageSystem:      in.CpuUsage.UsageInKernelmode,
		Periods:          in.ThrottlingData.Periods,
		ThrottledPeriods: in.ThrottlingData.ThrottledPeriods,
		ThrottledTime:    in.ThrottlingData.ThrottledTime,
		PSI:              psiFromStats(in.PSI),
	}
	if len(in.CpuUsage.PercpuUsage) > 0 {
		out.PerCPU = in.CpuUsage.PercpuUsage
	}
	return out
}

// memoryFromStats follows cAdvisor's setMemoryStats
// (container/libcontainer/handler.go): on cgroup2 the flat memory.stat keys,
// on v1 the hierarchical total_* keys when memory.use_hierarchy is on. The
// caller fixes up limits for the root and for "limit 0".
func memoryFromStats(in *cgroups.MemoryStats, unified bool) MemoryStats {
	out := MemoryStats{
		Usage:           in.Usage.Usage,
		MaxUsage:        in.Usage.MaxUsage,
		Failcnt:         in.Usage.Failcnt,
		Limit:           in.Usage.Limit,
		PageFaults:      in.Stats["pgfault"],
		MajorPageFaults: in.Stats["pgmajfault"],
		PSI:             psiFromStats(in.PSI),
	}
	switch {
	case unified:
		out.Cache = in.Stats["file"]
		out.RSS = in.Stats["anon"]
		out.MappedFile = in.Stats["file_mapped"]
		out.ActiveFile = in.Stats["active_file"]
		out.InactiveFile = in.Stats["inactive_file"]
		out.SwapUsage = in.SwapOnlyUsage.Usage
		out.SwapLimit = in.SwapOnlyUsage.Limit
	case in.UseHierarchy:
		out.Cache = in.Stats["total_cache"]
		out.RSS = in.Stats["total_rss"]
		out.MappedFile = in.Stats["total_mapped_file"]
		out.SwapUsage = in.Stats["total_swap"]
	default:
		out.Cache = in.Stats["cache"]
		out.RSS = in.Stats["rss"]
		out.MappedFile = in.Stats["mapped_file"]
		out.SwapUsage = in.Stats["swap"]
	}
	if !unified {
		// cAdvisor reads the total_ file keys on v1 whatever use_hierarchy says.
		out.ActiveFile = in.Stats["total_active_file"]
		out.InactiveFile = in.Stats["total_inactive_file"]
		out.SwapLimit = in.SwapUsage.Limit // memsw: memory + swap
	}
	out.WorkingSet = WorkingSet(out.Usage, out.InactiveFile)
	return out
}

// unifiedRootUsage is the cgroup2 root's usage, which has no memory.current:
// anon + file, comparable to v1's usage_in_bytes (CG fs2/memory.go).
func unifiedRootUsage(stats map[string]uint64) uint64 {
	return stats["anon"] + stats["file"]
}

func psiFromStats(in *cgroups.PSIStats) *PSIStats {
	if in == nil {
		return nil
	}
	return &PSIStats{
		Some: PSIData{Total: in.Some.Total, Avg10: in.Some.Avg10, Avg60: in.Some.Avg60, Avg300: in.Some.Avg300},
		Full: PSIData{Total: in.Full.Total, Avg10: in.Full.Avg10, Avg60: in.Full.Avg60, Avg300: in.Full.Avg300},
	}
}
