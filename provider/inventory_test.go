package provider

import (
	"context"
	"reflect"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

func sandboxWithUID(id, name, uid string, created int64) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{Id: id, CreatedAt: created, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: uid}}
}

func TestInventoryFromRuntime(t *testing.T) {
	running, exited := runtimeapi.ContainerState_CONTAINER_RUNNING, runtimeapi.ContainerState_CONTAINER_EXITED
	container := func(id, sandboxID, name string, created int64, state runtimeapi.ContainerState) *runtimeapi.Container {
		return &runtimeapi.Container{Id: id, PodSandboxId: sandboxID, CreatedAt: created, State: state,
			Metadata: &runtimeapi.ContainerMetadata{Name: name}, Image: &runtimeapi.ImageSpec{Image: "img-" + name},
			Labels: map[string]string{"name": name}}
	}
	identity := &runtimeIdentity{
		sandboxes: []*runtimeapi.PodSandbox{
			sandboxWithUID("s1", "web", "00a1", 10),
			sandboxWithUID("s2", "db", "00a2", 5),
		},
		containers: []*runtimeapi.Container{
			container("c1", "s1", "app", 30, running),
			container("c0", "s1", "app", 20, exited),
			container("c2", "s2", "db", 40, running),
			container("c3", "gone", "orphan", 40, running),
			{Id: "c4", PodSandboxId: "s1", State: running},
		},
	}
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for _, name := range []string{"/kubepods/pod00a1", "/kubepods/pod00a1/c1", "/kubepods/pod00a1/c0"} {
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Samples: samplesEverySecond(1)}
	}
	got := inventoryFromRuntime(identity, indexCgroups(view, "/kubepods")).pods
	want := []snapshot.Pod{
		{Namespace: "ns", Name: "db", UID: "00a2", Containers: []snapshot.Container{
			{Name: "db", ID: "c2", Image: "img-db", Labels: map[string]string{"name": "db"}, CreatedAt: time.Unix(0, 40)}}},
		{Namespace: "ns", Name: "web", UID: "00a1", Cgroup: "/kubepods/pod00a1", Containers: []snapshot.Container{
			{Name: "app", ID: "c1", Cgroup: "/kubepods/pod00a1/c1", Image: "img-app", Labels: map[string]string{"name": "app"}, CreatedAt: time.Unix(0, 30)}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pods = %+v\nwant   %+v", got, want)
	}
}

func TestInventoryFromCgroups(t *testing.T) {
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for _, name := range []string{"/kubepods/podaaaa", "/kubepods/podaaaa/id1", "/kubepods/podaaaa/pause", "/kubepods/podbbbb", "/kubepods/podbbbb/id2"} {
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Samples: samplesEverySecond(1)}
	}
	names := podNames{
		byUID:          map[string]statsapi.PodReference{"aaaa": {Namespace: "ns", Name: "web", UID: "aaaa"}},
		containerNames: map[string]string{"id1": "app"},
	}
	got := inventoryFromCgroups(view, "/kubepods", names).pods
	want := []snapshot.Pod{
		{Namespace: "ns", Name: "web", UID: "aaaa", Cgroup: "/kubepods/podaaaa", Containers: []snapshot.Container{
			{Name: "app", ID: "id1", Cgroup: "/kubepods/podaaaa/id1"}}},
		{Name: "bbbb", UID: "bbbb", Cgroup: "/kubepods/podbbbb", Containers: []snapshot.Container{
			{Name: "id2", ID: "id2", Cgroup: "/kubepods/podbbbb/id2"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pods = %+v\nwant   %+v", got, want)
	}
}

// fakeRuntime answers fixed sandboxes and containers, and no stats.
type fakeRuntime struct{ identity runtimeIdentity }

func (f *fakeRuntime) ListPodSandbox(context.Context) ([]*runtimeapi.PodSandbox, error) {
	return f.identity.sandboxes, nil
}
func (f *fakeRuntime) ListContainers(context.Context) ([]*runtimeapi.Container, error) {
	return f.identity.containers, nil
}
func (f *fakeRuntime) ListContainerStats(context.Context) ([]*runtimeapi.ContainerStats, error) {
	return nil, nil
}
func (f *fakeRuntime) ListPodSandboxStats(context.Context) ([]*runtimeapi.PodSandboxStats, error) {
	return nil, nil
}
func (f *fakeRuntime) ImageFsInfo(context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{}, nil
}

func TestTickPublishesCgroupView(t *testing.T) {
	view := testView()
	for _, name := range []string{"/kubepods/podfeed", "/kubepods/podfeed/c1"} {
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Samples: samplesEverySecond(2)}
	}
	p := New(Config{
		NodeName: "node-a", RootDir: "/nonexistent-root-dir", Interval: time.Hour,
		Sampler: &viewSequence{views: []*cadvisor.View{view}},
		FsStats: func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1}, nil },
		Rlimit:  func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		PodRoot: "/kubepods",
		Runtime: &fakeRuntime{identity: runtimeIdentity{
			sandboxes: []*runtimeapi.PodSandbox{{Id: "s1", State: runtimeapi.PodSandboxState_SANDBOX_READY,
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "default", Uid: "feed"}}},
			containers: []*runtimeapi.Container{{Id: "c1", PodSandboxId: "s1", State: runtimeapi.ContainerState_CONTAINER_RUNNING,
				Metadata: &runtimeapi.ContainerMetadata{Name: "app"}}},
		}},
		Machine: &cadvisor.Machine{NumCores: 2},
		Logger:  klog.Background(),
	})
	p.Tick(context.Background())
	snap := p.Current()
	if snap == nil || snap.Cgroups == nil {
		t.Fatalf("snapshot = %+v, want a legacy view", snap)
	}
	info, found := snap.Cgroups.PodContainerInfo("default", "web", "feed", "app", cadvisorapi.ContainerInfoRequest{NumStats: -1})
	if !found || info.Name != "/kubepods/podfeed/c1" || info.Id != "c1" || len(info.Stats) != 2 {
		t.Errorf("pod container = %+v, %v", info, found)
	}
	if machine, found := snap.Cgroups.MachineInfo(); !found || machine.NumCores != 2 {
		t.Errorf("machine = %+v, %v", machine, found)
	}
}
