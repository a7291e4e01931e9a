package snapshot

import (
	"encoding/json"
	"fmt"
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
	// SummaryBody is Summary encoded (EncodeSummary) by the tick that built
	// it, so that no request pays for the encoding: a client polling no
	// faster than the tick (the OpenTelemetry kubeletstats receiver, every
	// 10 s by default) would otherwise meet a new snapshot, and 40 ms of
	// encoding at 500 pods, at nearly every request. Nil when the tick could
	// not encode it; the server then encodes on demand.
	SummaryBody []byte
	// CPUAndMemory is the /stats/summary?only_cpu_and_memory=true answer
	// (kubelet GetCPUAndMemoryStats), also the source of /metrics/resource.
	CPUAndMemory *statsapi.Summary
	// Cgroups is the cgroup tree in cAdvisor's terms, with the pod and
	// container that owns each cgroup: the cAdvisor JSON endpoints
	// (/stats/, /stats/container, /stats/<pod>/<container>, /spec/),
	// /metrics/cadvisor, the page's history and OOM attribution read it.
	Cgroups *Cgroups
	// Pods is the /pods body: a v1.PodList like the kubelet's, built from
	// the runtime's view of this tick (or the cgroup tree without a
	// runtime) and encoded as the kubelet encodes it. It is
	// kept encoded: as objects the pods of a 500-pod node take ten times
	// the memory of their JSON, and /pods is the only endpoint that needs
	// them whole.
	Pods []byte
}

// PodList decodes Pods, for in-process readers of the pods (registration's
// mirror pods); nil when the snapshot has no pod list.
func (s *Snapshot) PodList() (*corev1.PodList, error) {
	if s.Pods == nil {
		return nil, nil
	}
	list := &corev1.PodList{}
	if err := json.Unmarshal(s.Pods, list); err != nil {
		return nil, fmt.Errorf("decode the pod list of snapshot %d: %w", s.Generation, err)
	}
	return list, nil
}

// EncodeSummary encodes a summary as the kubelet's response.WriteAsJson
// with go-restful's default PrettyPrintResponses does: one-space
// indentation and no trailing newline.
func EncodeSummary(s *statsapi.Summary) ([]byte, error) {
	return json.MarshalIndent(s, "", " ")
}
