package cadvisor

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

var eventsT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newTestEventStore returns a store whose clock the test sets.
func newTestEventStore(limits EventLimits, now *time.Time) *EventStore {
	s := NewEventStore(limits)
	s.now = func() time.Time { return *now }
	return s
}

func roomyLimits() EventLimits {
	return EventLimits{DefaultCount: 1000, DefaultAge: 24 * time.Hour}
}

func allTypes(cgroup string, subcontainers bool) EventQuery {
	return EventQuery{Types: EventTypes(), Max: -1, Cgroup: cgroup, Subcontainers: subcontainers}
}

func ev(t EventType, cgroup string, at time.Duration) Event {
	return Event{Type: t, Cgroup: cgroup, Time: eventsT0.Add(at)}
}

// describe renders events compactly for comparisons.
func describe(events []Event) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = fmt.Sprintf("%s %s +%s", e.Type, e.Cgroup, e.Time.Sub(eventsT0))
	}
	return out
}

func assertEvents(t *testing.T, what string, got []Event, want ...string) {
	t.Helper()
	g := describe(got)
	if fmt.Sprint(g) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %q\nwant %q", what, g, want)
	}
}

func TestEventStoreCountLimitPerType(t *testing.T) {
	now := eventsT0.Add(time.Hour)
	s := newTestEventStore(EventLimits{
		DefaultCount: 2, DefaultAge: 24 * time.Hour,
		Count: map[EventType]int{EventOOMKill: 3},
	}, &now)
	for i := range 5 {
		s.Add(ev(EventContainerCreation, "/c", time.Duration(i)*time.Second))
		s.Add(ev(EventOOMKill, "/c", time.Duration(i)*time.Second))
	}
	assertEvents(t, "creations (default limit 2)", s.Query(EventQuery{Types: []EventType{EventContainerCreation}, Max: -1}),
		"containerCreation /c +3s", "containerCreation /c +4s")
	assertEvents(t, "oom kills (own limit 3)", s.Query(EventQuery{Types: []EventType{EventOOMKill}, Max: -1}),
		"oomKill /c +2s", "oomKill /c +3s", "oomKill /c +4s")
}

func TestEventStoreAgeLimit(t *testing.T) {
	now := eventsT0
	s := newTestEventStore(EventLimits{
		DefaultCount: 100, DefaultAge: time.Minute,
		Age: map[EventType]time.Duration{EventOOM: time.Hour},
	}, &now)
	s.Add(ev(EventContainerDeletion, "/c", 0))
	s.Add(ev(EventOOM, "/c", 0))
	s.Add(ev(EventContainerDeletion, "/c", 30*time.Second))
	now = eventsT0.Add(70 * time.Second)
	// Ageing out happens on Query too, not only when the type gets a new
	// event.
	assertEvents(t, "after 70s", s.Query(allTypes("", false)),
		"oom /c +0s", "containerDeletion /c +30s")
	now = eventsT0.Add(2 * time.Hour)
	assertEvents(t, "after 2h", s.Query(allTypes("", false)))
}

func TestEventStoreZeroLimitStoresNothingButWatchesSeeIt(t *testing.T) {
	for _, limits := range []EventLimits{
		{DefaultCount: 0, DefaultAge: time.Hour},
		{DefaultCount: 10, DefaultAge: 0},
	} {
		now := eventsT0
		s := newTestEventStore(limits, &now)
		w, err := s.Watch(allTypes("", false))
		if err != nil {
			t.Fatal(err)
		}
		s.Add(ev(EventOOMKill, "/c", 0))
		assertEvents(t, fmt.Sprintf("stored with %+v", limits), s.Query(allTypes("", false)))
		if got := len(w.Events()); got != 1 {
			t.Errorf("limits %+v: the watch got %d events, want 1", limits, got)
		}
	}
}

func TestEventStoreQuery(t *testing.T) {
	now := eventsT0.Add(time.Hour)
	s := newTestEventStore(roomyLimits(), &now)
	// Out of order on purpose: creation events carry the cgroup's creation
	// time, which may be older than events already stored.
	s.Add(ev(EventContainerCreation, "/kubepods/pod1/c1", 2*time.Second))
	s.Add(ev(EventContainerCreation, "/kubepods/pod1", 1*time.Second))
	s.Add(ev(EventOOM, "/kubepods/pod1/c1", 3*time.Second))
	s.Add(ev(EventOOMKill, "/kubepods/pod1/c1", 3*time.Second))
	s.Add(ev(EventContainerDeletion, "/kubepods/pod1/c1", 4*time.Second))
	s.Add(ev(EventContainerCreation, "/kubepods/pod10", 5*time.Second))
	s.Add(ev(EventContainerCreation, "/", 0))

	tests := []struct {
		name  string
		query EventQuery
		want  []string
	}{
		{"every cgroup, time order, ties in the order added", allTypes("", false), []string{
			"containerCreation / +0s", "containerCreation /kubepods/pod1 +1s", "containerCreation /kubepods/pod1/c1 +2s",
			"oom /kubepods/pod1/c1 +3s", "oomKill /kubepods/pod1/c1 +3s", "containerDeletion /kubepods/pod1/c1 +4s",
			"containerCreation /kubepods/pod10 +5s",
		}},
		{"one cgroup alone", allTypes("/kubepods/pod1", false), []string{"containerCreation /kubepods/pod1 +1s"}},
		{"subcontainers stop at a path boundary", allTypes("/kubepods/pod1", true), []string{
			"containerCreation /kubepods/pod1 +1s", "containerCreation /kubepods/pod1/c1 +2s",
			"oom /kubepods/pod1/c1 +3s", "oomKill /kubepods/pod1/c1 +3s", "containerDeletion /kubepods/pod1/c1 +4s",
		}},
		{"a trailing slash is the same cgroup", allTypes("/kubepods/pod1/", true), []string{
			"containerCreation /kubepods/pod1 +1s", "containerCreation /kubepods/pod1/c1 +2s",
			"oom /kubepods/pod1/c1 +3s", "oomKill /kubepods/pod1/c1 +3s", "containerDeletion /kubepods/pod1/c1 +4s",
		}},
		{"/ alone is the root's own events", allTypes("/", false), []string{"containerCreation / +0s"}},
		{"/ with subcontainers is everything", EventQuery{Types: []EventType{EventContainerCreation}, Max: -1, Cgroup: "/", Subcontainers: true}, []string{
			"containerCreation / +0s", "containerCreation /kubepods/pod1 +1s", "containerCreation /kubepods/pod1/c1 +2s", "containerCreation /kubepods/pod10 +5s",
		}},
		{"types", EventQuery{Types: []EventType{EventOOMKill, EventContainerDeletion, EventOOMKill}, Max: -1}, []string{
			"oomKill /kubepods/pod1/c1 +3s", "containerDeletion /kubepods/pod1/c1 +4s",
		}},
		{"no types, no events", EventQuery{Max: -1}, nil},
		{"start and end are inclusive", EventQuery{Types: EventTypes(), Max: -1, Start: eventsT0.Add(2 * time.Second), End: eventsT0.Add(4 * time.Second)}, []string{
			"containerCreation /kubepods/pod1/c1 +2s", "oom /kubepods/pod1/c1 +3s", "oomKill /kubepods/pod1/c1 +3s", "containerDeletion /kubepods/pod1/c1 +4s",
		}},
		{"max keeps the newest", EventQuery{Types: EventTypes(), Max: 2}, []string{
			"containerDeletion /kubepods/pod1/c1 +4s", "containerCreation /kubepods/pod10 +5s",
		}},
		// cAdvisor cuts to max_events per type before filtering by cgroup,
		// which would leave this query with nothing.
		{"max counts after the cgroup filter", EventQuery{Types: []EventType{EventContainerCreation}, Max: 1, Cgroup: "/kubepods/pod1"}, []string{
			"containerCreation /kubepods/pod1 +1s",
		}},
		{"max 0", EventQuery{Types: EventTypes(), Max: 0}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := s.Query(tt.query)
			if got == nil {
				t.Error("Query returned nil, want an empty slice (it encodes as [])")
			}
			assertEvents(t, "query", got, tt.want...)
		})
	}
}

// TestEventStoreQueryCopies checks that a query's result is the caller's:
// eviction reuses the store's arrays.
func TestEventStoreQueryCopies(t *testing.T) {
	now := eventsT0.Add(time.Hour)
	s := newTestEventStore(EventLimits{DefaultCount: 1, DefaultAge: 24 * time.Hour}, &now)
	s.Add(ev(EventOOM, "/a", 0))
	got := s.Query(allTypes("", false))
	s.Add(ev(EventOOM, "/b", time.Second))
	assertEvents(t, "an earlier result", got, "oom /a +0s")
}

func TestEventWatch(t *testing.T) {
	now := eventsT0
	s := newTestEventStore(roomyLimits(), &now)
	pod := EventQuery{Types: []EventType{EventOOMKill, EventContainerDeletion}, Cgroup: "/kubepods/pod1", Subcontainers: true}
	w, err := s.Watch(pod)
	if err != nil {
		t.Fatal(err)
	}
	s.Add(ev(EventOOMKill, "/kubepods/pod1/c1", 0))
	s.Add(ev(EventOOMKill, "/kubepods/pod2/c1", 0))           // another pod
	s.Add(ev(EventContainerCreation, "/kubepods/pod1/c1", 0)) // another type
	s.Add(ev(EventContainerDeletion, "/kubepods/pod1/c1", time.Second))
	w.Stop()
	w.Stop() // twice is fine
	var got []Event
	for e := range w.Events() {
		got = append(got, e)
	}
	assertEvents(t, "watched", got, "oomKill /kubepods/pod1/c1 +0s", "containerDeletion /kubepods/pod1/c1 +1s")
	if w.Dropped() {
		t.Error("a stopped watch reports Dropped")
	}
	s.Add(ev(EventOOMKill, "/kubepods/pod1/c1", 2*time.Second)) // after Stop: no send on a closed channel
}

func TestEventWatchRejectsTimeRange(t *testing.T) {
	s := NewEventStore(roomyLimits())
	for _, q := range []EventQuery{{Start: eventsT0}, {End: eventsT0}} {
		if _, err := s.Watch(q); !errors.Is(err, ErrWatchTimeRange) {
			t.Errorf("Watch(%+v) = %v, want ErrWatchTimeRange", q, err)
		}
	}
}

// TestEventWatchSlowIsDropped checks that a watch that does not keep up is
// dropped rather than waited for, and that a watch that does keep up keeps
// every event.
func TestEventWatchSlowIsDropped(t *testing.T) {
	now := eventsT0
	s := newTestEventStore(roomyLimits(), &now)
	s.buffer = 4
	slow, err := s.Watch(allTypes("", false))
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(allTypes("", false))
	if err != nil {
		t.Fatal(err)
	}
	const n = 100
	var received []Event
	added := make(chan struct{})
	go func() {
		defer close(added)
		for i := range n {
			s.Add(ev(EventOOMKill, "/c", time.Duration(i)))
			received = append(received, <-fast.Events())
		}
	}()
	// Add must return though slow is never read: a deadline, not a
	// measurement, so that a blocked Add fails the test instead of hanging.
	select {
	case <-added:
	case <-time.After(10 * time.Second):
		t.Fatal("Add blocked on a watch that does not read")
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow watch's Done is open")
	}
	if !slow.Dropped() {
		t.Fatal("the slow watch was not dropped")
	}
	kept := 0
	for range slow.Events() { // closed, with what it had room for
		kept++
	}
	if kept != s.buffer {
		t.Errorf("the dropped watch holds %d events, want its buffer of %d", kept, s.buffer)
	}
	if fast.Dropped() || len(received) != n {
		t.Errorf("the watch that kept up: dropped %v, %d of %d events", fast.Dropped(), len(received), n)
	}
	fast.Stop()
}

func TestEventStoreClose(t *testing.T) {
	now := eventsT0
	s := newTestEventStore(roomyLimits(), &now)
	w, err := s.Watch(allTypes("", false))
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	select {
	case _, open := <-w.Events():
		if open {
			t.Fatal("an event after Close")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end the watch")
	}
	if w.Dropped() {
		t.Error("a watch ended by Close reports Dropped")
	}
	w.Stop() // after Close is fine
	if _, err := s.Watch(allTypes("", false)); !errors.Is(err, ErrEventStoreClosed) {
		t.Errorf("Watch after Close = %v, want ErrEventStoreClosed", err)
	}
	s.Add(ev(EventOOM, "/c", 0))
	assertEvents(t, "stored after Close", s.Query(allTypes("", false)), "oom /c +0s")
}

func TestEventStoreWatchLimit(t *testing.T) {
	s := NewEventStore(roomyLimits())
	watches := make([]*EventWatch, 0, maxWatches)
	for range maxWatches {
		w, err := s.Watch(allTypes("", false))
		if err != nil {
			t.Fatal(err)
		}
		watches = append(watches, w)
	}
	if _, err := s.Watch(allTypes("", false)); !errors.Is(err, ErrTooManyWatches) {
		t.Fatalf("watch %d = %v, want ErrTooManyWatches", maxWatches+1, err)
	}
	watches[0].Stop()
	if _, err := s.Watch(allTypes("", false)); err != nil {
		t.Errorf("a watch after one stopped: %v", err)
	}
}

// TestEventStoreConcurrent runs adders, queries and watches that come and
// go at once (for -race), and checks that no goroutine is left behind.
func TestEventStoreConcurrent(t *testing.T) {
	before := runtime.NumGoroutine()
	s := NewEventStore(EventLimits{DefaultCount: 50, DefaultAge: time.Hour})
	var adders, others sync.WaitGroup
	addersDone := make(chan struct{})
	for g := range 4 {
		adders.Add(1)
		go func() {
			defer adders.Done()
			for i := range 500 {
				s.Add(Event{Type: EventTypes()[i%4], Cgroup: fmt.Sprintf("/p%d/c%d", g, i%7), Time: time.Now()})
			}
		}()
		others.Add(2)
		go func() {
			defer others.Done()
			for range 100 {
				s.Query(allTypes(fmt.Sprintf("/p%d", g), true))
			}
		}()
		go func() {
			defer others.Done()
			for range 50 {
				w, err := s.Watch(allTypes("/", true))
				if err != nil {
					continue
				}
				// A few events each, or none once the adders are done.
				for range 3 {
					select {
					case <-w.Events():
					case <-addersDone:
					}
				}
				w.Stop()
			}
		}()
	}
	adders.Wait()
	close(addersDone)
	others.Wait()
	s.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the test, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
