// Package provider turns what the collector, the runtime and the volume
// analyzer gathered into the kubelet's Summary, once per housekeeping tick,
// and publishes it as an immutable snapshot.Snapshot: the read model the
// server answers from lives in package snapshot, so that the HTTP layer does
// not depend on the runtime client, the collector or the analyzer.
//
// Exported surface:
//   - Provider (New, Run, Tick, Current, Healthy): the housekeeping loop and
//     the atomic snapshot it publishes.
//   - Config, SystemCgroup, CgroupSampler, PodVolumeSource: wiring.
//   - EventFeed (NewEventFeed, CgroupChanged, RecordOOMKill, Query, Watch,
//     Close): cAdvisor's container events (creation, deletion, oom,
//     oomKill) with the pod and container they belong to, one oomKill per
//     kill whether the kernel log or a cgroup's counter saw it.
//
// Where the kubelet's behaviour is buggy or vague this package does better and
// docs/compatibility.md says so.
package provider
