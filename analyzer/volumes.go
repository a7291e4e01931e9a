package analyzer

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// Volume is one filesystem volume mounted for a pod, found at
// <pod dir>/volumes/<escaped plugin>/<name>.
type Volume struct {
	// Name is the outer volume name (pod.spec.volumes[].name): the
	// directory name for the plugins we measure.
	Name string
	// Plugin is the escaped plugin name, "kubernetes.io~empty-dir".
	Plugin string
	Path   string
}

// volumePlugin says how the kubelet measures a plugin's volumes
// (pkg/volume/*: which MetricsProvider each plugin returns) and whether
// IsLocalEphemeralVolume counts them toward ephemeral storage.
type volumePlugin struct {
	ephemeral bool
	// cachedForever: cachedMetrics(metricsDu), the first success is kept.
	cachedForever bool
}

// measuredPlugins are the plugins whose volume directory is named after the
// outer volume and measured with du. The rest (CSI, local, NFS, ...) need
// the pod spec or a driver to name and measure their volumes; hostPath is
// not measured by the kubelet either.
var measuredPlugins = map[string]volumePlugin{
	"kubernetes.io~empty-dir":    {ephemeral: true},
	"kubernetes.io~git-repo":     {ephemeral: true},
	"kubernetes.io~configmap":    {ephemeral: true, cachedForever: true},
	"kubernetes.io~secret":       {cachedForever: true},
	"kubernetes.io~projected":    {cachedForever: true},
	"kubernetes.io~downward-api": {cachedForever: true},
}

// PodVolumes lists the volumes of the pod whose kubelet directory is
// podDir, sorted by name; a pod without a volumes directory has none.
func PodVolumes(podDir string) ([]Volume, error) {
	root := filepath.Join(podDir, "volumes")
	plugins, err := os.ReadDir(root)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", root, err)
	}
	var volumes []Volume
	for _, plugin := range plugins {
		if _, measured := measuredPlugins[plugin.Name()]; !measured || !plugin.IsDir() {
			continue
		}
		dir := filepath.Join(root, plugin.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // unmounted meanwhile
			}
			return nil, fmt.Errorf("list %s: %w", dir, err)
		}
		for _, entry := range entries {
			if entry.IsDir() {
				volumes = append(volumes, Volume{Name: entry.Name(), Plugin: plugin.Name(), Path: filepath.Join(dir, entry.Name())})
			}
		}
	}
	slices.SortFunc(volumes, func(a, b Volume) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Plugin, b.Plugin))
	})
	return volumes, nil
}

// VolumeStats is one volume's metrics as the kubelet's metricsDu reports
// them: used bytes and inodes from du, the rest from statfs of the volume.
type VolumeStats struct {
	Name string
	// Ephemeral volumes (disk emptyDir, gitRepo, configMap) count toward the
	// pod's ephemeral storage; memory-backed emptyDirs do not.
	Ephemeral bool
	// Time is when the measurement started.
	Time                                    time.Time
	Used                                    Usage
	Capacity, Available, Inodes, InodesFree uint64
}

// tmpfsMagic is statfs's f_type of tmpfs: an emptyDir with medium Memory.
const tmpfsMagic = 0x01021994

// MeasureVolume measures v like the kubelet's metricsDu: du of the tree
// (no device crossing, hard links once) and statfs of its filesystem.
func MeasureVolume(v Volume) (VolumeStats, error) {
	out := VolumeStats{Name: v.Name, Time: time.Now()}
	var st unix.Statfs_t
	if err := unix.Statfs(v.Path, &st); err != nil {
		return VolumeStats{}, fmt.Errorf("statfs %s: %w", v.Path, err)
	}
	used, err := DiskUsage(v.Path)
	if err != nil {
		return VolumeStats{}, err
	}
	out.Used = used
	bsize := uint64(st.Bsize)
	out.Capacity, out.Available = st.Blocks*bsize, st.Bavail*bsize
	out.Inodes, out.InodesFree = st.Files, st.Ffree
	out.Ephemeral = isLocalEphemeral(v.Plugin, int64(st.Type))
	return out, nil
}

// isLocalEphemeral is IsLocalEphemeralVolume read from the mount: an
// emptyDir on tmpfs is one with medium Memory, which does not count.
func isLocalEphemeral(plugin string, fsType int64) bool {
	if !measuredPlugins[plugin].ephemeral {
		return false
	}
	return plugin != "kubernetes.io~empty-dir" || fsType != tmpfsMagic
}
