// Package cadvisor is the data model of the server's cgroup collector
// (package collector): what one housekeeping pass publishes, in the terms of
// the kubelet's embedded cAdvisor, and the derivations the kubelet applies
// to it. It reads no file and starts nothing, so that the read side of the
// server (package snapshot, and through it package server) can hold and
// read the collector's data without linking the collector.
//
// Exported surface:
//   - View, CgroupInfo (Samples, AllSamples, SampleCount, Latest, Previous),
//     Sample, Spec and the stats types they hold; FsStats, Rlimit, Machine
//     (Disk, NetDevice, HugePages).
//   - SampleRing (NewSampleRing, Push, Len, AppendNewest, History) and
//     History: the bounded ring of samples the collector keeps per cgroup,
//     the newest two as they are and the older ones encoded (history.go),
//     which a CgroupInfo decodes on demand.
//   - NanoCores, WorkingSet: the derivations the kubelet applies to cAdvisor
//     data.
//   - PodCgroupKey, PodUIDFromCgroup, ContainerIDFromCgroup: the kubelet's
//     reading of cgroup names in both layouts.
//   - OOMKill: one OOM kill the kernel logged.
//   - EventStore (NewEventStore, Add, Query, Watch, Close) with Event,
//     EventPod, EventType, EventLimits, EventQuery and EventWatch: recent
//     events bounded per type in count and age, and watches that are
//     dropped, never waited for, when they fall behind.
//
// What cAdvisor semantics each value follows is documented on the types;
// docs/compatibility.md lists where they differ from the kubelet's.
package cadvisor
