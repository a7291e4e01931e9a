package server

import (
	"sync"
	"sync/atomic"
)

// newestCache keeps what requests derive from a snapshot (encoded bodies,
// recorded responses) for the newest snapshot asked for, so that every
// request for one snapshot shares one piece of work. An entry is keyed by
// the snapshot's generation and never holds the snapshot itself: a snapshot
// is many times the size of its bodies, and one kept here would stay alive
// beside the provider's next one until the next request. A request still
// holding an older snapshot than the cached one gets a private entry, so
// that a slow request cannot evict the newer one.
type newestCache[E any] struct {
	newest atomic.Pointer[cacheEntry[E]]
}

type cacheEntry[E any] struct {
	generation uint64
	value      E
}

// entry returns the entry of generation, empty when new.
func (c *newestCache[E]) entry(generation uint64) *E {
	for {
		cached := c.newest.Load()
		switch {
		case cached != nil && cached.generation == generation:
			return &cached.value
		case cached != nil && cached.generation > generation:
			return &(&cacheEntry[E]{generation: generation}).value
		}
		fresh := &cacheEntry[E]{generation: generation}
		if c.newest.CompareAndSwap(cached, fresh) {
			return &fresh.value
		}
		// Another request installed an entry meanwhile; it may be ours.
	}
}

// lazyBody is a body encoded on first use and shared afterwards.
type lazyBody struct {
	once sync.Once
	body []byte
	err  error
}

// get returns the body, encoding it with encode on first use. The returned
// slice is shared: callers must not modify it.
func (l *lazyBody) get(encode func() ([]byte, error)) ([]byte, error) {
	l.once.Do(func() { l.body, l.err = encode() })
	return l.body, l.err
}
