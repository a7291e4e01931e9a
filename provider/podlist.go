package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// internalKeyPrefix marks the labels and annotations the kubelet and the
// runtimes put on sandboxes for themselves (io.kubernetes.pod.name, CRI-O's
// io.kubernetes.cri-o.*); the pod's own keys never carry it.
const internalKeyPrefix = "io.kubernetes."

// containerPodUIDLabel is the label the kubelet puts the pod's UID in on
// every container (pkg/kubelet/types/labels.go).
const containerPodUIDLabel = "io.kubernetes.pod.uid"

// addPodList builds the /pods answer of this tick into snap, from the
// inventory: the runtime's sandboxes and containers (the identity of this
// tick, or the last good one while the runtime fails) with their statuses,
// or the pods of the cgroup tree without a runtime. It returns the pods,
// which the tick hands to the events index before they are dropped.
func (p *Provider) addPodList(ctx context.Context, view *cadvisor.View, inv *inventory, snap *snapshot.Snapshot) []corev1.Pod {
	in := podListInput{
		nodeName: p.cfg.NodeName,
		index:    inv.index,
		volumes:  podVolumeDirs{rootDir: p.cfg.RootDir},
	}
	var pods []corev1.Pod
	if p.cfg.Runtime == nil {
		pods = podsFromCgroups(in, view, inv.pods)
	} else {
		reader, _ := p.cfg.Runtime.(podStatusReader)
		fetcher := newStatusFetcher(ctx, reader, p.podStatuses, time.Now())
		pods = podsFromRuntime(in, inv, p.lastIdentity, fetcher)
		p.podStatuses = fetcher.next
		switch {
		case fetcher.err == nil:
		case ctx.Err() != nil:
			// The tick's wait ran out, as on a big node's first tick, which
			// asks every status: those asked so far are kept.
			p.cfg.Logger.V(2).Info("The runtime's statuses did not all come within the tick's wait; the next tick asks for the rest",
				"err", fetcher.err)
		default:
			p.metrics.runtimeErrors.Inc()
			p.cfg.Logger.Error(fetcher.err, "Container runtime status failed; /pods keeps the last statuses")
		}
	}
	sortPodList(pods)
	body, err := encodePodList(pods)
	if err != nil {
		p.cfg.Logger.Error(err, "Failed to encode /pods; serving it empty")
	}
	snap.Pods = body
	return pods
}

// podListInput is what every pod of /pods is built with.
type podListInput struct {
	nodeName string
	index    cgroupIndex
	volumes  podVolumeDirs
}

// podsFromRuntime lists one pod per UID among the sandboxes the summary
// counts (the inventory's): the ready sandbox, or the newest.
func podsFromRuntime(in podListInput, inv *inventory, identity *runtimeIdentity, statuses *statusFetcher) []corev1.Pod {
	if identity == nil {
		return nil
	}
	current := currentSandboxes(inv.sandboxes)
	containers := containersByPod(identity)
	pods := make([]corev1.Pod, 0, len(current))
	for uid, sandbox := range current {
		pods = append(pods, runtimePod(in, podSources{
			sandbox:    sandbox,
			status:     statuses.sandbox(sandbox),
			created:    firstCreated(identity.sandboxes, uid),
			containers: containerInstances(containers[uid], statuses),
			runtime:    statuses.runtimeName(),
		}))
	}
	return pods
}

// currentSandboxes picks, per pod UID, the ready sandbox or else the newest.
func currentSandboxes(sandboxes []*runtimeapi.PodSandbox) map[string]*runtimeapi.PodSandbox {
	current := map[string]*runtimeapi.PodSandbox{}
	for _, sandbox := range sandboxes {
		uid := sandbox.Metadata.Uid
		if best, seen := current[uid]; !seen || betterSandbox(sandbox, best) {
			current[uid] = sandbox
		}
	}
	return current
}

func betterSandbox(a, b *runtimeapi.PodSandbox) bool {
	aReady := a.State == runtimeapi.PodSandboxState_SANDBOX_READY
	bReady := b.State == runtimeapi.PodSandboxState_SANDBOX_READY
	if aReady != bReady {
		return aReady
	}
	return a.CreatedAt > b.CreatedAt
}

// firstCreated is when the first sandbox of a pod was made: the closest the
// runtime comes to the pod's creationTimestamp.
func firstCreated(sandboxes []*runtimeapi.PodSandbox, uid string) int64 {
	var first int64
	for _, sandbox := range sandboxes {
		if sandbox.GetMetadata().GetUid() == uid && (first == 0 || sandbox.CreatedAt < first) {
			first = sandbox.CreatedAt
		}
	}
	return first
}

// containersByPod groups every container by pod UID, from the kubelet's
// label or, without it, from its sandbox: a pod's earlier sandboxes hold
// its earlier instances.
func containersByPod(identity *runtimeIdentity) map[string][]*runtimeapi.Container {
	sandboxUID := make(map[string]string, len(identity.sandboxes))
	for _, sandbox := range identity.sandboxes {
		sandboxUID[sandbox.Id] = sandbox.GetMetadata().GetUid()
	}
	byPod := map[string][]*runtimeapi.Container{}
	for _, container := range identity.containers {
		if container.GetMetadata() == nil {
			continue
		}
		uid := container.Labels[containerPodUIDLabel]
		if uid == "" {
			uid = sandboxUID[container.PodSandboxId]
		}
		byPod[uid] = append(byPod[uid], container)
	}
	return byPod
}

// containerInstance is one container of the runtime with its status and
// resources (nil when the runtime could not be asked or does not say).
type containerInstance struct {
	container *runtimeapi.Container
	status    *runtimeapi.ContainerStatus
	resources *runtimeapi.LinuxContainerResources
}

func newContainerInstance(container *runtimeapi.Container, statuses *statusFetcher) containerInstance {
	entry := statuses.container(container)
	return containerInstance{container: container, status: entry.status, resources: entry.resources}
}

// containerHistory is a pod's container by name: its newest instance and
// the one before it (nil when none), which the kubelet reports as
// lastState.
type containerHistory struct {
	current, previous containerInstance
	// firstCreated orders containers as the kubelet started them: in the
	// order of the pod spec.
	firstCreated int64
}

// containerInstances orders each name's instances newest first (by attempt,
// then creation) and asks for the statuses of the two newest.
func containerInstances(containers []*runtimeapi.Container, statuses *statusFetcher) []containerHistory {
	byName := map[string][]*runtimeapi.Container{}
	for _, container := range containers {
		byName[container.Metadata.Name] = append(byName[container.Metadata.Name], container)
	}
	histories := make([]containerHistory, 0, len(byName))
	for _, instances := range byName {
		sort.Slice(instances, func(i, j int) bool {
			a, b := instances[i], instances[j]
			if a.Metadata.Attempt != b.Metadata.Attempt {
				return a.Metadata.Attempt > b.Metadata.Attempt
			}
			return a.CreatedAt > b.CreatedAt
		})
		history := containerHistory{
			current:      newContainerInstance(instances[0], statuses),
			firstCreated: instances[len(instances)-1].CreatedAt,
		}
		if len(instances) > 1 {
			history.previous = newContainerInstance(instances[1], statuses)
		}
		histories = append(histories, history)
	}
	sort.Slice(histories, func(i, j int) bool {
		a, b := histories[i], histories[j]
		if a.firstCreated != b.firstCreated {
			return a.firstCreated < b.firstCreated
		}
		return a.current.container.Metadata.Name < b.current.container.Metadata.Name
	})
	return histories
}

// splitInitContainers tells init containers from the others by the way the
// kubelet starts them: init containers one after the other, each once the
// one before has finished, then all the others at once. The leading
// containers (in start order) whose newest instance finished before the
// next container was first created are init containers. A restartable
// (sidecar) init container keeps running and counts as a container.
func splitInitContainers(histories []containerHistory) (inits, containers []containerHistory) {
	n := 0
	for n+1 < len(histories) && finishedBefore(histories[n].current, histories[n+1].firstCreated) {
		n++
	}
	return histories[:n], histories[n:]
}

func finishedBefore(instance containerInstance, nanos int64) bool {
	finished := instance.status.GetFinishedAt()
	return instance.container.State == runtimeapi.ContainerState_CONTAINER_EXITED && finished != 0 && finished <= nanos
}

// podSources is everything the runtime says about one pod.
type podSources struct {
	sandbox *runtimeapi.PodSandbox
	// status is nil when the runtime could not be asked.
	status     *runtimeapi.PodSandboxStatus
	created    int64
	containers []containerHistory
	// runtime names the runtime in container IDs ("containerd").
	runtime string
}

func runtimePod(in podListInput, src podSources) corev1.Pod {
	meta := src.sandbox.Metadata
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:              meta.Name,
			Namespace:         meta.Namespace,
			UID:               types.UID(meta.Uid),
			Labels:            withoutInternalKeys(src.sandbox.Labels),
			Annotations:       withoutInternalKeys(src.sandbox.Annotations),
			CreationTimestamp: creationTimestamp(src),
		},
		Spec: corev1.PodSpec{NodeName: in.nodeName, Volumes: in.volumes.list(meta.Uid)},
	}
	setNamespaces(&pod.Spec, src.status)
	qos := podQOSClass(in.index.pod(meta.Uid))
	inits, containers := splitInitContainers(src.containers)
	for _, history := range inits {
		spec := specContainer(in, history.current, qos, meta.Uid)
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, spec)
		pod.Status.InitContainerStatuses = append(pod.Status.InitContainerStatuses, containerStatus(history, spec, src.runtime))
	}
	for _, history := range containers {
		spec := specContainer(in, history.current, qos, meta.Uid)
		pod.Spec.Containers = append(pod.Spec.Containers, spec)
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, containerStatus(history, spec, src.runtime))
		if grace := gracePeriod(history.current.container); grace != nil {
			pod.Spec.TerminationGracePeriodSeconds = grace
		}
	}
	sort.Slice(pod.Status.ContainerStatuses, func(i, j int) bool {
		return pod.Status.ContainerStatuses[i].Name < pod.Status.ContainerStatuses[j].Name
	})
	pod.Status.QOSClass = qos
	ready := src.sandbox.State == runtimeapi.PodSandboxState_SANDBOX_READY
	pod.Status.Phase = podPhase(ready, pod.Status.ContainerStatuses)
	pod.Status.Conditions = podConditions(ready, nanosTime(src.created), pod.Status.ContainerStatuses)
	start := nanosTime(src.sandbox.CreatedAt)
	pod.Status.StartTime = &start
	setPodIPs(&pod.Status, src.status)
	return pod
}

// configSourceAnnotation is where the kubelet says where a pod came from:
// "api", or "file" and "http" for static pods.
const configSourceAnnotation = "kubernetes.io/config.source"

// creationTimestamp is when the pod's first sandbox was made, the closest
// the runtime comes to when the API server stored the pod. Static pods have
// none in the kubelet's list: they never went through an API server.
func creationTimestamp(src podSources) metav1.Time {
	switch src.sandbox.Annotations[configSourceAnnotation] {
	case "file", "http":
		return metav1.Time{}
	}
	return nanosTime(src.created)
}

// withoutInternalKeys copies m without the internal keys; nil when nothing
// is left, so that the key is omitted as in a pod without labels.
func withoutInternalKeys(m map[string]string) map[string]string {
	var out map[string]string
	for k, v := range m {
		if strings.HasPrefix(k, internalKeyPrefix) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

// setNamespaces reads hostNetwork, hostPID and hostIPC from the namespace
// modes the kubelet asked the runtime for.
func setNamespaces(spec *corev1.PodSpec, status *runtimeapi.PodSandboxStatus) {
	options := status.GetLinux().GetNamespaces().GetOptions()
	if options == nil {
		return
	}
	spec.HostNetwork = options.Network == runtimeapi.NamespaceMode_NODE
	spec.HostPID = options.Pid == runtimeapi.NamespaceMode_NODE
	spec.HostIPC = options.Ipc == runtimeapi.NamespaceMode_NODE
}

// setPodIPs copies the sandbox's addresses; host-network sandboxes have
// none of their own (the kubelet reports the node's there, which the
// runtime does not know).
func setPodIPs(status *corev1.PodStatus, sandbox *runtimeapi.PodSandboxStatus) {
	network := sandbox.GetNetwork()
	if network.GetIp() == "" {
		return
	}
	status.PodIP = network.Ip
	status.PodIPs = []corev1.PodIP{{IP: network.Ip}}
	for _, extra := range network.AdditionalIps {
		if extra.GetIp() != "" {
			status.PodIPs = append(status.PodIPs, corev1.PodIP{IP: extra.Ip})
		}
	}
}

// sortPodList orders pods by namespace, name and UID, as sortPods does for
// the summary; the kubelet's order is its pod manager's map order.
func sortPodList(pods []corev1.Pod) {
	sort.Slice(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.UID < b.UID
	})
}

// encodePodList encodes like the kubelet's encodePods, whose legacy codec
// writes compact JSON with kind and apiVersion on the list (not on its
// items) and a trailing newline (json.Encoder). Items is nil when no pod
// runs, so that it encodes as the kubelet's "items":null.
func encodePodList(pods []corev1.Pod) ([]byte, error) {
	if len(pods) == 0 {
		pods = nil
	}
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}, Items: pods}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(list); err != nil {
		return nil, fmt.Errorf("encode pod list: %w", err)
	}
	// The buffer grew by doubling; the snapshot keeps only the body.
	return bytes.Clone(buf.Bytes()), nil
}
