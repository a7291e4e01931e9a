package provider

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
)

// EventFeedConfig configures NewEventFeed.
type EventFeedConfig struct {
	// Limits bound the events kept per type.
	Limits cadvisor.EventLimits
	// Interval is the housekeeping interval, which paces how long an event
	// waits for the runtime to name its pod.
	Interval time.Duration
	Logger   klog.Logger
}

// EventFeed gathers cAdvisor's container events into an event store:
// creation and deletion from discovery (CgroupChanged), oom and oomKill from
// the kernel log (RecordOOMKill) and from the cgroups' oom_kill counters
// (each tick), deduplicated so that one kill is one oomKill event. Events
// of a pod's cgroups carry its namespace, name and UID and the container's
// name, from the runtime's view of each tick: an event the newest view
// cannot name yet (a container that just started) waits, together with
// the pod's later events so that their order holds, until a tick names it
// or identityTicks ticks have passed. A deletion of a pod's cgroup also
// waits for the next tick's counters, and while a counter kill in, above
// or below its cgroup waits for its kernel log line, so that the kill's
// events come before it. Everything else is stored at once.
type EventFeed struct {
	store        *cadvisor.EventStore
	logger       klog.Logger
	identityWait time.Duration
	now          func() time.Time

	// index is the newest tick's; nil before the first.
	index atomic.Pointer[eventIndex]

	mu sync.Mutex
	// pending are events waiting for their pod's name, in the order they
	// happened; waiting counts them per pod UID.
	pending []pendingEvent
	waiting map[string]int
	oom     oomTracker
}

type pendingEvent struct {
	event  cadvisor.Event
	podUID string
	since  time.Time
	// named is set once an index named the event: a later index, from
	// after the pod went away, cannot take the names back.
	named bool
	// ticked is set on a deletion once a tick's counters were read after
	// it: a kill before the deletion has shown in them by then.
	ticked bool
}

const (
	// identityTicks and minIdentityWait bound how long an event waits for
	// its pod's name: the runtime's answers arrive beside the tick and may
	// lag it by one.
	identityTicks   = 3
	minIdentityWait = 5 * time.Second
	// maxPendingEvents bounds the waiting events should ticks stall; the
	// oldest is stored unnamed to make room.
	maxPendingEvents = 4096
)

// NewEventFeed returns a feed storing into a new event store.
func NewEventFeed(cfg EventFeedConfig) *EventFeed {
	logger := cfg.Logger
	if logger.GetSink() == nil {
		logger = klog.Background()
	}
	return &EventFeed{
		store:        cadvisor.NewEventStore(cfg.Limits),
		logger:       logger,
		identityWait: max(identityTicks*cfg.Interval, minIdentityWait),
		now:          time.Now,
		waiting:      map[string]int{},
	}
}

// CgroupChanged records discovery's addition or removal of a cgroup as a
// containerCreation or containerDeletion event. It is the collector's
// Config.OnCgroupEvent and never blocks.
func (f *EventFeed) CgroupChanged(change collector.CgroupEvent) {
	ev := cadvisor.Event{Type: cadvisor.EventContainerCreation, Cgroup: change.Name, Time: change.Time}
	if change.Removed {
		ev.Type, ev.ExitCode = cadvisor.EventContainerDeletion, -1
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.addLocked(ev)
}

// RecordOOMKill records a kernel log OOM kill as cAdvisor does, as an oom
// event of the cgroup whose limit was hit and an oomKill event of the
// killed process's cgroup, with its pid and name.
func (f *EventFeed) RecordOOMKill(kill cadvisor.OOMKill) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.oom.kmsgKill(kill.Cgroup)
	f.addLocked(cadvisor.Event{Type: cadvisor.EventOOM, Cgroup: kill.LimitCgroup, Time: kill.Time})
	f.addLocked(cadvisor.Event{Type: cadvisor.EventOOMKill, Cgroup: kill.Cgroup, Time: kill.Time, PID: kill.PID, ProcessName: kill.ProcessName})
	// The kill may have been what a deletion waited for.
	f.releaseLocked(f.index.Load(), f.now())
}

// Query returns the stored events q selects (cadvisor.EventStore.Query).
func (f *EventFeed) Query(q cadvisor.EventQuery) []cadvisor.Event { return f.store.Query(q) }

// Watch starts a watch of the events q selects (cadvisor.EventStore.Watch).
func (f *EventFeed) Watch(q cadvisor.EventQuery) (*cadvisor.EventWatch, error) {
	return f.store.Watch(q)
}

// Close ends every watch; call it at shutdown, so that streaming requests
// end and the servers can stop.
func (f *EventFeed) Close() { f.store.Close() }

// observe is the tick's part: it indexes the tick's names, turns counter
// rises into events, and stores the waiting events the new names name or
// that waited long enough.
func (f *EventFeed) observe(view *cadvisor.View, pods []corev1.Pod, identity *runtimeIdentity) {
	idx := newEventIndex(pods, identity)
	f.index.Store(idx)
	now := f.now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if view != nil {
		for _, ev := range f.oom.observe(view) {
			f.addLocked(ev)
		}
	}
	for i := range f.pending {
		f.pending[i].ticked = true
	}
	f.releaseLocked(idx, now)
}

// addLocked stores ev at once unless it belongs to a pod that has events
// waiting or that the newest index cannot name.
func (f *EventFeed) addLocked(ev cadvisor.Event) {
	uid := podUIDOf(ev.Cgroup)
	if uid == "" {
		f.store.Add(ev)
		return
	}
	p := pendingEvent{event: ev, podUID: uid, since: f.now()}
	p.named = f.index.Load().name(&p.event, uid)
	if p.named && f.waiting[uid] == 0 && ev.Type != cadvisor.EventContainerDeletion {
		f.store.Add(p.event)
		return
	}
	f.waiting[uid]++
	if i := f.heldDeletionLocked(ev); i >= 0 {
		// A kill known late goes before the deletion it held; the
		// caller releases them.
		f.pending = slices.Insert(f.pending, i, p)
		return
	}
	f.pending = append(f.pending, p)
	if len(f.pending) > maxPendingEvents {
		f.logger.V(2).Info("Too many events waiting for their pod's name; storing the oldest unnamed", "cgroup", f.pending[0].event.Cgroup)
		f.storeLocked(f.pending[0])
		clear(f.pending[:1])
		f.pending = f.pending[1:]
	}
}

// heldDeletionLocked is the position of the first waiting deletion that a
// kill event ev belongs before: of ev's cgroup, above or below it; -1 if
// none or ev is no kill.
func (f *EventFeed) heldDeletionLocked(ev cadvisor.Event) int {
	if ev.Type != cadvisor.EventOOM && ev.Type != cadvisor.EventOOMKill {
		return -1
	}
	return slices.IndexFunc(f.pending, func(p pendingEvent) bool {
		d := p.event.Cgroup
		return p.event.Type == cadvisor.EventContainerDeletion && (cgroupWithin(ev.Cgroup, d) || cgroupWithin(d, ev.Cgroup))
	})
}

// releaseLocked stores, in order, every waiting event that idx names or
// that waited identityWait, unless an earlier event of its pod still waits.
// A deletion also waits for a tick and for the counter kills that may be
// its cgroup's (at most identityWait too).
func (f *EventFeed) releaseLocked(idx *eventIndex, now time.Time) {
	var blocked map[string]bool
	kept := f.pending[:0]
	for _, p := range f.pending {
		if !p.named {
			p.named = idx.name(&p.event, p.podUID)
		}
		waited := now.Sub(p.since) >= f.identityWait
		held := p.event.Type == cadvisor.EventContainerDeletion && (!p.ticked || f.oom.pendingWithin(p.event.Cgroup))
		if !blocked[p.podUID] && (p.named || waited) && (!held || waited) {
			f.storeLocked(p)
			continue
		}
		if blocked == nil {
			blocked = map[string]bool{}
		}
		blocked[p.podUID] = true
		kept = append(kept, p)
	}
	clear(f.pending[len(kept):])
	f.pending = kept
}

func (f *EventFeed) storeLocked(p pendingEvent) {
	f.store.Add(p.event)
	if f.waiting[p.podUID]--; f.waiting[p.podUID] <= 0 {
		delete(f.waiting, p.podUID)
	}
}

// observeEvents hands one tick's view, /pods pods and runtime view to the
// event feed, if there is one.
func (p *Provider) observeEvents(view *cadvisor.View, pods []corev1.Pod) {
	if p.cfg.Events != nil {
		p.cfg.Events.observe(view, pods, p.lastIdentity)
	}
}
