package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	restful "github.com/emicklei/go-restful/v3"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// stream answers stream=true: one JSON Event per line as they happen, until
// the client goes away, the watch is dropped for falling behind, or the
// event source is closed at shutdown. The handler never blocks the source:
// the store hands events over through the watch's bounded buffer and drops
// the watch when it is full.
func (h *eventsHandler) stream(req *restful.Request, resp *restful.Response, q snapshot.EventQuery) {
	watch, err := h.source.Watch(q)
	switch {
	case errors.Is(err, snapshot.ErrTooManyWatches), errors.Is(err, snapshot.ErrEventStoreClosed):
		h.writeError(req, resp, http.StatusServiceUnavailable, "Service Unavailable: "+err.Error())
		return
	case err != nil:
		h.internalError(req, resp, fmt.Errorf("watch events: %w", err))
		return
	}
	defer watch.Stop()
	w := resp.ResponseWriter
	deadlines := &streamDeadlines{rc: http.NewResponseController(w)}
	defer deadlines.finish()
	// A watch may outlive the server's 4 h read and write timeouts: each
	// write gets streamWriteTimeout instead, and the read deadline, under
	// which net/http's background read watches for the client going away,
	// is lifted (a dead client is still noticed through TCP keep-alive).
	// Errors mean a writer without deadlines (tests): nothing to lift.
	_ = deadlines.rc.SetReadDeadline(time.Time{})
	_ = deadlines.rc.SetWriteDeadline(time.Time{})
	resp.Header().Set("Content-Type", restful.MIME_JSON)
	resp.WriteHeader(http.StatusOK)
	if err := deadlines.rc.Flush(); err != nil {
		return
	}
	go deadlines.cutWhenDropped(watch)
	enc := json.NewEncoder(w)
	ctx := req.Request.Context()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, open := <-watch.Events():
			if !open {
				h.watchEnded(req, watch)
				return
			}
			if open, err := writeEvents(deadlines, enc, watch, ev); err != nil || !open {
				h.watchEnded(req, watch)
				return
			}
		}
	}
}

// writeEvents writes ev and whatever else is waiting (up to
// maxStreamBatch), then flushes; open is false when the watch ended
// meanwhile.
func writeEvents(deadlines *streamDeadlines, enc *json.Encoder, watch *snapshot.EventWatch, ev snapshot.Event) (open bool, err error) {
	deadlines.extend()
	for n := 1; ; n++ {
		if err := enc.Encode(toEventJSON(&ev)); err != nil {
			return true, err
		}
		if n >= maxStreamBatch {
			break
		}
		select {
		case next, more := <-watch.Events():
			if !more {
				return false, deadlines.rc.Flush()
			}
			ev = next
			continue
		default:
		}
		break
	}
	return true, deadlines.rc.Flush()
}

// watchEnded ends a stream whose watch the source ended or whose write
// failed. A watch dropped for falling behind lost events, so its
// connection is cut rather than ended like a shutdown: the client sees an
// error and knows to query what it missed. At shutdown the stream ends
// normally.
func (h *eventsHandler) watchEnded(req *restful.Request, watch *snapshot.EventWatch) {
	if !watch.Dropped() {
		return
	}
	h.logger.Info("Dropped an event stream that fell behind; closing its connection", "client", req.Request.RemoteAddr, "path", req.Request.URL.Path)
	panic(http.ErrAbortHandler)
}

// streamDeadlines sets a stream's write deadlines from the handler and
// from cutWhenDropped without either undoing the other, and never after
// the handler returned (an HTTP/2 response is gone then).
type streamDeadlines struct {
	rc *http.ResponseController

	mu            sync.Mutex
	cut, finished bool
}

// extend gives the next write streamWriteTimeout, unless the stream was
// cut.
func (d *streamDeadlines) extend() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.cut {
		_ = d.rc.SetWriteDeadline(time.Now().Add(streamWriteTimeout))
	}
}

// cutWhenDropped fails the write in progress when the watch is dropped:
// the write blocked on a slow client is what made the watch fall behind,
// and it would otherwise hold the connection until its deadline. It
// returns when the watch ends.
func (d *streamDeadlines) cutWhenDropped(watch *snapshot.EventWatch) {
	<-watch.Done()
	if !watch.Dropped() {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.finished {
		d.cut = true
		_ = d.rc.SetWriteDeadline(time.Now())
	}
}

// finish is called as the handler returns.
func (d *streamDeadlines) finish() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.finished = true
}
