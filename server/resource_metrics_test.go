package server

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// kubeletSampleSummary holds the values behind the kubelet v1.36.3 sample
// testdata/kubelet-v1.36.3/metrics-resource.txt.
func kubeletSampleSummary() *statsapi.Summary {
	at := func(ms int64) metav1.Time { return metav1.NewTime(time.UnixMilli(ms)) }
	containerTime, nodeTime, podTime := at(1795353756804), at(1795353754584), at(1795353743313)
	return &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName: "ceonode",
			CPU:      &statsapi.CPUStats{Time: nodeTime, UsageCoreNanoSeconds: ptr(uint64(1314457117177)), UsageNanoCores: ptr(uint64(1e8))},
			Memory:   &statsapi.MemoryStats{Time: nodeTime, WorkingSetBytes: ptr(uint64(1580072960))},
			Swap:     &statsapi.SwapStats{Time: nodeTime, SwapUsageBytes: ptr(uint64(0))},
		},
		Pods: []statsapi.PodStats{{
			PodRef: statsapi.PodReference{Name: "stats-work-0-ceonode", Namespace: "default", UID: "u"},
			CPU:    &statsapi.CPUStats{Time: podTime, UsageCoreNanoSeconds: ptr(uint64(29940059327))},
			Memory: &statsapi.MemoryStats{Time: podTime, WorkingSetBytes: ptr(uint64(55578624))},
			Swap:   &statsapi.SwapStats{Time: podTime, SwapUsageBytes: ptr(uint64(0))},
			Containers: []statsapi.ContainerStats{{
				Name:      "work",
				StartTime: metav1.NewTime(time.Unix(0, 1795353569856356600)),
				CPU:       &statsapi.CPUStats{Time: containerTime, UsageCoreNanoSeconds: ptr(uint64(31873968838))},
				Memory:    &statsapi.MemoryStats{Time: containerTime, WorkingSetBytes: ptr(uint64(54579200))},
				Swap:      &statsapi.SwapStats{Time: containerTime, SwapUsageBytes: ptr(uint64(0)), SwapAvailableBytes: ptr(uint64(209715200))},
			}},
		}},
	}
}

func TestResourceMetricsMatchKubeletByteForByte(t *testing.T) {
	want, err := os.ReadFile("testdata/kubelet-v1.36.3/metrics-resource.txt")
	if err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{}
	src.publish(1, craftedSummary(), kubeletSampleSummary())
	started := time.Unix(1795353500, 0)
	ts := newTestServer(t, Config{ProcessStartTime: started}, src)

	resp, body := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if body != string(want) {
		t.Errorf("body differs from the kubelet's:\n got:\n%s\nwant:\n%s", body, want)
	}
	if got := resp.Header.Get("Content-Type"); !strings.HasPrefix(got, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want Prometheus text 0.0.4", got)
	}
	if got := resp.Header.Get("Process-Start-Time-Unix"); got != strconv.FormatInt(started.Unix(), 10) {
		t.Errorf("Process-Start-Time-Unix %q, want %d", got, started.Unix())
	}
}

func TestResourceMetricsRules(t *testing.T) {
	tm := metav1.NewTime(time.UnixMilli(1795353756804))
	for _, tc := range []struct {
		name    string
		summary *statsapi.Summary
		want    map[string]string // family name -> the one sample's value; absent families must be missing
	}{
		{
			name:    "no snapshot: the scrape error only",
			summary: nil,
			want:    map[string]string{"resource_scrape_error": "1"},
		},
		{
			name:    "nil blocks and nil values are left out",
			summary: &statsapi.Summary{Node: statsapi.NodeStats{CPU: &statsapi.CPUStats{Time: tm}, Memory: nil}, Pods: []statsapi.PodStats{{PodRef: statsapi.PodReference{Name: "p", Namespace: "n"}, Containers: []statsapi.ContainerStats{{Name: "c"}}}}},
			want:    map[string]string{"resource_scrape_error": "0"},
		},
		{
			name: "swap limit is usage plus available; no usage counts as 0",
			summary: &statsapi.Summary{Pods: []statsapi.PodStats{{PodRef: statsapi.PodReference{Name: "p", Namespace: "n"}, Containers: []statsapi.ContainerStats{
				{Name: "c", Swap: &statsapi.SwapStats{Time: tm, SwapAvailableBytes: ptr(uint64(100))}},
			}}}},
			want: map[string]string{"container_swap_limit_bytes": "100", "resource_scrape_error": "0"},
		},
		{
			name: "start time before the epoch is left out",
			summary: &statsapi.Summary{Pods: []statsapi.PodStats{{PodRef: statsapi.PodReference{Name: "p", Namespace: "n"}, Containers: []statsapi.ContainerStats{
				{Name: "c", StartTime: metav1.NewTime(time.Unix(-5, 0))},
				{Name: "d", StartTime: metav1.NewTime(time.Unix(2, 500e6))},
			}}}},
			want: map[string]string{"container_start_time_seconds": "2.5", "resource_scrape_error": "0"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, family := range resourceMetrics(tc.summary) {
				if len(family.Metric) != 1 {
					t.Fatalf("%s: %d samples, want 1", family.GetName(), len(family.Metric))
				}
				got[family.GetName()] = strconv.FormatFloat(sampleValue(family.Metric[0]), 'g', -1, 64)
			}
			if len(got) != len(tc.want) {
				t.Errorf("families %v, want %v", got, tc.want)
			}
			for name, value := range tc.want {
				if got[name] != value {
					t.Errorf("%s = %q, want %q", name, got[name], value)
				}
			}
		})
	}
}

func sampleValue(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func TestResourceMetricsOrderAndSharing(t *testing.T) {
	src := &fakeSource{}
	src.publish(1, craftedSummary(), syntheticSummary(12, 3))
	ts := newTestServer(t, Config{}, src)
	_, first := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "")
	_, second := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "")
	if first != second {
		t.Error("two scrapes of one snapshot differ")
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(first))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if n := len(families["container_cpu_usage_seconds_total"].GetMetric()); n != 12*3 {
		t.Errorf("%d container cpu samples, want 36", n)
	}
	// Samples come sorted by label values (container, namespace, pod), as a
	// registry gathers them, so container-0 of every pod comes first.
	var order []string
	for _, line := range strings.Split(first, "\n") {
		if strings.HasPrefix(line, "container_cpu_usage_seconds_total{") {
			order = append(order, line[:strings.Index(line, "}")+1])
		}
	}
	if !strings.Contains(order[0], `container="container-0"`) || !strings.Contains(order[0], `pod="pod-000"`) ||
		!strings.Contains(order[1], `pod="pod-001"`) || !strings.Contains(order[12], `container="container-1"`) {
		t.Errorf("samples not sorted by label values: %v", order[:13])
	}

	// A new snapshot is seen by the next scrape.
	src.publish(2, craftedSummary(), syntheticSummary(1, 1))
	_, third := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "")
	if strings.Count(third, "\ncontainer_cpu_usage_seconds_total{") != 1 {
		t.Errorf("after a new snapshot: %s", third)
	}
}

func TestResourceMetricsBeforeFirstSnapshot(t *testing.T) {
	ts := newTestServer(t, Config{}, &fakeSource{})
	resp, body := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "")
	// The kubelet answers 200 with resource_scrape_error 1 when its
	// provider fails; metrics-server then reports the node as unscrapable.
	// A release kubelet hides the deprecated scrape_error (ALPHA, 1.29).
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "\nresource_scrape_error 1\n") || strings.Contains(body, "node_cpu") ||
		strings.Contains(body, "\nscrape_error") {
		t.Errorf("before the first snapshot: %d %q", resp.StatusCode, body)
	}
}

func TestResourceMetricsNegotiatesLikePromhttp(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	resp, _ := do(t, http.MethodGet, ts.URL+resourceMetricsPath, "", "",
		"Accept", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	if got := resp.Header.Get("Content-Type"); !strings.Contains(got, "application/vnd.google.protobuf") {
		t.Errorf("protobuf Accept: Content-Type %q", got)
	}
	resp, _ = do(t, http.MethodGet, ts.URL+resourceMetricsPath+"/", "", "")
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s/ = %d, want 404 as on the kubelet's exact-path ServeMux route", resourceMetricsPath, resp.StatusCode)
	}
}

// TestResourceMetricsReplayEqualsPromhttp checks that the recorded variants
// replayed to later scrapes are what promhttp itself answers for the same
// request, for the Accept and Accept-Encoding headers real scrapers send,
// and that variants beyond the cache's bound are still answered.
func TestResourceMetricsReplayEqualsPromhttp(t *testing.T) {
	src := &fakeSource{}
	snap := src.publish(1, craftedSummary(), syntheticSummary(3, 2))
	started := time.Unix(1795353500, 0)
	handler := newReadOnlyHandler(Config{Logger: discardLogger(), ProcessStartTime: started}, src, &fakeHealth{}, encodeSummary)
	opts := promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ProcessStartTime: started}
	direct := promhttp.HandlerFor(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		return resourceMetrics(snap.CPUAndMemory), nil
	}), opts)
	variants := [][2]string{
		{"", ""},
		{"", "gzip"},                     // Go's transport: metrics-server
		{"text/plain;version=0.0.4", ""}, // curl users
		{"application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2", "gzip"}, // Prometheus
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3", "gzip"},
		{"", "identity"},
		{"", "gzip;q=0, identity"},
		{"", "br, gzip;q=0.5"},
		{"*/*", "deflate"}, // a ninth variant: past the cache's bound
		{"text/*", ""},
	}
	for round := range 2 { // the second round replays what the first recorded
		for _, v := range variants {
			req := httptest.NewRequest(http.MethodGet, resourceMetricsPath, nil)
			if v[0] != "" {
				req.Header.Set("Accept", v[0])
			}
			if v[1] != "" {
				req.Header.Set("Accept-Encoding", v[1])
			}
			got, want := httptest.NewRecorder(), httptest.NewRecorder()
			handler.ServeHTTP(got, req)
			direct.ServeHTTP(want, req)
			for _, name := range []string{"Content-Type", "Content-Encoding", "Process-Start-Time-Unix"} {
				if got.Header().Get(name) != want.Header().Get(name) {
					t.Errorf("round %d, Accept %q, Accept-Encoding %q: %s %q, promhttp says %q",
						round, v[0], v[1], name, got.Header().Get(name), want.Header().Get(name))
				}
			}
			if got.Code != want.Code || !bytes.Equal(decompressed(t, got), decompressed(t, want)) {
				t.Errorf("round %d, Accept %q, Accept-Encoding %q: %d and a body differing from promhttp's %d",
					round, v[0], v[1], got.Code, want.Code)
			}
		}
	}
}

// decompressed is a recorded body, gunzipped when it says so.
func decompressed(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	body, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzip: %v", err)
	}
	return body
}

func BenchmarkResourceMetricsHandler(b *testing.B) {
	src := &fakeSource{}
	src.publish(1, craftedSummary(), syntheticSummary(110, 3))
	handler := newReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{}, encodeSummary)
	req, _ := http.NewRequest(http.MethodGet, resourceMetricsPath, nil)
	b.Run("one snapshot", func(b *testing.B) {
		w := &countingWriter{header: http.Header{}}
		for b.Loop() {
			handler.ServeHTTP(w, req)
		}
		b.ReportMetric(float64(w.written)/float64(b.N), "bytes/op-body")
	})
	b.Run("one snapshot, gzip", func(b *testing.B) {
		gzipReq := req.Clone(req.Context())
		gzipReq.Header.Set("Accept-Encoding", "gzip")
		w := &countingWriter{header: http.Header{}}
		for b.Loop() {
			handler.ServeHTTP(w, gzipReq)
		}
		b.ReportMetric(float64(w.written)/float64(b.N), "bytes/op-body")
	})
	b.Run("new snapshot each scrape", func(b *testing.B) {
		w := &countingWriter{header: http.Header{}}
		gen := uint64(1)
		summary := syntheticSummary(110, 3)
		for b.Loop() {
			gen++
			src.publish(gen, nil, summary)
			handler.ServeHTTP(w, req)
		}
	})
}
