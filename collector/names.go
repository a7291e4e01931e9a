package collector

import (
	"path"
	"strings"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// podCgroupOf returns the nearest pod-level cgroup at or above name, or ""
// when name is not inside a pod.
func podCgroupOf(name string) string {
	for n := name; n != "/" && n != "." && n != ""; n = path.Dir(n) {
		if _, ok := cadvisor.PodUIDFromCgroup(n); ok {
			return n
		}
	}
	return ""
}

// childName joins a cgroup name and one directory entry.
func childName(parent, base string) string {
	if parent == "/" {
		return "/" + base
	}
	return parent + "/" + base
}

// normalizeCgroupName turns "kubepods/", "/kubepods//burstable" and the like
// into the canonical "/kubepods", "/kubepods/burstable".
func normalizeCgroupName(name string) string {
	return path.Clean("/" + name)
}

// isAncestorOrSelf reports whether name is ancestor or equal to other.
func isAncestorOrSelf(name, other string) bool {
	if name == "/" {
		return true
	}
	return other == name || strings.HasPrefix(other, name+"/")
}
