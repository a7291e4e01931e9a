package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// cadvisorMetricsPath is where Prometheus (kube-prometheus-stack), Datadog
// and Lens scrape container metrics (pkg/kubelet/server/server.go).
const cadvisorMetricsPath = "/metrics/cadvisor"

// installCadvisorMetrics adds /metrics/cadvisor: what cAdvisor's
// collectors produce with the kubelet's metric set and labels (plus the
// pressure families where its IsPsiEnabled would add them), written from
// the snapshot's cgroup view and served like the kubelet's promhttp
// handler.
func installCadvisorMetrics(c filteringContainer, summary *summaryHandler, processStart time.Time, psi bool) {
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ProcessStartTime: processStart}
	h := &cadvisorMetricsHandler{
		logger: summary.logger, source: summary.source, psi: psi,
		// Negotiation, headers and errors exactly as promhttp's, from a
		// handler over no metrics: its response carries everything but
		// the body.
		negotiate: promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return nil, nil }), opts),
	}
	h.other = &snapshotMetricsHandler{
		logger: summary.logger, source: summary.source, bodies: summary.bodies, opts: opts,
		responses: func(b *snapshotBodies) *metricsResponses { return &b.cadvisorMetrics },
		families: func(snap *snapshot.Snapshot) ([]*dto.MetricFamily, error) {
			body, err := h.bodies.entry(snap.Generation).get(snap, h.build)
			if err != nil {
				return nil, err
			}
			return body.families()
		},
		beforeFirstSnapshot: func() []*dto.MetricFamily { return nil },
	}
	c.Handle(cadvisorMetricsPath, h)
}

// cadvisorMetricsHandler serves /metrics/cadvisor. The text exposition of
// a snapshot is written once, gzip-compressed, by whichever scrape of the
// snapshot comes first (a build at 2,000 cgroups takes a fraction of a
// second), and every scrape of that snapshot is answered from it: gzip as
// it is, identity decompressed on the fly. A scrape that negotiates another
// format (protobuf) gets the same families parsed back from the text,
// encoded once per snapshot and format.
type cadvisorMetricsHandler struct {
	logger    klog.Logger
	source    SnapshotSource
	psi       bool
	negotiate http.Handler
	other     *snapshotMetricsHandler
	bodies    newestCache[cadvisorBody]

	mu      sync.Mutex
	headers map[string]http.Header
	// writers pools the builds' gzip writers.
	writers sync.Pool
}

func (h *cadvisorMetricsHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	snap := h.source.Current()
	if snap == nil {
		h.negotiate.ServeHTTP(w, req) // no families yet: an empty 200, as before the first gather
		return
	}
	negotiated := h.negotiated(req)
	encoding := negotiated.Get("Content-Encoding")
	if expfmt.Format(negotiated.Get("Content-Type")).FormatType() != expfmt.TypeTextPlain ||
		(encoding != "" && encoding != "gzip") {
		h.other.ServeHTTP(w, req)
		return
	}
	body, err := h.bodies.entry(snap.Generation).get(snap, h.build)
	if err != nil {
		h.logger.Error(err, "Error gathering metrics", "request", req.URL.Path, "snapshot", snap.Generation)
		h.other.ServeHTTP(w, req) // promhttp's error answer
		return
	}
	header := w.Header()
	for name, values := range negotiated {
		if name != "Content-Length" {
			header[name] = slices.Clone(values)
		}
	}
	if encoding == "gzip" {
		header.Set("Content-Length", strconv.Itoa(body.gzip.len()))
		w.WriteHeader(http.StatusOK)
		_ = body.gzip.writeTo(w) // a client gone mid-body is not our error
		return
	}
	header.Set("Content-Length", strconv.Itoa(body.size))
	w.WriteHeader(http.StatusOK)
	if err := body.decompress(w); err != nil {
		h.logger.V(4).Info("Writing /metrics/cadvisor ended early", "err", err)
	}
}

// negotiated returns the headers promhttp answers req with, recorded once
// per Accept × Accept-Encoding (they depend on nothing else) for up to
// maxCachedResponseVariants pairs. The result is shared: callers copy it.
func (h *cadvisorMetricsHandler) negotiated(req *http.Request) http.Header {
	key := strings.Join(req.Header.Values("Accept"), ",") + "\x00" + strings.Join(req.Header.Values("Accept-Encoding"), ",")
	h.mu.Lock()
	header, ok := h.headers[key]
	h.mu.Unlock()
	if ok {
		return header
	}
	header = record(h.negotiate, req).header
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.headers) < maxCachedResponseVariants {
		if h.headers == nil {
			h.headers = map[string]http.Header{}
		}
		h.headers[key] = header
	}
	return header
}

// build writes the exposition of snap.
func (h *cadvisorMetricsHandler) build(snap *snapshot.Snapshot) (*cadvisorText, error) {
	in, err := newCadvisorSnapshot(snap.Cgroups, h.psi, time.Now())
	if err != nil {
		return nil, err
	}
	compressed := &chunks{}
	gz := h.gzipWriter()
	defer h.writers.Put(gz)
	gz.Reset(compressed)
	counted := &sizeWriter{w: gz}
	if err := writeCadvisorText(counted, in); err != nil {
		return nil, fmt.Errorf("write /metrics/cadvisor: %w", err)
	}
	if err := gz.Close(); err != nil {
		return nil, fmt.Errorf("compress /metrics/cadvisor: %w", err)
	}
	return &cadvisorText{gzip: compressed, size: counted.n}, nil
}

// gzipWriter returns a pooled BestSpeed writer (a flate writer allocates
// about a megabyte). BestSpeed: the text of 2,000 cgroups is about 45 MB,
// and the default level nearly doubles the build's CPU for a body 11 %
// smaller.
func (h *cadvisorMetricsHandler) gzipWriter() *gzip.Writer {
	if gz, ok := h.writers.Get().(*gzip.Writer); ok {
		return gz
	}
	gz, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return gz
}

// cadvisorBody is one snapshot's exposition, built on first use.
type cadvisorBody struct {
	once sync.Once
	text *cadvisorText
	err  error
}

// get returns the body of snap, which must be of b's generation, building
// it on first use.
func (b *cadvisorBody) get(snap *snapshot.Snapshot, build func(*snapshot.Snapshot) (*cadvisorText, error)) (*cadvisorText, error) {
	b.once.Do(func() { b.text, b.err = build(snap) })
	return b.text, b.err
}

// cadvisorText is a written exposition: gzip-compressed, with the size of
// the text.
type cadvisorText struct {
	gzip *chunks
	size int
}

func (t *cadvisorText) decompress(w io.Writer) error {
	r, err := gzip.NewReader(t.gzip.reader())
	if err != nil {
		return err
	}
	_, err = io.Copy(w, r)
	return err
}

// families parses the text back into metric families, for the formats
// other than text.
func (t *cadvisorText) families() ([]*dto.MetricFamily, error) {
	r, err := gzip.NewReader(t.gzip.reader())
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	parsed, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse our /metrics/cadvisor: %w", err)
	}
	out := make([]*dto.MetricFamily, 0, len(parsed))
	for _, family := range parsed {
		out = append(out, family)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	return out, nil
}

// chunkSize is the size of a body's chunks: a body of N bytes takes at
// most N+chunkSize.
const chunkSize = 64 << 10

// chunks holds bytes written once in fixed-size chunks: a growing slice
// would copy the body at every doubling and keep up to twice its size (at
// 500 pods the body is 5.7 MB of gzip, and it is built every scrape).
type chunks struct {
	parts [][]byte
	n     int
}

func (c *chunks) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		if len(c.parts) == 0 || len(c.parts[len(c.parts)-1]) == chunkSize {
			c.parts = append(c.parts, make([]byte, 0, chunkSize))
		}
		last := &c.parts[len(c.parts)-1]
		n := copy((*last)[len(*last):chunkSize], p)
		*last = (*last)[:len(*last)+n]
		p = p[n:]
	}
	c.n += written
	return written, nil
}

func (c *chunks) len() int { return c.n }

func (c *chunks) writeTo(w io.Writer) error {
	for _, part := range c.parts {
		if _, err := w.Write(part); err != nil {
			return err
		}
	}
	return nil
}

func (c *chunks) reader() io.Reader {
	readers := make([]io.Reader, len(c.parts))
	for i, part := range c.parts {
		readers[i] = bytes.NewReader(part)
	}
	return io.MultiReader(readers...)
}

// sizeWriter counts what passes through it.
type sizeWriter struct {
	w io.Writer
	n int
}

func (c *sizeWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// newCadvisorSnapshot gathers what cAdvisor's collectors read from one
// snapshot's view: every tracked cgroup with its newest sample, as the
// kubelet's recursive request from "/" with count 1.
func newCadvisorSnapshot(legacy *snapshot.Cgroups, psi bool, now time.Time) (*cadvisorSnapshot, error) {
	if legacy == nil {
		return nil, errors.New("the snapshot has no cgroup view")
	}
	in := &cadvisorSnapshot{containers: legacy.AllContainerInfo(), labels: kubeletContainerLabels(legacy), now: now, psi: psi}
	// Per-CPU usage is dropped, as cAdvisor drops it when
	// PercpuUsageMetrics is not in the metric set, so that cpu usage comes
	// as one cpu="total" series.
	for _, info := range in.containers {
		for _, stats := range info.Stats {
			stats.Cpu.Usage.PerCpu = nil
		}
	}
	if version, ok := legacy.VersionInfo(); ok {
		in.version = version
	}
	if machine, ok := legacy.MachineInfo(); ok {
		in.machine = machine
	}
	return in, nil
}

// cadvisorMetrics is the snapshot's /metrics/cadvisor as metric families
// (tests, and the formats other than text).
func cadvisorMetrics(legacy *snapshot.Cgroups, psi bool, now time.Time) ([]*dto.MetricFamily, error) {
	in, err := newCadvisorSnapshot(legacy, psi, now)
	if err != nil {
		return nil, err
	}
	compressed := &chunks{}
	gz := gzip.NewWriter(compressed)
	if err := writeCadvisorText(gz, in); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return (&cadvisorText{gzip: compressed}).families()
}

// The kubelet's label keys (pkg/kubelet/types/labels.go), which CRI
// runtimes put on containers.
const (
	kubernetesPodNameLabel       = "io.kubernetes.pod.name"
	kubernetesPodNamespaceLabel  = "io.kubernetes.pod.namespace"
	kubernetesContainerNameLabel = "io.kubernetes.container.name"
)

// kubeletContainerLabels is the kubelet's containerPrometheusLabelsFunc:
// every series carries id, name, image, pod, namespace and container, blank
// where unknown. A cgroup without the runtime's pod labels (the pod cgroup,
// a sandbox, or any cgroup when pods come from the cgroup tree without a
// runtime) is named as the summary names it: its container, if it is one,
// and the pod whose cgroup holds it.
func kubeletContainerLabels(legacy *snapshot.Cgroups) func(*cadvisorapi.ContainerInfo) [numBaseLabels]string {
	return func(c *cadvisorapi.ContainerInfo) [numBaseLabels]string {
		var name string
		if len(c.Aliases) > 0 {
			name = c.Aliases[0]
		}
		podName := c.Spec.Labels[kubernetesPodNameLabel]
		namespace := c.Spec.Labels[kubernetesPodNamespaceLabel]
		container := c.Spec.Labels[kubernetesContainerNameLabel]
		if podName == "" && namespace == "" {
			var owned string
			namespace, podName, owned, _ = legacy.Owner(c.Name)
			if container == "" {
				container = owned
			}
		}
		var labels [numBaseLabels]string
		labels[containerLabel], labels[idLabel], labels[imageLabel] = container, c.Name, c.Spec.Image
		labels[nameLabel], labels[namespaceLabel], labels[podLabel] = name, namespace, podName
		return labels
	}
}
