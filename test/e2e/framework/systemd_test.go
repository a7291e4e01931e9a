package framework

import (
	"strings"
	"testing"
)

// TestCgroupNamesByDriver: pod and container cgroups are named as the
// kubelet and containerd name them with each driver.
func TestCgroupNamesByDriver(t *testing.T) {
	const uid = "1b2c3d4e-0000-4000-8000-00000000abcd"
	tests := []struct {
		driver, parent, pod, container string
	}{
		{DriverCgroupfs, "/kubepods/burstable", "/kubepods/burstable/pod" + uid, "/kubepods/burstable/pod" + uid + "/c1"},
		{DriverSystemd, "/kubepods.slice/kubepods-burstable.slice",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/cri-containerd-c1.scope"},
		{DriverSystemd, "/kubepods.slice", "/kubepods.slice/kubepods-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice",
			"/kubepods.slice/kubepods-pod1b2c3d4e_0000_4000_8000_00000000abcd.slice/cri-containerd-c1.scope"},
	}
	for _, tt := range tests {
		pod := podCgroupName(tt.parent, uid, tt.driver)
		if pod != tt.pod {
			t.Errorf("%s pod cgroup under %s = %s, want %s", tt.driver, tt.parent, pod, tt.pod)
		}
		p := &Pod{CgroupParent: pod, SandboxID: "c1", cgroupDriver: tt.driver}
		if got := p.CgroupPath(&Container{ID: "c1"}); got != tt.container {
			t.Errorf("%s container cgroup = %s, want %s", tt.driver, got, tt.container)
		}
		if got := p.SandboxCgroupPath(); got != tt.container {
			t.Errorf("%s sandbox cgroup = %s, want %s", tt.driver, got, tt.container)
		}
	}
}

func TestContainerdConfigSystemd(t *testing.T) {
	cfg := containerdConfig(containerdPaths{}, PauseImage, 0, true)
	if !strings.Contains(cfg, "SystemdCgroup = true") {
		t.Errorf("systemd driver config lacks SystemdCgroup = true:\n%s", cfg)
	}
}

// TestCheckDriver: an unknown driver and a systemd parent that is no slice
// are refused before containerd starts.
func TestCheckDriver(t *testing.T) {
	if err := checkDriver(DriverCgroupfs, "/kubepods/burstable"); err != nil {
		t.Errorf("cgroupfs: %v", err)
	}
	if err := checkDriver("cgroupfs2", "/kubepods"); err == nil || !strings.Contains(err.Error(), "unknown cgroup driver") {
		t.Errorf("unknown driver: %v", err)
	}
	if err := checkDriver(DriverSystemd, "/kubepods/burstable"); err == nil || !strings.Contains(err.Error(), "not a systemd slice") {
		t.Errorf("systemd with a cgroupfs parent: %v", err)
	}
}

// TestSliceConfig: slices are named by unit and parent slice like the
// kubelet's systemd cgroup manager, the root's children under -.slice.
func TestSliceConfig(t *testing.T) {
	pod := sliceConfig("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podx.slice", 100)
	if pod.Name != "kubepods-burstable-podx.slice" || pod.Parent != "kubepods-burstable.slice" || pod.Memory != 100 {
		t.Errorf("pod slice config %+v", pod)
	}
	if root := sliceConfig("/kubepods.slice", 0); root.Name != "kubepods.slice" || root.Parent != "-.slice" {
		t.Errorf("kubepods.slice config: name %q parent %q, want kubepods.slice in -.slice", root.Name, root.Parent)
	}
}
