package provider

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// Snapshot is everything the server answers from, built once per
// housekeeping tick and never modified after it is published. Requests read
// it without locks and without I/O.
type Snapshot struct {
	// Generation increases by one with every published snapshot, so that
	// readers can cache work (such as an encoded body) per snapshot.
	Generation uint64
	// Time is when the housekeeping tick that built this snapshot finished.
	Time time.Time
	// Summary is the full /stats/summary answer.
	Summary *statsapi.Summary
	// CPUAndMemory is the /stats/summary?only_cpu_and_memory=true answer
	// (kubelet GetCPUAndMemoryStats), also the source of /metrics/resource.
	CPUAndMemory *statsapi.Summary
	// Legacy answers the kubelet's cAdvisor JSON endpoints (/stats/,
	// /stats/container, /stats/<pod>/<container>, /spec/).
	Legacy *Legacy
	// Pods is the /pods answer: a v1.PodList like the kubelet's, built from
	// the runtime's view of this tick (or the cgroup tree without a
	// runtime). Items is nil when no pod runs, so that it encodes as the
	// kubelet's "items":null.
	Pods *corev1.PodList

	// podStatuses are the runtime statuses behind Pods, which the next tick
	// reuses for sandboxes and containers whose state did not change.
	podStatuses *runtimeStatuses
}
