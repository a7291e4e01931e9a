package collector

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestFsStatsFromStatfs(t *testing.T) {
	st := unix.Statfs_t{Bsize: 4096, Blocks: 1000, Bfree: 300, Bavail: 250, Files: 64, Ffree: 60}
	got := fsStatsFromStatfs(&st)
	want := cadvisor.FsStats{Capacity: 4096000, Usage: 4096 * 700, Available: 4096 * 250, Inodes: 64, InodesFree: 60}
	if got != want {
		t.Errorf("fsStatsFromStatfs = %+v, want %+v", got, want)
	}
	// Reserved blocks: used + available < capacity, as in cAdvisor.
	if got.Usage+got.Available >= got.Capacity {
		t.Errorf("reserved blocks lost: usage %d + available %d >= capacity %d", got.Usage, got.Available, got.Capacity)
	}
}

func TestMountOf(t *testing.T) {
	mounts := []*procfs.MountInfo{
		{MajorMinorVer: "254:0", MountPoint: "/", Source: "/dev/vda"},
		{MajorMinorVer: "0:22", MountPoint: "/dev/shm", Source: "tmpfs"},
		{MajorMinorVer: "254:0", MountPoint: "/var/lib/kubelet", Source: "/dev/vda"},
		{MajorMinorVer: "254:0", MountPoint: "/var/lib/kube", Source: "/dev/other"},
		{MajorMinorVer: "8:1", MountPoint: "/var/lib/kubelet/pods", Source: "/dev/sda1"},
	}
	tests := []struct {
		name             string
		major, minor     uint32
		path             string
		device, mountptr string
	}{
		{name: "root", major: 254, minor: 0, path: "/etc", device: "/dev/vda", mountptr: "/"},
		{name: "bind mount of the same device wins by length", major: 254, minor: 0, path: "/var/lib/kubelet/x", device: "/dev/vda", mountptr: "/var/lib/kubelet"},
		{name: "prefix is by path component", major: 254, minor: 0, path: "/var/lib/kubeletx", device: "/dev/vda", mountptr: "/"},
		{name: "other device", major: 8, minor: 1, path: "/var/lib/kubelet/pods/uid", device: "/dev/sda1", mountptr: "/var/lib/kubelet/pods"},
		{name: "unknown device", major: 9, minor: 9, path: "/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			device, mountpoint := mountOf(mounts, tt.major, tt.minor, tt.path)
			if device != tt.device || mountpoint != tt.mountptr {
				t.Errorf("mountOf = %q, %q; want %q, %q", device, mountpoint, tt.device, tt.mountptr)
			}
		})
	}
}

func TestDirFsStats(t *testing.T) {
	dir := t.TempDir()
	got, err := DirFsStats(dir)
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	bsize := uint64(st.Bsize)
	if got.Capacity != st.Blocks*bsize || got.Inodes != st.Files {
		t.Errorf("capacity %d inodes %d, statfs says %d and %d", got.Capacity, got.Inodes, st.Blocks*bsize, st.Files)
	}
	// Free space moves while the test runs; allow 64 MiB of drift.
	if diff := int64(got.Available) - int64(st.Bavail*bsize); diff > 64<<20 || diff < -64<<20 {
		t.Errorf("available %d, statfs says %d", got.Available, st.Bavail*bsize)
	}
	if got.Timestamp.IsZero() {
		t.Error("no timestamp")
	}
	resolved, _ := filepath.EvalSymlinks(dir)
	if got.Mountpoint == "" || !isPathPrefix(got.Mountpoint, resolved) {
		t.Errorf("mountpoint %q is not a prefix of %s", got.Mountpoint, resolved)
	}
	if got.Device == "" {
		t.Error("no device")
	}

	if _, err := DirFsStats(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("DirFsStats(missing) err = %v, want one naming the path", err)
	}
}
