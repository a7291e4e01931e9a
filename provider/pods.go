package provider

import (
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// runtimeState is what one tick knows from the container runtime: fresh
// identity and the newest stats.
type runtimeState struct {
	*runtimeIdentity
	*runtimeStats
}

// cgroupIndex finds collector data for runtime objects: containers by the ID
// at the end of their cgroup path, pods by the "pod<uid>" key of theirs.
type cgroupIndex struct {
	byContainerID map[string]*cadvisor.CgroupInfo
	byPodKey      map[string]*cadvisor.CgroupInfo
}

// indexCgroups indexes the cgroups below the pod root. systemd mount units
// are skipped like the kubelet does.
func indexCgroups(view *cadvisor.View, podRoot string) cgroupIndex {
	idx := cgroupIndex{byContainerID: map[string]*cadvisor.CgroupInfo{}, byPodKey: map[string]*cadvisor.CgroupInfo{}}
	prefix := strings.TrimSuffix(podRoot, "/") + "/"
	for name, info := range view.Cgroups {
		if !strings.HasPrefix(name, prefix) || strings.HasSuffix(name, ".mount") || info.Latest() == nil {
			continue
		}
		if _, isPod := cadvisor.PodUIDFromCgroup(name); isPod {
			idx.byPodKey[cadvisor.PodCgroupKey(name)] = info
			continue
		}
		idx.byContainerID[cadvisor.ContainerIDFromCgroup(name)] = info
	}
	return idx
}

func (idx cgroupIndex) pod(uid string) *cadvisor.CgroupInfo { return idx.byPodKey["pod"+uid] }

// podBuild accumulates one pod in both summary modes.
type podBuild struct {
	full   statsapi.PodStats
	cpuMem statsapi.PodStats
	// processes sums the collector's process counts of the pod's containers.
	processes    uint64
	hasProcesses bool
}

// podAssembly is the input of one tick's pod list.
type podAssembly struct {
	now       time.Time
	inventory *inventory
	runtime   *runtimeState
	rootFs    *cadvisor.FsStats
	host      hostStorage
	rates     *cpuRateCache
}

// buildPodsFromRuntime is the kubelet's listPodStatsPartiallyFromCRI (and
// the cpu-and-memory variant): identity from CRI, cpu/memory/swap/io from our
// collector wherever it sees the cgroup, CRI's values otherwise. A pod is
// listed when one of its running containers has CRI stats or a cgroup.
// statsWanted is set when a running container is missing from the runtime's
// stats (started since they were asked) or has no cgroup (its cpu and
// memory are the runtime's): the next tick refreshes them then.
func buildPodsFromRuntime(in podAssembly) (full, cpuMem []statsapi.PodStats, statsWanted bool) {
	sandboxes, containers := in.inventory.sandboxIDs, in.inventory.running
	statsByID := make(map[string]*runtimeapi.ContainerStats, len(in.runtime.containerStats))
	for _, stats := range in.runtime.containerStats {
		if stats.GetAttributes().GetMetadata() != nil {
			statsByID[stats.Attributes.Id] = stats
		}
	}
	pods := make(map[string]*podBuild)
	var order []string
	for _, container := range in.runtime.containers {
		if containers[container.GetId()] == nil || container.GetMetadata() == nil {
			continue
		}
		sandbox, found := sandboxes[container.PodSandboxId]
		if !found {
			continue
		}
		stats, cgroup := statsByID[container.Id], in.inventory.index.byContainerID[container.Id]
		statsWanted = statsWanted || stats == nil || cgroup == nil
		if stats == nil {
			if cgroup == nil {
				continue // nothing measured it yet
			}
			// Runtime stats are refreshed beside the tick; a container
			// started since still has collector data.
			stats = &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: container.Id, Metadata: container.Metadata}}
		}
		pod, seen := pods[sandbox.Id]
		if !seen {
			pod = newPodBuild(sandbox)
			pods[sandbox.Id] = pod
			order = append(order, sandbox.Id)
		}
		pod.addContainer(in, stats, container, true)
	}
	full = make([]statsapi.PodStats, 0, len(order))
	cpuMem = make([]statsapi.PodStats, 0, len(order))
	for _, sandboxID := range order {
		pod := pods[sandboxID]
		pod.finish(in)
		full = append(full, pod.full)
		cpuMem = append(cpuMem, pod.cpuMem)
	}
	return full, cpuMem, statsWanted
}

func newPodBuild(sandbox *runtimeapi.PodSandbox) *podBuild {
	ref := statsapi.PodReference{Name: sandbox.Metadata.Name, Namespace: sandbox.Metadata.Namespace, UID: sandbox.Metadata.Uid}
	start := nanosTime(sandbox.CreatedAt)
	return &podBuild{
		full:   statsapi.PodStats{PodRef: ref, StartTime: start},
		cpuMem: statsapi.PodStats{PodRef: ref, StartTime: start},
	}
}

// addContainer adds one running container in both modes. With useCollector
// the collector's cpu, memory, swap and io replace CRI's wholesale wherever
// it sees the container's cgroup, as in the kubelet's default path.
func (p *podBuild) addContainer(in podAssembly, stats *runtimeapi.ContainerStats, container *runtimeapi.Container, useCollector bool) {
	name := stats.Attributes.Metadata.Name
	start := nanosTime(container.CreatedAt)
	var full, cpuMem statsapi.ContainerStats
	if cgroup := in.inventory.index.byContainerID[container.Id]; useCollector && cgroup != nil {
		full = cgroupContainerStats(name, cgroup)
		cpuMem = cpuAndMemoryOf(full)
		p.processes += cgroup.Latest().Processes.Count
		p.hasProcesses = true
	} else {
		rate := in.rates.update(container.Id, stats.GetCpu())
		full = criContainerStats(stats, rate, in.now)
		cpuMem = criContainerCPUAndMemoryStats(stats, rate, in.now)
	}
	full.Name, full.StartTime = name, start
	cpuMem.Name, cpuMem.StartTime = name, start
	full.Rootfs = containerRootfs(stats, in.host)
	if usage, at, ok := in.host.ContainerLogs(p.full.PodRef, name); ok {
		full.Logs = usageFsStats(in.rootFs, usage, at)
	}
	p.full.Containers = append(p.full.Containers, full)
	p.cpuMem.Containers = append(p.cpuMem.Containers, cpuMem)
}

// finish fills the pod-level blocks once all containers are in.
func (p *podBuild) finish(in podAssembly) {
	if podCgroup := in.inventory.index.pod(p.full.PodRef.UID); podCgroup != nil {
		p.full.CPU, p.full.Memory = cpuStats(podCgroup), memoryStats(podCgroup)
		p.full.Swap, p.full.IO = swapStats(podCgroup), ioStats(podCgroup)
		p.full.Network = networkStats(podCgroup)
		p.cpuMem.CPU, p.cpuMem.Memory, p.cpuMem.Swap = p.full.CPU, p.full.Memory, p.full.Swap
	} else {
		p.full.CPU, p.full.Memory = sumCPU(p.full.Containers), sumMemory(p.full.Containers)
		p.full.Swap, p.full.IO = sumSwap(p.full.Containers), lastIOTime(p.full.Containers)
		p.cpuMem.CPU, p.cpuMem.Memory, p.cpuMem.Swap = sumCPU(p.cpuMem.Containers), sumMemory(p.cpuMem.Containers), sumSwap(p.cpuMem.Containers)
	}
	if p.hasProcesses {
		p.full.ProcessStats = &statsapi.ProcessStats{ProcessCount: ptrTo(p.processes)}
	}
	fillPodStorage(in, &p.full)
}

// fillPodStorage is the kubelet's makePodStorageStats: the pod's volumes and
// its ephemeral storage, which counts the ephemeral volumes among them.
func fillPodStorage(in podAssembly, pod *statsapi.PodStats) {
	var ephemeralVolumes []statsapi.VolumeStats
	if measured, ok := in.host.PodVolumeStats(pod.PodRef.UID); ok {
		pod.VolumeStats, ephemeralVolumes = podVolumeStats(measured)
	}
	pod.EphemeralStorage = podEphemeralStorage(in, *pod, ephemeralVolumes)
}

func podEphemeralStorage(in podAssembly, pod statsapi.PodStats, ephemeralVolumes []statsapi.VolumeStats) *statsapi.FsStats {
	var podLogs, etcHosts *statsapi.FsStats
	if usage, at, ok := in.host.PodLogs(pod.PodRef); ok {
		podLogs = usageFsStats(in.rootFs, usage, at)
	}
	if usage, at, ok := in.host.EtcHosts(pod.PodRef.UID); ok {
		etcHosts = usageFsStats(in.rootFs, usage, at)
	}
	return ephemeralStorage(in.rootFs, pod.Containers, ephemeralVolumes, podLogs, etcHosts)
}

// sumCPU is the kubelet's fallback when the pod cgroup is unknown: counters
// summed with nil as 0, the time of the last container, no PSI.
func sumCPU(containers []statsapi.ContainerStats) *statsapi.CPUStats {
	var out *statsapi.CPUStats
	for _, c := range containers {
		if c.CPU == nil {
			continue
		}
		if out == nil {
			out = &statsapi.CPUStats{UsageNanoCores: ptrTo(uint64(0)), UsageCoreNanoSeconds: ptrTo(uint64(0))}
		}
		out.Time = c.CPU.Time
		*out.UsageNanoCores += value(c.CPU.UsageNanoCores)
		*out.UsageCoreNanoSeconds += value(c.CPU.UsageCoreNanoSeconds)
	}
	return out
}

func sumMemory(containers []statsapi.ContainerStats) *statsapi.MemoryStats {
	var out *statsapi.MemoryStats
	for _, c := range containers {
		if c.Memory == nil {
			continue
		}
		if out == nil {
			zero := func() *uint64 { return ptrTo(uint64(0)) }
			out = &statsapi.MemoryStats{AvailableBytes: zero(), UsageBytes: zero(), WorkingSetBytes: zero(),
				RSSBytes: zero(), PageFaults: zero(), MajorPageFaults: zero()}
		}
		out.Time = c.Memory.Time
		*out.AvailableBytes += value(c.Memory.AvailableBytes)
		*out.UsageBytes += value(c.Memory.UsageBytes)
		*out.WorkingSetBytes += value(c.Memory.WorkingSetBytes)
		*out.RSSBytes += value(c.Memory.RSSBytes)
		*out.PageFaults += value(c.Memory.PageFaults)
		*out.MajorPageFaults += value(c.Memory.MajorPageFaults)
	}
	return out
}

func sumSwap(containers []statsapi.ContainerStats) *statsapi.SwapStats {
	var out *statsapi.SwapStats
	for _, c := range containers {
		if c.Swap == nil {
			continue
		}
		if out == nil {
			out = &statsapi.SwapStats{Time: c.Swap.Time, SwapAvailableBytes: ptrTo(uint64(0)), SwapUsageBytes: ptrTo(uint64(0))}
		}
		*out.SwapAvailableBytes += value(c.Swap.SwapAvailableBytes)
		*out.SwapUsageBytes += value(c.Swap.SwapUsageBytes)
	}
	return out
}

// lastIOTime is the kubelet's pod io without a pod cgroup: a time, no PSI.
func lastIOTime(containers []statsapi.ContainerStats) *statsapi.IOStats {
	var out *statsapi.IOStats
	for _, c := range containers {
		if c.IO != nil && out == nil {
			out = &statsapi.IOStats{Time: c.IO.Time}
		}
	}
	return out
}

// value is *p, or 0 for nil, for sums where the kubelet counts nil as 0.
func value(p *uint64) uint64 {
	if p == nil {
		return 0
	}
	return *p
}

// sortPods orders pods by namespace, name and UID, and containers by name,
// where the kubelet's order is random or the runtime's, so that outputs
// diff cleanly and do not depend on the stats source.
func sortPods(pods []statsapi.PodStats) {
	for i := range pods {
		containers := pods[i].Containers
		sort.Slice(containers, func(a, b int) bool { return containers[a].Name < containers[b].Name })
	}
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i].PodRef, pods[j].PodRef
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.UID < b.UID
	})
}
