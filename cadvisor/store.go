package cadvisor

import (
	"encoding/binary"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// entry is one tracked cgroup. Discovery replaces its state; only Housekeep
// (one pass at a time) touches ring and failing.
type entry struct {
	name string
	// pod is the nearest pod-level cgroup at or above name ("" outside pods);
	// its network comes from a process found here.
	pod   string
	state atomic.Pointer[entryState]
	// gen changes whenever the cgroup's directories change or it is
	// removed, so that a sample read across such a change is discarded.
	gen     atomic.Uint64
	removed atomic.Bool

	ring    sampleRing
	failing bool
}

// sampleRing keeps the newest samples of one cgroup, bounded in count and
// age: the newest two as Samples, the older ones as a history (history.go).
type sampleRing struct {
	latest, previous *Sample
	// log[start:] is the history of the n samples before previous, at
	// most limit. Records are only ever appended, never written over, so
	// the part a view published stays as it was; when the array is full
	// the live records move to a new one, half as large again, so that
	// one move serves several ticks.
	log      []byte
	start    int
	n, limit int
}

// newSampleRing keeps capacity samples: two Samples and capacity-2
// encoded ones.
func newSampleRing(capacity int) sampleRing {
	return sampleRing{limit: max(capacity-2, 0)}
}

// push adds s as the newest sample and evicts what falls out of capacity
// or retention, but never one of the last two samples: usageNanoCores
// needs both, and with a retention close to the interval a tick that comes
// a little late would otherwise leave one sample and no rate every other
// tick.
func (r *sampleRing) push(s *Sample, retention time.Duration) {
	if r.previous != nil && r.limit > 0 {
		if r.n == r.limit {
			r.dropOldest()
		}
		r.appendOlder(r.previous, r.latest)
	}
	r.previous, r.latest = r.latest, s
	for r.n > 0 && s.Timestamp.Sub(oldestTime(r.log[r.start:], r.previous)) > retention {
		r.dropOldest()
	}
}

// appendOlder appends s, which next follows, to the history.
func (r *sampleRing) appendOlder(s, next *Sample) {
	var scratch [maxStackRecord]byte
	record := encodeSample(scratch[:0], s, next)
	size := recordSize(record)
	if cap(r.log)-len(r.log) < size {
		live := r.log[r.start:]
		moved := slices.Grow([]byte(nil), (len(live)+size)*3/2)
		r.log, r.start = append(moved, live...), 0
	}
	r.log = binary.AppendUvarint(r.log, uint64(len(record)))
	r.log = append(r.log, record...)
	r.n++
}

func (r *sampleRing) dropOldest() {
	_, rest, _ := nextRecord(r.log[r.start:])
	r.start = len(r.log) - len(rest)
	r.n--
}

// len is the number of samples kept.
func (r *sampleRing) len() int {
	switch {
	case r.latest == nil:
		return 0
	case r.previous == nil:
		return 1
	}
	return 2 + r.n
}

// appendNewest appends the newest two samples (or one), oldest first.
func (r *sampleRing) appendNewest(dst []*Sample) []*Sample {
	if r.previous != nil {
		dst = append(dst, r.previous)
	}
	if r.latest != nil {
		dst = append(dst, r.latest)
	}
	return dst
}

// history is the history of the samples before the newest two, relative
// to the previous one; nil when there are none. It is never written
// again, so it can be published.
func (r *sampleRing) history() []byte {
	if r.n == 0 {
		return nil
	}
	return r.log[r.start:len(r.log):len(r.log)]
}

// store is the set of tracked cgroups.
type store struct {
	mu      sync.RWMutex
	entries map[string]*entry
	// sorted caches list(); nil after a change.
	sorted []*entry
}

func newStore() *store {
	return &store{entries: map[string]*entry{}}
}

func (s *store) get(name string) *entry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.entries[name]
}

func (s *store) add(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.entries[e.name]; old != nil {
		old.gen.Add(1)
		old.removed.Store(true)
	}
	s.entries[e.name] = e
	s.sorted = nil
}

func (s *store) remove(e *entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.entries[e.name] == e {
		delete(s.entries, e.name)
		s.sorted = nil
	}
	e.gen.Add(1)
	e.removed.Store(true)
}

// list returns every entry sorted by name, so that passes are
// reproducible. The slice is shared until the next change: do not modify it.
func (s *store) list() []*entry {
	s.mu.RLock()
	sorted := s.sorted
	s.mu.RUnlock()
	if sorted != nil {
		return sorted
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sorted == nil {
		s.sorted = make([]*entry, 0, len(s.entries))
		for _, e := range s.entries {
			s.sorted = append(s.sorted, e)
		}
		sort.Slice(s.sorted, func(i, j int) bool { return s.sorted[i].name < s.sorted[j].name })
	}
	return s.sorted
}

// names returns the tracked names, for rescans.
func (s *store) names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]string, 0, len(s.entries))
	for name := range s.entries {
		out = append(out, name)
	}
	return out
}
