package provider

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
)

const (
	evUID1    = "0a1b2c3d-0000-4000-8000-000000000001"
	evUID2    = "0a1b2c3d-0000-4000-8000-000000000002"
	evPod1    = "/kubepods/burstable/pod" + evUID1
	evPod2    = "/kubepods/burstable/pod" + evUID2
	evSandbox = "sandbox1"
	evApp     = evPod1 + "/app1"
	evSide    = evPod1 + "/side1"
	evOther   = evPod2 + "/other1"
)

var evT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// feedFixture drives an EventFeed with a clock and ticks of its own.
type feedFixture struct {
	t    *testing.T
	feed *EventFeed
	now  time.Time
}

func newFeedFixture(t *testing.T) *feedFixture {
	fx := &feedFixture{t: t, now: evT0}
	fx.feed = NewEventFeed(EventFeedConfig{
		Limits:   cadvisor.EventLimits{DefaultCount: 1000, DefaultAge: 1000000 * time.Hour}, // the store ages by the real clock
		Interval: time.Second,                                                               // identityWait is then its 5 s floor
	})
	fx.feed.now = func() time.Time { return fx.now }
	return fx
}

// runtimeWith is a runtime view of pod1 (sandbox, app, side) and pod2
// (other); containers not listed in names are left out.
func runtimeWith(names ...string) *runtimeIdentity {
	ids := map[string]string{"app": "app1", "side": "side1", "other": "other1"}
	identity := &runtimeIdentity{sandboxes: []*runtimeapi.PodSandbox{
		{Id: evSandbox, Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "shop", Uid: evUID1}},
		{Id: "sandbox2", Metadata: &runtimeapi.PodSandboxMetadata{Name: "db", Namespace: "shop", Uid: evUID2}},
	}}
	for _, name := range names {
		identity.containers = append(identity.containers, &runtimeapi.Container{Id: ids[name], Metadata: &runtimeapi.ContainerMetadata{Name: name}})
	}
	return identity
}

// tick runs one housekeeping tick's part of the feed after advancing the
// clock by a second.
func (fx *feedFixture) tick(view *cadvisor.View, pods []corev1.Pod, identity *runtimeIdentity) {
	fx.now = fx.now.Add(time.Second)
	fx.feed.observe(view, pods, identity)
}

func (fx *feedFixture) cgroup(name string, removed bool) {
	fx.feed.CgroupChanged(collector.CgroupEvent{Name: name, Removed: removed, Time: fx.now})
}

// events renders what the store holds: type, cgroup's last element,
// identity, and the oomKill and deletion details.
func (fx *feedFixture) events() []string {
	var out []string
	for _, e := range fx.feed.Query(cadvisor.EventQuery{Types: cadvisor.EventTypes(), Max: -1}) {
		out = append(out, renderEvent(e))
	}
	return out
}

func renderEvent(e cadvisor.Event) string {
	s := fmt.Sprintf("%s %s %s/%s/%s", e.Type, e.Cgroup, e.Pod.Namespace, e.Pod.Name, e.Pod.Container)
	if e.Pod.UID != "" && e.Pod.UID != evUID1 && e.Pod.UID != evUID2 {
		s += " uid=" + e.Pod.UID
	}
	switch e.Type {
	case cadvisor.EventOOMKill:
		s += fmt.Sprintf(" pid=%d %s", e.PID, e.ProcessName)
	case cadvisor.EventContainerDeletion:
		s += fmt.Sprintf(" exit=%d", e.ExitCode)
	}
	return s
}

func (fx *feedFixture) expect(what string, want ...string) {
	fx.t.Helper()
	if got := fx.events(); fmt.Sprint(got) != fmt.Sprint(want) {
		fx.t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

func TestEventFeedNamesContainersFromTheRuntime(t *testing.T) {
	fx := newFeedFixture(t)
	fx.cgroup("/kubepods", false) // outside pods: stored at once
	fx.cgroup(evPod1, false)
	fx.cgroup(evPod1+"/"+evSandbox, false)
	fx.cgroup(evApp, false)
	fx.expect("before any tick", "containerCreation /kubepods //")

	// The runtime lists the pod and its sandbox but not yet app: the pod
	// and the sandbox are named, app and all after it in the pod wait.
	fx.tick(nil, nil, runtimeWith())
	fx.expect("after a tick without app", "containerCreation /kubepods //",
		"containerCreation "+evPod1+" shop/web/", "containerCreation "+evPod1+"/"+evSandbox+" shop/web/")

	fx.tick(nil, nil, runtimeWith("app"))
	fx.expect("after a tick with app", "containerCreation /kubepods //",
		"containerCreation "+evPod1+" shop/web/", "containerCreation "+evPod1+"/"+evSandbox+" shop/web/",
		"containerCreation "+evApp+" shop/web/app")

	// Once named, a container's events are stored at once, but for a
	// deletion, which waits for the next tick's counters.
	fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: 42, ProcessName: "work", Cgroup: evApp, LimitCgroup: evPod1})
	fx.cgroup(evApp, true)
	fx.tick(nil, nil, runtimeWith("app"))
	fx.expect("after the kill and the removal", "containerCreation /kubepods //",
		"containerCreation "+evPod1+" shop/web/", "containerCreation "+evPod1+"/"+evSandbox+" shop/web/",
		"containerCreation "+evApp+" shop/web/app",
		"oom "+evPod1+" shop/web/", "oomKill "+evApp+" shop/web/app pid=42 work",
		"containerDeletion "+evApp+" shop/web/app exit=-1")
}

// TestEventFeedKeepsAPodsOrder: a container that starts, is killed and is
// gone between two ticks is named by the next tick, and its events come
// out in the order they happened, the exit code from /pods included,
// while another pod's events are not held up.
func TestEventFeedKeepsAPodsOrder(t *testing.T) {
	fx := newFeedFixture(t)
	fx.tick(nil, nil, runtimeWith("other"))
	fx.cgroup(evApp, false)
	fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: 7, ProcessName: "hog", Cgroup: evApp, LimitCgroup: evApp})
	fx.cgroup(evOther, false) // pod2's, named: not held behind pod1's
	fx.cgroup(evApp, true)
	fx.expect("before the tick that names app", "containerCreation "+evOther+" shop/db/other")

	exited := []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: types.UID(evUID1)},
		Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{
			Name: "app", ContainerID: "containerd://app1",
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 137, ContainerID: "containerd://app1"}},
		}}},
	}}
	fx.tick(nil, exited, runtimeWith("app", "other"))
	fx.expect("after it", "containerCreation "+evOther+" shop/db/other",
		"containerCreation "+evApp+" shop/web/app", "oom "+evApp+" shop/web/app",
		"oomKill "+evApp+" shop/web/app pid=7 hog", "containerDeletion "+evApp+" shop/web/app exit=137")
}

// TestEventFeedWithoutRuntime names pods and containers from /pods alone,
// as built from the cgroup tree, with bare container IDs.
func TestEventFeedWithoutRuntime(t *testing.T) {
	fx := newFeedFixture(t)
	fx.cgroup(evApp, false)
	pods := []corev1.Pod{{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: types.UID(evUID1)},
		Status:     corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{Name: "app", ContainerID: "app1"}}},
	}}
	fx.tick(nil, pods, nil)
	fx.expect("named from /pods", "containerCreation "+evApp+" shop/web/app")
}

func TestEventFeedStoresUnnamedEventsAfterTheWait(t *testing.T) {
	fx := newFeedFixture(t)
	fx.cgroup(evApp, false)
	fx.cgroup(evSide, false)
	for range 4 { // 4 s: still within the 5 s wait
		fx.tick(nil, nil, runtimeWith())
	}
	fx.expect("within the wait")
	fx.tick(nil, nil, runtimeWith())
	fx.expect("after the wait: the pod's name and UID, no container",
		"containerCreation "+evApp+" shop/web/", "containerCreation "+evSide+" shop/web/")
}

func TestEventFeedBoundsWaitingEvents(t *testing.T) {
	fx := newFeedFixture(t)
	for i := range maxPendingEvents + 2 {
		fx.cgroup(fmt.Sprintf("%s/c%d", evPod1, i), false)
	}
	got := fx.events()
	if len(got) != 2 || got[0] != "containerCreation "+evPod1+"/c0 //" || got[1] != "containerCreation "+evPod1+"/c1 //" {
		t.Errorf("stored %q, want the two oldest of %d, unnamed", got, maxPendingEvents+2)
	}
	if len(fx.feed.pending) != maxPendingEvents {
		t.Errorf("%d waiting, want %d", len(fx.feed.pending), maxPendingEvents)
	}
}

// oomView is a tick's view: the cgroups with their oom_kill counters,
// sampled at the fixture's clock.
func (fx *feedFixture) oomView(counts map[string]uint64) *cadvisor.View {
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for name, n := range counts {
		sample := &cadvisor.Sample{Timestamp: fx.now.Add(time.Second)}
		sample.Memory.OOMKills = n
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Samples: []*cadvisor.Sample{sample}}
	}
	return view
}

func counts(kv ...any) map[string]uint64 {
	m := map[string]uint64{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return m
}

// oomKills lists the stored oomKill events.
func (fx *feedFixture) oomKills() []string {
	var out []string
	for _, e := range fx.feed.Query(cadvisor.EventQuery{Types: []cadvisor.EventType{cadvisor.EventOOMKill}, Max: -1}) {
		out = append(out, fmt.Sprintf("%s pid=%d +%s", e.Cgroup, e.PID, e.Time.Sub(evT0)))
	}
	return out
}

func (fx *feedFixture) expectKills(what string, want ...string) {
	fx.t.Helper()
	if got := fx.oomKills(); fmt.Sprint(got) != fmt.Sprint(want) {
		fx.t.Errorf("%s:\n got %q\nwant %q", what, got, want)
	}
}

// TestEventFeedOOMCounters checks that a kill seen by the kernel log, by
// the oom_kill counters, or by both is one oomKill event.
func TestEventFeedOOMCounters(t *testing.T) {
	named := runtimeWith("app", "side", "other")
	start := func(t *testing.T, c map[string]uint64) *feedFixture {
		fx := newFeedFixture(t)
		fx.tick(fx.oomView(c), nil, named)
		return fx
	}
	// Each case starts from a first tick (the baseline) at +1s, whose
	// counters are never events, and runs the steps after it.
	base := counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 5, evSide, 0)
	kmsg := func(fx *feedFixture, cgroup string, pid int) {
		fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: pid, Cgroup: cgroup, LimitCgroup: cgroup})
	}
	tests := []struct {
		name string
		run  func(fx *feedFixture)
		want []string
	}{
		{"v2: the kernel log first, then every ancestor's counter", func(fx *feedFixture) {
			kmsg(fx, evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"the counter first, the kernel log line late", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			kmsg(fx, evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +2s"}},
		{"the counter alone: the deepest cgroup, a tick later, at its sample time", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 7, evApp, 6, evSide, 1)), nil, named)
			fx.expectKills("before the wait is over")
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 7, evApp, 6, evSide, 1)), nil, named)
		}, []string{evApp + " pid=0 +2s", evSide + " pid=0 +2s"}},
		{"the victim's cgroup gone: its pod's counter and the kernel log", func(fx *feedFixture) {
			kmsg(fx, evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"v1: local counters", func(fx *feedFixture) {
			kmsg(fx, evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"a new cgroup counts from 0", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 5, evSide, 0, "/kubepods/new", 1)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 5, evSide, 0, "/kubepods/new", 1)), nil, named)
		}, []string{"/kubepods/new pid=0 +2s"}},
		{"a kernel log kill nothing counted does not swallow a later kill", func(fx *feedFixture) {
			kmsg(fx, evPod1+"/untracked", 42)
			for range creditTicks {
				fx.tick(fx.oomView(base), nil, named)
			}
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evApp, 5, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evApp, 5, evSide, 0)), nil, named)
		}, []string{evPod1 + "/untracked pid=42 +1s", evPod1 + " pid=0 +5s"}},
		{"two kills, one logged", func(fx *feedFixture) {
			kmsg(fx, evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 7, evApp, 7, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 7, evApp, 7, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +1s", evApp + " pid=0 +2s"}},
		{"a counter that went down is a new baseline", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 0, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 0, evSide, 0)), nil, named)
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := start(t, base)
			tt.run(fx)
			fx.expectKills("oomKill events", tt.want...)
		})
	}
}

// TestEventFeedOOMKmsg checks cAdvisor's pair of events for a kernel log
// kill: oom on the cgroup whose limit was hit, oomKill on the victim's.
func TestEventFeedOOMKmsg(t *testing.T) {
	fx := newFeedFixture(t)
	fx.tick(nil, nil, runtimeWith("app"))
	fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: 9, ProcessName: "x", Cgroup: evApp, LimitCgroup: evPod1})
	fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: 10, ProcessName: "y", Cgroup: "/system.slice/foo.service", LimitCgroup: "/"})
	fx.expect("events", "oom "+evPod1+" shop/web/", "oomKill "+evApp+" shop/web/app pid=9 x",
		"oom / //", "oomKill /system.slice/foo.service // pid=10 y")
}

// TestTickFeedsEvents checks the wiring: a tick hands its pods to the feed,
// which names the waiting events with them.
func TestTickFeedsEvents(t *testing.T) {
	const uid, containerID = "0f1e2d3c-aaaa-bbbb-cccc-000000000001", "c0ffee"
	logsDir := t.TempDir()
	writeFile(t, filepath.Join(logsDir, "web_front_"+uid, "pod.log"), 10)
	feed := NewEventFeed(EventFeedConfig{Limits: cadvisor.EventLimits{DefaultCount: 10, DefaultAge: time.Hour}, Interval: time.Hour})
	p := New(Config{
		NodeName: "node-a", RootDir: t.TempDir(), Interval: time.Hour, PodRoot: "/kubepods",
		Sampler:    &viewSequence{views: []*cadvisor.View{cgroupPodView(uid, containerID)}},
		FsStats:    func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{}, nil },
		Rlimit:     func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		PodLogsDir: logsDir, ContainerLogsDir: filepath.Join(logsDir, "none"),
		Events: feed,
		Logger: klog.Background(),
	})
	feed.CgroupChanged(collector.CgroupEvent{Name: "/kubepods/pod" + uid, Time: time.Now()})
	all := cadvisor.EventQuery{Types: cadvisor.EventTypes(), Max: -1}
	if got := feed.Query(all); len(got) != 0 {
		t.Fatalf("before the tick: %+v, want the pod's creation waiting for its name", got)
	}
	p.Tick(context.Background())
	got := feed.Query(all)
	if len(got) != 1 || got[0].Pod != (cadvisor.EventPod{Namespace: "web", Name: "front", UID: uid}) {
		t.Errorf("after the tick: %+v, want the pod's creation named web/front", got)
	}
}

// TestEventFeedKeepsNamesOfAGonePod: an event named when it happened, held
// behind an earlier one of its pod, is stored with those names as soon as
// the earlier one is, though the pod is gone from the runtime by then.
func TestEventFeedKeepsNamesOfAGonePod(t *testing.T) {
	fx := newFeedFixture(t)
	fx.tick(nil, nil, runtimeWith("app"))
	fx.cgroup(evSide, false) // never named: side is not listed
	for range 3 {
		fx.tick(nil, nil, runtimeWith("app"))
	}
	fx.cgroup(evApp, true) // named now, held behind side's creation
	fx.tick(nil, nil, &runtimeIdentity{})
	fx.expect("while side's creation waits")
	fx.tick(nil, nil, &runtimeIdentity{}) // side has waited 5 s
	fx.expect("once it is stored",
		"containerCreation "+evSide+" shop/web/", "containerDeletion "+evApp+" shop/web/app exit=-1")
}
