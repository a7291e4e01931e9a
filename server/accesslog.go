package server

import (
	"io"
	"net/http"
	"runtime/debug"
	"time"

	"k8s.io/klog/v2"
)

// panicMessage is the body of the 500 answered when a handler panics. The
// kubelet does not recover: net/http drops its connection instead.
const panicMessage = "Internal Error: the request handler panicked"

// withAccessLog logs every request at V(4) once it is answered, and answers
// 500 for panics outside go-restful's dispatch (plain handlers such as
// healthz), which the container's RecoverHandler does not see.
func withAccessLog(logger klog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &responseRecorder{ResponseWriter: w}
		defer func() {
			aborted := false
			if reason := recover(); reason != nil {
				aborted = !answerPanic(logger, reason, rec)
			}
			if v := logger.V(4); v.Enabled() {
				v.Info("HTTP", "method", r.Method, "path", r.URL.Path, "status", rec.statusCode(),
					"bytes", rec.written, "duration", time.Since(start), "aborted", aborted,
					"userAgent", r.UserAgent(), "srcIP", r.RemoteAddr)
			}
			if aborted {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recoverRoute is the container's RecoverHandler: it answers a route's panic
// with 500, or aborts the connection when that is no longer possible.
func recoverRoute(logger klog.Logger) func(reason any, w http.ResponseWriter) {
	return func(reason any, w http.ResponseWriter) {
		if !answerPanic(logger, reason, w) {
			panic(http.ErrAbortHandler)
		}
	}
}

// answerPanic logs a handler's panic with its stack and answers 500 if the
// response has not started. It returns false when it could not answer: the
// response had started (the only honest signal left is to abort the
// connection, which panicking with http.ErrAbortHandler asks net/http to do
// quietly), or the panic was such an abort already.
func answerPanic(logger klog.Logger, reason any, w http.ResponseWriter) (answered bool) {
	if reason == http.ErrAbortHandler {
		return false
	}
	logger.Error(nil, "Observed a panic while serving a request", "panic", reason, "stack", string(debug.Stack()))
	if rec, ok := w.(*responseRecorder); ok && rec.wroteHeader {
		return false
	}
	header := w.Header()
	header.Del("Content-Length")
	header.Set("Content-Type", "text/plain; charset=utf-8")
	header.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusInternalServerError)
	_, _ = io.WriteString(w, panicMessage)
	return true
}

// responseRecorder remembers the status and size of a response for the
// access log and for answerPanic.
type responseRecorder struct {
	http.ResponseWriter
	status      int
	written     int64
	wroteHeader bool
}

func (r *responseRecorder) WriteHeader(status int) {
	// 1xx responses are informational; the final status comes later.
	if !r.wroteHeader && status >= 200 {
		r.status = status
		r.wroteHeader = true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *responseRecorder) Write(p []byte) (int, error) {
	if !r.wroteHeader {
		r.status = http.StatusOK
		r.wroteHeader = true
	}
	n, err := r.ResponseWriter.Write(p)
	r.written += int64(n)
	return n, err
}

// Flush lets go-restful's Response.Flush and streaming handlers reach the
// connection through the recorder.
func (r *responseRecorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		if !r.wroteHeader {
			r.status = http.StatusOK
			r.wroteHeader = true
		}
		f.Flush()
	}
}

// Unwrap exposes the underlying writer to http.ResponseController.
func (r *responseRecorder) Unwrap() http.ResponseWriter {
	return r.ResponseWriter
}

// statusCode is the status sent, or 200 when the handler wrote nothing
// (net/http then sends 200 with an empty body).
func (r *responseRecorder) statusCode() int {
	if !r.wroteHeader {
		return http.StatusOK
	}
	return r.status
}
