package provider

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the provider's own series on /metrics.
type metrics struct {
	runtimeErrors   prometheus.Counter
	runtimeDuration prometheus.Histogram
	statsDuration   prometheus.Histogram
	tickDuration    prometheus.Histogram
	trackedCgroups  prometheus.Gauge
	pods            prometheus.Gauge
	oomKills        *prometheus.CounterVec
}

func newMetrics(registerer prometheus.Registerer) *metrics {
	m := &metrics{
		runtimeErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kubelet_stats_server_runtime_errors_total",
			Help: "Failed container runtime refreshes (pod view, stats) and /pods status rounds; the last good answers were served instead.",
		}),
		runtimeDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_stats_server_runtime_calls_duration_seconds",
			Help:    "Duration of one refresh of the runtime's pod view (ListPodSandbox, ListContainers, ImageFsInfo), made beside the housekeeping tick.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		statsDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_stats_server_runtime_stats_duration_seconds",
			Help:    "Duration of one refresh of the runtime's own stats (ListContainerStats or ListPodSandboxStats), made beside the tick.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		tickDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "kubelet_stats_server_housekeeping_duration_seconds",
			Help:    "Duration of one housekeeping tick: sampling every cgroup, asking the runtime and building the snapshot.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		trackedCgroups: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubelet_stats_server_tracked_cgroups",
			Help: "Cgroups sampled by the last housekeeping tick.",
		}),
		pods: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kubelet_stats_server_pods",
			Help: "Pods in the last published summary.",
		}),
		oomKills: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kubelet_stats_server_oom_kills_total",
			Help: "OOM kills the kernel logged since start, by scope: \"system\" when the machine ran out of memory (the kubelet's SystemOOM event), \"cgroup\" when a container or pod hit its memory limit.",
		}, []string{"scope"}),
	}
	if registerer != nil {
		registerer.MustRegister(m.runtimeErrors, m.runtimeDuration, m.statsDuration, m.tickDuration, m.trackedCgroups, m.pods, m.oomKills)
	}
	return m
}
