package collector

import "time"

// CgroupEvent tells Config.OnCgroupEvent that discovery added a cgroup to
// the tracked set or removed one from it: cAdvisor's container creation
// and deletion.
type CgroupEvent struct {
	Name string
	// Removed is false for a cgroup discovery found, true for one it found
	// gone.
	Removed bool
	// Time is the cgroup's creation time (Spec.CreationTime) for an
	// addition, as cAdvisor stamps creation events, and when discovery
	// found it gone for a removal.
	Time time.Time
}

// notifyAdded and notifyRemoved call Config.OnCgroupEvent, if set, from
// refresh, which runs under the discovery lock: the callback must not
// block.
func (c *Collector) notifyAdded(e *entry) {
	if c.cfg.OnCgroupEvent != nil {
		c.cfg.OnCgroupEvent(CgroupEvent{Name: e.name, Time: e.state.Load().spec.CreationTime})
	}
}

func (c *Collector) notifyRemoved(name string) {
	if c.cfg.OnCgroupEvent != nil {
		c.cfg.OnCgroupEvent(CgroupEvent{Name: name, Removed: true, Time: time.Now()})
	}
}
