package provider

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// gatedRuntime answers every call (lists, stats, statuses) from its pods,
// or, while hung, blocks every call (or only the status calls) until
// released or until the call's context ends, like a runtime that stopped
// answering.
type gatedRuntime struct {
	mu           sync.Mutex
	pods         []string // pod UIDs; pod u has sandbox "s-u" and container "c-u"
	gate         chan struct{}
	onlyStatuses bool
	blocked      int // calls that waited at the gate
}

func (g *gatedRuntime) setPods(uids ...string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pods = uids
}

func (g *gatedRuntime) hang() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.onlyStatuses = make(chan struct{}), false
}

func (g *gatedRuntime) hangStatuses() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.gate, g.onlyStatuses = make(chan struct{}), true
}

func (g *gatedRuntime) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	close(g.gate)
	g.gate = nil
}

func (g *gatedRuntime) blockedCalls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.blocked
}

// answer waits at the gate while the runtime hangs and returns the pods.
func (g *gatedRuntime) answer(ctx context.Context) ([]string, error) { return g.answerCall(ctx, false) }

func (g *gatedRuntime) answerCall(ctx context.Context, status bool) ([]string, error) {
	g.mu.Lock()
	gate := g.gate
	if g.onlyStatuses && !status {
		gate = nil
	}
	if gate != nil {
		g.blocked++
	}
	g.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.pods...), nil
}

func (g *gatedRuntime) ListPodSandbox(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	uids, err := g.answer(ctx)
	var out []*runtimeapi.PodSandbox
	for _, uid := range uids {
		out = append(out, &runtimeapi.PodSandbox{Id: "s-" + uid, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: "pod-" + uid, Namespace: "default", Uid: uid}})
	}
	return out, err
}

func (g *gatedRuntime) ListContainers(ctx context.Context) ([]*runtimeapi.Container, error) {
	uids, err := g.answer(ctx)
	var out []*runtimeapi.Container
	for _, uid := range uids {
		out = append(out, &runtimeapi.Container{Id: "c-" + uid, PodSandboxId: "s-" + uid,
			State: runtimeapi.ContainerState_CONTAINER_RUNNING, Metadata: &runtimeapi.ContainerMetadata{Name: "app"}})
	}
	return out, err
}

func (g *gatedRuntime) ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error) {
	_, err := g.answer(ctx)
	return []*runtimeapi.ContainerStats{}, err
}

func (g *gatedRuntime) ListPodSandboxStats(ctx context.Context) ([]*runtimeapi.PodSandboxStats, error) {
	uids, err := g.answer(ctx)
	out := []*runtimeapi.PodSandboxStats{}
	for _, uid := range uids {
		out = append(out, &runtimeapi.PodSandboxStats{
			Attributes: &runtimeapi.PodSandboxAttributes{Id: "s-" + uid},
			Linux: &runtimeapi.LinuxPodSandboxStats{Containers: []*runtimeapi.ContainerStats{{
				Attributes: &runtimeapi.ContainerAttributes{Id: "c-" + uid, Metadata: &runtimeapi.ContainerMetadata{Name: "app"}},
			}}},
		})
	}
	return out, err
}

func (g *gatedRuntime) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	_, err := g.answer(ctx)
	return &runtimeapi.ImageFsInfoResponse{}, err
}

func (g *gatedRuntime) RuntimeName(ctx context.Context) (string, error) {
	_, err := g.answerCall(ctx, true)
	return "containerd", err
}

func (g *gatedRuntime) PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	_, err := g.answerCall(ctx, true)
	return &runtimeapi.PodSandboxStatus{Id: id, State: runtimeapi.PodSandboxState_SANDBOX_READY,
		Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.1.0.9"}}, err
}

// gatedStatusRuntime is gatedRuntime with the status calls of /pods: its
// own RuntimeName and PodSandboxStatus, which wait at the gate, and
// statusRuntime's ContainerStatus (unknown statuses), whose signature
// follows podStatusReader.
type gatedStatusRuntime struct {
	*gatedRuntime
	*statusRuntime
}

func (g gatedStatusRuntime) RuntimeName(ctx context.Context) (string, error) {
	return g.gatedRuntime.RuntimeName(ctx)
}

func (g gatedStatusRuntime) PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	return g.gatedRuntime.PodSandboxStatus(ctx, id)
}

var _ podStatusReader = gatedStatusRuntime{}

// constantView is a collector that sees the same cgroups at every tick.
type constantView struct{ view *cadvisor.View }

func (c constantView) Housekeep(context.Context) *cadvisor.View { return c.view }

// gatedView has the node and one container cgroup per pod UID.
func gatedView(uids ...string) *cadvisor.View {
	view := testView()
	for _, uid := range uids {
		for _, name := range []string{"/kubepods/pod" + uid, "/kubepods/pod" + uid + "/c-" + uid} {
			view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Spec: cadvisor.Spec{HasCPU: true, HasMemory: true},
				Samples: samplesEverySecond(2)}
		}
	}
	return view
}

// snapshotPods are the pod UIDs of a snapshot's summary and of its /pods.
func snapshotPods(t testing.TB, snap *snapshot.Snapshot) (summary, list []string) {
	for _, pod := range snap.Summary.Pods {
		summary = append(summary, pod.PodRef.UID)
	}
	for _, pod := range podItems(t, snap) {
		list = append(list, string(pod.UID))
	}
	return summary, list
}

func hasOnlyPods(t testing.TB, snap *snapshot.Snapshot, uids ...string) bool {
	if snap == nil {
		return false
	}
	summary, list := snapshotPods(t, snap)
	return equalStrings(summary, uids) && equalStrings(list, uids)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, limit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runProvider starts Run and returns a stop that cancels it and waits for
// Run to return.
func runProvider(t *testing.T, p *Provider) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		p.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10s of its context ending")
		}
	}
}

const gatedInterval = 200 * time.Millisecond

func gatedProvider(rt RuntimeService, statsSource string) *Provider {
	return New(Config{
		NodeName: "node-a", RootDir: "/nonexistent-root-dir", Interval: gatedInterval, PodRoot: "/kubepods",
		Sampler:     constantView{view: gatedView("a", "b")},
		FsStats:     func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1}, nil },
		Rlimit:      func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		Runtime:     rt,
		StatsSource: statsSource,
		Logger:      klog.Background(),
	})
}

// awaitTicksWhileHung waits for n more snapshots, checking at every poll
// that the provider stays healthy and that the snapshot has exactly uids.
func awaitTicksWhileHung(t *testing.T, p *Provider, n uint64, uids ...string) {
	t.Helper()
	var from uint64
	if snap := p.Current(); snap != nil {
		from = snap.Generation
	}
	eventually(t, 50*gatedInterval, "snapshots keep coming while the runtime hangs", func() bool {
		if err := p.Healthy(); err != nil {
			t.Fatalf("Healthy() = %v while the runtime hangs", err)
		}
		snap := p.Current()
		if snap == nil {
			return false
		}
		if !hasOnlyPods(t, snap, uids...) {
			summary, list := snapshotPods(t, snap)
			t.Fatalf("snapshot %d has pods %v and /pods %v while the runtime hangs, want %v",
				snap.Generation, summary, list, uids)
		}
		return snap.Generation >= from+n
	})
}

// TestTickNeverWaitsOnTheRuntime: while every runtime call hangs, ticks keep
// publishing on cadence with the last pod view, /healthz stays ok, the new
// view lands once the runtime answers, and shutdown leaves no goroutine.
func TestTickNeverWaitsOnTheRuntime(t *testing.T) {
	for _, source := range []string{StatsSourceCollector, StatsSourceCRI} {
		t.Run(source, func(t *testing.T) {
			before := runtime.NumGoroutine()
			rt := &gatedRuntime{}
			rt.setPods("a")
			p := gatedProvider(rt, source)
			stop := runProvider(t, p)
			eventually(t, 50*gatedInterval, "pod a published", func() bool { return hasOnlyPods(t, p.Current(), "a") })

			rt.hang()
			rt.setPods("a", "b")
			awaitTicksWhileHung(t, p, 5, "a")
			if rt.blockedCalls() == 0 {
				t.Fatal("no runtime call waited at the gate: the test proves nothing")
			}

			rt.release()
			eventually(t, 50*gatedInterval, "pod b published once the runtime answers", func() bool {
				return hasOnlyPods(t, p.Current(), "a", "b")
			})
			stop()
			eventually(t, 10*time.Second, "no goroutine left after shutdown", func() bool {
				return runtime.NumGoroutine() <= before
			})
		})
	}
}

// TestTickPublishesWhileTheRuntimeHangsFromTheStart: a runtime that never
// answered still lets ticks publish the node without pods; its first
// answer brings them.
func TestTickPublishesWhileTheRuntimeHangsFromTheStart(t *testing.T) {
	before := runtime.NumGoroutine()
	rt := &gatedRuntime{}
	rt.setPods("a")
	rt.hang()
	p := gatedProvider(rt, StatsSourceCollector)
	stop := runProvider(t, p)
	awaitTicksWhileHung(t, p, 5)
	rt.release()
	eventually(t, 50*gatedInterval, "pod a published once the runtime answers", func() bool {
		return hasOnlyPods(t, p.Current(), "a")
	})
	stop()
	eventually(t, 10*time.Second, "no goroutine left after shutdown", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

// TestStoppedWhileTheRuntimeHangs: shutdown does not wait for the runtime
// and leaves no goroutine behind.
func TestStoppedWhileTheRuntimeHangs(t *testing.T) {
	before := runtime.NumGoroutine()
	rt := &gatedRuntime{}
	rt.setPods("a")
	p := gatedProvider(rt, StatsSourceCollector)
	stop := runProvider(t, p)
	eventually(t, 50*gatedInterval, "pod a published", func() bool { return hasOnlyPods(t, p.Current(), "a") })
	rt.hang()
	eventually(t, 50*gatedInterval, "a runtime call waits at the gate", func() bool { return rt.blockedCalls() > 0 })
	stop()
	eventually(t, 10*time.Second, "no goroutine left after shutdown", func() bool {
		return runtime.NumGoroutine() <= before
	})
}

func podIP(t testing.TB, snap *snapshot.Snapshot, uid string) string {
	for _, pod := range podItems(t, snap) {
		if string(pod.UID) == uid {
			return pod.Status.PodIP
		}
	}
	return ""
}

// TestTickNeverWaitsOnStatuses: a runtime that lists but hangs on the
// status calls of /pods still gets its new pod published at once, without
// the status, which comes once the runtime answers; ticks keep their
// cadence.
func TestTickNeverWaitsOnStatuses(t *testing.T) {
	before := runtime.NumGoroutine()
	rt := &gatedRuntime{}
	rt.setPods("a")
	p := gatedProvider(gatedStatusRuntime{gatedRuntime: rt, statusRuntime: &statusRuntime{}}, StatsSourceCollector)
	stop := runProvider(t, p)
	eventually(t, 50*gatedInterval, "pod a published with its IP", func() bool {
		return hasOnlyPods(t, p.Current(), "a") && podIP(t, p.Current(), "a") != ""
	})

	rt.hangStatuses()
	rt.setPods("a", "b")
	eventually(t, 50*gatedInterval, "pod b published while the status calls hang", func() bool {
		return hasOnlyPods(t, p.Current(), "a", "b")
	})
	awaitTicksWhileHung(t, p, 5, "a", "b")
	if snap := p.Current(); podIP(t, snap, "a") == "" || podIP(t, snap, "b") != "" {
		t.Errorf("pod IPs while the status calls hang: a %q, b %q; want a's kept, b's unknown", podIP(t, snap, "a"), podIP(t, snap, "b"))
	}
	if rt.blockedCalls() == 0 {
		t.Fatal("no status call waited at the gate: the test proves nothing")
	}
	if errs := testutil.ToFloat64(p.metrics.runtimeErrors); errs != 0 {
		t.Errorf("status calls that outlast the tick's wait counted %v runtime errors, want 0 (the next tick asks again)", errs)
	}

	rt.release()
	eventually(t, 50*gatedInterval, "pod b's IP once the runtime answers", func() bool { return podIP(t, p.Current(), "b") != "" })
	stop()
	eventually(t, 10*time.Second, "no goroutine left after shutdown", func() bool {
		return runtime.NumGoroutine() <= before
	})
}
