package otel

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"
	corev1 "k8s.io/api/core/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	namespace   = "otel"
	memoryLimit = 64 << 20
	cpuLimit    = 0.5 // cores
	// scrapeWait bounds how long the receiver may take to emit a complete
	// scrape: a few of its 1 s collection intervals once the server has two
	// samples of every container.
	scrapeWait = 60 * time.Second
)

// The eight metrics that make the receiver read /pods, which are off by
// default.
var utilizationMetrics = []string{
	"k8s.container.cpu_limit_utilization", "k8s.container.memory_limit_utilization",
	"k8s.container.cpu_request_utilization", "k8s.container.memory_request_utilization",
	"k8s.pod.cpu_limit_utilization", "k8s.pod.memory_limit_utilization",
	"k8s.pod.cpu_request_utilization", "k8s.pod.memory_request_utilization",
}

// testPods are a Burstable pod (a limited container beside an unlimited
// one) and a Guaranteed one, each with an emptyDir.
type testPods struct {
	burstable, guaranteed *framework.Pod
}

func runPods(t *testing.T, c *framework.Cluster) testPods {
	t.Helper()
	ctx := context.Background()
	work := func(volume string) framework.ContainerSpec {
		return framework.ContainerSpec{
			Name: "work", Image: framework.WorkImage, Args: []string{"-cpu", "0.1", "-mem", "20", "-write", "/" + volume},
			MemoryLimitBytes: memoryLimit, CPULimitMilli: cpuLimit * 1000,
			Mounts: []framework.VolumeMount{{Volume: volume, MountPath: "/" + volume}},
		}
	}
	limited := work("scratch")
	limited.CPURequestMilli = 250
	burstable, err := c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "burstable", Namespace: namespace, EmptyDirs: []string{"scratch"},
		Containers: []framework.ContainerSpec{limited, {Name: "side", Image: framework.PauseImage}},
	})
	if err != nil {
		t.Fatalf("run burstable pod: %v", err)
	}
	full := work("cache")
	full.CPURequestMilli = cpuLimit * 1000
	// Guaranteed pods' cgroups sit right under kubepods.
	guaranteed, err := c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "guaranteed", Namespace: namespace, EmptyDirs: []string{"cache"}, CgroupParent: c.CgroupRoot + "/kubepods",
		Containers: []framework.ContainerSpec{full},
	})
	if err != nil {
		t.Fatalf("run guaranteed pod: %v", err)
	}
	return testPods{burstable: burstable, guaranteed: guaranteed}
}

// tlsFiles are the PEM files of the secure port and of the receiver's
// client certificate, from one CA.
type tlsFiles struct {
	ca, servingCert, servingKey, clientCert, clientKey string
}

func writeTLSFiles(t *testing.T) tlsFiles {
	t.Helper()
	dir := t.TempDir()
	ca := authtest.NewCA(t, "otel-ca")
	files := tlsFiles{
		ca: filepath.Join(dir, "ca.crt"), servingCert: filepath.Join(dir, "serving.crt"), servingKey: filepath.Join(dir, "serving.key"),
		clientCert: filepath.Join(dir, "client.crt"), clientKey: filepath.Join(dir, "client.key"),
	}
	authtest.WriteFile(t, files.ca, ca.CertPEM)
	servingCert, servingKey := ca.ServingPair(t, "127.0.0.1")
	authtest.WriteFile(t, files.servingCert, servingCert)
	authtest.WriteFile(t, files.servingKey, servingKey)
	client := ca.ClientCert(t, "otel-collector")
	keyDER, err := x509.MarshalPKCS8PrivateKey(client.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	authtest.WriteFile(t, files.clientCert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: client.Certificate[0]}))
	authtest.WriteFile(t, files.clientKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))
	return files
}

// TestKubeletstatsReceiver is the scenario: the receiver, unmodified,
// with extra_metadata_labels [container.id, k8s.volume.type], the volume
// group and the utilization metrics on, reads /pods beside /stats/summary on
// the read-only port and on the secure port with a client certificate, and
// emits every label and value those need.
func TestKubeletstatsReceiver(t *testing.T) {
	c := framework.StartCluster(t, "kss-otel")
	pods := runPods(t, c)
	files := writeTLSFiles(t)
	securePort := serverproc.FreePort(t)
	srv := serverproc.Start(t, serverBinary, c.ServerArgs("--volume-stats-agg-period=1s", "--port="+strconv.Itoa(securePort),
		"--client-ca-file="+files.ca, "--tls-cert-file="+files.servingCert, "--tls-private-key-file="+files.servingKey)...)
	waitForLimits(t, srv)

	for _, tc := range []struct {
		name string
		conf map[string]any
	}{
		{"read-only port", map[string]any{"auth_type": "none", "endpoint": srv.Base}},
		{"secure port with a client certificate", map[string]any{"auth_type": "tls",
			"endpoint": fmt.Sprintf("https://127.0.0.1:%d", securePort),
			"ca_file":  files.ca, "cert_file": files.clientCert, "key_file": files.clientKey}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scrape := scrapeUntilComplete(t, tc.conf, pods)
			checkScrape(t, scrape, pods)
		})
	}
}

// waitForLimits waits until /pods shows both work containers with their
// limits, so that a scrape that misses them fails as a defect, not as a
// server still starting.
func waitForLimits(t *testing.T, srv *serverproc.Server) {
	t.Helper()
	deadline := time.Now().Add(scrapeWait)
	for {
		status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/pods", nil, nil)
		var list corev1.PodList
		if status == http.StatusOK && json.Unmarshal(body, &list) == nil && workLimits(&list) == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/pods did not show the work containers' limits within %v: %d %s", scrapeWait, status, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func workLimits(list *corev1.PodList) int {
	found := 0
	for _, pod := range list.Items {
		for _, container := range pod.Spec.Containers {
			limits := container.Resources.Limits
			if container.Name == "work" && limits.Cpu().MilliValue() == cpuLimit*1000 && limits.Memory().Value() == memoryLimit {
				found++
			}
		}
	}
	return found
}

// resource is one resource of a scrape: its attributes and its metrics'
// values (the last data point of each).
type resource struct {
	attrs   map[string]string
	metrics map[string]float64
}

// scrape indexes a scrape's resources by "pod", "pod/container" or
// "pod/volume:<name>", plus "node".
type scrape map[string]resource

// scrapeUntilComplete runs the receiver with the factory's default config
// plus conf and the test's options until one scrape has every container's
// limit utilization and both volumes, and returns it.
func scrapeUntilComplete(t *testing.T, conf map[string]any, pods testPods) scrape {
	t.Helper()
	factory := kubeletstatsreceiver.NewFactory()
	cfg := factory.CreateDefaultConfig()
	settings := map[string]any{
		"collection_interval":   "1s",
		"extra_metadata_labels": []any{"container.id", "k8s.volume.type"},
		"metric_groups":         []any{"node", "pod", "container", "volume"},
	}
	metrics := map[string]any{}
	for _, name := range utilizationMetrics {
		metrics[name] = map[string]any{"enabled": true}
	}
	settings["metrics"] = metrics
	for k, v := range conf {
		settings[k] = v
	}
	if err := confmap.NewFromStringMap(settings).Unmarshal(cfg); err != nil {
		t.Fatalf("receiver config: %v", err)
	}
	sink := new(consumertest.MetricsSink)
	ctx := context.Background()
	rcv, err := factory.CreateMetrics(ctx, receivertest.NewNopSettings(factory.Type()), cfg, sink)
	if err != nil {
		t.Fatalf("create receiver: %v", err)
	}
	if err := rcv.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatalf("start receiver: %v", err)
	}
	defer func() {
		if err := rcv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown receiver: %v", err)
		}
	}()
	deadline := time.Now().Add(scrapeWait)
	for {
		batches := sink.AllMetrics()
		for i := len(batches) - 1; i >= 0; i-- {
			if s := indexScrape(batches[i]); s.complete(pods) {
				return s
			}
		}
		if time.Now().After(deadline) {
			var last scrape
			if len(batches) > 0 {
				last = indexScrape(batches[len(batches)-1])
			}
			t.Fatalf("no complete scrape within %v (%d scrapes); the last: %v", scrapeWait, len(batches), last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s scrape) complete(pods testPods) bool {
	for _, key := range []string{"burstable/work", "guaranteed/work"} {
		if _, ok := s[key].metrics["k8s.container.cpu_limit_utilization"]; !ok {
			return false
		}
	}
	_, scratch := s["burstable/volume:scratch"]
	_, cache := s["guaranteed/volume:cache"]
	return scratch && cache
}

func indexScrape(m pmetric.Metrics) scrape {
	out := scrape{}
	for i := 0; i < m.ResourceMetrics().Len(); i++ {
		rm := m.ResourceMetrics().At(i)
		r := resource{attrs: map[string]string{}, metrics: map[string]float64{}}
		for k, v := range rm.Resource().Attributes().All() {
			r.attrs[k] = v.AsString()
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			metrics := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < metrics.Len(); k++ {
				if value, ok := lastValue(metrics.At(k)); ok {
					r.metrics[metrics.At(k).Name()] = value
				}
			}
		}
		out[resourceKey(r.attrs)] = r
	}
	return out
}

func resourceKey(attrs map[string]string) string {
	pod := attrs["k8s.pod.name"]
	switch {
	case attrs["k8s.volume.name"] != "":
		return pod + "/volume:" + attrs["k8s.volume.name"]
	case attrs["k8s.container.name"] != "":
		return pod + "/" + attrs["k8s.container.name"]
	case pod != "":
		return pod
	}
	return "node"
}

func lastValue(m pmetric.Metric) (float64, bool) {
	var points pmetric.NumberDataPointSlice
	switch m.Type() {
	case pmetric.MetricTypeGauge:
		points = m.Gauge().DataPoints()
	case pmetric.MetricTypeSum:
		points = m.Sum().DataPoints()
	default:
		return 0, false
	}
	if points.Len() == 0 {
		return 0, false
	}
	p := points.At(points.Len() - 1)
	if p.ValueType() == pmetric.NumberDataPointValueTypeInt {
		return float64(p.IntValue()), true
	}
	return p.DoubleValue(), true
}

func checkScrape(t *testing.T, s scrape, pods testPods) {
	t.Helper()
	if _, ok := s["node"].metrics["k8s.node.cpu.usage"]; !ok {
		t.Errorf("node metrics missing: the scrape was dropped? %v", s["node"])
	}
	checkContainerIDs(t, s, pods)
	checkVolumeTypes(t, s, pods)
	checkUtilizations(t, s)
}

// checkContainerIDs: every container's resource carries its CRI ID.
func checkContainerIDs(t *testing.T, s scrape, pods testPods) {
	t.Helper()
	for _, pod := range []*framework.Pod{pods.burstable, pods.guaranteed} {
		for _, container := range pod.Containers {
			key := pod.Name + "/" + container.Name
			r, found := s[key]
			if !found {
				t.Errorf("no resource for container %s", key)
				continue
			}
			if got := r.attrs["container.id"]; got != container.ID {
				t.Errorf("%s container.id = %q, want %q", key, got, container.ID)
			}
			if r.attrs["k8s.pod.uid"] != pod.UID || r.attrs["k8s.namespace.name"] != namespace {
				t.Errorf("%s attributes = %v, want pod uid %s in %s", key, r.attrs, pod.UID, namespace)
			}
		}
	}
}

func checkVolumeTypes(t *testing.T, s scrape, pods testPods) {
	t.Helper()
	for _, key := range []string{"burstable/volume:scratch", "guaranteed/volume:cache"} {
		r := s[key]
		if got := r.attrs["k8s.volume.type"]; got != "emptyDir" {
			t.Errorf("%s k8s.volume.type = %q, want emptyDir (attributes %v)", key, got, r.attrs)
		}
		if r.metrics["k8s.volume.capacity"] <= 0 {
			t.Errorf("%s k8s.volume.capacity = %v, want the filesystem's", key, r.metrics["k8s.volume.capacity"])
		}
	}
}

// checkUtilizations: each utilization is the scrape's own usage over the
// limit or request /pods gave, so the values must agree exactly; the
// receiver emits one only where /pods gave the limit or request.
func checkUtilizations(t *testing.T, s scrape) {
	t.Helper()
	type ratio struct {
		key, metric, usage string
		divisor            float64 // 0: the metric must be absent
	}
	const cpuRequest = 0.25
	for _, r := range []ratio{
		{"guaranteed/work", "k8s.container.cpu_limit_utilization", "container.cpu.usage", cpuLimit},
		{"guaranteed/work", "k8s.container.cpu_request_utilization", "container.cpu.usage", cpuLimit},
		{"guaranteed/work", "k8s.container.memory_limit_utilization", "container.memory.usage", memoryLimit},
		// A Guaranteed pod's memory request is its limit.
		{"guaranteed/work", "k8s.container.memory_request_utilization", "container.memory.usage", memoryLimit},
		{"guaranteed", "k8s.pod.cpu_limit_utilization", "k8s.pod.cpu.usage", cpuLimit},
		{"guaranteed", "k8s.pod.memory_limit_utilization", "k8s.pod.memory.usage", memoryLimit},
		{"guaranteed", "k8s.pod.memory_request_utilization", "k8s.pod.memory.usage", memoryLimit},
		{"burstable/work", "k8s.container.cpu_limit_utilization", "container.cpu.usage", cpuLimit},
		{"burstable/work", "k8s.container.cpu_request_utilization", "container.cpu.usage", cpuRequest},
		{"burstable/work", "k8s.container.memory_limit_utilization", "container.memory.usage", memoryLimit},
		// A Burstable container's memory request leaves no trace in cgroup v1.
		{"burstable/work", "k8s.container.memory_request_utilization", "", 0},
		// side has no limits, so neither has the pod.
		{"burstable/side", "k8s.container.cpu_limit_utilization", "", 0},
		{"burstable/side", "k8s.container.memory_limit_utilization", "", 0},
		{"burstable", "k8s.pod.cpu_limit_utilization", "", 0},
		{"burstable", "k8s.pod.memory_limit_utilization", "", 0},
	} {
		got, present := s[r.key].metrics[r.metric]
		if r.divisor == 0 {
			if present {
				t.Errorf("%s %s = %v, want none", r.key, r.metric, got)
			}
			continue
		}
		usage, hasUsage := s[r.key].metrics[r.usage]
		want := usage / r.divisor
		if !present || !hasUsage || math.Abs(got-want) > 1e-9*math.Max(1, want) || got <= 0 {
			t.Errorf("%s %s = %v (present %v), want %s/%v = %v", r.key, r.metric, got, present, r.usage, r.divisor, want)
		}
	}
	// The work containers hold 20 MiB of their 64 MiB.
	for _, key := range []string{"guaranteed/work", "burstable/work"} {
		if u := s[key].metrics["k8s.container.memory_limit_utilization"]; u < 0.25 || u > 1 {
			t.Errorf("%s memory limit utilization = %v, want the 20 MiB the container holds of its 64 MiB", key, u)
		}
	}
}
