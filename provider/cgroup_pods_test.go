package provider

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// fakeVolumes is a PodVolumeSource with fixed measurements.
type fakeVolumes map[string][]analyzer.VolumeStats

func (f fakeVolumes) PodVolumeStats(uid string) ([]analyzer.VolumeStats, bool) {
	v, ok := f[uid]
	return v, ok
}

// cgroupPodView is testView plus one pod with one container in the cgroup
// tree.
func cgroupPodView(uid, containerID string) *cadvisor.View {
	view := testView()
	for _, name := range []string{"/kubepods/pod" + uid, "/kubepods/pod" + uid + "/" + containerID} {
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, CreationTime: bootTime},
			Samples: []*cadvisor.Sample{sampleAt(sampleTime, 1e9, cadvisor.MemoryStats{Usage: 1 << 20, WorkingSet: 1 << 20})}}
	}
	return view
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCgroupPodsGetVolumesAndEphemeralStorage runs a tick without a runtime:
// the pod found in the cgroup tree lists the analyzer's volumes and its
// ephemeral storage (ephemeral volumes, pod log files, etc-hosts on the
// root filesystem), as a pod from CRI does; only_cpu_and_memory has
// neither.
func TestCgroupPodsGetVolumesAndEphemeralStorage(t *testing.T) {
	const uid, containerID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "c0ffee"
	rootDir, logsDir := t.TempDir(), t.TempDir()
	podLogs := filepath.Join(logsDir, "web_front_"+uid)
	writeFile(t, filepath.Join(podLogs, "pod.log"), 3000)
	writeFile(t, filepath.Join(rootDir, "pods", uid, "etc-hosts"), 200)
	measuredAt := sampleTime.Add(-time.Second)
	volumes := fakeVolumes{uid: {
		{Name: "token", Time: measuredAt, Used: analyzer.Usage{Bytes: 4096, Inodes: 4}},
		{Name: "scratch", Ephemeral: true, Time: measuredAt, Used: analyzer.Usage{Bytes: 1 << 20, Inodes: 2}, Capacity: 100 << 30},
	}}
	rootFs := cadvisor.FsStats{Timestamp: sampleTime, Capacity: 100 << 30, Available: 60 << 30, Inodes: 1000, InodesFree: 900}
	p := New(Config{
		NodeName: "node-a", RootDir: rootDir, Interval: time.Hour, PodRoot: "/kubepods",
		Sampler:    &viewSequence{views: []*cadvisor.View{cgroupPodView(uid, containerID)}},
		FsStats:    func(string) (cadvisor.FsStats, error) { return rootFs, nil },
		Rlimit:     func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		PodLogsDir: logsDir, ContainerLogsDir: filepath.Join(logsDir, "none"),
		Volumes: volumes,
		Logger:  klog.Background(),
	})
	p.Tick(context.Background())
	snap := p.Current()
	if snap == nil || len(snap.Summary.Pods) != 1 || len(snap.CPUAndMemory.Pods) != 1 {
		t.Fatalf("snapshot = %+v, want one pod in each summary", snap)
	}
	pod := snap.Summary.Pods[0]
	if pod.PodRef != (statsapi.PodReference{Namespace: "web", Name: "front", UID: uid}) {
		t.Errorf("podRef = %+v, want the log directory's names", pod.PodRef)
	}
	var names []string
	for _, v := range pod.VolumeStats {
		names = append(names, v.Name)
	}
	if !slices.Equal(names, []string{"scratch", "token"}) {
		t.Fatalf("volume = %v, want the analyzer's volumes, ephemeral first", names)
	}
	if *pod.VolumeStats[0].UsedBytes != 1<<20 || *pod.VolumeStats[0].CapacityBytes != 100<<30 {
		t.Errorf("scratch = %+v", pod.VolumeStats[0].FsStats)
	}
	eph := pod.EphemeralStorage
	if eph == nil || eph.UsedBytes == nil || eph.InodesUsed == nil {
		t.Fatalf("ephemeral-storage = %+v, want usage", eph)
	}
	// du counts whole blocks: the two small files take at least 3200 bytes
	// and at most a few blocks each.
	files := *eph.UsedBytes - 1<<20
	if files < 3200 || files > 3200+4*8192 || *eph.InodesUsed != 2+1+1 {
		t.Errorf("ephemeral-storage used %d bytes (%d beside scratch), %d inodes; want scratch, pod.log and etc-hosts",
			*eph.UsedBytes, files, *eph.InodesUsed)
	}
	if *eph.CapacityBytes != 100<<30 || *eph.AvailableBytes != 60<<30 {
		t.Errorf("ephemeral-storage capacity %d available %d, want the root filesystem's", *eph.CapacityBytes, *eph.AvailableBytes)
	}
	if cpuMem := snap.CPUAndMemory.Pods[0]; cpuMem.VolumeStats != nil || cpuMem.EphemeralStorage != nil {
		t.Errorf("only_cpu_and_memory pod carries volume %v / ephemeral-storage %v", cpuMem.VolumeStats, cpuMem.EphemeralStorage)
	}
}

// TestCgroupPodsWithoutVolumeStats: no analyzer (--volume-stats-agg-period=0)
// leaves the volume key out; ephemeral storage still counts the files.
func TestCgroupPodsWithoutVolumeStats(t *testing.T) {
	const uid = "0f1e2d3c-aaaa-bbbb-cccc-000000000002"
	rootDir := t.TempDir()
	writeFile(t, filepath.Join(rootDir, "pods", uid, "etc-hosts"), 200)
	p := New(Config{
		NodeName: "node-a", RootDir: rootDir, Interval: time.Hour, PodRoot: "/kubepods",
		Sampler: &viewSequence{views: []*cadvisor.View{cgroupPodView(uid, "c0ffee")}},
		FsStats: func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1 << 30}, nil },
		Rlimit:  func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		Logger:  klog.Background(),
	})
	p.Tick(context.Background())
	pod := p.Current().Summary.Pods[0]
	if pod.VolumeStats != nil {
		t.Errorf("volume = %+v without an analyzer", pod.VolumeStats)
	}
	if eph := pod.EphemeralStorage; eph == nil || eph.InodesUsed == nil || *eph.InodesUsed != 1 {
		t.Errorf("ephemeral-storage = %+v, want etc-hosts", eph)
	}
}
