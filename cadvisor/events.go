package cadvisor

import (
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// EventType is the kind of a container event, named as cAdvisor's info/v1
// EventType.
type EventType string

// The event types, cAdvisor's.
const (
	// EventOOM: a cgroup hit its memory limit and the kernel OOM-killed a
	// process under it.
	EventOOM EventType = "oom"
	// EventOOMKill: a process of the cgroup was OOM-killed.
	EventOOMKill EventType = "oomKill"
	// EventContainerCreation and EventContainerDeletion: discovery found a
	// cgroup, or found it gone.
	EventContainerCreation EventType = "containerCreation"
	EventContainerDeletion EventType = "containerDeletion"
)

// EventTypes lists every event type, in cAdvisor's order.
func EventTypes() []EventType {
	return []EventType{EventOOM, EventOOMKill, EventContainerCreation, EventContainerDeletion}
}

// Event is one container event.
type Event struct {
	Type EventType
	// Cgroup is the cgroup the event happened to: the one whose limit was
	// hit for EventOOM, the killed process's for EventOOMKill.
	Cgroup string
	Time   time.Time
	// PID and ProcessName name the process an EventOOMKill killed when the
	// kernel log said; zero when only a cgroup's oom_kill counter did.
	PID         int
	ProcessName string
	// ExitCode is an EventContainerDeletion's container exit code, -1 when
	// unknown.
	ExitCode int
	// Pod names the pod and container Cgroup belongs to, where known.
	Pod EventPod

	// seq orders events added with the same Time.
	seq uint64
}

// EventPod is the Kubernetes identity of an event's cgroup. Container is
// empty for a pod cgroup and a pod's sandbox; every field is empty outside
// pods.
type EventPod struct {
	Namespace, Name, UID, Container string
}

// EventLimits bound the events an EventStore keeps, per type, like
// cAdvisor's --event_storage_event_limit and --event_storage_age_limit:
// Count and Age name a type's limits, DefaultCount and DefaultAge apply to
// the types they do not name. A count or age of 0 keeps no events of the
// type; watches still see them.
type EventLimits struct {
	DefaultCount int
	DefaultAge   time.Duration
	Count        map[EventType]int
	Age          map[EventType]time.Duration
}

func (l EventLimits) of(t EventType) (count int, age time.Duration) {
	count, age = l.DefaultCount, l.DefaultAge
	if c, ok := l.Count[t]; ok {
		count = c
	}
	if a, ok := l.Age[t]; ok {
		age = a
	}
	return max(count, 0), max(age, 0)
}

// EventQuery selects events: cAdvisor's events.Request.
type EventQuery struct {
	// Types are the types wanted; none selects nothing.
	Types []EventType
	// Start and End bound the events' times, both inclusive; zero leaves
	// that side open. A watch takes neither.
	Start, End time.Time
	// Max is how many of the newest matching events Query returns; -1
	// returns all. Watches ignore it.
	Max int
	// Cgroup selects the events of one cgroup, with Subcontainers those of
	// the cgroups below it too; "" selects every cgroup.
	Cgroup        string
	Subcontainers bool
}

func (q *EventQuery) matches(e *Event) bool {
	if !q.Start.IsZero() && e.Time.Before(q.Start) {
		return false
	}
	if !q.End.IsZero() && e.Time.After(q.End) {
		return false
	}
	if !slices.Contains(q.Types, e.Type) {
		return false
	}
	switch {
	case q.Cgroup == "":
		return true
	case q.Subcontainers:
		return q.Cgroup == "/" || strings.HasPrefix(e.Cgroup+"/", strings.TrimSuffix(q.Cgroup, "/")+"/")
	}
	return e.Cgroup == q.Cgroup
}

// Errors of EventStore.Watch.
var (
	ErrEventStoreClosed = errors.New("the event store is shut down")
	ErrTooManyWatches   = errors.New("too many event watches")
	ErrWatchTimeRange   = errors.New("a watch takes no start or end time")
)

const (
	// defaultWatchBuffer is how many events a watch may fall behind before
	// it is dropped: a burst of pod churn (one creation and one deletion
	// per container) fits, a client that stopped reading does not.
	defaultWatchBuffer = 256
	// maxWatches bounds the open watches, since every event is offered to
	// each of them under the store's lock.
	maxWatches = 128
)

// EventStore keeps recent events, bounded per type in count and age, and
// hands new ones to watches. Adding never blocks: a watch whose buffer is
// full is dropped instead of waited for, unlike cAdvisor's, whose event
// manager blocks every event source behind its slowest watcher.
type EventStore struct {
	limits EventLimits
	now    func() time.Time
	buffer int

	mu      sync.Mutex
	byType  map[EventType][]Event // each sorted by time, then seq
	seq     uint64
	watches map[*EventWatch]struct{}
	closed  bool
}

// NewEventStore returns an empty store keeping events within limits.
func NewEventStore(limits EventLimits) *EventStore {
	return &EventStore{
		limits:  limits,
		now:     time.Now,
		buffer:  defaultWatchBuffer,
		byType:  map[EventType][]Event{},
		watches: map[*EventWatch]struct{}{},
	}
}

// Add stores e (unless its type's limits keep none) and offers it to every
// watch it matches. A watch that has no room left is dropped.
func (s *EventStore) Add(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	e.seq = s.seq
	if count, age := s.limits.of(e.Type); count > 0 && age > 0 {
		s.byType[e.Type] = insertEvent(s.byType[e.Type], e)
		s.evictLocked(e.Type)
	}
	for w := range s.watches {
		if !w.query.matches(&e) {
			continue
		}
		select {
		case w.ch <- e:
		default:
			w.dropped.Store(true)
			s.endLocked(w)
		}
	}
}

// insertEvent inserts e in time order; events mostly come in order, so
// the search starts from the end.
func insertEvent(events []Event, e Event) []Event {
	i := len(events)
	for i > 0 && e.Time.Before(events[i-1].Time) {
		i--
	}
	return slices.Insert(events, i, e)
}

// evictLocked drops the events of type t beyond its count or older than its
// age.
func (s *EventStore) evictLocked(t EventType) {
	events := s.byType[t]
	count, age := s.limits.of(t)
	cutoff := s.now().Add(-age)
	drop := sort.Search(len(events), func(i int) bool { return !events[i].Time.Before(cutoff) })
	drop = max(drop, len(events)-count)
	if drop > 0 {
		clear(events[:drop]) // release the strings they hold
		events = events[drop:]
	}
	if len(events) == 0 {
		delete(s.byType, t)
		return
	}
	s.byType[t] = events
}

// Query returns the newest q.Max events matching q (all with -1), oldest
// first. Unlike cAdvisor, which cuts to max_events before filtering by
// cgroup, the cut comes last, so that a query for one cgroup gets its
// newest events rather than fewer.
func (s *EventStore) Query(q EventQuery) []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := []Event{}
	for i, t := range q.Types {
		if _, ok := s.byType[t]; !ok || slices.Contains(q.Types[:i], t) {
			continue
		}
		s.evictLocked(t)
		for i := range s.byType[t] {
			if e := &s.byType[t][i]; q.matches(e) {
				out = append(out, *e)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return eventBefore(&out[i], &out[j]) })
	if q.Max >= 0 && len(out) > q.Max {
		out = out[len(out)-q.Max:]
	}
	return out
}

func eventBefore(a, b *Event) bool {
	if !a.Time.Equal(b.Time) {
		return a.Time.Before(b.Time)
	}
	return a.seq < b.seq
}

// Watch returns a watch that receives every event added from now on that
// matches q, until it is stopped, dropped for falling behind, or the store
// is closed.
func (s *EventStore) Watch(q EventQuery) (*EventWatch, error) {
	if !q.Start.IsZero() || !q.End.IsZero() {
		return nil, ErrWatchTimeRange
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.closed:
		return nil, ErrEventStoreClosed
	case len(s.watches) >= maxWatches:
		return nil, ErrTooManyWatches
	}
	w := &EventWatch{store: s, query: q, ch: make(chan Event, s.buffer), done: make(chan struct{})}
	s.watches[w] = struct{}{}
	return w, nil
}

// Close ends every watch (their channels close with Dropped false) and
// refuses new ones. Events are still stored.
func (s *EventStore) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	for w := range s.watches {
		s.endLocked(w)
	}
}

func (s *EventStore) endLocked(w *EventWatch) {
	if _, ok := s.watches[w]; ok {
		delete(s.watches, w)
		close(w.ch)
		close(w.done)
	}
}

// EventWatch receives the events of one EventStore.Watch.
type EventWatch struct {
	store   *EventStore
	query   EventQuery
	ch      chan Event
	done    chan struct{}
	dropped atomic.Bool
}

// Events delivers the watched events. It is closed when the watch ends:
// stopped, dropped, or the store closed.
func (w *EventWatch) Events() <-chan Event { return w.ch }

// Done is closed when the watch ends, while Events may still hold the
// events it had room for: a consumer busy elsewhere learns of a drop
// without reading them.
func (w *EventWatch) Done() <-chan struct{} { return w.done }

// Dropped reports whether the store ended the watch because its buffer
// was full: events were lost.
func (w *EventWatch) Dropped() bool { return w.dropped.Load() }

// Stop ends the watch; it may be called more than once.
func (w *EventWatch) Stop() {
	w.store.mu.Lock()
	defer w.store.mu.Unlock()
	w.store.endLocked(w)
}
