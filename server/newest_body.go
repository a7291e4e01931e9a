package server

import (
	"sync"
	"sync/atomic"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// newestBody keeps the encoded body of the newest snapshot, built on
// first use and shared by every request for that snapshot.
type newestBody struct {
	encode func(*provider.Snapshot) ([]byte, error)
	newest atomic.Pointer[newestBodyEntry]
}

// newestBodyEntry is one snapshot's encoded body.
type newestBodyEntry struct {
	generation uint64
	once       sync.Once
	body       []byte
	err        error
}

// get returns snap's body, encoding it on first use. A request holding an
// older snapshot than the cached one encodes privately, so that it cannot
// evict the newer body.
func (c *newestBody) get(snap *provider.Snapshot) ([]byte, error) {
	var entry *newestBodyEntry
	for entry == nil {
		cached := c.newest.Load()
		switch {
		case cached != nil && cached.generation == snap.Generation:
			entry = cached
		case cached != nil && cached.generation > snap.Generation:
			entry = &newestBodyEntry{generation: snap.Generation}
		default:
			fresh := &newestBodyEntry{generation: snap.Generation}
			if c.newest.CompareAndSwap(cached, fresh) {
				entry = fresh
			}
		}
	}
	entry.once.Do(func() { entry.body, entry.err = c.encode(snap) })
	return entry.body, entry.err
}
