package provider

import (
	"sort"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

type podName struct{ namespace, name string }

// removeTerminatedPods keeps, per pod name and namespace, every ready
// sandbox, or the newest one when none is ready; a lone sandbox is kept
// whatever its state (kubelet removeTerminatedPods). Sandboxes without
// metadata are dropped instead of crashing like the kubelet would.
func removeTerminatedPods(sandboxes []*runtimeapi.PodSandbox) []*runtimeapi.PodSandbox {
	sorted := make([]*runtimeapi.PodSandbox, 0, len(sandboxes))
	for _, sandbox := range sandboxes {
		if sandbox.GetMetadata() != nil {
			sorted = append(sorted, sandbox)
		}
	}
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].CreatedAt < sorted[j].CreatedAt })
	groups := make(map[podName][]*runtimeapi.PodSandbox)
	var order []podName
	for _, sandbox := range sorted {
		key := podName{namespace: sandbox.Metadata.Namespace, name: sandbox.Metadata.Name}
		if _, seen := groups[key]; !seen {
			order = append(order, key)
		}
		groups[key] = append(groups[key], sandbox)
	}
	result := make([]*runtimeapi.PodSandbox, 0, len(groups))
	for _, key := range order {
		group := groups[key]
		if len(group) == 1 {
			result = append(result, group[0])
			continue
		}
		ready := 0
		for _, sandbox := range group {
			if sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY {
				result = append(result, sandbox)
				ready++
			}
		}
		if ready == 0 {
			result = append(result, group[len(group)-1])
		}
	}
	return result
}

// runningContainers keeps only running containers: a restarted container's
// exited instances disappear even when they are the only one
// (kubelet removeTerminatedContainers).
func runningContainers(containers []*runtimeapi.Container) []*runtimeapi.Container {
	result := make([]*runtimeapi.Container, 0, len(containers))
	for _, container := range containers {
		if container.GetState() == runtimeapi.ContainerState_CONTAINER_RUNNING {
			result = append(result, container)
		}
	}
	return result
}
