// Package cadvisor is the server's own cgroup collector: what the kubelet's
// embedded cAdvisor does for the stats surface, and nothing else.
//
// It reads cgroup v1, v2 and hybrid hierarchies (cgroupfs and systemd
// layouts) without ever creating or writing a cgroup: purpose-built readers
// open only the files the stats surface uses and parse them as
// github.com/opencontainers/cgroups does (the live tests compare the two). It
// keeps a bounded ring of samples per tracked cgroup, the newest two as they
// are and the older ones encoded, and publishes each housekeeping pass as an
// immutable View.
//
// Exported surface:
//   - Collector (New, Start, Housekeep, Hierarchy) with Config: discovery by
//     inotify plus periodic rescans, and one sampling pass per Housekeep.
//   - View, CgroupInfo (Samples, AllSamples), Sample, Spec and the stats
//     types they hold.
//   - NanoCores, WorkingSet, FilterInterfaces: the derivations the kubelet
//     applies to cAdvisor data.
//   - PodCgroupKey, PodUIDFromCgroup, ContainerIDFromCgroup: the kubelet's
//     reading of cgroup names in both layouts.
//   - ReadMachine (Machine), DirFsStats (FsStats), ReadRlimit (Rlimit):
//     machine facts, filesystem usage and process limits.
//   - WatchOOMKills (OOMKill): the kernel's OOM kills from /dev/kmsg, from
//     the moment it starts.
//   - Config.OnCgroupEvent (CgroupEvent): the cgroups discovery adds and
//     removes, for cAdvisor's container creation and deletion events.
//   - EventStore (NewEventStore, Add, Query, Watch, Close) with Event,
//     EventPod, EventType, EventLimits, EventQuery and EventWatch: recent
//     events bounded per type in count and age, and watches that are
//     dropped, never waited for, when they fall behind.
//
// What cAdvisor semantics each value follows is documented on the types;
// docs/compatibility.md lists where they differ from the kubelet's.
package cadvisor
