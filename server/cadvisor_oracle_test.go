package server

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	cadvisormetrics "github.com/google/cadvisor/container"
	cadvisorapi "github.com/google/cadvisor/info/v1"
	cadvisorapiv2 "github.com/google/cadvisor/info/v2"
	"github.com/google/cadvisor/metrics"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
	"k8s.io/klog/v2"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// The oracle of /metrics/cadvisor: cAdvisor v0.56.2's own collectors, as
// the kubelet registers them, over the snapshot's ContainerInfos, gathered
// by a client_golang registry and encoded by expfmt. Production writes the
// same text directly (cadvisor_text.go); these tests hold the two to the
// same bytes.

// oracleMetricSet is the kubelet's includedMetrics (InstallDefaultHandlers),
// plus pressure metrics where its IsPsiEnabled would add them.
func oracleMetricSet(psi bool) cadvisormetrics.MetricSet {
	set := cadvisormetrics.MetricSet{
		cadvisormetrics.CpuUsageMetrics: struct{}{}, cadvisormetrics.MemoryUsageMetrics: struct{}{},
		cadvisormetrics.CpuLoadMetrics: struct{}{}, cadvisormetrics.DiskIOMetrics: struct{}{},
		cadvisormetrics.DiskUsageMetrics: struct{}{}, cadvisormetrics.NetworkUsageMetrics: struct{}{},
		cadvisormetrics.AppMetrics: struct{}{}, cadvisormetrics.ProcessMetrics: struct{}{},
		cadvisormetrics.OOMMetrics: struct{}{},
	}
	if psi {
		set[cadvisormetrics.PressureMetrics] = struct{}{}
	}
	return set
}

// oracleInfoProvider is cAdvisor's infoProvider over a snapshot's view,
// answering the kubelet's one request (recursive from "/", newest sample).
type oracleInfoProvider struct {
	legacy *snapshot.Cgroups
}

func (p oracleInfoProvider) GetRequestedContainersInfo(string, cadvisorapiv2.RequestOptions) (map[string]*cadvisorapi.ContainerInfo, error) {
	infos := p.legacy.AllContainerInfo()
	for _, info := range infos {
		for _, stats := range info.Stats {
			stats.Cpu.Usage.PerCpu = nil // no PercpuUsageMetrics in the kubelet's set
		}
	}
	return infos, nil
}

func (p oracleInfoProvider) GetVersionInfo() (*cadvisorapi.VersionInfo, error) {
	if version, ok := p.legacy.VersionInfo(); ok {
		return version, nil
	}
	return nil, errors.New("machine facts unknown")
}

func (p oracleInfoProvider) GetMachineInfo() (*cadvisorapi.MachineInfo, error) {
	if machine, ok := p.legacy.MachineInfo(); ok {
		return machine, nil
	}
	return nil, errors.New("machine facts unknown")
}

// oracleText is what the kubelet's /metrics/cadvisor handler would send in
// the text format for this view. Gather errors (duplicate series) are
// ignored, as the kubelet's ContinueOnError handler ignores them.
func oracleText(t *testing.T, legacy *snapshot.Cgroups, psi bool, now time.Time) string {
	t.Helper()
	source := oracleInfoProvider{legacy: legacy}
	labels := kubeletContainerLabels(legacy)
	labelMap := func(c *cadvisorapi.ContainerInfo) map[string]string {
		l := labels(c)
		out := map[string]string{}
		for i, name := range baseLabelNames {
			out[name] = l[i]
		}
		return out
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(
		metrics.NewPrometheusMachineCollector(source, oracleMetricSet(psi)),
		metrics.NewPrometheusCollector(source, labelMap, oracleMetricSet(psi), testingclock.NewFakeClock(now),
			cadvisorapiv2.RequestOptions{IdType: cadvisorapiv2.TypeName, Count: 1, Recursive: true}),
	)
	families, _ := registry.Gather()
	var out bytes.Buffer
	encoder := expfmt.NewEncoder(&out, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, family := range families {
		if err := encoder.Encode(family); err != nil {
			t.Fatal(err)
		}
	}
	return out.String()
}

func ourText(t *testing.T, legacy *snapshot.Cgroups, psi bool, now time.Time) string {
	t.Helper()
	in, err := newCadvisorSnapshot(legacy, psi, now)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeCadvisorText(&out, in); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// oracleCases are views that exercise every family and the ordering and
// escaping rules: pods with runtime labels and without, quotas,
// pressure, network, per-device I/O with iocost and an unnamed device twice
// (a duplicate series the registry drops), label values that need escaping,
// a cgroup without samples, unlimited and limited memory, unknown machine.
func oracleCases() map[string]*snapshot.Cgroups {
	cases := map[string]*snapshot.Cgroups{
		"synthetic node, 5 pods x 3": syntheticLegacySnapshot(5, 3, 3).Cgroups,
		"legacy fixture":             legacySnapshot(1).Cgroups,
		"per-device I/O":             newIOLegacy(),
		"spec limits":                snapshot.NewCgroups(specLimitView(), &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30}, nil),
	}
	view := legacyView()
	odd := view.Cgroups[legacyPodCgroup+"/ctr-side"]
	odd.Samples[len(odd.Samples)-1].DiskIO = []cadvisor.DiskIO{
		{Major: 7, Minor: 1, Bytes: [cadvisor.NumIOOps]uint64{1, 2, 3, 4, 5, 6}, IOs: [cadvisor.NumIOOps]uint64{6, 5, 4, 3, 2, 1}, HasBytes: 0x3f, HasIOs: 0x3f},
		{Major: 7, Minor: 2, Bytes: [cadvisor.NumIOOps]uint64{9, 9}, HasBytes: 3},
	}
	odd.Samples[len(odd.Samples)-1].Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{{Name: "b\"ack\\slash"}, {Name: "a\nnewline"}, {Name: "a\nnewline"}}}
	view.Cgroups["/kubepods/besteffort"] = &cadvisor.CgroupInfo{Name: "/kubepods/besteffort", Spec: cadvisor.Spec{HasCPU: true, CPUQuota: 2000}}
	pods := []snapshot.Pod{{
		Namespace: "ns \"quoted\"", Name: "web\\1", UID: legacyPodUID, Cgroup: legacyPodCgroup,
		Containers: []snapshot.Container{
			{Name: "app", ID: "ctr-app", Cgroup: legacyPodCgroup + "/ctr-app", Image: "registry.local/app:1\nx",
				Labels: map[string]string{"io.kubernetes.container.name": "app", "io.kubernetes.pod.name": "web\\1", "io.kubernetes.pod.namespace": "ns"}},
			{Name: "side", ID: "ctr-side", Cgroup: legacyPodCgroup + "/ctr-side"},
		},
	}}
	cases["escaping, no machine facts, a cgroup without samples"] = snapshot.NewCgroups(view, nil, pods)
	return cases
}

func newIOLegacy() *snapshot.Cgroups {
	return newIOTestServerSnapshot().Cgroups
}

// TestCadvisorTextMatchesCollectors: the text written directly is byte for
// byte what cAdvisor's collectors, gathered and encoded as the kubelet
// does, produce from the same view: families, help, types, label names and
// values, order, numbers and timestamps.
func TestCadvisorTextMatchesCollectors(t *testing.T) {
	klog.SetOutput(&bytes.Buffer{}) // the collectors warn about unknown machine facts
	defer klog.SetOutput(nil)
	now := time.Unix(1700000123, 456789000)
	for name, legacy := range oracleCases() {
		for _, psi := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s, psi %v", name, psi), func(t *testing.T) {
				want, got := oracleText(t, legacy, psi, now), ourText(t, legacy, psi, now)
				if got == want {
					return
				}
				wantLines, gotLines := strings.Split(want, "\n"), strings.Split(got, "\n")
				for i := range max(len(wantLines), len(gotLines)) {
					var w, g string
					if i < len(wantLines) {
						w = wantLines[i]
					}
					if i < len(gotLines) {
						g = gotLines[i]
					}
					if w != g {
						t.Fatalf("line %d differs (%d lines, cAdvisor %d):\n ours:     %q\n cAdvisor: %q", i+1, len(gotLines), len(wantLines), g, w)
					}
				}
			})
		}
	}
}

// TestCadvisorMetricsProtobuf: a scraper that negotiates protobuf gets the
// families cAdvisor's collectors would give, and the text body is still
// built once.
func TestCadvisorMetricsProtobuf(t *testing.T) {
	klog.SetOutput(&bytes.Buffer{})
	defer klog.SetOutput(nil)
	ts := newIOTestServer(t)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+cadvisorMetricsPath, nil)
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeProtoDelim)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/vnd.google.protobuf") {
		t.Fatalf("Content-Type %q", ct)
	}
	decoder := expfmt.NewDecoder(resp.Body, expfmt.NewFormat(expfmt.TypeProtoDelim))
	got := map[string]*dto.MetricFamily{}
	for {
		var family dto.MetricFamily
		if err := decoder.Decode(&family); err != nil {
			break
		}
		got[family.GetName()] = &family
	}
	want := parseMetrics(t, oracleText(t, newIOLegacy(), false, time.Now()))
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("%d families, cAdvisor %d", len(got), len(want))
	}
	for name, family := range want {
		if name == "container_last_seen" {
			continue // the scrape time
		}
		if !proto.Equal(got[name], family) {
			t.Errorf("%s:\n ours     %v\n cAdvisor %v", name, got[name], family)
		}
	}
}

// TestCadvisorMetricsBuiltOncePerSnapshot: gzip and identity scrapes of
// one snapshot share one build; a new snapshot builds again.
func TestCadvisorMetricsBuiltOncePerSnapshot(t *testing.T) {
	src := &fakeSource{}
	src.snapshot.Store(legacySnapshot(1))
	h := newReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{}, encodeSummary)
	scrape := func(encoding string) (*httptest.ResponseRecorder, string) {
		req := httptest.NewRequest(http.MethodGet, cadvisorMetricsPath, nil)
		if encoding != "" {
			req.Header.Set("Accept-Encoding", encoding)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		body := rec.Body.String()
		if rec.Header().Get("Content-Encoding") == "gzip" {
			body = gunzip(t, rec.Body.Bytes())
		}
		return rec, body
	}
	gz, gzBody := scrape("gzip")
	plain, plainBody := scrape("")
	if gz.Code != http.StatusOK || plain.Code != http.StatusOK {
		t.Fatalf("status %d, %d", gz.Code, plain.Code)
	}
	if gzBody != plainBody || !strings.Contains(plainBody, "container_cpu_usage_seconds_total{") {
		t.Errorf("gzip and identity bodies differ or are empty:\n%.200s\n%.200s", gzBody, plainBody)
	}
	if got, want := plain.Header().Get("Content-Length"), fmt.Sprint(len(plainBody)); got != want {
		t.Errorf("identity Content-Length %s, body %s bytes", got, want)
	}
	for _, header := range []string{"Content-Type", "Vary"} {
		if plain.Header().Get(header) == "" {
			t.Errorf("no %s header", header)
		}
	}
	// The body is the snapshot's: the scrape time in container_last_seen
	// does not move within a snapshot, and does with the next one.
	lastSeen := func(body string) string {
		i := strings.Index(body, "\ncontainer_last_seen{")
		return body[i : i+strings.Index(body[i+1:], "\n")]
	}
	time.Sleep(1100 * time.Millisecond) // the measured quantity is a second-resolution clock
	if _, again := scrape("gzip"); lastSeen(again) != lastSeen(gzBody) {
		t.Error("a second scrape of one snapshot rebuilt its body")
	}
	src.snapshot.Store(legacySnapshot(2))
	if _, next := scrape("gzip"); lastSeen(next) == lastSeen(gzBody) {
		t.Error("a new snapshot was answered with the previous body")
	}
}

func gunzip(t *testing.T, data []byte) string {
	t.Helper()
	r, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}
