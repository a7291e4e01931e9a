package collector

import "testing"

// The names of a pod and a container in both layouts (as in cadvisor's
// names tests).
const (
	testPodUID      = "1b2c3d4e-aaaa-bbbb-cccc-0123456789ab"
	testPodUIDEsc   = "1b2c3d4e_aaaa_bbbb_cccc_0123456789ab"
	testContainerID = "9be25294016e2dc0340dd605ce1f57b492039b267a6a618a7ad2a7a58a740f32"
)

func TestPodCgroupOf(t *testing.T) {
	tests := []struct {
		cgroup, want string
	}{
		{"/", ""},
		{"/kubepods", ""},
		{"/kubepods/burstable", ""},
		{"/kubepods/burstable/pod" + testPodUID, "/kubepods/burstable/pod" + testPodUID},
		{"/kubepods/burstable/pod" + testPodUID + "/" + testContainerID, "/kubepods/burstable/pod" + testPodUID},
		{"/kubepods.slice/kubepods-pod" + testPodUIDEsc + ".slice/cri-containerd-abc.scope", "/kubepods.slice/kubepods-pod" + testPodUIDEsc + ".slice"},
		{"/system.slice/containerd.service", ""},
	}
	for _, tt := range tests {
		if got := podCgroupOf(tt.cgroup); got != tt.want {
			t.Errorf("podCgroupOf(%q) = %q, want %q", tt.cgroup, got, tt.want)
		}
	}
}

func TestNormalizeTracked(t *testing.T) {
	got := normalizeTracked([]string{"kubepods/", "/", "/kubepods/burstable", "/system.slice/containerd.service", "/kubepods", "//runtime//"})
	want := []string{"/kubepods", "/system.slice/containerd.service", "/runtime"}
	if len(got) != len(want) {
		t.Fatalf("normalizeTracked = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("normalizeTracked = %q, want %q", got, want)
		}
	}
}
