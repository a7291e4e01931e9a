package server

import (
	"errors"
	"fmt"
	"time"

	cadvisormetrics "github.com/google/cadvisor/container"
	cadvisorapi "github.com/google/cadvisor/info/v1"
	cadvisorapiv2 "github.com/google/cadvisor/info/v2"
	"github.com/google/cadvisor/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/utils/clock"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// cadvisorMetricsPath is where Prometheus (kube-prometheus-stack), Datadog
// and Lens scrape container metrics (pkg/kubelet/server/server.go).
const cadvisorMetricsPath = "/metrics/cadvisor"

// cadvisorMetricSet is the kubelet's includedMetrics
// (InstallDefaultHandlers), plus pressure metrics where its IsPsiEnabled
// would add them.
func cadvisorMetricSet(psi bool) cadvisormetrics.MetricSet {
	set := cadvisormetrics.MetricSet{
		cadvisormetrics.CpuUsageMetrics:     struct{}{},
		cadvisormetrics.MemoryUsageMetrics:  struct{}{},
		cadvisormetrics.CpuLoadMetrics:      struct{}{},
		cadvisormetrics.DiskIOMetrics:       struct{}{},
		cadvisormetrics.DiskUsageMetrics:    struct{}{},
		cadvisormetrics.NetworkUsageMetrics: struct{}{},
		cadvisormetrics.AppMetrics:          struct{}{},
		cadvisormetrics.ProcessMetrics:      struct{}{},
		cadvisormetrics.OOMMetrics:          struct{}{},
	}
	if psi {
		set[cadvisormetrics.PressureMetrics] = struct{}{}
	}
	return set
}

// cadvisorRequest is what the kubelet asks cAdvisor's collector for: every
// container below "/" by name, newest sample only.
var cadvisorRequest = cadvisorapiv2.RequestOptions{IdType: cadvisorapiv2.TypeName, Count: 1, Recursive: true}

// installCadvisorMetrics adds /metrics/cadvisor: cAdvisor's own Prometheus
// collectors (machine and containers) with the kubelet's metric set and
// labels, fed from the snapshot's cgroup view instead of a cAdvisor
// manager, and served like /metrics/resource.
func installCadvisorMetrics(c filteringContainer, summary *summaryHandler, processStart time.Time, psi bool) {
	set := cadvisorMetricSet(psi)
	c.Handle(cadvisorMetricsPath, &snapshotMetricsHandler{
		logger: summary.logger, source: summary.source, bodies: summary.bodies,
		opts:      promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ProcessStartTime: processStart},
		responses: func(b *snapshotBodies) *metricsResponses { return &b.cadvisorMetrics },
		families: func(snap *provider.Snapshot) ([]*dto.MetricFamily, error) {
			return cadvisorMetrics(snap.Legacy, set)
		},
		beforeFirstSnapshot: func() []*dto.MetricFamily { return nil },
	})
}

// cadvisorMetrics gathers cAdvisor's machine and container collectors over
// one snapshot's view.
func cadvisorMetrics(legacy *provider.Legacy, set cadvisormetrics.MetricSet) ([]*dto.MetricFamily, error) {
	if legacy == nil {
		return nil, errors.New("the snapshot has no cgroup view")
	}
	source := legacyInfoProvider{legacy: legacy}
	registry := prometheus.NewRegistry()
	for _, collector := range []prometheus.Collector{
		metrics.NewPrometheusMachineCollector(source, set),
		metrics.NewPrometheusCollector(source, kubeletContainerLabels(legacy), set, clock.RealClock{}, cadvisorRequest),
	} {
		if err := registry.Register(collector); err != nil {
			return nil, fmt.Errorf("register cAdvisor collector: %w", err)
		}
	}
	return registry.Gather()
}

// legacyInfoProvider is cAdvisor's infoProvider over a snapshot's view.
type legacyInfoProvider struct {
	legacy *provider.Legacy
}

// GetRequestedContainersInfo answers the kubelet's one request. Per-CPU
// usage is dropped, as cAdvisor drops it when PercpuUsageMetrics is not in
// the metric set, so that cpu usage comes as one cpu="total" series.
func (p legacyInfoProvider) GetRequestedContainersInfo(string, cadvisorapiv2.RequestOptions) (map[string]*cadvisorapi.ContainerInfo, error) {
	infos := p.legacy.AllContainerInfo() // fresh objects: ours to change
	for _, info := range infos {
		for _, stats := range info.Stats {
			stats.Cpu.Usage.PerCpu = nil
		}
	}
	return infos, nil
}

func (p legacyInfoProvider) GetVersionInfo() (*cadvisorapi.VersionInfo, error) {
	if version, ok := p.legacy.VersionInfo(); ok {
		return version, nil
	}
	return nil, errors.New("machine facts unknown")
}

func (p legacyInfoProvider) GetMachineInfo() (*cadvisorapi.MachineInfo, error) {
	if machine, ok := p.legacy.MachineInfo(); ok {
		return machine, nil
	}
	return nil, errors.New("machine facts unknown")
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
func kubeletContainerLabels(legacy *provider.Legacy) metrics.ContainerLabelsFunc {
	return func(c *cadvisorapi.ContainerInfo) map[string]string {
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
		return map[string]string{
			metrics.LabelID:    c.Name,
			metrics.LabelName:  name,
			metrics.LabelImage: c.Spec.Image,
			"pod":              podName,
			"namespace":        namespace,
			"container":        container,
		}
	}
}
