package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

var bootTime = time.Date(2026, 11, 22, 12, 8, 8, 0, time.UTC)

func testView() *cadvisor.View {
	rootSample := sampleAt(sampleTime, 2e12, cadvisor.MemoryStats{Usage: 3 << 30, WorkingSet: 1 << 30, Limit: 24 << 30})
	rootSample.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{{Name: "eth0", RxBytes: 10}}}
	return &cadvisor.View{Time: sampleTime, Cgroups: map[string]*cadvisor.CgroupInfo{
		"/": {Name: "/", Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, CreationTime: bootTime.Add(2 * time.Second)},
			Samples: []*cadvisor.Sample{rootSample}},
		"/kubepods": {Name: "/kubepods", Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, CreationTime: bootTime.Add(time.Hour)},
			Samples: []*cadvisor.Sample{sampleAt(sampleTime, 1e9, cadvisor.MemoryStats{Limit: 20 << 30})}},
	}}
}

func testInputs() nodeInputs {
	return nodeInputs{
		nodeName: "node-a",
		bootTime: bootTime,
		view:     testView(),
		rootFs:   &cadvisor.FsStats{Capacity: 100, Usage: 40, Available: 50, Inodes: 1000, InodesFree: 900},
		rlimit:   cadvisor.Rlimit{Timestamp: sampleTime, MaxPID: ptrTo(int64(32768)), CurProc: ptrTo(int64(200))},
		systemCgroups: []SystemCgroup{
			{Name: statsapi.SystemContainerPods, Cgroup: "/kubepods"},
			{Name: statsapi.SystemContainerKubelet, Cgroup: "/kubelet.slice", StartTime: bootTime},
			{Name: statsapi.SystemContainerRuntime, Cgroup: ""},
		},
	}
}

func TestBuildNodeStats(t *testing.T) {
	node, err := buildNodeStats(testInputs())
	if err != nil {
		t.Fatal(err)
	}
	if node.NodeName != "node-a" || !node.StartTime.Time.Equal(bootTime) {
		t.Errorf("nodeName/startTime = %q/%v", node.NodeName, node.StartTime)
	}
	if node.CPU == nil || node.Memory == nil || node.Swap == nil || node.IO == nil || node.Network == nil || node.Rlimit == nil {
		t.Fatalf("missing node blocks: %+v", node)
	}
	if node.Fs == nil || *node.Fs.InodesUsed != 100 || !node.Fs.Time.Time.Equal(sampleTime) {
		t.Errorf("fs = %+v, want inodesUsed 100 at the root sample time", node.Fs)
	}
	if *node.Memory.AvailableBytes != 23<<30 {
		t.Errorf("availableBytes = %d", *node.Memory.AvailableBytes)
	}
	// The kubelet cgroup has no sample and the runtime has no name: only pods remains.
	if len(node.SystemContainers) != 1 || node.SystemContainers[0].Name != statsapi.SystemContainerPods {
		t.Fatalf("systemContainers = %+v", node.SystemContainers)
	}
	pods := node.SystemContainers[0]
	if pods.Logs != nil || pods.Rootfs != nil || pods.IO == nil || !pods.StartTime.Time.Equal(bootTime.Add(time.Hour)) {
		t.Errorf("pods system container = %+v", pods)
	}
}

func TestBuildNodeCPUAndMemoryStats(t *testing.T) {
	node, err := buildNodeCPUAndMemoryStats(testInputs())
	if err != nil {
		t.Fatal(err)
	}
	if node.Network != nil || node.Fs != nil || node.Runtime != nil || node.Rlimit != nil || node.IO != nil {
		t.Errorf("cpu-and-memory node has more than cpu, memory and swap: %+v", node)
	}
	if !node.StartTime.Time.Equal(bootTime.Add(2 * time.Second)) {
		t.Errorf("startTime = %v, want the root cgroup's creation time", node.StartTime)
	}
	if node.CPU == nil || node.Memory == nil || node.Swap == nil || len(node.SystemContainers) != 1 {
		t.Errorf("node = %+v", node)
	}
	if node.SystemContainers[0].IO != nil {
		t.Error("cpu-and-memory system containers carry no io")
	}
}

func TestBuildNodeWithoutRootSample(t *testing.T) {
	in := testInputs()
	in.view = &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{}}
	if _, err := buildNodeStats(in); !errors.Is(err, errNoRootSample) {
		t.Errorf("err = %v, want errNoRootSample", err)
	}
}

type viewSequence struct{ views []*cadvisor.View }

func (s *viewSequence) Housekeep(context.Context) *cadvisor.View {
	v := s.views[0]
	if len(s.views) > 1 {
		s.views = s.views[1:]
	}
	return v
}

func TestTickPublishesAndKeepsLastGoodSnapshot(t *testing.T) {
	empty := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{}}
	p := New(Config{
		NodeName: "node-a",
		RootDir:  "/nonexistent-root-dir",
		Interval: time.Hour,
		Sampler:  &viewSequence{views: []*cadvisor.View{empty, testView(), empty}},
		FsStats: func(path string) (cadvisor.FsStats, error) {
			if path != "/" {
				t.Errorf("statfs of %q, want the / fallback", path)
			}
			return cadvisor.FsStats{Capacity: 1}, nil
		},
		Rlimit: func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		Logger: klog.Background(),
	})
	p.Tick(context.Background())
	if p.Current() != nil {
		t.Fatal("a tick without a root sample published a snapshot")
	}
	p.Tick(context.Background())
	first := p.Current()
	if first == nil || first.Generation != 1 || first.Summary.Pods == nil || len(first.Summary.Pods) != 0 {
		t.Fatalf("snapshot after a good tick = %+v", first)
	}
	p.Tick(context.Background())
	if p.Current() != first {
		t.Error("a failed tick replaced the last good snapshot")
	}
	if err := p.Healthy(); err != nil {
		t.Errorf("Healthy() = %v right after a tick", err)
	}
}

func TestHealthyFailsAfterThreeIntervals(t *testing.T) {
	p := New(Config{Interval: time.Millisecond})
	p.started = time.Now().Add(-time.Second)
	if err := p.Healthy(); err == nil {
		t.Error("Healthy() = nil although no tick completed for 1000 intervals")
	}
}
