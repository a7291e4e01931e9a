package collector

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// DirFsStats is statfs of the filesystem holding path, with cAdvisor's
// GetDirFsInfo semantics (see FsStats). Device and Mountpoint come from
// /proc/self/mountinfo: the mount of the same device whose mount point is the
// longest prefix of path. They stay empty when no mount matches; only a
// failing statfs is an error.
func DirFsStats(path string) (cadvisor.FsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return cadvisor.FsStats{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	out := fsStatsFromStatfs(&st)
	out.Timestamp = time.Now()
	var stat unix.Stat_t
	if err := unix.Stat(path, &stat); err == nil {
		if mounts, err := procfs.GetMounts(); err == nil {
			resolved, err := filepath.EvalSymlinks(path)
			if err != nil {
				resolved = path
			}
			out.Device, out.Mountpoint = mountOf(mounts, unix.Major(stat.Dev), unix.Minor(stat.Dev), resolved)
		}
	}
	return out, nil
}

func fsStatsFromStatfs(st *unix.Statfs_t) cadvisor.FsStats {
	bsize := uint64(st.Bsize)
	capacity := st.Blocks * bsize
	return cadvisor.FsStats{
		Capacity:   capacity,
		Usage:      capacity - st.Bfree*bsize,
		Available:  st.Bavail * bsize,
		Inodes:     st.Files,
		InodesFree: st.Ffree,
	}
}

// mountOf picks, among the mounts of device major:minor, the one whose mount
// point is the longest prefix of path.
func mountOf(mounts []*procfs.MountInfo, major, minor uint32, path string) (device, mountpoint string) {
	want := fmt.Sprintf("%d:%d", major, minor)
	best := -1
	for _, m := range mounts {
		if m.MajorMinorVer != want || !isPathPrefix(m.MountPoint, path) {
			continue
		}
		if len(m.MountPoint) > best {
			best = len(m.MountPoint)
			device, mountpoint = m.Source, m.MountPoint
		}
	}
	return device, mountpoint
}

func isPathPrefix(prefix, path string) bool {
	return prefix == "/" || path == prefix || strings.HasPrefix(path, prefix+"/")
}
