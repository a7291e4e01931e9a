package provider

import (
	"errors"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// SystemCgroup names one entry of node.systemContainers: the logical name the
// kubelet uses (kubelet, runtime, misc, pods) and the cgroup behind it.
type SystemCgroup struct {
	// Name is one of statsapi.SystemContainerKubelet, ...Runtime, ...Misc, ...Pods.
	Name string
	// Cgroup is the cgroup name, e.g. "/kubepods" or "/system.slice/containerd.service".
	Cgroup string
	// StartTime overrides the cgroup's creation time when known (the kubelet
	// reports its own process start for the kubelet entry).
	StartTime time.Time
}

// nodeInputs is everything one housekeeping tick gathered for the node part
// of the Summary. Building from it is pure.
type nodeInputs struct {
	nodeName      string
	bootTime      time.Time
	view          *cadvisor.View
	rootFs        *cadvisor.FsStats // nil when statfs failed
	rlimit        cadvisor.Rlimit
	systemCgroups []SystemCgroup
	// imageFs is the runtime's image filesystem; nil without a runtime.
	imageFs *statsapi.FsStats
}

var errNoRootSample = errors.New("failed to get root cgroup stats: the root cgroup has no sample yet")

// buildNodeStats is the kubelet's summaryProviderImpl.Get for the node part.
func buildNodeStats(in nodeInputs) (statsapi.NodeStats, error) {
	root := in.view.Get("/")
	if root.Latest() == nil {
		return statsapi.NodeStats{}, errNoRootSample
	}
	rootTime := metav1.NewTime(root.Latest().Timestamp)
	node := statsapi.NodeStats{
		NodeName:         in.nodeName,
		StartTime:        metav1.NewTime(in.bootTime),
		CPU:              cpuStats(root),
		Memory:           memoryStats(root),
		Swap:             swapStats(root),
		IO:               ioStats(root),
		Network:          networkStats(root),
		Rlimit:           rlimitStats(in.rlimit),
		SystemContainers: systemContainerStats(in.view, in.systemCgroups, cgroupContainerStats),
	}
	if in.rootFs != nil {
		node.Fs = fsStats(*in.rootFs, rootTime)
	}
	if in.imageFs != nil {
		// The kubelet's CRI provider reports the image filesystem as the
		// container filesystem too; each gets its own copy.
		imageFs, containerFs := *in.imageFs, *in.imageFs
		node.Runtime = &statsapi.RuntimeStats{ImageFs: &imageFs, ContainerFs: &containerFs}
	}
	return node, nil
}

// buildNodeCPUAndMemoryStats is GetCPUAndMemoryStats for the node: no
// network, fs, runtime, rlimit or io, and startTime is the root cgroup's
// creation time rather than the boot time.
func buildNodeCPUAndMemoryStats(in nodeInputs) (statsapi.NodeStats, error) {
	root := in.view.Get("/")
	if root.Latest() == nil {
		return statsapi.NodeStats{}, errNoRootSample
	}
	return statsapi.NodeStats{
		NodeName:         in.nodeName,
		StartTime:        metav1.NewTime(root.Spec.CreationTime),
		CPU:              cpuStats(root),
		Memory:           memoryStats(root),
		Swap:             swapStats(root),
		SystemContainers: systemContainerStats(in.view, in.systemCgroups, cgroupCPUAndMemoryStats),
	}, nil
}

// systemContainerStats lists the configured system cgroups that have a
// sample. Entries without a cgroup name or without data are skipped, like
// the kubelet does; they are sorted by name where the kubelet's order is
// random.
func systemContainerStats(view *cadvisor.View, cgroups []SystemCgroup,
	convert func(string, *cadvisor.CgroupInfo) statsapi.ContainerStats) []statsapi.ContainerStats {
	var out []statsapi.ContainerStats
	for _, sys := range cgroups {
		if sys.Cgroup == "" {
			continue
		}
		info := view.Get(sys.Cgroup)
		if info.Latest() == nil {
			continue
		}
		stats := convert(sys.Name, info)
		if !sys.StartTime.IsZero() {
			stats.StartTime = metav1.NewTime(sys.StartTime)
		}
		out = append(out, stats)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
