package provider

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// podsFromCgroups lists, without a runtime, the inventory's pods of the
// cgroup tree: names from the log layout (or the UID), containers as
// running since their cgroup appeared, resources from the cgroups, volumes
// from the root dir. Container IDs are bare: which runtime made them is
// unknown.
func podsFromCgroups(in podListInput, view *cadvisor.View, inventory []snapshot.Pod) []corev1.Pod {
	pods := make([]corev1.Pod, 0, len(inventory))
	for _, lp := range inventory {
		podCgroup := view.Get(lp.Cgroup)
		qos := podQOSClass(podCgroup)
		var created metav1.Time
		if podCgroup != nil {
			created = metav1.NewTime(podCgroup.Spec.CreationTime)
		}
		pod := corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: lp.Name, Namespace: lp.Namespace, UID: types.UID(lp.UID), CreationTimestamp: created},
			Spec:       corev1.PodSpec{NodeName: in.nodeName, Volumes: in.volumes.list(lp.UID)},
			Status:     corev1.PodStatus{QOSClass: qos, StartTime: &created},
		}
		containers := append([]snapshot.Container(nil), lp.Containers...)
		sort.SliceStable(containers, func(i, j int) bool { return containers[i].CreatedAt.Before(containers[j].CreatedAt) })
		for _, c := range containers {
			resources := containerResources(qos, nil, view.Get(c.Cgroup))
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: c.Name, Resources: resources})
			running := true
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
				Name:        c.Name,
				ContainerID: c.ID,
				State:       corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.CreatedAt)}},
				Ready:       true,
				Started:     &running,
				Resources:   resources.DeepCopy(),
			})
		}
		sort.Slice(pod.Status.ContainerStatuses, func(i, j int) bool {
			return pod.Status.ContainerStatuses[i].Name < pod.Status.ContainerStatuses[j].Name
		})
		pod.Status.Phase = podPhase(true, pod.Status.ContainerStatuses)
		pod.Status.Conditions = podConditions(true, created, pod.Status.ContainerStatuses)
		pods = append(pods, pod)
	}
	return pods
}
