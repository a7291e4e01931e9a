package app

import (
	"os"
	"path"
	"path/filepath"
)

// podCgroupRoot is the kubelet's node-allocatable cgroup for a driver:
// <cgroup-root>/kubepods with cgroupfs, <cgroup-root>/kubepods.slice with systemd.
func podCgroupRoot(driver, cgroupRoot string) string {
	if driver == "systemd" {
		return path.Join(cgroupRoot, "kubepods.slice")
	}
	return path.Join(cgroupRoot, "kubepods")
}

// detectCgroupDriver picks systemd only when a kubepods.slice exists and a
// cgroupfs kubepods does not, in any hierarchy under the mount.
func detectCgroupDriver(cgroupMount, cgroupRoot string) string {
	if cgroupExists(cgroupMount, podCgroupRoot("systemd", cgroupRoot)) &&
		!cgroupExists(cgroupMount, podCgroupRoot("cgroupfs", cgroupRoot)) {
		return "systemd"
	}
	return "cgroupfs"
}

// cgroupExists looks for the cgroup in the v2 mount itself and in each v1
// controller directory below it.
func cgroupExists(cgroupMount, name string) bool {
	candidates := []string{filepath.Join(cgroupMount, name)}
	for _, hierarchy := range []string{"memory", "cpu", "cpuacct", "pids", "unified", "systemd"} {
		candidates = append(candidates, filepath.Join(cgroupMount, hierarchy, name))
	}
	for _, dir := range candidates {
		if info, err := os.Stat(dir); err == nil && info.IsDir() {
			return true
		}
	}
	return false
}
