package provider

import (
	"path"
	"sort"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// inventory is one tick's pods and containers: which exist, who they are,
// and the cgroups that measure them. takeInventory decides it once per
// tick, from the runtime's answers or, without a runtime, from the cgroup
// tree; the summary in both modes, the cgroup view, /pods and the events
// index are projections of it.
type inventory struct {
	// index finds the collector's cgroups below the pod root by container
	// ID and by pod UID.
	index cgroupIndex
	// pods are the pods the summary counts with their running containers
	// and their cgroups, oldest first (so that the newest of two
	// same-named pods wins in snapshot.NewCgroups).
	pods []snapshot.Pod

	// With a runtime: the sandboxes the kubelet counts
	// (removeTerminatedPods), oldest first, and by ID; the running
	// containers by ID.
	sandboxes  []*runtimeapi.PodSandbox
	sandboxIDs map[string]*runtimeapi.PodSandbox
	running    map[string]*runtimeapi.Container

	// Without a runtime: each pod cgroup with its container cgroups.
	cgroupPods []cgroupPod
}

// cgroupPod is a pod found in the cgroup tree: its cgroup, its name (from
// the log layout, or its UID), and its containers' cgroups.
type cgroupPod struct {
	info       *cadvisor.CgroupInfo
	ref        statsapi.PodReference
	containers []namedCgroup
}

// takeInventory lists this tick's pods from the runtime's last good
// identity, or from the cgroup tree without a runtime.
func (p *Provider) takeInventory(view *cadvisor.View) *inventory {
	if p.cfg.Runtime == nil {
		names := readPodNames(p.cfg.PodLogsDir, p.cfg.ContainerLogsDir)
		return inventoryFromCgroups(view, p.cfg.PodRoot, names)
	}
	return inventoryFromRuntime(p.lastIdentity, indexCgroups(view, p.cfg.PodRoot))
}

// inventoryFromRuntime counts the sandboxes the kubelet counts
// (removeTerminatedPods) with their running containers, joined to cgroups
// by container ID and pod UID. A nil identity (no answer yet) counts none.
func inventoryFromRuntime(identity *runtimeIdentity, idx cgroupIndex) *inventory {
	inv := &inventory{index: idx, sandboxIDs: map[string]*runtimeapi.PodSandbox{}, running: map[string]*runtimeapi.Container{}}
	if identity == nil {
		return inv
	}
	inv.sandboxes = removeTerminatedPods(identity.sandboxes)
	sort.SliceStable(inv.sandboxes, func(i, j int) bool { return inv.sandboxes[i].CreatedAt < inv.sandboxes[j].CreatedAt })
	bySandbox := make(map[string]int, len(inv.sandboxes))
	inv.pods = make([]snapshot.Pod, 0, len(inv.sandboxes))
	for _, sandbox := range inv.sandboxes {
		inv.sandboxIDs[sandbox.Id] = sandbox
		pod := snapshot.Pod{Namespace: sandbox.Metadata.Namespace, Name: sandbox.Metadata.Name, UID: sandbox.Metadata.Uid}
		if cgroup := idx.pod(pod.UID); cgroup != nil {
			pod.Cgroup = cgroup.Name
		}
		bySandbox[sandbox.Id] = len(inv.pods)
		inv.pods = append(inv.pods, pod)
	}
	containers := runningContainers(identity.containers)
	sort.SliceStable(containers, func(i, j int) bool { return containers[i].CreatedAt < containers[j].CreatedAt })
	for _, container := range containers {
		inv.running[container.Id] = container
		i, found := bySandbox[container.PodSandboxId]
		if !found || container.GetMetadata() == nil {
			continue
		}
		c := snapshot.Container{
			Name:      container.Metadata.Name,
			ID:        container.Id,
			Image:     container.GetImage().GetImage(),
			Labels:    container.Labels,
			CreatedAt: time.Unix(0, container.CreatedAt),
		}
		if cgroup := idx.byContainerID[container.Id]; cgroup != nil {
			c.Cgroup = cgroup.Name
		}
		inv.pods[i].Containers = append(inv.pods[i].Containers, c)
	}
	return inv
}

// inventoryFromCgroups lists the pods of the cgroup tree: every pod<uid>
// cgroup below the pod root with a sample, its child cgroups as
// containers. Names come from the log layout where present; otherwise a
// pod is named by its UID (no namespace) and a container by its cgroup's
// ID. When some containers of a pod have names, the unnamed ones (the
// sandbox) are left out, like the kubelet never lists the pause container.
func inventoryFromCgroups(view *cadvisor.View, podRoot string, names podNames) *inventory {
	prefix := strings.TrimSuffix(podRoot, "/") + "/"
	inv := &inventory{index: indexCgroups(view, podRoot)}
	children := map[string][]*cadvisor.CgroupInfo{}
	for name, info := range view.Cgroups {
		if !strings.HasPrefix(name, prefix) || info.Latest() == nil {
			continue
		}
		if uid, isPod := cadvisor.PodUIDFromCgroup(name); isPod {
			ref, known := names.byUID[uid]
			if !known {
				ref = statsapi.PodReference{UID: uid, Name: uid}
			}
			inv.cgroupPods = append(inv.cgroupPods, cgroupPod{info: info, ref: ref})
		} else {
			children[path.Dir(name)] = append(children[path.Dir(name)], info)
		}
	}
	// Oldest first, so that NewCgroups keeps the newest of two same-named pods.
	sort.Slice(inv.cgroupPods, func(i, j int) bool {
		a, b := inv.cgroupPods[i].info, inv.cgroupPods[j].info
		if !a.Spec.CreationTime.Equal(b.Spec.CreationTime) {
			return a.Spec.CreationTime.Before(b.Spec.CreationTime)
		}
		return a.Name < b.Name
	})
	inv.pods = make([]snapshot.Pod, 0, len(inv.cgroupPods))
	for i := range inv.cgroupPods {
		cp := &inv.cgroupPods[i]
		cp.containers = namedContainers(children[cp.info.Name], names.containerNames)
		pod := snapshot.Pod{Namespace: cp.ref.Namespace, Name: cp.ref.Name, UID: cp.ref.UID, Cgroup: cp.info.Name}
		for _, container := range cp.containers {
			pod.Containers = append(pod.Containers, snapshot.Container{
				Name:      container.name,
				ID:        cadvisor.ContainerIDFromCgroup(container.info.Name),
				Cgroup:    container.info.Name,
				CreatedAt: container.info.Spec.CreationTime,
			})
		}
		inv.pods = append(inv.pods, pod)
	}
	return inv
}
