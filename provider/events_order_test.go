package provider

import (
	"fmt"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// The sequences below are those of the cgroup v2 VM's systemd runs
// (bin/v2vm/evidence/events-*.log): the victim's cgroup is deleted at once,
// and the housekeeping pass samples the cgroups concurrently, so that one
// kill may show in a cgroup's counter a pass before or after its parent's.

func (fx *feedFixture) kmsgKill(cgroup string, pid int) {
	fx.feed.RecordOOMKill(cadvisor.OOMKill{Time: fx.now, PID: pid, ProcessName: "hog", Cgroup: cgroup, LimitCgroup: cgroup})
}

// orderBase is the baseline of the order tests: the pod with app and side.
var orderBase = counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 5, evApp, 5, evSide, 0)

// TestEventFeedKillBeforeDeletion: a watcher sees a container's oom and
// oomKill before its deletion, however late the kill is known.
func TestEventFeedKillBeforeDeletion(t *testing.T) {
	named := runtimeWith("app", "side")
	afterKill := counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evSide, 0) // app gone
	tests := []struct {
		name string
		run  func(fx *feedFixture)
		want []string
	}{
		{"deletion, the pod's counter, then the kernel log line", func(fx *feedFixture) {
			fx.cgroup(evApp, true)
			fx.tick(fx.oomView(afterKill), nil, named)
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(afterKill), nil, named)
		}, []string{"oom " + evApp + " shop/web/app", "oomKill " + evApp + " shop/web/app pid=42 hog", "containerDeletion " + evApp + " shop/web/app exit=-1"}},
		{"deletion, then the kernel log line before the tick", func(fx *feedFixture) {
			fx.cgroup(evApp, true)
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(afterKill), nil, named)
			fx.tick(fx.oomView(afterKill), nil, named)
		}, []string{"oom " + evApp + " shop/web/app", "oomKill " + evApp + " shop/web/app pid=42 hog", "containerDeletion " + evApp + " shop/web/app exit=-1"}},
		{"app's counter, deletion, then the kernel log line", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.cgroup(evApp, true)
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(afterKill), nil, named)
		}, []string{"oom " + evApp + " shop/web/app", "oomKill " + evApp + " shop/web/app pid=42 hog", "containerDeletion " + evApp + " shop/web/app exit=-1"}},
		{"deletion and the counters alone", func(fx *feedFixture) {
			fx.cgroup(evApp, true)
			fx.tick(fx.oomView(afterKill), nil, named)
			fx.tick(fx.oomView(afterKill), nil, named)
			fx.tick(fx.oomView(afterKill), nil, named)
		}, []string{"oomKill " + evPod1 + " shop/web/ pid=0 ", "containerDeletion " + evApp + " shop/web/app exit=-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFeedFixture(t)
			watch, err := fx.feed.Watch(cadvisor.EventQuery{Types: cadvisor.EventTypes(), Cgroup: "/", Subcontainers: true})
			if err != nil {
				t.Fatal(err)
			}
			defer watch.Stop()
			fx.tick(fx.oomView(orderBase), nil, named)
			tt.run(fx)
			if got := streamed(watch); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("streamed:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// streamed is what watch has received, in order: the store hands an event
// to its watches within Add.
func streamed(watch *cadvisor.EventWatch) []string {
	var out []string
	for {
		select {
		case e := <-watch.Events():
			out = append(out, renderEvent(e))
		default:
			return out
		}
	}
}

// TestEventFeedDeletionWaitsOneTick: a deletion nothing holds is stored
// by the next tick.
func TestEventFeedDeletionWaitsOneTick(t *testing.T) {
	fx := newFeedFixture(t)
	named := runtimeWith("app", "side")
	fx.tick(fx.oomView(orderBase), nil, named)
	fx.cgroup(evSide, true)
	fx.expect("before the tick")
	fx.tick(fx.oomView(orderBase), nil, named)
	fx.expect("after it", "containerDeletion "+evSide+" shop/web/side exit=-1")
}

// TestEventFeedOOMAncestorsOutOfStep: one kill is one oomKill when the
// ancestors' counters show it a pass later or earlier than the victim's.
func TestEventFeedOOMAncestorsOutOfStep(t *testing.T) {
	named := runtimeWith("app", "side")
	killed := counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 6, evSide, 0)
	tests := []struct {
		name string
		run  func(fx *feedFixture)
		want []string
	}{
		{"ancestors a pass late, the kernel log", func(fx *feedFixture) {
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"ancestors a pass late, the victim gone, the kernel log", func(fx *feedFixture) {
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"ancestors a pass late, counters alone", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
		}, []string{evApp + " pid=0 +2s"}},
		{"the victim a pass late, the kernel log", func(fx *feedFixture) {
			fx.kmsgKill(evApp, 42)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 6, "/kubepods/burstable", 6, evPod1, 6, evApp, 5, evSide, 0)), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
		}, []string{evApp + " pid=42 +1s"}},
		{"a later kill in an ancestor still counts", func(fx *feedFixture) {
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 5, "/kubepods/burstable", 5, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(killed), nil, named)
			for range creditTicks {
				fx.tick(fx.oomView(killed), nil, named)
			}
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
			fx.tick(fx.oomView(counts("/", 0, "/kubepods", 7, "/kubepods/burstable", 7, evPod1, 6, evApp, 6, evSide, 0)), nil, named)
		}, []string{evApp + " pid=0 +2s", "/kubepods/burstable pid=0 +7s"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFeedFixture(t)
			fx.tick(fx.oomView(orderBase), nil, named)
			tt.run(fx)
			fx.expectKills("oomKill events", tt.want...)
		})
	}
}
