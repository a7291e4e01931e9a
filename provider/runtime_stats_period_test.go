package provider

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// statsCountingRuntime is gatedRuntime with stats for every container,
// counting the ListContainerStats calls.
type statsCountingRuntime struct {
	*gatedRuntime
	statsCalls atomic.Int64
}

func (r *statsCountingRuntime) ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error) {
	r.statsCalls.Add(1)
	uids, err := r.answer(ctx)
	out := make([]*runtimeapi.ContainerStats, 0, len(uids))
	for _, uid := range uids {
		out = append(out, &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{
			Id: "c-" + uid, Metadata: &runtimeapi.ContainerMetadata{Name: "app"}}})
	}
	return out, err
}

// statsTicker drives a provider's ticks one by one, each with its refreshes
// ended before the next, and counts the stats calls they made.
type statsTicker struct {
	p  *Provider
	rt *statsCountingRuntime
}

func newStatsTicker(view *cadvisor.View, source string, period time.Duration, pods ...string) *statsTicker {
	rt := &statsCountingRuntime{gatedRuntime: &gatedRuntime{}}
	rt.setPods(pods...)
	p := New(Config{
		NodeName: "node-a", RootDir: "/nonexistent-root-dir", Interval: gatedInterval, PodRoot: "/kubepods",
		Sampler:            constantView{view: view},
		FsStats:            func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1}, nil },
		Rlimit:             func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		Runtime:            rt,
		StatsSource:        source,
		RuntimeStatsPeriod: period,
		Logger:             klog.Background(),
	})
	return &statsTicker{p: p, rt: rt}
}

// ticks runs n ticks and returns how many stats calls they made.
func (tk *statsTicker) ticks(n int) int64 {
	before := tk.rt.statsCalls.Load()
	for range n {
		tk.p.Tick(context.Background())
		tk.p.runtime.wait()
	}
	return tk.rt.statsCalls.Load() - before
}

// TestRuntimeStatsCadence: in the collector mode the runtime's stats are
// asked once per period, and at every tick only while a running container
// is missing from them or has no cgroup; from ListPodSandboxStats, or with
// a period of 0, at every tick.
func TestRuntimeStatsCadence(t *testing.T) {
	t.Run("steady pods: once per period", func(t *testing.T) {
		tk := newStatsTicker(gatedView("a", "b"), StatsSourceCollector, time.Hour, "a", "b")
		if calls := tk.ticks(5); calls != 1 {
			t.Errorf("5 ticks over steady pods made %d stats calls, want 1 (the first tick's)", calls)
		}
		if !hasOnlyPods(t, tk.p.Current(), "a", "b") {
			t.Errorf("snapshot lacks pods a and b")
		}
	})
	t.Run("a new container: at the next ticks until they cover it", func(t *testing.T) {
		tk := newStatsTicker(gatedView("a", "b", "c"), StatsSourceCollector, time.Hour, "a", "b")
		tk.ticks(2)
		tk.rt.setPods("a", "b", "c")
		// The tick that sees c has no stats of it; the next starts a
		// refresh, which that tick or the one after uses.
		if calls := tk.ticks(3); calls < 1 || calls > 2 {
			t.Errorf("3 ticks after a new container made %d stats calls, want 1 or 2", calls)
		}
		if calls := tk.ticks(3); calls != 0 {
			t.Errorf("3 more ticks, the new container covered, made %d stats calls, want 0", calls)
		}
	})
	t.Run("a container without a cgroup: every tick", func(t *testing.T) {
		tk := newStatsTicker(gatedView("a"), StatsSourceCollector, time.Hour, "a", "d")
		if calls := tk.ticks(4); calls != 4 {
			t.Errorf("4 ticks with a container only the runtime measures made %d stats calls, want 4", calls)
		}
	})
	t.Run("period 0: every tick", func(t *testing.T) {
		tk := newStatsTicker(gatedView("a"), StatsSourceCollector, 0, "a")
		if calls := tk.ticks(4); calls != 4 {
			t.Errorf("4 ticks with --runtime-stats-period=0 made %d stats calls, want 4", calls)
		}
	})
}

// TestRuntimeStatsCadenceCRI: ListPodSandboxStats is asked at every tick
// whatever the period: it is the pods' only source.
func TestRuntimeStatsCadenceCRI(t *testing.T) {
	rt := &sandboxStatsCounter{gatedRuntime: &gatedRuntime{}}
	rt.setPods("a")
	p := gatedProvider(rt, StatsSourceCRI)
	p.runtime.statsPeriod = time.Hour
	for range 4 {
		p.Tick(context.Background())
		p.runtime.wait()
	}
	if calls := rt.calls.Load(); calls != 4 {
		t.Errorf("4 ticks under --stats-source=cri made %d ListPodSandboxStats calls, want 4", calls)
	}
}

type sandboxStatsCounter struct {
	*gatedRuntime
	calls atomic.Int64
}

func (r *sandboxStatsCounter) ListPodSandboxStats(ctx context.Context) ([]*runtimeapi.PodSandboxStats, error) {
	r.calls.Add(1)
	return r.gatedRuntime.ListPodSandboxStats(ctx)
}

func TestStatsDue(t *testing.T) {
	now := time.Unix(1000, 0)
	tests := []struct {
		name    string
		newest  *runtimeStats
		started time.Time
		wanted  bool
		want    bool
	}{
		{"none yet", nil, time.Time{}, false, true},
		{"within the period", &runtimeStats{}, now.Add(-30 * time.Second), false, false},
		{"period over", &runtimeStats{}, now.Add(-time.Minute), false, true},
		{"a container wants them", &runtimeStats{}, now.Add(-time.Second), true, true},
		{"from ListPodSandboxStats", &runtimeStats{strict: true}, now.Add(-time.Second), false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &runtimeRefresh{statsPeriod: time.Minute, statsStarted: tt.started}
			r.stats.latest = tt.newest
			if got := r.statsDue(now, tt.wanted); got != tt.want {
				t.Errorf("statsDue = %v, want %v", got, tt.want)
			}
		})
	}
}
