package serverproc

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fatalRecorder records Fatalf and ends the goroutine like testing does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// TestWaitForEnds: a server that keeps answering something else fails the
// wait at its limit, with the last answer, instead of polling forever.
func TestWaitForEnds(t *testing.T) {
	unready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
	}))
	defer unready.Close()
	srv := &Server{Base: unready.URL, log: &lockedBuffer{}, exited: make(chan error, 1)}
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.waitFor(rec, "/stats/summary", http.StatusOK, 300*time.Millisecond)
	}()
	<-done
	if !strings.Contains(rec.msg, "/stats/summary did not answer 200 within 300ms (last: 503 Service Unavailable)") {
		t.Errorf("WaitFor failed with %q", rec.msg)
	}
}
