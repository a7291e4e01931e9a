package pods

import (
	"bytes"
	"math"
	"net/http"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// resourceMetricsView is /metrics/resource parsed as metrics-server parses
// it, keyed by family, then by "namespace/pod/container" ("namespace/pod"
// for pod series, "" for node series).
type resourceMetricsView map[string]map[string]*dto.Metric

// getMetricFamilies scrapes path as Prometheus text. Go's transport asks
// for gzip, as metrics-server's and Prometheus' clients do.
func getMetricFamilies(t *testing.T, srv *serverproc.Server, path string) map[string]*dto.MetricFamily {
	t.Helper()
	status, header, body := serverproc.Do(t, http.MethodGet, srv.Base+path, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("%s = %d: %s", path, status, body)
	}
	if ct := header.Get("Content-Type"); !bytes.HasPrefix([]byte(ct), []byte("text/plain; version=0.0.4")) {
		t.Fatalf("%s Content-Type %q", path, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse %s: %v\n%s", path, err, body)
	}
	return families
}

func getResourceMetrics(t *testing.T, srv *serverproc.Server) resourceMetricsView {
	t.Helper()
	families := getMetricFamilies(t, srv, "/metrics/resource")
	view := resourceMetricsView{}
	for name, family := range families {
		view[name] = map[string]*dto.Metric{}
		for _, m := range family.Metric {
			labels := map[string]string{}
			for _, l := range m.Label {
				labels[l.GetName()] = l.GetValue()
			}
			key := ""
			if labels["pod"] != "" {
				key = labels["namespace"] + "/" + labels["pod"]
			}
			if labels["container"] != "" {
				key += "/" + labels["container"]
			}
			view[name][key] = m
		}
	}
	return view
}

// sameSnapshot fetches the summary, the resource metrics and the summary
// again until both summaries come from one snapshot, so that the metrics
// must come from it too.
func sameSnapshot[T any](t *testing.T, srv *serverproc.Server, scrape func(*testing.T, *serverproc.Server) T) (*statsapi.Summary, T) {
	t.Helper()
	var before *statsapi.Summary
	var metrics T
	framework.Eventually(t, summaryWait, "a scrape within one snapshot", func() bool {
		before = getSummary(t, srv, "?only_cpu_and_memory=true")
		metrics = scrape(t, srv)
		after := getSummary(t, srv, "?only_cpu_and_memory=true")
		return before.Node.CPU.Time.Equal(&after.Node.CPU.Time)
	})
	return before, metrics
}

// checkSample asserts that a series exists with value want and the
// timestamp of the stats block it comes from.
func checkSample(t *testing.T, view resourceMetricsView, family, key string, want float64, at time.Time) {
	t.Helper()
	m := view[family][key]
	if m == nil {
		t.Errorf("%s{%s} missing", family, key)
		return
	}
	got := m.GetGauge().GetValue()
	if m.Counter != nil {
		got = m.GetCounter().GetValue()
	}
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s{%s} = %v, the summary of the same snapshot says %v", family, key, got, want)
	}
	if !at.IsZero() && time.UnixMilli(m.GetTimestampMs()).Unix() != at.Unix() {
		t.Errorf("%s{%s} at %v, the summary says %v", family, key, time.UnixMilli(m.GetTimestampMs()), at)
	}
	if want <= 0 && family != "container_swap_usage_bytes" && family != "pod_swap_usage_bytes" && family != "node_swap_usage_bytes" {
		t.Errorf("%s{%s} = %v: metrics-server drops nodes and pods with zero cpu or memory", family, key, want)
	}
}

// testResourceMetrics checks /metrics/resource against the CPU-and-memory
// summary of the same snapshot: every pod and container metrics-server needs,
// with exactly the summary's values and times.
func testResourceMetrics(t *testing.T, srv *serverproc.Server) {
	summary, view := sameSnapshot(t, srv, getResourceMetrics)
	node := summary.Node
	checkSample(t, view, "node_cpu_usage_seconds_total", "", float64(*node.CPU.UsageCoreNanoSeconds)/1e9, node.CPU.Time.Time)
	checkSample(t, view, "node_memory_working_set_bytes", "", float64(*node.Memory.WorkingSetBytes), node.Memory.Time.Time)
	if len(summary.Pods) != 3 {
		t.Fatalf("pods = %d, want 3", len(summary.Pods))
	}
	for _, pod := range summary.Pods {
		podKey := pod.PodRef.Namespace + "/" + pod.PodRef.Name
		checkSample(t, view, "pod_cpu_usage_seconds_total", podKey, float64(*pod.CPU.UsageCoreNanoSeconds)/1e9, pod.CPU.Time.Time)
		checkSample(t, view, "pod_memory_working_set_bytes", podKey, float64(*pod.Memory.WorkingSetBytes), pod.Memory.Time.Time)
		for _, c := range pod.Containers {
			key := podKey + "/" + c.Name
			checkSample(t, view, "container_cpu_usage_seconds_total", key, float64(*c.CPU.UsageCoreNanoSeconds)/1e9, c.CPU.Time.Time)
			checkSample(t, view, "container_memory_working_set_bytes", key, float64(*c.Memory.WorkingSetBytes), c.Memory.Time.Time)
			start := view["container_start_time_seconds"][key]
			if start == nil || int64(start.GetGauge().GetValue()) != c.StartTime.Unix() {
				t.Errorf("container_start_time_seconds{%s} = %v, want %d", key, start, c.StartTime.Unix())
			}
		}
	}
	if got := view["resource_scrape_error"][""]; got == nil || got.GetGauge().GetValue() != 0 {
		t.Errorf("resource_scrape_error = %v, want 0", got)
	}
}
