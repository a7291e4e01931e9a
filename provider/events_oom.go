package provider

import (
	"path"
	"sort"
	"strings"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// oomTracker turns the cgroups' oom_kill counters (v2 memory.events, v1
// memory.oom_control) into oomKill events for the kills the kernel log did
// not report, so that one kill is one event whichever way it was seen:
//
//   - A counter rise is attributed to the deepest cgroup that rose: v2
//     counts a kill in every ancestor too, so a cgroup's rise minus the
//     rises of the nearest tracked cgroups below it is its own.
//   - A kernel log kill leaves a credit that the next counter rise of its
//     cgroup, or of an ancestor (the victim's own cgroup may be gone by the
//     next sample), consumes instead of making an event.
//   - A counter rise no credit explains waits one tick for a kernel log
//     line that may be late, then becomes an event.
//   - The pass samples cgroups concurrently, so one kill may show in a
//     cgroup's counter a pass before or after its ancestors' or its
//     descendants'. A kill accounted for where the counters of some tracked
//     cgroups on its path have not shown it yet leaves those cgroups a debt,
//     which their next rises pay instead of making events.
//
// Only the tick goroutine calls observe; kmsgKill comes from the OOM
// watcher. The feed's lock covers both.
type oomTracker struct {
	baselined bool
	// counts are the counters of the last tick, per cgroup.
	counts map[string]uint64
	// credits are kernel log kills no counter has shown yet.
	credits []oomCredit
	// unconfirmed are counter kills no kernel log line has named yet.
	unconfirmed []oomRise
	// debts are kills already accounted for that a cgroup's counter has
	// yet to show, per cgroup.
	debts map[string]oomDebt
}

type oomDebt struct {
	n     uint64
	ticks int
}

type oomCredit struct {
	cgroup string
	ticks  int
}

type oomRise struct {
	cgroup string
	at     time.Time
	n      uint64
	ticks  int
}

const (
	// creditTicks is for how many ticks a kernel log kill is looked for in
	// the counters: a kill between two samples shows at the next one; two
	// more allow for a pass that could not read the cgroup.
	creditTicks = 3
	// confirmTicks is how long a counter rise waits for its kernel log line.
	confirmTicks = 1
	// maxCredits bounds the credits of kills in cgroups that are never
	// sampled while ticks stall.
	maxCredits = 1024
)

// kmsgKill takes a kernel log kill of a process of cgroup: it confirms a
// counter rise that was waiting for it, or leaves a credit for the rise to
// come.
func (t *oomTracker) kmsgKill(cgroup string) {
	for i := range t.unconfirmed {
		if u := &t.unconfirmed[i]; u.n > 0 && cgroupWithin(cgroup, u.cgroup) {
			u.n--
			return
		}
	}
	if len(t.credits) >= maxCredits {
		t.credits = t.credits[1:]
	}
	t.credits = append(t.credits, oomCredit{cgroup: cgroup, ticks: creditTicks})
}

// observe reads one tick's counters and returns the counter kills that are
// now due as events: those of the previous tick no kernel log line
// confirmed. The first tick only records the counters, so that kills from
// before the start are not reported.
func (t *oomTracker) observe(view *cadvisor.View) []cadvisor.Event {
	due := t.takeDue()
	rises := t.rises(view)
	names := make([]string, 0, len(rises))
	for name := range rises {
		names = append(names, name)
	}
	sort.Strings(names) // which credit goes to which rise does not depend on map order
	for _, name := range names {
		n := rises[name] - t.consumeCredits(view, name, rises[name])
		if n > 0 {
			t.unconfirmed = append(t.unconfirmed, oomRise{cgroup: name, at: view.Get(name).Latest().Timestamp, n: n, ticks: confirmTicks})
		}
	}
	t.ageCredits()
	t.ageDebts()
	return due
}

// pendingWithin reports whether a counter kill waits for its kernel log
// line in cgroup, below it or above it: a kill that may yet become an
// event of cgroup's, or of an ancestor's once cgroup's counter is gone.
func (t *oomTracker) pendingWithin(cgroup string) bool {
	for _, u := range t.unconfirmed {
		if u.n > 0 && (cgroupWithin(cgroup, u.cgroup) || cgroupWithin(u.cgroup, cgroup)) {
			return true
		}
	}
	return false
}

// takeDue removes the rises whose wait is over and returns their kills.
func (t *oomTracker) takeDue() []cadvisor.Event {
	var due []cadvisor.Event
	kept := t.unconfirmed[:0]
	for _, u := range t.unconfirmed {
		if u.ticks--; u.ticks > 0 {
			kept = append(kept, u)
			continue
		}
		for range u.n {
			due = append(due, cadvisor.Event{Type: cadvisor.EventOOMKill, Cgroup: u.cgroup, Time: u.at})
		}
	}
	clear(t.unconfirmed[len(kept):])
	t.unconfirmed = kept
	return due
}

// rises returns, per cgroup, the kills its counter gained since the last
// tick that no tracked cgroup below it gained too.
func (t *oomTracker) rises(view *cadvisor.View) map[string]uint64 {
	if t.counts == nil {
		t.counts = map[string]uint64{}
	}
	var rises map[string]uint64
	for name, info := range view.Cgroups {
		latest := info.Latest()
		if latest == nil {
			continue
		}
		current := latest.Memory.OOMKills
		previous, known := t.counts[name]
		t.counts[name] = current
		if !known && !t.baselined {
			continue
		}
		if current > previous { // a new cgroup starts from 0
			if rises == nil {
				rises = map[string]uint64{}
			}
			rises[name] = current - previous
		}
	}
	for name := range t.counts {
		if view.Get(name) == nil {
			delete(t.counts, name)
		}
	}
	t.baselined = true
	if len(rises) == 0 {
		return nil
	}
	return t.ownRises(view, rises)
}

// ownRises takes the cgroups deepest first: a cgroup's own kills are its
// rise less the kills seen below it; when it rose by less, its counter
// has yet to show the rest (sampled before the kill), a debt; a rise
// beyond the kills below pays its debt first. A cgroup passes to its
// parent the kills newly seen in it or below it, whichever is more.
func (t *oomTracker) ownRises(view *cadvisor.View, rises map[string]uint64) map[string]uint64 {
	seen := make(map[string]uint64, len(rises))
	for name, n := range rises {
		seen[name] = n
	}
	below := map[string]uint64{}
	own := map[string]uint64{}
	for _, name := range deepestFirst(view) {
		n, b := rises[name], below[name]
		if n < b {
			t.owe(name, b-n)
		} else {
			n -= t.pay(name, n-b) // a debt paid is a kill its parent has counted already
			if n > b {
				own[name] = n - b
			}
		}
		if kills := max(n, b); kills > 0 {
			if parent := trackedParent(view, name); parent != "" {
				below[parent] += kills
			}
		}
	}
	return own
}

// deepestFirst lists the view's cgroups, children before their parents.
func deepestFirst(view *cadvisor.View) []string {
	names := make([]string, 0, len(view.Cgroups))
	for name := range view.Cgroups {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool {
		di, dj := strings.Count(names[i], "/"), strings.Count(names[j], "/")
		if di != dj {
			return di > dj
		}
		return names[i] < names[j]
	})
	return names
}

func (t *oomTracker) owe(cgroup string, n uint64) {
	if t.debts == nil {
		t.debts = map[string]oomDebt{}
	}
	t.debts[cgroup] = oomDebt{n: t.debts[cgroup].n + n, ticks: creditTicks}
}

// pay uses up to n of cgroup's debt and returns how much it used.
func (t *oomTracker) pay(cgroup string, n uint64) uint64 {
	d, ok := t.debts[cgroup]
	if !ok {
		return 0
	}
	paid := min(n, d.n)
	if d.n -= paid; d.n == 0 {
		delete(t.debts, cgroup)
	} else {
		t.debts[cgroup] = d
	}
	return paid
}

func (t *oomTracker) ageDebts() {
	for name, d := range t.debts {
		if d.ticks--; d.ticks <= 0 {
			delete(t.debts, name)
		} else {
			t.debts[name] = d
		}
	}
}

// trackedParent is the nearest ancestor of name in view, "" for the root.
func trackedParent(view *cadvisor.View, name string) string {
	for name != "/" && name != "." && name != "" {
		name = path.Dir(name)
		if view.Get(name) != nil {
			return name
		}
	}
	return ""
}

// consumeCredits uses up to n credits of kills in cgroup or below it,
// oldest first, and returns how many it used. A kill below cgroup whose
// tracked cgroups in between have not shown it yet leaves them a debt.
func (t *oomTracker) consumeCredits(view *cadvisor.View, cgroup string, n uint64) uint64 {
	var used uint64
	kept := t.credits[:0]
	for _, c := range t.credits {
		if used < n && cgroupWithin(c.cgroup, cgroup) {
			used++
			for d := c.cgroup; d != cgroup && d != "/" && d != "."; d = path.Dir(d) {
				if view.Get(d) != nil {
					t.owe(d, 1)
				}
			}
			continue
		}
		kept = append(kept, c)
	}
	clear(t.credits[len(kept):])
	t.credits = kept
	return used
}

func (t *oomTracker) ageCredits() {
	kept := t.credits[:0]
	for _, c := range t.credits {
		if c.ticks--; c.ticks > 0 {
			kept = append(kept, c)
		}
	}
	clear(t.credits[len(kept):])
	t.credits = kept
}

// cgroupWithin reports whether cgroup is root or below it.
func cgroupWithin(cgroup, root string) bool {
	return root == "/" || cgroup == root || strings.HasPrefix(cgroup, root+"/")
}
