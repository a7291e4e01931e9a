package provider

import (
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// legacyPodsFromRuntime lists the pods the summary lists from CRI (the
// kubelet's removeTerminatedPods) with their running containers, joined to
// cgroups by container ID and pod UID. Sandboxes are ordered oldest first so
// that the newest of two same-named pods wins in snapshot.NewCgroups.
func legacyPodsFromRuntime(identity *runtimeIdentity, idx cgroupIndex) []snapshot.Pod {
	sandboxes := removeTerminatedPods(identity.sandboxes)
	sort.SliceStable(sandboxes, func(i, j int) bool { return sandboxes[i].CreatedAt < sandboxes[j].CreatedAt })
	bySandbox := make(map[string]int, len(sandboxes))
	pods := make([]snapshot.Pod, 0, len(sandboxes))
	for _, sandbox := range sandboxes {
		pod := snapshot.Pod{Namespace: sandbox.Metadata.Namespace, Name: sandbox.Metadata.Name, UID: sandbox.Metadata.Uid}
		if cgroup := idx.pod(pod.UID); cgroup != nil {
			pod.Cgroup = cgroup.Name
		}
		bySandbox[sandbox.Id] = len(pods)
		pods = append(pods, pod)
	}
	containers := runningContainers(identity.containers)
	sort.SliceStable(containers, func(i, j int) bool { return containers[i].CreatedAt < containers[j].CreatedAt })
	for _, container := range containers {
		i, found := bySandbox[container.PodSandboxId]
		if !found || container.GetMetadata() == nil {
			continue
		}
		legacy := snapshot.Container{
			Name:      container.Metadata.Name,
			ID:        container.Id,
			Image:     container.GetImage().GetImage(),
			Labels:    container.Labels,
			CreatedAt: time.Unix(0, container.CreatedAt),
		}
		if cgroup := idx.byContainerID[container.Id]; cgroup != nil {
			legacy.Cgroup = cgroup.Name
		}
		pods[i].Containers = append(pods[i].Containers, legacy)
	}
	return pods
}

// legacyPodsFromCgroups lists the pods the summary lists from the cgroup
// tree (buildPodsFromCgroups): names from the log layout, or the UID as pod
// name (no namespace) and the cgroup ID as container name.
func legacyPodsFromCgroups(view *cadvisor.View, podRoot string, names podNames) []snapshot.Pod {
	prefix := strings.TrimSuffix(podRoot, "/") + "/"
	podCgroups := map[string]string{}
	children := map[string][]*cadvisor.CgroupInfo{}
	for name, info := range view.Cgroups {
		if !strings.HasPrefix(name, prefix) || info.Latest() == nil {
			continue
		}
		if uid, isPod := cadvisor.PodUIDFromCgroup(name); isPod {
			podCgroups[name] = uid
		} else {
			children[path.Dir(name)] = append(children[path.Dir(name)], info)
		}
	}
	pods := make([]snapshot.Pod, 0, len(podCgroups))
	for name, uid := range podCgroups {
		ref, known := names.byUID[uid]
		if !known {
			ref.UID, ref.Name = uid, uid
		}
		pod := snapshot.Pod{Namespace: ref.Namespace, Name: ref.Name, UID: ref.UID, Cgroup: name}
		for _, container := range namedContainers(children[name], names.containerNames) {
			pod.Containers = append(pod.Containers, snapshot.Container{
				Name:      container.name,
				ID:        cadvisor.ContainerIDFromCgroup(container.info.Name),
				Cgroup:    container.info.Name,
				CreatedAt: container.info.Spec.CreationTime,
			})
		}
		pods = append(pods, pod)
	}
	// Newest last, so that snapshot.NewCgroups keeps the newest of two same-named pods.
	sort.Slice(pods, func(i, j int) bool {
		a, b := view.Cgroups[pods[i].Cgroup].Spec.CreationTime, view.Cgroups[pods[j].Cgroup].Spec.CreationTime
		if !a.Equal(b) {
			return a.Before(b)
		}
		return pods[i].Cgroup < pods[j].Cgroup
	})
	return pods
}
