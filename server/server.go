package server

import (
	"net/http"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// SnapshotSource returns the current immutable snapshot, or nil before the
// first housekeeping tick.
type SnapshotSource interface {
	Current() *provider.Snapshot
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
	installHealthz(c, health)
	installDebuggingDisabled(c)
	if cfg.Metrics != nil {
		c.Handle("/metrics", cfg.Metrics)
	}
	return withGuards(cfg, c)
}

// NewHTTPServer returns an *http.Server with the kubelet's settings (idle
// timeout 90 s, read and write timeouts 4 h, 1 MiB of headers) plus a
// ReadHeaderTimeout against slow-header clients.
func NewHTTPServer(addr string, h http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
	}
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
