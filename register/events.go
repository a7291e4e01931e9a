package register

import (
	"fmt"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// systemOOMMessage is the kubelet's SystemOOM event message
// (pkg/kubelet/oom/oom_watcher_linux.go).
func systemOOMMessage(kill cadvisor.OOMKill) string {
	msg := "System OOM encountered"
	if kill.ProcessName != "" && kill.PID != 0 {
		msg = fmt.Sprintf("%s, victim process: %s, pid: %d", msg, kill.ProcessName, kill.PID)
	}
	return msg
}

// podOOMMessage says which process of which container the kernel killed,
// in the kernel's words: the kubelet posts no event for it (it only sets
// the container's termination reason), node-problem-detector posts
// OOMKilling with the kernel's line on the node.
func podOOMMessage(kill cadvisor.OOMKill, container string) string {
	scope := "Memory cgroup out of memory"
	if kill.System() {
		scope = "Out of memory"
	}
	return fmt.Sprintf("%s: killed process %d (%s) of container %s", scope, kill.PID, kill.ProcessName, container)
}
