package app

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPodCgroupRoot(t *testing.T) {
	tests := []struct{ driver, root, want string }{
		{"cgroupfs", "/", "/kubepods"},
		{"systemd", "/", "/kubepods.slice"},
		{"cgroupfs", "/custom", "/custom/kubepods"},
		{"", "/", "/kubepods"},
	}
	for _, tt := range tests {
		if got := podCgroupRoot(tt.driver, tt.root); got != tt.want {
			t.Errorf("podCgroupRoot(%q, %q) = %q, want %q", tt.driver, tt.root, got, tt.want)
		}
	}
}

func TestDetectCgroupDriver(t *testing.T) {
	tests := []struct {
		name string
		dirs []string
		want string
	}{
		{"nothing yet", nil, "cgroupfs"},
		{"v1 systemd", []string{"memory/kubepods.slice"}, "systemd"},
		{"v2 systemd", []string{"kubepods.slice"}, "systemd"},
		{"v1 cgroupfs", []string{"cpu/kubepods"}, "cgroupfs"},
		{"both prefer cgroupfs", []string{"kubepods.slice", "kubepods"}, "cgroupfs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount := t.TempDir()
			for _, dir := range tt.dirs {
				if err := os.MkdirAll(filepath.Join(mount, dir), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if got := detectCgroupDriver(mount, "/"); got != tt.want {
				t.Errorf("detectCgroupDriver = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTrackedCgroupsNeverTrackRootRecursively(t *testing.T) {
	got := trackedCgroups(resolvedForTest("/", "/system.slice/containerd.service", "", "/kubepods"))
	want := []string{"/system.slice/containerd.service", "/kubepods"}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("tracked = %v, want %v", got, want)
	}
}
