package framework

import (
	"testing"
	"time"
)

// waitInterval is how often Eventually asks again.
const waitInterval = 100 * time.Millisecond

// Eventually calls cond every 100 ms until it returns true. When limit has
// passed, or the test's context ended, it fails the test naming what it
// waited for: every wait of a test ends, and says why when it gives up.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-deadline.C:
			t.Fatalf("gave up after %v waiting for %s", limit, what)
		case <-t.Context().Done():
			t.Fatalf("test ended while waiting for %s", what)
		case <-time.After(waitInterval):
		}
	}
}
