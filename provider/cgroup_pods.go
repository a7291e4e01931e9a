package provider

import (
	"os"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// podNames is what the kubelet's log layout says about pods when no runtime
// can be asked: /var/log/pods/<namespace>_<name>_<uid> and
// /var/log/containers/<pod>_<namespace>_<container>-<id>.log.
type podNames struct {
	byUID          map[string]statsapi.PodReference
	containerNames map[string]string
}

// readPodNames lists the two log directories; missing ones give no names.
func readPodNames(podLogsDir, containerLogsDir string) podNames {
	names := podNames{byUID: map[string]statsapi.PodReference{}, containerNames: map[string]string{}}
	if entries, err := os.ReadDir(podLogsDir); err == nil {
		for _, entry := range entries {
			if ref, ok := parsePodLogsDirName(entry.Name()); ok {
				names.byUID[ref.UID] = ref
			}
		}
	}
	if entries, err := os.ReadDir(containerLogsDir); err == nil {
		for _, entry := range entries {
			if id, name, ok := parseContainerLogName(entry.Name()); ok {
				names.containerNames[id] = name
			}
		}
	}
	return names
}

// parsePodLogsDirName splits "<namespace>_<name>_<uid>"; neither namespaces
// nor pod names may contain '_'.
func parsePodLogsDirName(dir string) (statsapi.PodReference, bool) {
	parts := strings.Split(dir, "_")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return statsapi.PodReference{}, false
	}
	return statsapi.PodReference{Namespace: parts[0], Name: parts[1], UID: parts[2]}, true
}

// parseContainerLogName splits "<pod>_<namespace>_<container>-<id>.log".
func parseContainerLogName(file string) (id, container string, ok bool) {
	base, isLog := strings.CutSuffix(file, ".log")
	if !isLog {
		return "", "", false
	}
	dash := strings.LastIndexByte(base, '-')
	if dash < 0 {
		return "", "", false
	}
	parts := strings.Split(base[:dash], "_")
	if len(parts) != 3 || parts[2] == "" || base[dash+1:] == "" {
		return "", "", false
	}
	return base[dash+1:], parts[2], true
}

// cgroupPodDisk is what a pod from the cgroup tree is given of the node's
// disks: the root filesystem and the measured pod directories.
type cgroupPodDisk struct {
	rootFs *cadvisor.FsStats
	host   hostStorage
}

// buildPodsFromCgroups builds the pods of the cgroup tree's inventory
// when there is no runtime. Volumes and ephemeral storage come from the
// node's disks as for pods from CRI; without a runtime no writable layer is
// known, so ephemeral storage counts the ephemeral volumes, the pod's log
// files and etc-hosts.
func buildPodsFromCgroups(inv *inventory, disk cgroupPodDisk) (full, cpuMem []statsapi.PodStats) {
	full = make([]statsapi.PodStats, 0, len(inv.cgroupPods))
	cpuMem = make([]statsapi.PodStats, 0, len(inv.cgroupPods))
	for _, cp := range inv.cgroupPods {
		pod := buildCgroupPod(cp)
		fillPodStorage(podAssembly{rootFs: disk.rootFs, host: disk.host}, &pod.full)
		full = append(full, pod.full)
		cpuMem = append(cpuMem, pod.cpuMem)
	}
	return full, cpuMem
}

// buildCgroupPod is one pod cgroup with its containers, in both modes.
func buildCgroupPod(cp cgroupPod) *podBuild {
	podCgroup, ref, containers := cp.info, cp.ref, cp.containers
	pod := &podBuild{
		full:   statsapi.PodStats{PodRef: ref, StartTime: metav1.NewTime(podCgroup.Spec.CreationTime)},
		cpuMem: statsapi.PodStats{PodRef: ref, StartTime: metav1.NewTime(podCgroup.Spec.CreationTime)},
	}
	for _, container := range containers {
		full := cgroupContainerStats(container.name, container.info)
		pod.full.Containers = append(pod.full.Containers, full)
		pod.cpuMem.Containers = append(pod.cpuMem.Containers, cpuAndMemoryOf(full))
		pod.processes += container.info.Latest().Processes.Count
		pod.hasProcesses = true
	}
	pod.full.CPU, pod.full.Memory = cpuStats(podCgroup), memoryStats(podCgroup)
	pod.full.Swap, pod.full.IO, pod.full.Network = swapStats(podCgroup), ioStats(podCgroup), networkStats(podCgroup)
	pod.cpuMem.CPU, pod.cpuMem.Memory, pod.cpuMem.Swap = pod.full.CPU, pod.full.Memory, pod.full.Swap
	if pod.hasProcesses {
		pod.full.ProcessStats = &statsapi.ProcessStats{ProcessCount: ptrTo(pod.processes)}
	}
	return pod
}

type namedCgroup struct {
	name string
	info *cadvisor.CgroupInfo
}

func namedContainers(cgroups []*cadvisor.CgroupInfo, containerNames map[string]string) []namedCgroup {
	var named, unnamed []namedCgroup
	for _, info := range cgroups {
		id := cadvisor.ContainerIDFromCgroup(info.Name)
		if name, ok := containerNames[id]; ok {
			named = append(named, namedCgroup{name: name, info: info})
		} else {
			unnamed = append(unnamed, namedCgroup{name: id, info: info})
		}
	}
	result := named
	if len(named) == 0 {
		result = unnamed
	}
	sort.Slice(result, func(i, j int) bool { return result[i].name < result[j].name })
	return result
}
