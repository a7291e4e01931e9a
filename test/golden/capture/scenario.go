package main

import (
	"crypto/sha256"
	"encoding/hex"
	"path"
)

// limits are the kubelet's settings for one cgroup, in v1 terms; zero
// leaves the kernel's default.
type limits struct {
	shares      uint64
	quotaUs     int64 // with a 100 ms period
	memoryBytes uint64
	// ioBps is a read and write limit on the scratch disk, set on v1 only:
	// there (kernel 6.x) blkio.throttle.* count nothing in a cgroup
	// without a throttle rule.
	ioBps uint64
}

type containerSpec struct {
	// name is the kubelet's container name; "" is the pod's sandbox.
	name   string
	limits limits
	work   work
}

type podSpec struct {
	namespace, name, uid string
	// qosParent is the QoS cgroup under kubepods ("" for Guaranteed).
	qosParent string
	limits    limits
	// named pods get /var/log/pods and /var/log/containers entries, the
	// server's source of names without a runtime; the others are found by
	// their cgroups alone.
	named bool
	// ownNetwork puts the pod in a network namespace of its own with a
	// veth eth0; the others share the host's, like hostNetwork pods.
	ownNetwork bool
	containers []containerSpec
}

// cgroup is the pod's cgroup name in the cgroupfs driver's layout.
func (p podSpec) cgroup() string {
	return path.Join("/kubepods", p.qosParent, "pod"+p.uid)
}

// containerID is a fixed 64-hex ID per container, so that every capture
// names the cgroups the same.
func (p podSpec) containerID(c containerSpec) string {
	sum := sha256.Sum256([]byte(p.uid + "/" + c.name))
	return hex.EncodeToString(sum[:])
}

const mib = 1 << 20

// qosCgroups are the kubelet's node-level cgroups, parents first.
var qosCgroups = []struct {
	name   string
	limits limits
}{
	{"/kubepods", limits{shares: 2048, memoryBytes: 8 << 30}},
	{"/kubepods/burstable", limits{shares: 102}},
	{"/kubepods/besteffort", limits{shares: 2}},
}

// systemCgroups hold the "kubelet" (found by its process name, as the
// server does) and the runtime's system containers.
var systemCgroups = []struct {
	name string
	work work
}{
	{"/system.slice/kubelet.service", work{Comm: "kubelet", MemoryMiB: 6, SpinMillis: 30}},
	{"/system.slice/containerd.service", work{MemoryMiB: 3}},
}

const runtimeCgroup = "/system.slice/containerd.service"

// pods are one of each QoS class: a CPU-throttled Guaranteed pod, a
// Burstable pod with two containers that writes to disk and sends
// packets, and a BestEffort pod without log directories.
var pods = []podSpec{
	{
		namespace: "default", name: "web-7d4b9c6f5-x2x7q", uid: "6a1d4c2e-8b1f-4d9a-9c3e-2f0b7d5e8a11",
		limits: limits{shares: 256, quotaUs: 25000, memoryBytes: 128 * mib},
		named:  true, ownNetwork: true,
		containers: []containerSpec{
			{limits: limits{shares: 2}},
			{name: "nginx", limits: limits{shares: 256, quotaUs: 25000, memoryBytes: 128 * mib},
				work: work{MemoryMiB: 24, SpinMillis: 400, Packets: 3}},
		},
	},
	{
		namespace: "kube-system", name: "log-shipper-9fzkq", uid: "b3e0f5a7-2c4d-4e8f-9a1b-7c6d5e4f3a21",
		qosParent: "burstable", limits: limits{shares: 102},
		named: true, ownNetwork: true,
		containers: []containerSpec{
			{limits: limits{shares: 2}},
			{name: "shipper", limits: limits{shares: 102, memoryBytes: 256 * mib, ioBps: 1 << 30},
				work: work{MemoryMiB: 8, SpinMillis: 60, WriteMiB: 4, Packets: 8}},
			{name: "metrics", limits: limits{shares: 2}, work: work{MemoryMiB: 1}},
		},
	},
	{
		namespace: "batch", name: "sleeper", uid: "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f",
		qosParent: "besteffort", limits: limits{shares: 2},
		containers: []containerSpec{
			{limits: limits{shares: 2}},
			{name: "sleep", limits: limits{shares: 2}},
		},
	},
}
