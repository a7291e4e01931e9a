package server

import (
	"cmp"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// resourceMetricsPath is where metrics-server 0.6 and later scrape
// (pkg/kubelet/server/server.go resourceMetricsPath).
const resourceMetricsPath = "/metrics/resource"

// resourceFamily describes one family of the kubelet's resource metrics
// (pkg/kubelet/metrics/collectors/resource_metrics.go). Help carries the
// stability prefix component-base adds when it registers the family.
type resourceFamily struct {
	name, help string
	kind       dto.MetricType
}

var (
	nodeCPUUsage           = resourceFamily{"node_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the node in core-seconds", dto.MetricType_COUNTER}
	nodeMemoryWorkingSet   = resourceFamily{"node_memory_working_set_bytes", "[STABLE] Current working set of the node in bytes", dto.MetricType_GAUGE}
	nodeSwapUsage          = resourceFamily{"node_swap_usage_bytes", "[ALPHA] Current swap usage of the node in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE}
	containerStartTime     = resourceFamily{"container_start_time_seconds", "[STABLE] Start time of the container since unix epoch in seconds", dto.MetricType_GAUGE}
	containerCPUUsage      = resourceFamily{"container_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the container in core-seconds", dto.MetricType_COUNTER}
	containerMemoryWorking = resourceFamily{"container_memory_working_set_bytes", "[STABLE] Current working set of the container in bytes", dto.MetricType_GAUGE}
	containerSwapUsage     = resourceFamily{"container_swap_usage_bytes", "[ALPHA] Current amount of the container swap usage in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE}
	containerSwapLimit     = resourceFamily{"container_swap_limit_bytes", "[ALPHA] Current amount of the container swap limit in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE}
	podCPUUsage            = resourceFamily{"pod_cpu_usage_seconds_total", "[STABLE] Cumulative cpu time consumed by the pod in core-seconds", dto.MetricType_COUNTER}
	podMemoryWorkingSet    = resourceFamily{"pod_memory_working_set_bytes", "[STABLE] Current working set of the pod in bytes", dto.MetricType_GAUGE}
	podSwapUsage           = resourceFamily{"pod_swap_usage_bytes", "[ALPHA] Current amount of the pod swap usage in bytes. Reported only on non-windows systems", dto.MetricType_GAUGE}
	resourceScrapeError    = resourceFamily{"resource_scrape_error", "[STABLE] 1 if there was an error while getting container metrics, 0 otherwise", dto.MetricType_GAUGE}
)

// resourceMetrics converts a CPU-and-memory Summary into the kubelet's
// resource metrics, families sorted by name and samples by label values as
// a Prometheus registry gathers them. A nil summary (no snapshot yet) gives
// only resource_scrape_error, set to 1, as the kubelet answers when its
// provider fails. The deprecated scrape_error (ALPHA, deprecated in 1.29)
// is not served: component-base hides it in every release kubelet past
// 1.29; only a kubelet built without version ldflags (v0.0.0) shows it.
func resourceMetrics(s *statsapi.Summary) []*dto.MetricFamily {
	b := newFamilyBuilder()
	scrapeFailed := 0.0
	if s == nil {
		scrapeFailed = 1
	} else {
		addNodeResourceMetrics(b, s.Node)
		for i := range s.Pods {
			addPodResourceMetrics(b, &s.Pods[i])
		}
	}
	b.add(resourceScrapeError, scrapeFailed, nil, nil)
	return b.families()
}

func addNodeResourceMetrics(b *familyBuilder, node statsapi.NodeStats) {
	if cpu := node.CPU; cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		b.add(nodeCPUUsage, coreSeconds(*cpu.UsageCoreNanoSeconds), &cpu.Time.Time, nil)
	}
	if mem := node.Memory; mem != nil && mem.WorkingSetBytes != nil {
		b.add(nodeMemoryWorkingSet, float64(*mem.WorkingSetBytes), &mem.Time.Time, nil)
	}
	if swap := node.Swap; swap != nil && swap.SwapUsageBytes != nil {
		b.add(nodeSwapUsage, float64(*swap.SwapUsageBytes), &swap.Time.Time, nil)
	}
}

func addPodResourceMetrics(b *familyBuilder, pod *statsapi.PodStats) {
	podLabels := []*dto.LabelPair{label("namespace", pod.PodRef.Namespace), label("pod", pod.PodRef.Name)}
	for i := range pod.Containers {
		addContainerResourceMetrics(b, pod.PodRef, &pod.Containers[i])
	}
	if cpu := pod.CPU; cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		b.add(podCPUUsage, coreSeconds(*cpu.UsageCoreNanoSeconds), &cpu.Time.Time, podLabels)
	}
	if mem := pod.Memory; mem != nil && mem.WorkingSetBytes != nil {
		b.add(podMemoryWorkingSet, float64(*mem.WorkingSetBytes), &mem.Time.Time, podLabels)
	}
	if swap := pod.Swap; swap != nil && swap.SwapUsageBytes != nil {
		b.add(podSwapUsage, float64(*swap.SwapUsageBytes), &swap.Time.Time, podLabels)
	}
}

func addContainerResourceMetrics(b *familyBuilder, ref statsapi.PodReference, c *statsapi.ContainerStats) {
	labels := []*dto.LabelPair{label("container", c.Name), label("namespace", ref.Namespace), label("pod", ref.Name)}
	// A zero start time (a container around its start or stop) once made
	// the kubelet report negative start times (kubernetes#109679).
	if c.StartTime.Unix() > 0 {
		b.add(containerStartTime, float64(c.StartTime.UnixNano())/float64(time.Second), nil, labels)
	}
	if cpu := c.CPU; cpu != nil && cpu.UsageCoreNanoSeconds != nil {
		b.add(containerCPUUsage, coreSeconds(*cpu.UsageCoreNanoSeconds), &cpu.Time.Time, labels)
	}
	if mem := c.Memory; mem != nil && mem.WorkingSetBytes != nil {
		b.add(containerMemoryWorking, float64(*mem.WorkingSetBytes), &mem.Time.Time, labels)
	}
	if swap := c.Swap; swap != nil {
		// The limit is usage + available, usage counting as 0 when absent.
		var usage float64
		if swap.SwapUsageBytes != nil {
			usage = float64(*swap.SwapUsageBytes)
			b.add(containerSwapUsage, usage, &swap.Time.Time, labels)
		}
		if swap.SwapAvailableBytes != nil {
			b.add(containerSwapLimit, float64(*swap.SwapAvailableBytes)+usage, &swap.Time.Time, labels)
		}
	}
}

func coreSeconds(nanoseconds uint64) float64 {
	return float64(nanoseconds) / float64(time.Second)
}

func label(name, value string) *dto.LabelPair {
	return &dto.LabelPair{Name: proto.String(name), Value: proto.String(value)}
}

// familyBuilder collects samples per family; families without samples are
// left out, as a registry leaves out a collector's families it did not emit.
type familyBuilder struct {
	byName map[string]*dto.MetricFamily
}

func newFamilyBuilder() *familyBuilder {
	return &familyBuilder{byName: make(map[string]*dto.MetricFamily)}
}

// add appends one sample; labels must be sorted by name and may be shared
// between samples (the encoder only reads them).
func (b *familyBuilder) add(f resourceFamily, value float64, at *time.Time, labels []*dto.LabelPair) {
	family := b.byName[f.name]
	if family == nil {
		family = &dto.MetricFamily{Name: proto.String(f.name), Help: proto.String(f.help), Type: f.kind.Enum()}
		b.byName[f.name] = family
	}
	metric := &dto.Metric{Label: labels}
	if f.kind == dto.MetricType_COUNTER {
		metric.Counter = &dto.Counter{Value: proto.Float64(value)}
	} else {
		metric.Gauge = &dto.Gauge{Value: proto.Float64(value)}
	}
	if at != nil {
		metric.TimestampMs = proto.Int64(at.UnixMilli())
	}
	family.Metric = append(family.Metric, metric)
}

// families returns the families sorted like prometheus.Registry.Gather.
func (b *familyBuilder) families() []*dto.MetricFamily {
	out := make([]*dto.MetricFamily, 0, len(b.byName))
	for _, family := range b.byName {
		slices.SortFunc(family.Metric, compareMetrics)
		out = append(out, family)
	}
	slices.SortFunc(out, func(a, b *dto.MetricFamily) int { return cmp.Compare(a.GetName(), b.GetName()) })
	return out
}

// compareMetrics orders samples by their label values, label by label, as
// client_golang's internal.NormalizeMetricFamilies does.
func compareMetrics(a, b *dto.Metric) int {
	for i := range min(len(a.Label), len(b.Label)) {
		if c := cmp.Compare(a.Label[i].GetValue(), b.Label[i].GetValue()); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a.Label), len(b.Label))
}

// installResourceMetrics adds /metrics/resource, answered exactly as the
// kubelet's promhttp handler with ContinueOnError answers, from the
// current snapshot's CPU-and-memory summary.
func installResourceMetrics(c filteringContainer, summary *summaryHandler, processStart time.Time) {
	c.Handle(resourceMetricsPath, &snapshotMetricsHandler{
		logger: summary.logger, source: summary.source, bodies: summary.bodies,
		opts:      promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ProcessStartTime: processStart},
		responses: func(b *snapshotBodies) *metricsResponses { return &b.resourceMetrics },
		families: func(snap *snapshot.Snapshot) ([]*dto.MetricFamily, error) {
			return resourceMetrics(snap.CPUAndMemory), nil
		},
		beforeFirstSnapshot: func() []*dto.MetricFamily { return resourceMetrics(nil) },
	})
}
