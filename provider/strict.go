package provider

import (
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// buildPodsStrictlyFromRuntime is the kubelet's
// listPodStatsStrictlyFromCRI (--stats-source=cri): everything from
// ListPodSandboxStats. Entries without attributes or Linux stats are skipped
// where the kubelet would dereference nil. Pod swap exists only in the
// cpu-and-memory mode, summed from containers, as in the kubelet.
func buildPodsStrictlyFromRuntime(in podAssembly) (full, cpuMem []statsapi.PodStats) {
	sandboxes, containers := in.inventory.sandboxIDs, in.inventory.running
	full = make([]statsapi.PodStats, 0, len(in.runtime.sandboxStats))
	cpuMem = make([]statsapi.PodStats, 0, len(in.runtime.sandboxStats))
	for _, sandboxStats := range in.runtime.sandboxStats {
		sandbox, found := sandboxes[sandboxStats.GetAttributes().GetId()]
		linux := sandboxStats.GetLinux()
		if !found || linux == nil {
			continue
		}
		pod := newPodBuild(sandbox)
		for _, stats := range linux.Containers {
			container, found := containers[stats.GetAttributes().GetId()]
			if !found || stats.GetAttributes().GetMetadata() == nil {
				continue
			}
			pod.addContainer(in, stats, container, false)
		}
		podCPU := criPodCPU(linux.Cpu, in.rates.update(sandbox.Id, linux.Cpu))
		podMemory := criPodMemory(linux.Memory)
		pod.full.CPU, pod.full.Memory = podCPU, podMemory
		pod.cpuMem.CPU, pod.cpuMem.Memory = podCPU, podMemory
		pod.cpuMem.Swap = sumSwap(pod.cpuMem.Containers)
		pod.full.Network = criNetworkStats(linux.Network)
		if linux.Process != nil {
			pod.full.ProcessStats = &statsapi.ProcessStats{ProcessCount: criValue(linux.Process.ProcessCount)}
		}
		if linux.Io != nil {
			pod.full.IO = &statsapi.IOStats{Time: nanosTime(linux.Io.Timestamp), PSI: criPSI(linux.Io.Psi)}
		}
		fillPodStorage(in, &pod.full)
		full = append(full, pod.full)
		cpuMem = append(cpuMem, pod.cpuMem)
	}
	return full, cpuMem
}

func criPodCPU(cpu *runtimeapi.CpuUsage, usageNanoCores *uint64) *statsapi.CPUStats {
	if cpu == nil {
		return nil
	}
	return &statsapi.CPUStats{
		Time:                 nanosTime(cpu.Timestamp),
		UsageNanoCores:       usageNanoCores,
		UsageCoreNanoSeconds: criValue(cpu.UsageCoreNanoSeconds),
		PSI:                  criPSI(cpu.Psi),
	}
}

func criPodMemory(mem *runtimeapi.MemoryUsage) *statsapi.MemoryStats {
	if mem == nil {
		return nil
	}
	return &statsapi.MemoryStats{
		Time:            nanosTime(mem.Timestamp),
		AvailableBytes:  criValue(mem.AvailableBytes),
		UsageBytes:      criValue(mem.UsageBytes),
		WorkingSetBytes: criValue(mem.WorkingSetBytes),
		RSSBytes:        criValue(mem.RssBytes),
		PageFaults:      criValue(mem.PageFaults),
		MajorPageFaults: criValue(mem.MajorPageFaults),
		PSI:             criPSI(mem.Psi),
	}
}
