package provider

import (
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// RecordOOMKill counts an OOM kill and logs it, naming the pod and
// container from the current snapshot where the killed task's cgroup
// belongs to one. A system OOM is logged with the kubelet's SystemOOM
// event text; a kill under a cgroup limit at verbosity 1.
func (p *Provider) RecordOOMKill(kill cadvisor.OOMKill) {
	scope := "cgroup"
	if kill.System() {
		scope = "system"
	}
	p.metrics.oomKills.WithLabelValues(scope).Inc()
	values := []any{"process", kill.ProcessName, "pid", kill.PID, "cgroup", kill.Cgroup, "limitCgroup", kill.LimitCgroup}
	if snap := p.Current(); snap != nil && snap.Cgroups != nil {
		if namespace, pod, container, ok := snap.Cgroups.Owner(kill.Cgroup); ok {
			values = append(values, "pod", namespace+"/"+pod, "container", container)
		}
	}
	if kill.System() {
		p.cfg.Logger.Info("System OOM encountered", values...)
		return
	}
	p.cfg.Logger.V(1).Info("OOM kill under a cgroup memory limit", values...)
}
