package collector

import (
	"path/filepath"
	"strings"
	"testing"

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

	if _, err := DirFsStats(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("DirFsStats(missing) err = %v, want one naming the path", err)
	}
}
