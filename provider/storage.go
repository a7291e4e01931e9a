package provider

import (
	"os"
	"path/filepath"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// hostStorage measures what pods keep on the node's disk. It does I/O and is
// only used from the housekeeping tick.
type hostStorage interface {
	// ContainerLogs is du of the regular files in the container's log dir;
	// ok is false when the directory does not exist.
	ContainerLogs(ref statsapi.PodReference, container string) (usage analyzer.Usage, at time.Time, ok bool)
	// PodLogs is du of the regular files directly in the pod's log dir.
	PodLogs(ref statsapi.PodReference) (usage analyzer.Usage, at time.Time, ok bool)
	// EtcHosts is du of the pod's etc-hosts file, when the kubelet made one.
	EtcHosts(uid string) (usage analyzer.Usage, at time.Time, ok bool)
	// Filesystem is statfs of a mountpoint, nil when it cannot be read.
	Filesystem(mountpoint string) *cadvisor.FsStats
	// PodVolumeStats is the volume analyzer's newest measurement of the
	// pod's volumes; false before the first one.
	PodVolumeStats(uid string) ([]analyzer.VolumeStats, bool)
}

// PodVolumeSource has each pod's volume stats, measured in the background
// (analyzer.FsResourceAnalyzer).
type PodVolumeSource interface {
	PodVolumeStats(uid string) ([]analyzer.VolumeStats, bool)
}

// nodeStorage is hostStorage on the real node. Filesystem answers are cached
// for one tick: every container on a filesystem shares one statfs.
type nodeStorage struct {
	podLogsDir  string
	rootDir     string
	fsStats     func(string) (cadvisor.FsStats, error)
	volumes     PodVolumeSource
	filesystems map[string]*cadvisor.FsStats
}

// newNodeStorage reads the node's disks; volumes may be nil (no volume
// stats).
func newNodeStorage(podLogsDir, rootDir string, fsStats func(string) (cadvisor.FsStats, error), volumes PodVolumeSource) *nodeStorage {
	return &nodeStorage{podLogsDir: podLogsDir, rootDir: rootDir, fsStats: fsStats, volumes: volumes, filesystems: map[string]*cadvisor.FsStats{}}
}

func (s *nodeStorage) PodVolumeStats(uid string) ([]analyzer.VolumeStats, bool) {
	if s.volumes == nil {
		return nil, false
	}
	return s.volumes.PodVolumeStats(uid)
}

// podLogsDirectory is the kubelet's BuildPodLogsDirectory.
func podLogsDirectory(root string, ref statsapi.PodReference) string {
	return filepath.Join(root, ref.Namespace+"_"+ref.Name+"_"+ref.UID)
}

func (s *nodeStorage) ContainerLogs(ref statsapi.PodReference, container string) (analyzer.Usage, time.Time, bool) {
	return filesUsage(filepath.Join(podLogsDirectory(s.podLogsDir, ref), container))
}

func (s *nodeStorage) PodLogs(ref statsapi.PodReference) (analyzer.Usage, time.Time, bool) {
	return filesUsage(podLogsDirectory(s.podLogsDir, ref))
}

func (s *nodeStorage) EtcHosts(uid string) (analyzer.Usage, time.Time, bool) {
	path := filepath.Join(s.rootDir, "pods", uid, "etc-hosts")
	if _, err := os.Lstat(path); err != nil {
		return analyzer.Usage{}, time.Time{}, false
	}
	usage, err := analyzer.DiskUsage(path)
	return usage, time.Now(), err == nil
}

func (s *nodeStorage) Filesystem(mountpoint string) *cadvisor.FsStats {
	if fs, cached := s.filesystems[mountpoint]; cached {
		return fs
	}
	var result *cadvisor.FsStats
	if fs, err := s.fsStats(mountpoint); err == nil {
		result = &fs
	}
	s.filesystems[mountpoint] = result
	return result
}

func filesUsage(dir string) (analyzer.Usage, time.Time, bool) {
	usage, err := analyzer.FilesUsage(dir)
	return usage, time.Now(), err == nil
}

// rootFsBase is the kubelet's rootFsInfoToFsStats: capacity figures of the
// node's root filesystem with no usage yet.
func rootFsBase(rootFs *cadvisor.FsStats) *statsapi.FsStats {
	if rootFs == nil {
		return &statsapi.FsStats{}
	}
	return &statsapi.FsStats{
		Time:           metav1.NewTime(rootFs.Timestamp),
		AvailableBytes: ptrTo(rootFs.Available),
		CapacityBytes:  ptrTo(rootFs.Capacity),
		Inodes:         ptrTo(rootFs.Inodes),
		InodesFree:     ptrTo(rootFs.InodesFree),
	}
}

// usageFsStats adds a du result to the root filesystem's capacity figures
// (the kubelet's metricsByPathToFsStats). No files means no usage keys.
func usageFsStats(rootFs *cadvisor.FsStats, usage analyzer.Usage, at time.Time) *statsapi.FsStats {
	out := rootFsBase(rootFs)
	if usage.Inodes > 0 {
		out.UsedBytes = ptrTo(usage.Bytes)
		out.InodesUsed = ptrTo(usage.Inodes)
	}
	out.Time = laterTime(out.Time, metav1.NewTime(at))
	return out
}

// containerRootfs is the writable layer as the runtime reports it, plus the
// capacity of the filesystem it lives on. The kubelet fails the whole
// request when that filesystem cannot be read; we omit the capacity fields.
func containerRootfs(stats *runtimeapi.ContainerStats, host hostStorage) *statsapi.FsStats {
	out := &statsapi.FsStats{}
	layer := stats.GetWritableLayer()
	if layer == nil {
		return out
	}
	out.Time = nanosTime(layer.Timestamp)
	out.UsedBytes = criValue(layer.UsedBytes)
	out.InodesUsed = criValue(layer.InodesUsed)
	addCapacity(out, layer.GetFsId(), host)
	return out
}

// imageFsStats converts the first image filesystem the runtime reports;
// containerFs is the same, as in the kubelet's CRI provider. A runtime that
// leaves used_bytes out (the kubelet dereferences it and crashes) gets no
// imageFs at all.
func imageFsStats(resp *runtimeapi.ImageFsInfoResponse, host hostStorage) *statsapi.FsStats {
	filesystems := resp.GetImageFilesystems()
	if len(filesystems) == 0 || filesystems[0] == nil || filesystems[0].UsedBytes == nil {
		return nil
	}
	first := filesystems[0]
	out := &statsapi.FsStats{
		Time:       nanosTime(first.Timestamp),
		UsedBytes:  ptrTo(first.UsedBytes.Value),
		InodesUsed: criValue(first.InodesUsed),
	}
	addCapacity(out, first.GetFsId(), host)
	return out
}

// addCapacity fills the capacity figures of the filesystem a runtime names
// by mountpoint; an unknown or unreadable one leaves them out.
func addCapacity(out *statsapi.FsStats, fsID *runtimeapi.FilesystemIdentifier, host hostStorage) {
	mountpoint := fsID.GetMountpoint()
	if mountpoint == "" {
		return
	}
	if fs := host.Filesystem(mountpoint); fs != nil {
		out.AvailableBytes = ptrTo(fs.Available)
		out.CapacityBytes = ptrTo(fs.Capacity)
		out.Inodes = ptrTo(fs.Inodes)
		out.InodesFree = ptrTo(fs.InodesFree)
	}
}

// ephemeralStorage is the kubelet's calcEphemeralStorage for the CRI
// provider: node rootfs capacity, usage summed over container writable
// layers and logs (log inodes included), ephemeral volumes, pod log files
// and etc-hosts; nil plus nil stays nil.
func ephemeralStorage(rootFs *cadvisor.FsStats, containers []statsapi.ContainerStats, volumes []statsapi.VolumeStats,
	podLogs, etcHosts *statsapi.FsStats) *statsapi.FsStats {
	out := rootFsBase(rootFs)
	add := func(fs *statsapi.FsStats, countInodes bool) {
		out.UsedBytes = addUsage(out.UsedBytes, fs.UsedBytes)
		if countInodes {
			out.InodesUsed = addUsage(out.InodesUsed, fs.InodesUsed)
		}
		out.Time = laterTime(out.Time, fs.Time)
	}
	for i := range containers {
		if rootfs := containers[i].Rootfs; rootfs != nil {
			add(rootfs, true)
			if logs := containers[i].Logs; logs != nil {
				add(logs, true)
			}
		}
	}
	for i := range volumes {
		add(&volumes[i].FsStats, true)
	}
	if podLogs != nil {
		add(podLogs, true)
	}
	if etcHosts != nil {
		add(etcHosts, true)
	}
	return out
}

func addUsage(a, b *uint64) *uint64 {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	return ptrTo(*a + *b)
}

func laterTime(a, b metav1.Time) metav1.Time {
	if a.Before(&b) {
		return b
	}
	return a
}
