package server

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// snapshotMetricsHandler serves Prometheus metrics derived from the current
// snapshot exactly as promhttp serves a registry (content negotiation,
// gzip, ContinueOnError, the Process-Start-Time-Unix header), each
// negotiated response built and encoded once per snapshot and replayed.
type snapshotMetricsHandler struct {
	logger klog.Logger
	source SnapshotSource
	bodies *summaryBodies
	opts   promhttp.HandlerOpts
	// responses picks this endpoint's cache in a snapshot's entry.
	responses func(*snapshotBodies) *metricsResponses
	// families builds the snapshot's families; an error is logged and what
	// was built is served, as ContinueOnError does.
	families func(*snapshot.Snapshot) ([]*dto.MetricFamily, error)
	// beforeFirstSnapshot is served until the first tick.
	beforeFirstSnapshot func() []*dto.MetricFamily
}

func (h *snapshotMetricsHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	snap := h.source.Current()
	if snap == nil {
		h.promhttp(h.beforeFirstSnapshot()).ServeHTTP(w, req)
		return
	}
	responses := h.responses(h.bodies.cache.entry(snap.Generation))
	// Families are built for each variant recorded and then dropped: as
	// objects they take tens of times the memory of the recorded body (for
	// /metrics/cadvisor in protobuf, tens of megabytes at 500 pods), and
	// real scrapers ask in one or two ways.
	families := func() []*dto.MetricFamily {
		families, err := h.families(snap)
		if err != nil {
			h.logger.Error(err, "Error gathering metrics", "request", req.URL.Path, "snapshot", snap.Generation)
		}
		return families
	}
	response, cached := responses.response(req.Header, func() *recordedResponse {
		return record(h.promhttp(families()), req)
	})
	if !cached {
		h.promhttp(families()).ServeHTTP(w, req)
		return
	}
	response.replay(w)
}

func (h *snapshotMetricsHandler) promhttp(families []*dto.MetricFamily) http.Handler {
	gatherer := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return families, nil })
	return promhttp.HandlerFor(gatherer, h.opts)
}

// maxCachedResponseVariants bounds how many negotiated variants (Accept ×
// Accept-Encoding) of one snapshot are kept; real scrapers send one or two.
const maxCachedResponseVariants = 8

// metricsResponses holds one snapshot's responses of one endpoint, one per
// negotiated variant, encoded (and compressed) once and replayed to every
// scrape that asks the same way, so that scrapes of one snapshot share one
// encoding as summaries do.
type metricsResponses struct {
	mu       sync.Mutex
	variants map[string]*lazyResponse
}

type lazyResponse struct {
	once     sync.Once
	response *recordedResponse
}

// response returns the recorded response for the variant header asks for,
// recording it with render on first use; false when the variant cache is
// full and the caller must render for itself.
func (r *metricsResponses) response(header http.Header, render func() *recordedResponse) (*recordedResponse, bool) {
	key := strings.Join(header.Values("Accept"), ",") + "\x00" + strings.Join(header.Values("Accept-Encoding"), ",")
	r.mu.Lock()
	variant := r.variants[key]
	if variant == nil {
		if len(r.variants) >= maxCachedResponseVariants {
			r.mu.Unlock()
			return nil, false
		}
		if r.variants == nil {
			r.variants = make(map[string]*lazyResponse)
		}
		variant = &lazyResponse{}
		r.variants[key] = variant
	}
	r.mu.Unlock()
	variant.once.Do(func() { variant.response = render() })
	return variant.response, true
}

// recordedResponse is a complete response kept for replay.
type recordedResponse struct {
	header http.Header
	status int
	body   []byte
}

// record serves req with h into memory.
func record(h http.Handler, req *http.Request) *recordedResponse {
	rec := &memoryWriter{response: recordedResponse{header: http.Header{}}}
	h.ServeHTTP(rec, req)
	if rec.response.status == 0 {
		rec.response.status = http.StatusOK
	}
	rec.response.body = slices.Clone(rec.response.body) // drop append's spare capacity
	return &rec.response
}

func (r *recordedResponse) replay(w http.ResponseWriter) {
	header := w.Header()
	for name, values := range r.header {
		header[name] = slices.Clone(values) // the recording stays immutable
	}
	header.Set("Content-Length", strconv.Itoa(len(r.body)))
	w.WriteHeader(r.status)
	_, _ = w.Write(r.body) // a client gone mid-body is not our error
}

// memoryWriter is the http.ResponseWriter record serves into.
type memoryWriter struct {
	response recordedResponse
}

func (r *memoryWriter) Header() http.Header { return r.response.header }

func (r *memoryWriter) WriteHeader(status int) {
	if r.response.status == 0 {
		r.response.status = status
	}
}

func (r *memoryWriter) Write(p []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	r.response.body = append(r.response.body, p...)
	return len(p), nil
}
