package server

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

func parseMetrics(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return families
}

func labelNames(m *dto.Metric) []string {
	var names []string
	for _, l := range m.Label {
		names = append(names, l.GetName())
	}
	slices.Sort(names)
	return names
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// ioFamiliesNotInCapture are the families the kubelet's cAdvisor serves
// from per-device I/O (DiskIoStats), with their help, type and label names
// (metrics/prometheus.go). The kubelet capture comes from a cgroup v1 node
// whose blkio lists no device, so it has none of them; container_fs_reads_total
// and container_fs_writes_total are in it, from the root's filesystems.
var ioFamiliesNotInCapture = map[string]*dto.MetricFamily{
	"container_blkio_device_usage_total":         ioFamily("Blkio Device bytes usage", "major", "minor", "operation"),
	"container_fs_reads_bytes_total":             ioFamily("Cumulative count of bytes read"),
	"container_fs_writes_bytes_total":            ioFamily("Cumulative count of bytes written"),
	"container_fs_io_cost_usage_seconds_total":   ioFamily("Cumulative IOCost usage in seconds"),
	"container_fs_io_cost_wait_seconds_total":    ioFamily("Cumulative IOCost wait in seconds"),
	"container_fs_io_cost_indebt_seconds_total":  ioFamily("Cumulative IOCost debt in seconds"),
	"container_fs_io_cost_indelay_seconds_total": ioFamily("Cumulative IOCost delay in seconds"),
}

func ioFamily(help string, extraLabels ...string) *dto.MetricFamily {
	m := &dto.Metric{}
	for _, name := range append([]string{"container", "device", "id", "image", "name", "namespace", "pod"}, extraLabels...) {
		m.Label = append(m.Label, &dto.LabelPair{Name: &name})
	}
	return &dto.MetricFamily{Help: &help, Type: dto.MetricType_COUNTER.Enum(), Metric: []*dto.Metric{m}}
}

// ioDisk is a device with v2's operations and blk-iocost data.
var ioDisk = cadvisor.DiskIO{Major: 254, Minor: 0, Bytes: [cadvisor.NumIOOps]uint64{4096, 8192}, IOs: [cadvisor.NumIOOps]uint64{3, 5},
	HasBytes: 1<<cadvisor.IORead | 1<<cadvisor.IOWrite, HasIOs: 1<<cadvisor.IORead | 1<<cadvisor.IOWrite,
	Cost: &cadvisor.IOCost{Usage: 1e6, Wait: 2e6, Indebt: 3e6, Indelay: 4e6}}

// newIOTestServer serves the legacy fixture with per-device I/O in the
// root's and the app container's samples and the disk in the machine facts.
func newIOTestServer(t *testing.T) *testServer {
	t.Helper()
	src := &fakeSource{}
	src.snapshot.Store(newIOTestServerSnapshot())
	return newTestServer(t, Config{}, src)
}

func newIOTestServerSnapshot() *snapshot.Snapshot {
	view := legacyView()
	for _, name := range []string{"/", legacyPodCgroup + "/ctr-app"} {
		for _, s := range view.Cgroups[name].Samples {
			s.DiskIO = []cadvisor.DiskIO{ioDisk}
		}
	}
	snap := legacySnapshot(1)
	machine := &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30,
		DiskMap: map[string]cadvisor.Disk{"254:0": {Name: "vda", Major: 254, Minor: 0}}}
	snap.Cgroups = snapshot.NewCgroups(view, machine, []snapshot.Pod{{
		Namespace: "default", Name: "web", UID: legacyPodUID, Cgroup: legacyPodCgroup,
		Containers: []snapshot.Container{{Name: "app", ID: "ctr-app", Cgroup: legacyPodCgroup + "/ctr-app",
			Labels: map[string]string{"io.kubernetes.container.name": "app"}}},
	}})
	return snap
}

// TestCadvisorMetricsShapeMatchesKubelet compares /metrics/cadvisor with the
// kubelet v1.36.3 sample family by family: no family the kubelet lacks, the
// same help, type and label names, and the families dashboards rely on.
func TestCadvisorMetricsShapeMatchesKubelet(t *testing.T) {
	sample, err := os.ReadFile("testdata/kubelet-v1.36.3/metrics-cadvisor.txt")
	if err != nil {
		t.Fatal(err)
	}
	kubelet := parseMetrics(t, string(sample))
	for name, family := range ioFamiliesNotInCapture {
		if kubelet[name] != nil {
			t.Errorf("%s is in the capture now: drop it from ioFamiliesNotInCapture", name)
		}
		kubelet[name] = family
	}
	ts := newIOTestServer(t)
	resp, body := do(t, http.MethodGet, ts.URL+cadvisorMetricsPath, "", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	ours := parseMetrics(t, body)
	for name, family := range ours {
		want := kubelet[name]
		if want == nil {
			t.Errorf("family %s is not in the kubelet's output", name)
			continue
		}
		if family.GetHelp() != want.GetHelp() || family.GetType() != want.GetType() {
			t.Errorf("%s: help %q type %v, kubelet: %q %v", name, family.GetHelp(), family.GetType(), want.GetHelp(), want.GetType())
		}
		if got, want := labelNames(family.Metric[0]), labelNames(want.Metric[0]); !slices.Equal(got, want) {
			t.Errorf("%s: labels %v, kubelet: %v", name, got, want)
		}
	}
	for _, name := range []string{
		"cadvisor_version_info", "machine_cpu_cores", "machine_memory_bytes",
		"container_cpu_usage_seconds_total", "container_cpu_user_seconds_total", "container_memory_working_set_bytes",
		"container_memory_usage_bytes", "container_memory_rss", "container_memory_cache", "container_spec_memory_limit_bytes",
		"container_network_receive_bytes_total", "container_oom_events_total", "container_start_time_seconds",
		"container_last_seen", "container_scrape_error",
		"container_fs_reads_bytes_total", "container_fs_writes_bytes_total", "container_fs_reads_total",
		"container_fs_writes_total", "container_blkio_device_usage_total", "container_fs_io_cost_usage_seconds_total",
	} {
		if ours[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
}

func TestCadvisorMetricsValuesAndLabels(t *testing.T) {
	ts := newLegacyTestServer(t)
	_, body := do(t, http.MethodGet, ts.URL+cadvisorMetricsPath, "", "") // gzip by Go's transport
	families := parseMetrics(t, body)
	byID := map[string]*dto.Metric{}
	for _, m := range families["container_cpu_usage_seconds_total"].GetMetric() {
		labels := labelsOf(m)
		if labels["cpu"] != "total" {
			t.Errorf("cpu usage per %q: the kubelet's metric set has no per-CPU usage", labels["cpu"])
		}
		byID[labels["id"]] = m
	}
	app := byID[legacyPodCgroup+"/ctr-app"]
	if app == nil {
		t.Fatalf("no series for the app container: %v", body)
	}
	// The newest of the fixture's samples: legacySamples seconds of cpu.
	if got := app.GetCounter().GetValue(); got != legacySamples {
		t.Errorf("app cpu %v s, want %d", got, legacySamples)
	}
	if got, want := app.GetTimestampMs(), legacySampleTime.UnixMilli(); got != want {
		t.Errorf("app sample at %d ms, want %d", got, want)
	}
	want := map[string]string{"id": legacyPodCgroup + "/ctr-app", "name": "ctr-app", "image": "registry.local/app:1",
		"container": "app", "pod": "web", "namespace": "default", "cpu": "total"}
	if got := labelsOf(app); !maps.Equal(got, want) {
		t.Errorf("app labels %v, want %v", got, want)
	}
	// The pod cgroup and the sandbox below it belong to the pod.
	for _, id := range []string{legacyPodCgroup, legacyPodCgroup + "/sandbox"} {
		labels := labelsOf(byID[id])
		if labels["pod"] != "web" || labels["namespace"] != "default" || labels["container"] != "" {
			t.Errorf("%s labels %v, want pod web in default and no container", id, labels)
		}
	}
	if labels := labelsOf(byID["/kubepods"]); labels["pod"] != "" || labels["namespace"] != "" {
		t.Errorf("/kubepods labels %v", labels)
	}
	if got := families["machine_cpu_cores"].GetMetric()[0].GetGauge().GetValue(); got != 2 {
		t.Errorf("machine_cpu_cores %v, want 2", got)
	}
}

func TestCadvisorMetricsBeforeFirstSnapshot(t *testing.T) {
	ts := newTestServer(t, Config{}, &fakeSource{})
	resp, body := do(t, http.MethodGet, ts.URL+cadvisorMetricsPath, "", "")
	if resp.StatusCode != http.StatusOK || body != "" {
		t.Errorf("before the first snapshot: %d %q, want an empty 200", resp.StatusCode, body)
	}
}

// BenchmarkCadvisorMetricsHandler scrapes /metrics/cadvisor with gzip, as
// Prometheus does, at 110 and 500 pods × 3 containers (2 samples per
// cgroup, what the collector keeps as Samples): the same snapshot again
// (a replay) and a new snapshot every scrape (a build).
func BenchmarkCadvisorMetricsHandler(b *testing.B) {
	for _, pods := range []int{110, 500} {
		src := &fakeSource{}
		snap := syntheticLegacySnapshot(pods, 3, 2)
		src.snapshot.Store(snap)
		handler := newReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{}, encodeSummary)
		req, _ := http.NewRequest(http.MethodGet, cadvisorMetricsPath, nil)
		req.Header.Set("Accept-Encoding", "gzip")
		b.Run(fmt.Sprintf("pods=%d/one snapshot", pods), func(b *testing.B) {
			w := &countingWriter{header: http.Header{}}
			for b.Loop() {
				handler.ServeHTTP(w, req)
			}
			b.ReportMetric(float64(w.written)/float64(b.N), "bytes/op-body")
		})
		b.Run(fmt.Sprintf("pods=%d/new snapshot each scrape", pods), func(b *testing.B) {
			w := &countingWriter{header: http.Header{}}
			cpu := startCPUMeter(b)
			for b.Loop() {
				fresh := *snap
				fresh.Generation++
				snap = &fresh
				src.snapshot.Store(snap)
				handler.ServeHTTP(w, req)
			}
			cpu.report()
			b.ReportMetric(float64(len(snap.Cgroups.AllContainerInfo())), "cgroups")
		})
	}
}

// specLimitView is the root and three cgroups: unlimited on v2 (memory.max
// "max" reads as MaxUint64), unlimited on v1 (the kernel's huge value) and
// limited to 1 GiB.
func specLimitView() *cadvisor.View {
	const v1Unlimited = 9223372036854771712
	mem := map[string]cadvisor.MemoryStats{
		"/":              {Limit: 8 << 30, SwapLimit: 2 << 30},
		"/kubepods":      {Limit: math.MaxUint64, SwapLimit: math.MaxUint64},
		"/kubepods/v1":   {Limit: v1Unlimited, SwapLimit: v1Unlimited, Reservation: v1Unlimited},
		"/kubepods/1gib": {Limit: 1 << 30, SwapLimit: 1 << 30, Reservation: 1 << 29},
	}
	view := &cadvisor.View{Time: legacySampleTime, Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for name, m := range mem {
		view.Cgroups[name] = &cadvisor.CgroupInfo{Name: name, Spec: cadvisor.Spec{HasCPU: true, HasMemory: true},
			Samples: []*cadvisor.Sample{{Timestamp: legacySampleTime, Memory: m}}}
	}
	return view
}

// TestCadvisorMetricsUnlimitedMemoryIsZero: kubelet 1.36's cAdvisor
// (v0.56.2) reads "max" as MaxUint64 and keeps v1's huge value, and its
// collector reports any limit above 2^62 as 0; only the root has the
// machine's memory. The legacy JSON keeps kubelet 1.20's machine memory.
func TestCadvisorMetricsUnlimitedMemoryIsZero(t *testing.T) {
	machine := &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30}
	legacy := snapshot.NewCgroups(specLimitView(), machine, nil)
	families, err := cadvisorMetrics(legacy, false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]float64{
		"container_spec_memory_limit_bytes":             {"/": 8 << 30, "/kubepods": 0, "/kubepods/v1": 0, "/kubepods/1gib": 1 << 30},
		"container_spec_memory_swap_limit_bytes":        {"/": 2 << 30, "/kubepods": 0, "/kubepods/v1": 0, "/kubepods/1gib": 1 << 30},
		"container_spec_memory_reservation_limit_bytes": {"/": 0, "/kubepods": 0, "/kubepods/v1": 0, "/kubepods/1gib": 1 << 29},
	}
	for _, family := range families {
		byID := want[family.GetName()]
		if byID == nil {
			continue
		}
		for _, m := range family.Metric {
			id := labelsOf(m)["id"]
			if got := m.GetGauge().GetValue(); got != byID[id] {
				t.Errorf("%s{id=%q} = %v, want %v", family.GetName(), id, got, byID[id])
			}
			delete(byID, id)
		}
		if len(byID) > 0 {
			t.Errorf("%s: no series for %v", family.GetName(), byID)
		}
		delete(want, family.GetName())
	}
	if len(want) > 0 {
		t.Errorf("families missing: %v", want)
	}
	info, ok := legacy.ContainerInfo("/kubepods", cadvisorapi.ContainerInfoRequest{NumStats: 1})
	if !ok || info.Spec.Memory.Limit != 8<<30 || info.Spec.Memory.SwapLimit != 0 {
		t.Errorf("legacy JSON spec of an unlimited v2 cgroup: %+v, want kubelet 1.20's machine memory and no swap limit", info.Spec.Memory)
	}
}

// TestCadvisorMetricsLabelsWithoutRuntime: pods found in the cgroup tree
// (no CRI, names from /var/log/pods) carry no runtime labels, yet their
// containers are named in /stats/summary; the series name them too.
func TestCadvisorMetricsLabelsWithoutRuntime(t *testing.T) {
	pods := []snapshot.Pod{{
		Namespace: "default", Name: "web", UID: legacyPodUID, Cgroup: legacyPodCgroup,
		Containers: []snapshot.Container{
			{Name: "app", ID: "ctr-app", Cgroup: legacyPodCgroup + "/ctr-app"},
			{Name: "side", ID: "ctr-side", Cgroup: legacyPodCgroup + "/ctr-side"},
		},
	}}
	machine := &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30}
	families, err := cadvisorMetrics(snapshot.NewCgroups(legacyView(), machine, pods), false, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][3]string{ // id -> namespace, pod, container
		legacyPodCgroup + "/ctr-app":  {"default", "web", "app"},
		legacyPodCgroup + "/ctr-side": {"default", "web", "side"},
		legacyPodCgroup:               {"default", "web", ""},
		legacyPodCgroup + "/sandbox":  {"default", "web", ""},
		"/kubepods":                   {"", "", ""},
	}
	for _, family := range families {
		if family.GetName() != "container_memory_usage_bytes" {
			continue
		}
		for _, m := range family.Metric {
			labels := labelsOf(m)
			w, ok := want[labels["id"]]
			if !ok {
				continue
			}
			if got := [3]string{labels["namespace"], labels["pod"], labels["container"]}; got != w {
				t.Errorf("%s: namespace, pod, container = %q, want %q", labels["id"], got, w)
			}
			delete(want, labels["id"])
		}
	}
	if len(want) > 0 {
		t.Errorf("no container_memory_usage_bytes series for %v", want)
	}
}

// TestCadvisorMetricsDiskIO: the values of the per-device I/O families, the
// device named from the machine's disks as cAdvisor names it.
func TestCadvisorMetricsDiskIO(t *testing.T) {
	ts := newIOTestServer(t)
	_, body := do(t, http.MethodGet, ts.URL+cadvisorMetricsPath, "", "")
	families := parseMetrics(t, body)
	app := legacyPodCgroup + "/ctr-app"
	want := map[string]float64{
		"container_fs_reads_bytes_total":             4096,
		"container_fs_writes_bytes_total":            8192,
		"container_fs_reads_total":                   3,
		"container_fs_writes_total":                  5,
		"container_fs_io_cost_usage_seconds_total":   1,
		"container_fs_io_cost_indelay_seconds_total": 4,
		"container_blkio_device_usage_total/Read":    4096,
		"container_blkio_device_usage_total/Write":   8192,
	}
	got := map[string]float64{}
	for name, family := range families {
		for _, m := range family.Metric {
			labels := labelsOf(m)
			if labels["id"] != app || labels["device"] == "" {
				continue
			}
			if labels["device"] != "/dev/vda" {
				t.Errorf("%s: device %q, want /dev/vda", name, labels["device"])
			}
			if labels["container"] != "app" || labels["pod"] != "web" {
				t.Errorf("%s: labels %v", name, labels)
			}
			key := name
			if op := labels["operation"]; op != "" {
				key += "/" + op
				if labels["major"] != "254" || labels["minor"] != "0" {
					t.Errorf("%s: major:minor %s:%s, want 254:0", key, labels["major"], labels["minor"])
				}
			}
			got[key] = m.GetCounter().GetValue()
		}
	}
	for key, value := range want {
		if got[key] != value {
			t.Errorf("%s{id=%q} = %v, want %v", key, app, got[key], value)
		}
	}
	if n := len(families["container_blkio_device_usage_total"].GetMetric()); n != 4 {
		t.Errorf("container_blkio_device_usage_total has %d series, want Read and Write of / and the app", n)
	}
}

// TestChunks: bytes written in pieces of every size across chunk
// boundaries come back whole and in order.
func TestChunks(t *testing.T) {
	var want []byte
	c := &chunks{}
	for i := 0; len(want) < 3*chunkSize+17; i++ {
		piece := bytes.Repeat([]byte{byte(i)}, i*97%5000+1)
		want = append(want, piece...)
		if n, err := c.Write(piece); n != len(piece) || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if c.len() != len(want) {
		t.Errorf("len %d, wrote %d", c.len(), len(want))
	}
	var out bytes.Buffer
	if err := c.writeTo(&out); err != nil || !bytes.Equal(out.Bytes(), want) {
		t.Errorf("writeTo: %d bytes (%v), want %d", out.Len(), err, len(want))
	}
	read, err := io.ReadAll(c.reader())
	if err != nil || !bytes.Equal(read, want) {
		t.Errorf("reader: %d bytes (%v), want %d", len(read), err, len(want))
	}
	for i, part := range c.parts {
		if cap(part) != chunkSize || (i < len(c.parts)-1 && len(part) != chunkSize) {
			t.Errorf("chunk %d: len %d cap %d", i, len(part), cap(part))
		}
	}
}
