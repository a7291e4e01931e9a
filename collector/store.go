package collector

import (
	"sort"
	"sync"
	"sync/atomic"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
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

	ring    cadvisor.SampleRing
	failing bool
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
