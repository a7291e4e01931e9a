package provider

import (
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// eventIndex names the pods and containers of one tick for events: by pod
// UID and by container ID, the two names a cgroup path carries. It holds
// more than the snapshot's running containers, because events are about
// containers that come and go between ticks: every sandbox and container
// the runtime lists (exited ones too), and the exit codes /pods knows.
// Immutable once built.
type eventIndex struct {
	pods       map[string]eventPodRef
	containers map[string]eventContainerRef
	sandboxes  map[string]bool
}

type eventPodRef struct{ namespace, name string }

type eventContainerRef struct {
	name string
	// exitCode is set when exited: the container's terminated state.
	exitCode int32
	exited   bool
}

// newEventIndex indexes the runtime's sandboxes and containers and the
// pods of /pods.
func newEventIndex(pods []corev1.Pod, identity *runtimeIdentity) *eventIndex {
	var sandboxes, containers int
	if identity != nil {
		sandboxes, containers = len(identity.sandboxes), len(identity.containers)
	}
	idx := &eventIndex{
		pods:       make(map[string]eventPodRef, sandboxes),
		containers: make(map[string]eventContainerRef, containers),
		sandboxes:  make(map[string]bool, sandboxes),
	}
	if identity != nil {
		for _, sandbox := range identity.sandboxes {
			md := sandbox.GetMetadata()
			idx.pods[md.GetUid()] = eventPodRef{namespace: md.GetNamespace(), name: md.GetName()}
			idx.sandboxes[sandbox.GetId()] = true
		}
		for _, c := range identity.containers {
			idx.containers[c.GetId()] = eventContainerRef{name: c.GetMetadata().GetName()}
		}
	}
	for i := range pods {
		idx.addPod(&pods[i])
	}
	return idx
}

// addPod indexes a pod of /pods: without a runtime the only source, with
// one the source of exit codes.
func (idx *eventIndex) addPod(pod *corev1.Pod) {
	idx.pods[string(pod.UID)] = eventPodRef{namespace: pod.Namespace, name: pod.Name}
	for _, statuses := range [][]corev1.ContainerStatus{pod.Status.InitContainerStatuses, pod.Status.ContainerStatuses, pod.Status.EphemeralContainerStatuses} {
		for i := range statuses {
			st := &statuses[i]
			idx.addContainer(st.Name, st.ContainerID, st.State.Terminated)
			if last := st.LastTerminationState.Terminated; last != nil {
				idx.addContainer(st.Name, last.ContainerID, last)
			}
		}
	}
}

func (idx *eventIndex) addContainer(name, containerID string, terminated *corev1.ContainerStateTerminated) {
	id := bareContainerID(containerID)
	if id == "" {
		return
	}
	ref := eventContainerRef{name: name}
	if terminated != nil {
		ref.exitCode, ref.exited = terminated.ExitCode, true
	}
	idx.containers[id] = ref
}

// bareContainerID strips the runtime's scheme ("containerd://<id>").
func bareContainerID(id string) string {
	if _, after, found := strings.Cut(id, "://"); found {
		return after
	}
	return id
}

// name fills ev.Pod (and a deletion's exit code) for a cgroup of the pod
// podUID, and reports whether it is fully named: the pod known, and for a
// cgroup below the pod's, the container (or the sandbox) known. The UID
// alone is filled in any case, from the cgroup path.
func (idx *eventIndex) name(ev *cadvisor.Event, podUID string) bool {
	ev.Pod.UID = podUID
	if idx == nil {
		return false
	}
	pod, ok := idx.pods[podUID]
	if !ok {
		return false
	}
	ev.Pod.Namespace, ev.Pod.Name = pod.namespace, pod.name
	if uid, isPod := cadvisor.PodUIDFromCgroup(ev.Cgroup); isPod && uid == podUID {
		return true
	}
	id := cadvisor.ContainerIDFromCgroup(ev.Cgroup)
	if idx.sandboxes[id] {
		return true
	}
	c, ok := idx.containers[id]
	if !ok {
		return false
	}
	ev.Pod.Container = c.name
	if ev.Type == cadvisor.EventContainerDeletion && c.exited {
		ev.ExitCode = int(c.exitCode)
	}
	return true
}

// podUIDOf is the UID of the pod whose cgroup is cgroup or holds it, "" for
// a cgroup outside pods.
func podUIDOf(cgroup string) string {
	for c := cgroup; c != "/" && c != "." && c != ""; c = path.Dir(c) {
		if uid, ok := cadvisor.PodUIDFromCgroup(c); ok {
			return uid
		}
	}
	return ""
}
