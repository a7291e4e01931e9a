package provider

import (
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/procfs"
)

// KubeletProcess is what DiscoverKubelet found about a running kubelet.
type KubeletProcess struct {
	PID int
	// Cgroup is the kubelet's cgroup: the unified one on cgroup v2, otherwise
	// the memory controller's (the kubelet insists cpu and memory agree).
	Cgroup    string
	StartTime time.Time
}

// DiscoverKubelet finds a process named "kubelet" and its cgroup. The kubelet
// fills node.systemContainers["kubelet"] from its own /proc/self/cgroup; a
// separate stats server has to look the kubelet up instead of using its own.
// found is false when no kubelet runs.
func DiscoverKubelet(procRoot string) (proc KubeletProcess, found bool, err error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return KubeletProcess{}, false, fmt.Errorf("open %s: %w", procRoot, err)
	}
	procs, err := fs.AllProcs()
	if err != nil {
		return KubeletProcess{}, false, fmt.Errorf("list processes in %s: %w", procRoot, err)
	}
	for _, p := range procs {
		comm, err := p.Comm()
		if err != nil || comm != "kubelet" {
			continue
		}
		cgroups, err := p.Cgroups()
		if err != nil {
			continue // the process exited between listing and reading
		}
		cgroup, ok := accountingCgroup(cgroups)
		if !ok {
			continue
		}
		proc = KubeletProcess{PID: p.PID, Cgroup: cgroup}
		if stat, err := p.Stat(); err == nil {
			if started, err := stat.StartTime(); err == nil {
				proc.StartTime = time.Unix(0, int64(started*float64(time.Second)))
			}
		}
		return proc, true, nil
	}
	return KubeletProcess{}, false, nil
}

// accountingCgroup picks the cgroup the kubelet would account itself to: the
// memory controller's path on v1, the unified path on v2.
func accountingCgroup(cgroups []procfs.Cgroup) (string, bool) {
	for _, cg := range cgroups {
		if slices.Contains(cg.Controllers, "memory") {
			return cg.Path, true
		}
	}
	for _, cg := range cgroups {
		if cg.HierarchyID == 0 && len(cg.Controllers) == 0 {
			return cg.Path, true
		}
	}
	return "", false
}
