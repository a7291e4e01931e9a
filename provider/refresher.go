package provider

import (
	"context"
	"sync"
	"time"
)

// refresher runs one kind of runtime call beside the housekeeping tick: at
// most one refresh in flight, and the newest answer kept for the ticks to
// read. A runtime that answers late or never therefore holds a refresh, not
// a tick.
type refresher[T any] struct {
	mu     sync.Mutex
	latest T
	// running is closed when the refresh in flight ends; nil when none runs.
	running chan struct{}
	group   sync.WaitGroup
}

// fetchFunc makes one refresh from the previous answer (the zero T before
// the first) and returns the new answer, or previous when the runtime
// failed.
type fetchFunc[T any] func(ctx context.Context, previous T) T

// start begins a refresh with fetch unless one is in flight. It returns a
// channel closed once the refresh it began has stored its answer, or nil
// when one was already running: a tick waits only for the refresh it
// started, never for one the runtime has been stuck in since an earlier
// tick. The refresh runs on ctx.
func (r *refresher[T]) start(ctx context.Context, fetch fetchFunc[T]) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running != nil {
		return nil
	}
	done := make(chan struct{})
	r.running = done
	previous := r.latest
	r.group.Add(1)
	go func() {
		defer r.group.Done()
		next := fetch(ctx, previous)
		r.mu.Lock()
		r.latest, r.running = next, nil
		r.mu.Unlock()
		close(done)
	}()
	return done
}

// newest returns the newest answer, the zero T before the first.
func (r *refresher[T]) newest() T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest
}

// wait blocks until the refresh in flight, if any, has ended. Call it only
// once nothing starts refreshes any more.
func (r *refresher[T]) wait() { r.group.Wait() }

// awaitUntil waits for done (nil: nothing to wait for) until deadline
// passes or ctx ends.
func awaitUntil(ctx context.Context, done <-chan struct{}, deadline time.Time) {
	if done == nil {
		return
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
	case <-ctx.Done():
	}
}
