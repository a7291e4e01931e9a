package provider

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"
)

// TestStatusResyncSpreads: containers whose statuses were fetched in the
// same tick are asked again over several ticks, each within
// containerStatusResync and not before half of it.
func TestStatusResyncSpreads(t *testing.T) {
	const containers, tick = 2000, 10 * time.Second
	perTick := map[time.Duration]int{}
	for i := range containers {
		sum := sha256.Sum256([]byte(fmt.Sprint(i)))
		after := statusResyncAfter(hex.EncodeToString(sum[:]))
		if after < containerStatusResync/2 || after >= containerStatusResync {
			t.Fatalf("statusResyncAfter = %s, want in [%s, %s)", after, containerStatusResync/2, containerStatusResync)
		}
		// The first tick at which the status is at least that old.
		perTick[(after+tick-1)/tick*tick]++
	}
	for at, n := range perTick {
		if n > containers/2 {
			t.Errorf("%d of %d statuses are asked again at %s, want at most half", n, containers, at)
		}
	}
	if len(perTick) < 3 {
		t.Errorf("resyncs fall in %d ticks (%v), want them spread over at least 3", len(perTick), perTick)
	}
}
