package cadvisor

import (
	"path"
	"strings"
)

const (
	podCgroupPrefix = "pod"
	systemdSlice    = ".slice"
	systemdScope    = ".scope"
)

// PodCgroupKey is the key the kubelet files a cgroup under when it looks for
// pod cgroups: the last path component, or for a systemd slice the last
// '-'-separated field of that component with '_' unescaped to '-'. For a pod
// cgroup that is "pod<uid>" in both layouts:
//
//	/kubepods/burstable/pod1b2c-3d4e                                        -> pod1b2c-3d4e
//	/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_3d4e.slice -> pod1b2c-3d4e
//
// Like the kubelet (IsSystemdStyleName), only names ending in ".slice" are
// treated as systemd names.
func PodCgroupKey(cgroupName string) string {
	base := path.Base(cgroupName)
	if !strings.HasSuffix(cgroupName, systemdSlice) {
		return base
	}
	unit := strings.TrimSuffix(base, systemdSlice)
	last := unit[strings.LastIndexByte(unit, '-')+1:]
	return strings.ReplaceAll(last, "_", "-")
}

// PodUIDFromCgroup returns the pod UID of a pod-level cgroup ("pod<uid>" in
// either layout). Container cgroups, QoS cgroups and everything else give
// ok=false. A UID is accepted when it is made of hex digits and dashes, which
// covers API-server UUIDs and the hashes the kubelet uses for static pods.
func PodUIDFromCgroup(cgroupName string) (string, bool) {
	uid, found := strings.CutPrefix(PodCgroupKey(cgroupName), podCgroupPrefix)
	if !found || !isPodUID(uid) {
		return "", false
	}
	return uid, true
}

func isPodUID(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9', r >= 'a' && r <= 'f', r >= 'A' && r <= 'F', r == '-':
		default:
			return false
		}
	}
	return true
}

// ContainerIDFromCgroup is the kubelet's extractIDFromCgroupPath: the last
// path component, and for a systemd scope the text after its last '-'
// ("cri-containerd-<id>.scope" -> "<id>").
func ContainerIDFromCgroup(cgroupName string) string {
	id := path.Base(cgroupName)
	if unit, ok := strings.CutSuffix(id, systemdScope); ok {
		if i := strings.LastIndexByte(unit, '-'); i >= 0 {
			return unit[i+1:]
		}
		return unit
	}
	return id
}
