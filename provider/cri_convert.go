package provider

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

func nanosTime(ns int64) metav1.Time { return metav1.NewTime(time.Unix(0, ns)) }

func criValue(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return nil
	}
	return ptrTo(v.Value)
}

// criValueOrZero is criValue for the zero-filling cpu-and-memory mode.
func criValueOrZero(v *runtimeapi.UInt64Value) *uint64 {
	if v == nil {
		return ptrTo(uint64(0))
	}
	return ptrTo(v.Value)
}

func criPSI(in *runtimeapi.PsiStats) *statsapi.PSIStats {
	if in == nil {
		return nil
	}
	return &statsapi.PSIStats{Full: criPSIData(in.Full), Some: criPSIData(in.Some)}
}

func criPSIData(in *runtimeapi.PsiData) statsapi.PSIData {
	if in == nil {
		return statsapi.PSIData{}
	}
	return statsapi.PSIData{Total: in.Total, Avg10: in.Avg10, Avg60: in.Avg60, Avg300: in.Avg300}
}

// criContainerStats is the cpu/memory/swap/io part of the kubelet's
// makeContainerStats: blocks are never nil; a block the runtime left out
// gets the time of the tick and zero counters. usageNanoCores is passed in
// because it comes from the rate cache, not from this one response.
func criContainerStats(stats *runtimeapi.ContainerStats, usageNanoCores *uint64, now time.Time) statsapi.ContainerStats {
	out := statsapi.ContainerStats{
		CPU:    &statsapi.CPUStats{},
		Memory: &statsapi.MemoryStats{},
		Swap:   &statsapi.SwapStats{},
		IO:     &statsapi.IOStats{},
	}
	if cpu := stats.GetCpu(); cpu != nil {
		out.CPU.Time = nanosTime(cpu.Timestamp)
		out.CPU.UsageCoreNanoSeconds = criValue(cpu.UsageCoreNanoSeconds)
		out.CPU.UsageNanoCores = usageNanoCores
		out.CPU.PSI = criPSI(cpu.Psi)
	} else {
		out.CPU.Time = metav1.NewTime(now)
		out.CPU.UsageCoreNanoSeconds = ptrTo(uint64(0))
		out.CPU.UsageNanoCores = ptrTo(uint64(0))
	}
	if mem := stats.GetMemory(); mem != nil {
		out.Memory.Time = nanosTime(mem.Timestamp)
		out.Memory.WorkingSetBytes = criValue(mem.WorkingSetBytes)
		out.Memory.UsageBytes = criValue(mem.UsageBytes)
		out.Memory.RSSBytes = criValue(mem.RssBytes)
		out.Memory.AvailableBytes = criValue(mem.AvailableBytes)
		out.Memory.PageFaults = criValue(mem.PageFaults)
		out.Memory.MajorPageFaults = criValue(mem.MajorPageFaults)
		out.Memory.PSI = criPSI(mem.Psi)
	} else {
		out.Memory.Time = metav1.NewTime(now)
		out.Memory.WorkingSetBytes = ptrTo(uint64(0))
		out.Memory.UsageBytes = ptrTo(uint64(0))
		out.Memory.RSSBytes = ptrTo(uint64(0))
	}
	if swap := stats.GetSwap(); swap != nil {
		out.Swap.Time = nanosTime(swap.Timestamp)
		out.Swap.SwapUsageBytes = criValue(swap.SwapUsageBytes)
		out.Swap.SwapAvailableBytes = criValue(swap.SwapAvailableBytes)
	} else {
		out.Swap.Time = metav1.NewTime(now)
		out.Swap.SwapUsageBytes = ptrTo(uint64(0))
		out.Swap.SwapAvailableBytes = ptrTo(uint64(0))
	}
	if io := stats.GetIo(); io != nil {
		out.IO.Time = nanosTime(io.Timestamp)
		out.IO.PSI = criPSI(io.Psi)
	} else {
		out.IO.Time = metav1.NewTime(now)
	}
	return out
}

// criContainerCPUAndMemoryStats is makeContainerCPUAndMemoryStats with
// zeroMissingValues: every missing block or counter becomes an explicit 0.
func criContainerCPUAndMemoryStats(stats *runtimeapi.ContainerStats, usageNanoCores *uint64, now time.Time) statsapi.ContainerStats {
	var out statsapi.ContainerStats
	if cpu := stats.GetCpu(); cpu != nil {
		out.CPU = &statsapi.CPUStats{
			Time:                 nanosTime(cpu.Timestamp),
			UsageNanoCores:       usageNanoCores,
			UsageCoreNanoSeconds: criValueOrZero(cpu.UsageCoreNanoSeconds),
			PSI:                  criPSI(cpu.Psi),
		}
	} else {
		out.CPU = &statsapi.CPUStats{Time: metav1.NewTime(now), UsageCoreNanoSeconds: ptrTo(uint64(0)), UsageNanoCores: ptrTo(uint64(0))}
	}
	if mem := stats.GetMemory(); mem != nil {
		out.Memory = &statsapi.MemoryStats{
			Time:            nanosTime(mem.Timestamp),
			AvailableBytes:  criValueOrZero(mem.AvailableBytes),
			UsageBytes:      criValueOrZero(mem.UsageBytes),
			WorkingSetBytes: criValueOrZero(mem.WorkingSetBytes),
			RSSBytes:        criValueOrZero(mem.RssBytes),
			PageFaults:      criValueOrZero(mem.PageFaults),
			MajorPageFaults: criValueOrZero(mem.MajorPageFaults),
			PSI:             criPSI(mem.Psi),
		}
	} else {
		zero := func() *uint64 { return ptrTo(uint64(0)) }
		out.Memory = &statsapi.MemoryStats{Time: metav1.NewTime(now), AvailableBytes: zero(), UsageBytes: zero(),
			WorkingSetBytes: zero(), RSSBytes: zero(), PageFaults: zero(), MajorPageFaults: zero()}
	}
	if swap := stats.GetSwap(); swap != nil {
		out.Swap = &statsapi.SwapStats{
			Time:               nanosTime(swap.Timestamp),
			SwapUsageBytes:     criValueOrZero(swap.SwapUsageBytes),
			SwapAvailableBytes: criValueOrZero(swap.SwapAvailableBytes),
		}
	} else {
		out.Swap = &statsapi.SwapStats{Time: metav1.NewTime(now), SwapUsageBytes: ptrTo(uint64(0)), SwapAvailableBytes: ptrTo(uint64(0))}
	}
	return out
}

// criNetworkStats converts a sandbox's network block (strict CRI mode).
func criNetworkStats(in *runtimeapi.NetworkUsage) *statsapi.NetworkStats {
	if in == nil {
		return nil
	}
	out := &statsapi.NetworkStats{Time: nanosTime(in.Timestamp)}
	if in.DefaultInterface != nil {
		out.InterfaceStats = criInterfaceStats(in.DefaultInterface)
	}
	for _, iface := range in.Interfaces {
		if iface != nil {
			out.Interfaces = append(out.Interfaces, criInterfaceStats(iface))
		}
	}
	return out
}

func criInterfaceStats(in *runtimeapi.NetworkInterfaceUsage) statsapi.InterfaceStats {
	return statsapi.InterfaceStats{
		Name:     in.Name,
		RxBytes:  criValue(in.RxBytes),
		RxErrors: criValue(in.RxErrors),
		TxBytes:  criValue(in.TxBytes),
		TxErrors: criValue(in.TxErrors),
	}
}
