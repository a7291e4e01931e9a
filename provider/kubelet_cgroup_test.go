package provider

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fakeProc writes /proc/<pid>/comm and /proc/<pid>/cgroup for each process.
func fakeProc(t *testing.T, procs map[string][2]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, files := range procs {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, content := range map[string]string{"comm": files[0] + "\n", "cgroup": files[1]} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestDiscoverKubeletCgroup(t *testing.T) {
	const hybrid = "9:name=systemd:/kubelet.slice\n4:memory:/kubelet.slice\n2:cpuacct:/\n1:cpu:/kubelet.slice\n0::/kubelet.slice\n"
	tests := []struct {
		name       string
		cgroup     string
		wantCgroup string
		wantErr    string
	}{
		{"v1 with cpu and memory together", hybrid, "/kubelet.slice", ""},
		{"v1 co-mounted cpu,cpuacct", "3:cpu,cpuacct:/kubelet\n2:memory:/kubelet\n", "/kubelet", ""},
		{"v2: the unified path", "0::/system.slice/kubelet.service\n", "/system.slice/kubelet.service", ""},
		// The kubelet's getContainer refuses to account itself to two
		// cgroups and leaves node.systemContainers without "kubelet".
		{"v1 cpu and memory differ", "4:memory:/process_api/abc\n1:cpu:/\n0::/\n", "",
			"cpu and memory cgroup hierarchy not unified.  cpu: /, memory: /process_api/abc"},
		{"v1 without a cpu hierarchy", "4:memory:/kubelet\n0::/\n", "", "cpu"},
		{"v1 without a memory hierarchy", "1:cpu:/kubelet\n0::/\n", "", "memory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fakeProc(t, map[string][2]string{"1": {"init", "0::/\n"}, "42": {"kubelet", tt.cgroup}})
			proc, found, err := DiscoverKubelet(root)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || found {
					t.Fatalf("DiscoverKubelet = %+v, %v, %v; want an error with %q", proc, found, err, tt.wantErr)
				}
				if !strings.Contains(err.Error(), "42") {
					t.Errorf("error %q does not name the kubelet's pid", err)
				}
				return
			}
			if err != nil || !found || proc.PID != 42 || proc.Cgroup != tt.wantCgroup {
				t.Fatalf("DiscoverKubelet = %+v, %v, %v; want pid 42 in %s", proc, found, err, tt.wantCgroup)
			}
		})
	}
}

func TestDiscoverKubeletNone(t *testing.T) {
	root := fakeProc(t, map[string][2]string{"1": {"init", "0::/\n"}, "7": {"kubelet-stats-s", "0::/\n"}})
	if proc, found, err := DiscoverKubelet(root); err != nil || found {
		t.Errorf("DiscoverKubelet = %+v, %v, %v; want nothing found", proc, found, err)
	}
}
