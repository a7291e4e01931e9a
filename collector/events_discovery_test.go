package collector

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

// cgroupEventLog records what discovery reports to Config.OnCgroupEvent.
type cgroupEventLog struct {
	mu     sync.Mutex
	events []CgroupEvent
}

func (l *cgroupEventLog) record(e CgroupEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, e)
}

// of returns the events of the named cgroups, in the order reported.
func (l *cgroupEventLog) of(names ...string) []CgroupEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []CgroupEvent
	for _, e := range l.events {
		if slices.Contains(names, e.Name) {
			out = append(out, e)
		}
	}
	return out
}

// TestLiveCgroupEvents checks that discovery reports the cgroups it adds
// and removes, once each, with the creation time cAdvisor stamps creation
// events with.
func TestLiveCgroupEvents(t *testing.T) {
	lc := newLiveCgroups(t)
	var log cgroupEventLog
	c, err := New(Config{Tracked: []string{lc.parent}, RescanInterval: time.Hour, OnCgroupEvent: log.record})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if got := log.of(lc.parent, "/"); len(got) != 2 || got[0].Removed || got[1].Removed {
		t.Fatalf("initial discovery reported %+v, want / and %s added", got, lc.parent)
	}

	pod, ctr := lc.name("pod1"), lc.name("pod1/ctr")
	before := time.Now().Add(-time.Second) // mtimes have coarse granularity
	lc.mkdir(ctr)
	view := c.Housekeep(ctx) // drains inotify first
	if view.Get(ctr) == nil {
		t.Fatalf("%s not discovered", ctr)
	}
	added := log.of(pod, ctr)
	if len(added) != 2 || added[0].Name != pod || added[1].Name != ctr {
		t.Fatalf("after mkdir: %+v, want %s then %s added", added, pod, ctr)
	}
	for _, e := range added {
		if e.Removed || e.Time != view.Get(e.Name).Spec.CreationTime || e.Time.Before(before) {
			t.Errorf("added %+v, want its spec's creation time %v (after %v)", e, view.Get(e.Name).Spec.CreationTime, before)
		}
	}

	rescanNow(c) // a rescan re-reads specs; it must not report them again
	beforeRemoval := time.Now()
	lc.rmdir(ctr)
	lc.rmdir(pod)
	c.Housekeep(ctx)
	all := log.of(pod, ctr)
	if len(all) != 4 {
		t.Fatalf("after rmdir: %+v, want 2 additions and 2 removals", all)
	}
	for _, e := range all[2:] {
		if !e.Removed || e.Time.Before(beforeRemoval) {
			t.Errorf("removal %+v, want Removed at or after %v", e, beforeRemoval)
		}
	}
}
