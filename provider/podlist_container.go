package provider

import (
	"encoding/json"
	"fmt"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Annotations the kubelet puts on the containers it creates
// (pkg/kubelet/kuberuntime/labels.go newContainerAnnotations): what of the
// pod spec it needs back after a restart of its own.
const (
	restartCountAnnotation             = "io.kubernetes.container.restartCount"
	terminationMessagePathAnnotation   = "io.kubernetes.container.terminationMessagePath"
	terminationMessagePolicyAnnotation = "io.kubernetes.container.terminationMessagePolicy"
	preStopHandlerAnnotation           = "io.kubernetes.container.preStopHandler"
	portsAnnotation                    = "io.kubernetes.container.ports"
	terminationGracePeriodAnnotation   = "io.kubernetes.pod.terminationGracePeriod"
)

// specContainer is what the runtime knows of a container's spec: its name,
// image, resources, ports, termination message settings, preStop hook and
// volume mounts.
func specContainer(in podListInput, current containerInstance, qos corev1.PodQOSClass, podUID string) corev1.Container {
	container, status := current.container, current.status
	annotations := container.Annotations
	out := corev1.Container{
		Name:                     container.Metadata.Name,
		Image:                    specImage(container, status),
		Resources:                containerResources(qos, current.resources, in.index.byContainerID[container.Id]),
		TerminationMessagePath:   annotations[terminationMessagePathAnnotation],
		TerminationMessagePolicy: corev1.TerminationMessagePolicy(annotations[terminationMessagePolicyAnnotation]),
		VolumeMounts:             in.volumes.mounts(podUID, status.GetMounts()),
	}
	if raw := annotations[portsAnnotation]; raw != "" {
		// A malformed annotation leaves the ports out rather than the pod.
		_ = json.Unmarshal([]byte(raw), &out.Ports)
	}
	if raw := annotations[preStopHandlerAnnotation]; raw != "" {
		var preStop corev1.LifecycleHandler
		if json.Unmarshal([]byte(raw), &preStop) == nil {
			out.Lifecycle = &corev1.Lifecycle{PreStop: &preStop}
		}
	}
	return out
}

// specImage is the image as the user wrote it where the runtime kept it,
// else as the runtime names it (containerd: the first repo tag).
func specImage(container *runtimeapi.Container, status *runtimeapi.ContainerStatus) string {
	if user := status.GetImage().GetUserSpecifiedImage(); user != "" {
		return user
	}
	return statusImage(container, status)
}

// statusImage is the kubelet's containerStatuses[].image: the runtime's
// name of the image (the list only has the image ID).
func statusImage(container *runtimeapi.Container, status *runtimeapi.ContainerStatus) string {
	if image := status.GetImage().GetImage(); image != "" {
		return image
	}
	return container.GetImage().GetImage()
}

// gracePeriod is the pod's terminationGracePeriodSeconds from a container's
// annotation, nil when absent.
func gracePeriod(container *runtimeapi.Container) *int64 {
	raw, found := container.Annotations[terminationGracePeriodAnnotation]
	if !found {
		return nil
	}
	seconds, err := strconv.ParseInt(raw, 10, 64)
	if err != nil {
		return nil
	}
	return &seconds
}

// containerStatus is the kubelet's convertContainerStatus for the newest
// instance, with the one before it as lastState, and what it reports of the
// container's spec (spec): its resources, as the kubelet 1.36 does with
// in-place resize, and its volume mounts.
func containerStatus(history containerHistory, spec corev1.Container, runtime string) corev1.ContainerStatus {
	current := history.current
	id := containerID(runtime, current.container.Id)
	out := corev1.ContainerStatus{
		Name:         current.container.Metadata.Name,
		State:        containerState(current, id),
		Image:        statusImage(current.container, current.status),
		ImageID:      imageID(current),
		ContainerID:  id,
		RestartCount: restartCount(current.container),
		Resources:    spec.Resources.DeepCopy(),
	}
	if len(spec.Resources.Requests) > 0 {
		out.AllocatedResources = spec.Resources.Requests.DeepCopy()
	}
	for _, mount := range spec.VolumeMounts {
		out.VolumeMounts = append(out.VolumeMounts, corev1.VolumeMountStatus{Name: mount.Name, MountPath: mount.MountPath, ReadOnly: mount.ReadOnly})
	}
	running := out.State.Running != nil
	// Without probes to ask, a running container is ready and started, as
	// the kubelet says of a container without readiness and startup probes.
	out.Ready = running
	out.Started = &running
	if previous := history.previous; previous.container != nil {
		if state := containerState(previous, containerID(runtime, previous.container.Id)); state.Terminated != nil {
			out.LastTerminationState = state
		}
	}
	return out
}

// containerID is the kubelet's "<runtime>://<id>"; the bare ID when the
// runtime's name is unknown.
func containerID(runtime, id string) string {
	if runtime == "" {
		return id
	}
	return runtime + "://" + id
}

// imageID is the kubelet's containerStatuses[].imageID, the runtime's image
// reference (containerd: the repo digest).
func imageID(instance containerInstance) string {
	if ref := instance.status.GetImageRef(); ref != "" {
		return ref
	}
	return instance.container.GetImageRef()
}

// restartCount is the kubelet's count, kept in the container's annotation
// because the runtime forgets old instances.
func restartCount(container *runtimeapi.Container) int32 {
	count, err := strconv.ParseInt(container.Annotations[restartCountAnnotation], 10, 32)
	if err != nil {
		return int32(container.GetMetadata().GetAttempt())
	}
	return int32(count)
}

// containerState maps the runtime's state as the kubelet does: created and
// unknown are waiting without a reason.
func containerState(instance containerInstance, id string) corev1.ContainerState {
	state := instance.container.State
	status := instance.status
	switch state {
	case runtimeapi.ContainerState_CONTAINER_RUNNING:
		return corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: statusTime(status.GetStartedAt(), instance.container.CreatedAt)}}
	case runtimeapi.ContainerState_CONTAINER_EXITED:
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode:    status.GetExitCode(),
			Reason:      status.GetReason(),
			Message:     status.GetMessage(),
			StartedAt:   statusTime(status.GetStartedAt(), 0),
			FinishedAt:  statusTime(status.GetFinishedAt(), 0),
			ContainerID: id,
		}}
	}
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}
}

// statusTime is a runtime time in nanoseconds, or fallback, or the zero
// time (which encodes as null, as an unknown time does in the kubelet's).
func statusTime(nanos, fallback int64) metav1.Time {
	if nanos == 0 {
		nanos = fallback
	}
	if nanos == 0 {
		return metav1.Time{}
	}
	return nanosTime(nanos)
}

// podPhase is the kubelet's getPhase for a pod whose restart policy is
// unknown. A ready sandbox means the kubelet still runs the pod: a pod
// whose containers all stopped in it is restarting them (restartPolicy
// Always), since for the other policies the kubelet stops the sandbox once
// the pod is done. A stopped sandbox with stopped containers is a finished
// pod: Succeeded when they all exited 0.
func podPhase(sandboxReady bool, statuses []corev1.ContainerStatus) corev1.PodPhase {
	if len(statuses) == 0 {
		return corev1.PodPending
	}
	running, stopped, succeeded := 0, 0, 0
	for _, status := range statuses {
		switch {
		case status.State.Running != nil:
			running++
		case status.State.Terminated != nil:
			stopped++
			if status.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		default:
			return corev1.PodPending
		}
	}
	switch {
	case running > 0 || sandboxReady:
		return corev1.PodRunning
	case succeeded == stopped:
		return corev1.PodSucceeded
	}
	return corev1.PodFailed
}

// podConditions are the kubelet's five pod conditions as far as the runtime
// tells them. Transition times are those of the runtime's events: the first
// sandbox for the pod's own conditions, the newest container start (or
// finish) for readiness.
func podConditions(sandboxReady bool, created metav1.Time, statuses []corev1.ContainerStatus) []corev1.PodCondition {
	readyToStart := corev1.ConditionFalse
	if sandboxReady {
		readyToStart = corev1.ConditionTrue
	}
	readiness := containersReady(statuses)
	readiness.LastTransitionTime = lastContainerChange(statuses)
	ready, containers := readiness, readiness
	ready.Type, containers.Type = corev1.PodReady, corev1.ContainersReady
	return []corev1.PodCondition{
		{Type: corev1.PodReadyToStartContainers, Status: readyToStart, LastTransitionTime: created},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: created},
		ready,
		containers,
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: created},
	}
}

// containersReady is the kubelet's GenerateContainersReadyCondition: false
// with the unready containers' names, or PodCompleted once all stopped.
func containersReady(statuses []corev1.ContainerStatus) corev1.PodCondition {
	var unready []string
	stopped := 0
	for _, status := range statuses {
		if !status.Ready {
			unready = append(unready, status.Name)
		}
		if status.State.Terminated != nil {
			stopped++
		}
	}
	switch {
	case len(unready) == 0 && len(statuses) > 0:
		return corev1.PodCondition{Status: corev1.ConditionTrue}
	case stopped == len(statuses) && stopped > 0:
		return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "PodCompleted"}
	}
	return corev1.PodCondition{Status: corev1.ConditionFalse, Reason: "ContainersNotReady",
		Message: fmt.Sprintf("containers with unready status: %s", unready)}
}

func lastContainerChange(statuses []corev1.ContainerStatus) metav1.Time {
	var last metav1.Time
	for _, status := range statuses {
		for _, at := range []metav1.Time{runningSince(status.State), finishedAt(status.State)} {
			if last.Before(&at) {
				last = at
			}
		}
	}
	return last
}

func runningSince(state corev1.ContainerState) metav1.Time {
	if state.Running == nil {
		return metav1.Time{}
	}
	return state.Running.StartedAt
}

func finishedAt(state corev1.ContainerState) metav1.Time {
	if state.Terminated == nil {
		return metav1.Time{}
	}
	return state.Terminated.FinishedAt
}
