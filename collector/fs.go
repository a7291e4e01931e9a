package collector

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// DirFsStats is statfs of the filesystem holding path, with cAdvisor's
// GetDirFsInfo semantics (see FsStats), stamped with the time of the call.
// Device and Mountpoint stay empty: nothing served from it names them, and
// finding them means parsing /proc/self/mountinfo, thousands of lines on a
// node with hundreds of pods, at every tick.
func DirFsStats(path string) (cadvisor.FsStats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return cadvisor.FsStats{}, fmt.Errorf("statfs %s: %w", path, err)
	}
	out := fsStatsFromStatfs(&st)
	out.Timestamp = time.Now()
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
