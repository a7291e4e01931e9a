package provider

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/procfs"
)

// KubeletProcess is what DiscoverKubelet found about a running kubelet.
type KubeletProcess struct {
	PID int
	// Cgroup is the kubelet's cgroup: the unified one on cgroup v2, otherwise
	// the one its cpu and memory controllers share.
	Cgroup    string
	StartTime time.Time
}

// DiscoverKubelet finds a process named "kubelet" and its cgroup. The kubelet
// fills node.systemContainers["kubelet"] from its own /proc/self/cgroup; a
// separate stats server has to look the kubelet up instead of using its own.
// found is false when no kubelet runs; an error says why a running
// kubelet has no cgroup to report (as the kubelet then reports none).
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
		cgroup, err := accountingCgroup(cgroups)
		if err != nil {
			return KubeletProcess{}, false, fmt.Errorf("kubelet (pid %d): %w", p.PID, err)
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

// accountingCgroup is the kubelet's getContainer (pkg/kubelet/cm): the
// unified path on cgroup v2; on v1 the cpu and memory paths, which must be
// the same, since the kubelet accounts itself to one cgroup. When they
// differ the kubelet leaves KubeletCgroupsName empty and its summary has no
// "kubelet" system container; so do we.
func accountingCgroup(cgroups []procfs.Cgroup) (string, error) {
	cpu, hasCPU := v1Path(cgroups, "cpu")
	memory, hasMemory := v1Path(cgroups, "memory")
	if !hasCPU && !hasMemory {
		for _, cg := range cgroups {
			if cg.HierarchyID == 0 && len(cg.Controllers) == 0 {
				return cg.Path, nil
			}
		}
		return "", errors.New("no cgroup v2 path and no cpu or memory cgroup")
	}
	switch {
	case !hasCPU:
		return "", errors.New("no cgroup for controller cpu")
	case !hasMemory:
		return "", errors.New("no cgroup for controller memory")
	case cpu != memory:
		// The kubelet's wording, two spaces included.
		return "", fmt.Errorf("cpu and memory cgroup hierarchy not unified.  cpu: %s, memory: %s", cpu, memory)
	}
	return memory, nil
}

// v1Path is the path of a v1 controller's hierarchy, co-mounted or not.
func v1Path(cgroups []procfs.Cgroup, controller string) (string, bool) {
	for _, cg := range cgroups {
		if slices.Contains(cg.Controllers, controller) {
			return cg.Path, true
		}
	}
	return "", false
}
