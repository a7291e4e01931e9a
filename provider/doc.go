// Package provider turns what the collector, the runtime and the volume
// analyzer gathered into the kubelet's Summary, once per housekeeping tick,
// and publishes it as an immutable Snapshot.
//
// Exported surface:
//   - Provider (New, Run, Tick, Current, Healthy): the housekeeping loop and
//     the atomic snapshot it publishes.
//   - Snapshot: what the server answers from: the Summary, its
//     only_cpu_and_memory variant, and Legacy, the cgroup view and pod index
//     behind the cAdvisor JSON routes, and Pods, the /pods v1.PodList
//     rebuilt from the runtime's sandboxes, containers and their statuses
//     (or the cgroup tree without a runtime), kept encoded (PodList
//     decodes it).
//   - History, Series, Point (Legacy.History, Legacy.Pod): the samples the
//     collector retains for each cgroup, lined up on the housekeeping
//     passes, for the page's sparklines.
//   - Config, SystemCgroup, CgroupSampler, PodVolumeSource: wiring.
//   - EventFeed (NewEventFeed, CgroupChanged, RecordOOMKill, Query, Watch,
//     Close): cAdvisor's container events (creation, deletion, oom,
//     oomKill) with the pod and container they belong to, one oomKill per
//     kill whether the kernel log or a cgroup's counter saw it; Event,
//     EventQuery, EventWatch and friends re-export the collector's types.
//
// Where the kubelet's behaviour is buggy or vague this package does better and
// docs/compatibility.md says so.
package provider
