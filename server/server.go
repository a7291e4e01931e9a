package server

import (
	"errors"
	"io"
	"net/http"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// SnapshotSource returns the current immutable snapshot, or nil before the
// first housekeeping tick.
type SnapshotSource interface {
	Current() *snapshot.Snapshot
}

// HealthChecker reports whether housekeeping is keeping up (nil = healthy).
type HealthChecker interface {
	Healthy() error
}

// Config configures the handlers.
type Config struct {
	// Logger receives the access log (V(4)), handler errors and panics.
	Logger klog.Logger
	// MaxRequestBodyBytes caps how much of a request body is read, so that a
	// huge urlencoded POST is refused with 413 instead of being buffered
	// (net/http alone would buffer up to 10 MiB). Zero means 1 MiB.
	MaxRequestBodyBytes int64
	// RetryAfter is what the Retry-After header of the 503 answered before
	// the first snapshot asks clients to wait. Zero means 10 s, the kubelet's
	// housekeeping interval.
	RetryAfter time.Duration
	// Metrics serves the server's own metrics on /metrics when set.
	Metrics http.Handler
	// ProcessStartTime is sent in the Process-Start-Time-Unix header of
	// /metrics/resource and /metrics/cadvisor, as the kubelet does; zero
	// leaves it out.
	ProcessStartTime time.Time
	// PressureMetrics adds cAdvisor's PSI series to /metrics/cadvisor, as
	// the kubelet does where the unified hierarchy has cpu.pressure.
	PressureMetrics bool
	// Events serves cAdvisor's events API (/api/v1.3/events and the v2.0
	// and v2.1 paths) when set (events.go).
	Events EventSource
}

const (
	defaultMaxRequestBodyBytes = 1 << 20
	defaultRetryAfter          = 10 * time.Second
)

// The kubelet's settings (pkg/kubelet/server/server.go ListenAndServeKubeletServer).
const (
	idleTimeout    = 90 * time.Second // http.DefaultTransport's keep-alive timeout
	readTimeout    = 4 * time.Hour
	writeTimeout   = 4 * time.Hour
	maxHeaderBytes = 1 << 20
)

// readHeaderTimeout is our addition: the kubelet has none, so a client that
// trickles its headers holds a connection for up to ReadTimeout (4 h). 32 s is
// the kube-apiserver's value.
const readHeaderTimeout = 32 * time.Second

// bodyReadTimeout is our addition too: how long a request body may take to
// arrive, counted from the end of the headers. Bodies are at most 1 MiB
// (MaxRequestBodyBytes), a few hundred bytes in practice, so 10 s allows
// 100 KiB/s; the kubelet lets a trickled body hold its connection for the
// whole 4 h ReadTimeout. ReadTimeout itself stays 4 h: net/http's
// background read, which watches for a client going away during a long
// response, runs under it and cancels the request when it fires.
const bodyReadTimeout = 10 * time.Second

// NewReadOnlyHandler builds the go-restful container serving the read-only
// routes (no auth): /stats/summary (GET, POST), the legacy cAdvisor JSON
// routes, /metrics/resource, /metrics/cadvisor, /metrics, /healthz
// (+ /healthz/<check>),
// and 405 "Debug endpoints are disabled." for the kubelet's debugging paths.
// src must not be nil; a nil health installs only the ping check.
func NewReadOnlyHandler(cfg Config, src SnapshotSource, health HealthChecker) http.Handler {
	return newReadOnlyHandler(cfg, src, health, encodeSummary)
}

// newReadOnlyHandler is NewReadOnlyHandler with the summary encoder passed in,
// so that tests can count encodings. The secure port is built the same way
// with one step more: its authn/authz filter is added to the container with
// Filter, and filteringContainer puts the plain handlers behind it too.
func newReadOnlyHandler(cfg Config, src SnapshotSource, health HealthChecker, encode summaryEncoder) http.Handler {
	return newHandler(cfg, src, health, encode, nil)
}

// newHandler installs the routes on a new container behind filter (if not
// nil), which thereby covers every route, plain handlers included.
func newHandler(cfg Config, src SnapshotSource, health HealthChecker, encode summaryEncoder, filter restful.FilterFunction) http.Handler {
	cfg = cfg.withDefaults()
	c := newContainer(cfg.Logger)
	if filter != nil {
		c.Filter(filter)
	}
	summary := newSummaryHandler(cfg, src, encode)
	installSummary(c, summary)
	installResourceMetrics(c, summary, cfg.ProcessStartTime)
	installCadvisorMetrics(c, summary, cfg.ProcessStartTime, cfg.PressureMetrics)
	installPods(c, cfg, src)
	installEvents(c, cfg)
	installPage(c, cfg, src)
	installHealthz(c, health)
	installDebuggingDisabled(c)
	if cfg.Metrics != nil {
		c.Handle("/metrics", cfg.Metrics)
	}
	return withGuards(cfg, c)
}

// NewHTTPServer returns an *http.Server with the kubelet's settings (idle
// timeout 90 s, read and write timeouts 4 h, 1 MiB of headers) plus a
// ReadHeaderTimeout against slow-header clients and a 10 s deadline for
// request bodies against slow-body ones.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return newHTTPServer(addr, h, bodyReadTimeout)
}

// newHTTPServer is NewHTTPServer with the body read timeout passed in.
func newHTTPServer(addr string, h http.Handler, bodyTimeout time.Duration) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           withBodyDeadline(h, bodyTimeout),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
}

// withBodyDeadline gives a request's body timeout to arrive. The read
// deadline is lifted when the body has been read to its end, so that the
// response may take as long as it takes and the connection is kept; a body
// the handler leaves unread keeps it, and net/http's draining of it after
// the handler is bounded too. It must see net/http's own ResponseWriter.
func withBodyDeadline(h http.Handler, timeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody {
			h.ServeHTTP(w, r)
			return
		}
		rc := http.NewResponseController(w)
		if err := rc.SetReadDeadline(time.Now().Add(timeout)); err != nil {
			// Not a net/http connection (a test recorder): no deadline.
			h.ServeHTTP(w, r)
			return
		}
		r.Body = &deadlineBody{ReadCloser: r.Body, lift: func() { _ = rc.SetReadDeadline(time.Time{}) }}
		h.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body has been read to its
// end.
type deadlineBody struct {
	io.ReadCloser
	lift   func()
	lifted bool
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.lifted {
		b.lifted = true
		b.lift()
	}
	return n, err
}

func (cfg Config) withDefaults() Config {
	if cfg.MaxRequestBodyBytes <= 0 {
		cfg.MaxRequestBodyBytes = defaultMaxRequestBodyBytes
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = defaultRetryAfter
	}
	return cfg
}

// filteringContainer sends plain handlers (healthz, debugging paths) through
// the container's filters too, as the kubelet's does, so that an authn/authz
// filter added with Filter covers every route of the secure port.
type filteringContainer struct {
	*restful.Container
}

// Handle registers handler for pattern behind the container's filters.
func (c filteringContainer) Handle(pattern string, handler http.Handler) {
	c.HandleWithFilter(pattern, handler)
}

// newContainer returns an empty container with its own ServeMux, the
// kubelet's CurlyRouter, and panic recovery for routes.
func newContainer(logger klog.Logger) filteringContainer {
	c := restful.NewContainer()
	c.DoNotRecover(false)
	c.RecoverHandler(recoverRoute(logger))
	return filteringContainer{Container: c}
}

// withGuards puts the per-request guards around a container: the body limit
// outermost, because http.MaxBytesReader needs net/http's own ResponseWriter
// to make the server close the connection after an oversized body; inside it
// the access log and the panic guard for plain handlers.
func withGuards(cfg Config, c filteringContainer) http.Handler {
	return http.MaxBytesHandler(withAccessLog(cfg.Logger, c), cfg.MaxRequestBodyBytes)
}

// installDebuggingDisabled answers the kubelet's debugging paths with 405, as
// the kubelet does when they are disabled (server.go
// InstallDebuggingDisabledHandlers). We never implement them.
func installDebuggingDisabled(c filteringContainer) {
	debuggingPaths := []string{
		"/run/", "/exec/", "/attach/", "/portForward/", "/containerLogs/",
		"/runningpods/", "/debug/pprof/", "/logs/",
	}
	disabled := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Debug endpoints are disabled.", http.StatusMethodNotAllowed)
	})
	for _, p := range debuggingPaths {
		c.Handle(p, disabled)
	}
}
