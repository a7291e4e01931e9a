package cadvisor

import (
	"time"
)

// OOMKill is one OOM kill the kernel logged in /dev/kmsg.
type OOMKill struct {
	// Time is when the kernel logged the kill, by kmsg's clock.
	Time        time.Time
	PID         int
	ProcessName string
	// Cgroup is the memory cgroup of the killed task; LimitCgroup the one
	// whose limit was hit, "/" for a system-wide OOM.
	Cgroup, LimitCgroup string
	// Constraint is the kernel's: CONSTRAINT_MEMCG for a cgroup limit,
	// CONSTRAINT_NONE for the whole machine (empty before Linux 5.0).
	Constraint string
}

// System reports whether the machine as a whole ran out of memory, which
// the kubelet reports as a SystemOOM event.
func (k OOMKill) System() bool { return k.LimitCgroup == "/" }
