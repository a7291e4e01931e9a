package cadvisor

import "testing"

const (
	testPodUID      = "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
	testPodUIDEsc   = "1b2c3d4e_aaaa_bbbb_cccc_0123456789ab"
	testContainerID = "9be25294016e2dc0340dd605ce1f57b492039b267a6a618a7ad2a7a58a740f32"
)

func TestCgroupNames(t *testing.T) {
	tests := []struct {
		name        string
		cgroup      string
		key         string
		podUID      string // "" means not a pod cgroup
		containerID string
	}{
		{
			name:        "root",
			cgroup:      "/",
			key:         "/",
			containerID: "/",
		},
		{
			name:        "cgroupfs kubepods",
			cgroup:      "/kubepods",
			key:         "kubepods",
			containerID: "kubepods",
		},
		{
			name:        "cgroupfs burstable pod",
			cgroup:      "/kubepods/burstable/pod" + testPodUID,
			key:         "pod" + testPodUID,
			podUID:      testPodUID,
			containerID: "pod" + testPodUID,
		},
		{
			name:        "cgroupfs guaranteed pod directly under kubepods",
			cgroup:      "/kubepods/pod" + testPodUID,
			key:         "pod" + testPodUID,
			podUID:      testPodUID,
			containerID: "pod" + testPodUID,
		},
		{
			name:        "cgroupfs besteffort container",
			cgroup:      "/kubepods/besteffort/pod" + testPodUID + "/" + testContainerID,
			key:         testContainerID,
			containerID: testContainerID,
		},
		{
			name:        "systemd kubepods slice",
			cgroup:      "/kubepods.slice",
			key:         "kubepods",
			containerID: "kubepods.slice",
		},
		{
			name:        "systemd qos slice",
			cgroup:      "/kubepods.slice/kubepods-burstable.slice",
			key:         "burstable",
			containerID: "kubepods-burstable.slice",
		},
		{
			name:        "systemd burstable pod",
			cgroup:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" + testPodUIDEsc + ".slice",
			key:         "pod" + testPodUID,
			podUID:      testPodUID,
			containerID: "kubepods-burstable-pod" + testPodUIDEsc + ".slice",
		},
		{
			name:        "systemd guaranteed pod",
			cgroup:      "/kubepods.slice/kubepods-pod" + testPodUIDEsc + ".slice",
			key:         "pod" + testPodUID,
			podUID:      testPodUID,
			containerID: "kubepods-pod" + testPodUIDEsc + ".slice",
		},
		{
			name:        "systemd containerd scope",
			cgroup:      "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c_3d4e.slice/cri-containerd-abc.scope",
			key:         "cri-containerd-abc.scope",
			containerID: "abc",
		},
		{
			name:        "systemd crio scope",
			cgroup:      "/kubepods.slice/kubepods-pod" + testPodUIDEsc + ".slice/crio-" + testContainerID + ".scope",
			key:         "crio-" + testContainerID + ".scope",
			containerID: testContainerID,
		},
		{
			name:        "scope without dash",
			cgroup:      "/system.slice/plain.scope",
			key:         "plain.scope",
			containerID: "plain",
		},
		{
			name:        "systemd mount unit",
			cgroup:      "/system.slice/var-lib-kubelet-pods-" + testPodUIDEsc + "-volumes.mount",
			key:         "var-lib-kubelet-pods-" + testPodUIDEsc + "-volumes.mount",
			containerID: "var-lib-kubelet-pods-" + testPodUIDEsc + "-volumes.mount",
		},
		{
			name:        "runtime service",
			cgroup:      "/system.slice/containerd.service",
			key:         "containerd.service",
			containerID: "containerd.service",
		},
		{
			name:        "pods that is not a pod",
			cgroup:      "/pods",
			key:         "pods",
			containerID: "pods",
		},
		{
			name:        "bare pod prefix",
			cgroup:      "/kubepods/pod",
			key:         "pod",
			containerID: "pod",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PodCgroupKey(tt.cgroup); got != tt.key {
				t.Errorf("PodCgroupKey(%q) = %q, want %q", tt.cgroup, got, tt.key)
			}
			uid, ok := PodUIDFromCgroup(tt.cgroup)
			if ok != (tt.podUID != "") || uid != tt.podUID {
				t.Errorf("PodUIDFromCgroup(%q) = %q, %v; want %q, %v", tt.cgroup, uid, ok, tt.podUID, tt.podUID != "")
			}
			if got := ContainerIDFromCgroup(tt.cgroup); got != tt.containerID {
				t.Errorf("ContainerIDFromCgroup(%q) = %q, want %q", tt.cgroup, got, tt.containerID)
			}
		})
	}
}
