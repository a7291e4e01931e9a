// Package collector is the server's own cgroup collector: what the
// kubelet's embedded cAdvisor does for the stats surface, and nothing else.
//
// It reads cgroup v1, v2 and hybrid hierarchies (cgroupfs and systemd
// layouts) without ever creating or writing a cgroup: purpose-built readers
// open only the files the stats surface uses and parse them as
// github.com/opencontainers/cgroups does (the live tests compare the two). It
// keeps a cadvisor.SampleRing per tracked cgroup and publishes each
// housekeeping pass as an immutable cadvisor.View.
//
// Exported surface:
//   - Collector (New, Start, Housekeep, Hierarchy) with Config: discovery by
//     inotify plus periodic rescans, and one sampling pass per Housekeep.
//   - FilterInterfaces: the kubelet's choice of a pod's network interfaces.
//   - ReadMachine, DirFsStats, ReadRlimit: machine facts, filesystem usage
//     and process limits.
//   - WatchOOMKills: the kernel's OOM kills from /dev/kmsg, from the moment
//     it starts.
//   - Config.OnCgroupEvent (CgroupEvent): the cgroups discovery adds and
//     removes, for cAdvisor's container creation and deletion events.
package collector
