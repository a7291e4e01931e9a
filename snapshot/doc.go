// Package snapshot is the read model of the server: one immutable Snapshot
// per housekeeping tick, which package provider builds and package server
// answers from without locks and without I/O. It depends on the collector's
// data types alone, not on the runtime client, the collector's readers or
// the volume analyzer, so that the HTTP layer sees what it reads and
// nothing else.
//
// Exported surface:
//   - Snapshot: the Summary, its only_cpu_and_memory variant, Cgroups, and
//     Pods, the /pods body (PodList decodes it).
//   - Cgroups (NewCgroups), Pod, Container: the tick's cgroup tree in
//     cAdvisor's terms and the pods and containers that own its cgroups:
//     cAdvisor ContainerInfo of a cgroup, subcontainers, the pod container
//     routes, /spec/, the labels of /metrics/cadvisor, the owner of a cgroup.
//   - History, Series, Point (Cgroups.History, Cgroups.Pod): the samples the
//     collector retains for each cgroup, lined up on the housekeeping
//     passes, for the page's sparklines.
//   - Event, EventQuery, EventWatch and friends: the events API's types,
//     from the collector's event store.
package snapshot
