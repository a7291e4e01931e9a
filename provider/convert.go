package provider

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// maxMemorySize is where the kubelet starts calling a limit "unlimited": the
// kernel rounds "no limit" to a page multiple just under MaxInt64.
const maxMemorySize = uint64(1 << 62)

// defaultInterfaceName is the only interface the kubelet copies into the
// inlined default InterfaceStats of a NetworkStats.
const defaultInterfaceName = "eth0"

func isUnlimited(limit uint64) bool { return limit > maxMemorySize }

func ptrTo[T any](v T) *T { return &v }

// cpuStats converts the newest sample of a cgroup the way the kubelet's
// cadvisorInfoToCPUandMemoryStats does, with one deviation: when no rate can
// be computed (first sample, counter reset) usageNanoCores is omitted rather
// than reported as 0, because 0 would claim the cgroup is idle.
func cpuStats(info *cadvisor.CgroupInfo) *statsapi.CPUStats {
	latest := info.Latest()
	if latest == nil {
		return nil
	}
	cpu := &statsapi.CPUStats{
		Time:                 metav1.NewTime(latest.Timestamp),
		UsageCoreNanoSeconds: ptrTo(latest.CPU.UsageTotal),
		PSI:                  psiStats(latest.CPU.PSI),
	}
	if rate, ok := cadvisor.NanoCores(info.Previous(), latest); ok {
		cpu.UsageNanoCores = ptrTo(rate)
	}
	return cpu
}

// memoryStats converts the newest sample's memory. availableBytes follows the
// kubelet (limit - working set, only under a real limit) but is floored at 0
// where the kubelet would wrap around.
func memoryStats(info *cadvisor.CgroupInfo) *statsapi.MemoryStats {
	latest := info.Latest()
	if latest == nil {
		return nil
	}
	if !info.Spec.HasMemory {
		return &statsapi.MemoryStats{Time: metav1.NewTime(latest.Timestamp), WorkingSetBytes: ptrTo(uint64(0))}
	}
	mem := latest.Memory
	out := &statsapi.MemoryStats{
		Time:            metav1.NewTime(latest.Timestamp),
		UsageBytes:      ptrTo(mem.Usage),
		WorkingSetBytes: ptrTo(mem.WorkingSet),
		RSSBytes:        ptrTo(mem.RSS),
		PageFaults:      ptrTo(mem.PageFaults),
		MajorPageFaults: ptrTo(mem.MajorPageFaults),
		PSI:             psiStats(mem.PSI),
	}
	if !isUnlimited(mem.Limit) {
		out.AvailableBytes = ptrTo(saturatingSub(mem.Limit, mem.WorkingSet))
	}
	return out
}

// swapStats mirrors cadvisorInfoToSwapStats: present for memory cgroups,
// swapAvailableBytes only under a real swap limit.
func swapStats(info *cadvisor.CgroupInfo) *statsapi.SwapStats {
	latest := info.Latest()
	if latest == nil || !info.Spec.HasMemory {
		return nil
	}
	mem := latest.Memory
	out := &statsapi.SwapStats{
		Time:           metav1.NewTime(latest.Timestamp),
		SwapUsageBytes: ptrTo(mem.SwapUsage),
	}
	if !isUnlimited(mem.SwapLimit) {
		out.SwapAvailableBytes = ptrTo(saturatingSub(mem.SwapLimit, mem.SwapUsage))
	}
	return out
}

// ioStats is the kubelet's IO block: only a time and io pressure.
func ioStats(info *cadvisor.CgroupInfo) *statsapi.IOStats {
	latest := info.Latest()
	if latest == nil {
		return nil
	}
	return &statsapi.IOStats{Time: metav1.NewTime(latest.Timestamp), PSI: psiStats(latest.IOPressure)}
}

// psiStats always returns a value: the kubelet emits PSI for every
// cgroup-sourced block, as zeros where the kernel has none (cgroup v1).
func psiStats(in *cadvisor.PSIStats) *statsapi.PSIStats {
	if in == nil {
		return &statsapi.PSIStats{}
	}
	return &statsapi.PSIStats{Full: psiData(in.Full), Some: psiData(in.Some)}
}

func psiData(in cadvisor.PSIData) statsapi.PSIData {
	return statsapi.PSIData{Total: in.Total, Avg10: in.Avg10, Avg60: in.Avg60, Avg300: in.Avg300}
}

// networkStats converts the newest sample's interfaces. Only an interface
// literally named eth0 fills the inlined default block, like the kubelet.
func networkStats(info *cadvisor.CgroupInfo) *statsapi.NetworkStats {
	latest := info.Latest()
	if latest == nil || latest.Network == nil {
		return nil
	}
	out := &statsapi.NetworkStats{Time: metav1.NewTime(latest.Timestamp)}
	for _, iface := range latest.Network.Interfaces {
		converted := statsapi.InterfaceStats{
			Name:     iface.Name,
			RxBytes:  ptrTo(iface.RxBytes),
			RxErrors: ptrTo(iface.RxErrors),
			TxBytes:  ptrTo(iface.TxBytes),
			TxErrors: ptrTo(iface.TxErrors),
		}
		if iface.Name == defaultInterfaceName {
			out.InterfaceStats = converted
		}
		out.Interfaces = append(out.Interfaces, converted)
	}
	return out
}

// cgroupContainerStats is the kubelet's GetCgroupStats for a raw cgroup:
// cpu, memory, swap and io, no filesystems.
func cgroupContainerStats(name string, info *cadvisor.CgroupInfo) statsapi.ContainerStats {
	return statsapi.ContainerStats{
		Name:      name,
		StartTime: metav1.NewTime(info.Spec.CreationTime),
		CPU:       cpuStats(info),
		Memory:    memoryStats(info),
		Swap:      swapStats(info),
		IO:        ioStats(info),
	}
}

// cgroupCPUAndMemoryStats is GetCgroupCPUAndMemoryStats: no io, no filesystems.
func cgroupCPUAndMemoryStats(name string, info *cadvisor.CgroupInfo) statsapi.ContainerStats {
	return cpuAndMemoryOf(cgroupContainerStats(name, info))
}

// cpuAndMemoryOf is the only_cpu_and_memory form of a container's stats
// built from its cgroup: its CPU, memory and swap, shared with the full
// form rather than built twice (the kubelet fills both from the same
// cAdvisor sample, and a snapshot is never modified once published).
func cpuAndMemoryOf(full statsapi.ContainerStats) statsapi.ContainerStats {
	return statsapi.ContainerStats{Name: full.Name, StartTime: full.StartTime, CPU: full.CPU, Memory: full.Memory, Swap: full.Swap}
}

// fsStats converts a statfs result; inodesUsed only when both inode counts
// are known, like RootFsStats.
func fsStats(fs cadvisor.FsStats, at metav1.Time) *statsapi.FsStats {
	out := &statsapi.FsStats{
		Time:           at,
		AvailableBytes: ptrTo(fs.Available),
		CapacityBytes:  ptrTo(fs.Capacity),
		UsedBytes:      ptrTo(fs.Usage),
		Inodes:         ptrTo(fs.Inodes),
		InodesFree:     ptrTo(fs.InodesFree),
	}
	if fs.Inodes >= fs.InodesFree {
		out.InodesUsed = ptrTo(fs.Inodes - fs.InodesFree)
	}
	return out
}

func rlimitStats(r cadvisor.Rlimit) *statsapi.RlimitStats {
	return &statsapi.RlimitStats{Time: metav1.NewTime(r.Timestamp), MaxPID: r.MaxPID, NumOfRunningProcesses: r.CurProc}
}

func saturatingSub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}
