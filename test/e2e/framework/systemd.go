package framework

import (
	"errors"
	"fmt"
	"os"
	"path"
	"strings"

	"github.com/opencontainers/cgroups"
	"github.com/opencontainers/cgroups/systemd"
)

// The kubelet's and containerd's cgroup drivers (Options.CgroupDriver).
const (
	DriverCgroupfs = "cgroupfs"
	DriverSystemd  = "systemd"
)

// CgroupDriverEnv picks StartCluster's cgroup driver. Only the cgroup v2
// VM of test/v2vm sets it (to systemd, where systemd is PID 1 and no
// kubelet runs): with systemd the pods cannot live under a test cgroup root
// of their own, since systemd places slices by name, so they share the
// node's /kubepods.slice.
const CgroupDriverEnv = "KSS_E2E_CGROUP_DRIVER"

// podCgroupName is the pod cgroup the kubelet names under a QoS parent:
// <parent>/pod<uid> with cgroupfs, and with systemd the slice
// <parent>/<parent's prefix>-pod<uid with '_' for '-'>.slice
// (kubepods-burstable-pod1234_5678.slice).
func podCgroupName(parent, uid, driver string) string {
	if driver != DriverSystemd {
		return path.Join(parent, "pod"+uid)
	}
	prefix := strings.TrimSuffix(path.Base(parent), ".slice")
	return path.Join(parent, prefix+"-pod"+strings.ReplaceAll(uid, "-", "_")+".slice")
}

// containerCgroupName is where containerd's CRI puts a container of a pod
// cgroup: <pod>/<id> with cgroupfs, <pod>/cri-containerd-<id>.scope with
// systemd.
func containerCgroupName(pod, id, driver string) string {
	if driver != DriverSystemd {
		return path.Join(pod, id)
	}
	return path.Join(pod, "cri-containerd-"+id+".scope")
}

// checkDriver rejects an unknown driver, and with systemd a parent that is
// not a slice or a machine whose PID 1 is not systemd.
func checkDriver(driver, parent string) error {
	switch driver {
	case DriverCgroupfs:
		return nil
	case DriverSystemd:
		if !strings.HasSuffix(parent, ".slice") {
			return fmt.Errorf("cgroup parent %q is not a systemd slice", parent)
		}
		if !systemd.IsRunningSystemd() {
			return errors.New("the systemd cgroup driver needs systemd as PID 1")
		}
		return nil
	default:
		return fmt.Errorf("unknown cgroup driver %q (want %s or %s)", driver, DriverCgroupfs, DriverSystemd)
	}
}

// removePodCgroup removes a pod's cgroup and what is left below it; a
// systemd slice is stopped through systemd first, so that systemd does not
// keep a unit whose cgroup is gone.
func removePodCgroup(p *Pod) error {
	if p.cgroupDriver == DriverSystemd {
		if err := destroySlice(p.CgroupParent); err != nil {
			return err
		}
	}
	return removePodCgroups(p.CgroupParent)
}

// createSlice makes a pod slice through systemd with a memory limit (0:
// none), the way the kubelet's systemd cgroup manager does (libcontainer's
// systemd manager, Apply(-1) then Set): a slice made by mkdir would get
// systemd's defaults written over the limit when systemd starts it.
func createSlice(cgroupPath string, memoryLimit int64) error {
	if os.Geteuid() != 0 {
		return errors.New("creating systemd slices needs root")
	}
	cfg := sliceConfig(cgroupPath, memoryLimit)
	m, err := systemd.NewUnifiedManager(cfg, "")
	if err != nil {
		return fmt.Errorf("slice %s: %w", cgroupPath, err)
	}
	if err := m.Apply(-1); err != nil {
		return fmt.Errorf("start slice %s: %w", cgroupPath, err)
	}
	if err := m.Set(cfg.Resources); err != nil {
		return fmt.Errorf("set memory limit of slice %s: %w", cgroupPath, err)
	}
	return nil
}

// destroySlice stops a pod slice, which removes its cgroup.
func destroySlice(cgroupPath string) error {
	m, err := systemd.NewUnifiedManager(sliceConfig(cgroupPath, 0), "")
	if err != nil {
		return fmt.Errorf("slice %s: %w", cgroupPath, err)
	}
	if err := m.Destroy(); err != nil {
		return fmt.Errorf("stop slice %s: %w", cgroupPath, err)
	}
	return nil
}

// sliceConfig names a slice as the kubelet's libctCgroupConfig does: the
// unit and its parent slice, both by their last path element, the root
// slice being -.slice.
func sliceConfig(cgroupPath string, memoryLimit int64) *cgroups.Cgroup {
	parent := path.Base(path.Dir(cgroupPath))
	if parent == "/" {
		parent = "-.slice"
	}
	return &cgroups.Cgroup{
		Name:      path.Base(cgroupPath),
		Parent:    parent,
		Resources: &cgroups.Resources{Memory: memoryLimit},
	}
}
