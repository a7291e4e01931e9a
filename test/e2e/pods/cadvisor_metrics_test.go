package pods

import (
	"math"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

func getCadvisorMetrics(t *testing.T, srv *serverproc.Server) map[string]*dto.MetricFamily {
	return getMetricFamilies(t, srv, "/metrics/cadvisor")
}

// seriesByID indexes a family's series by their id label (the cgroup).
func seriesByID(family *dto.MetricFamily) map[string]map[string]string {
	out := map[string]map[string]string{}
	for _, m := range family.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.Label {
			labels[l.GetName()] = l.GetValue()
		}
		out[labels["id"]] = labels
	}
	return out
}

func valueByID(family *dto.MetricFamily, id string) (float64, bool) {
	for _, m := range family.GetMetric() {
		for _, l := range m.Label {
			if l.GetName() == "id" && l.GetValue() == id {
				if m.Counter != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
	}
	return 0, false
}

// testCadvisorMetrics checks /metrics/cadvisor as kubernetes-mixin reads it:
// the busy container's series carry its pod, namespace, container name,
// image and ID, with the summary's cpu and working set of the same snapshot;
// the pod cgroup's series carry the pod.
func testCadvisorMetrics(t *testing.T, srv *serverproc.Server, busy *framework.Pod) {
	summary, families := sameSnapshot(t, srv, getCadvisorMetrics)
	work := findContainer(findPod(summary, namespace, "busy"), "work")
	container := busy.Container("work")
	cgroup := busy.CgroupPath(container)

	labels := seriesByID(families["container_cpu_usage_seconds_total"])[cgroup]
	want := map[string]string{"container": "work", "pod": "busy", "namespace": namespace, "image": framework.WorkImage,
		"name": container.ID, "id": cgroup, "cpu": "total"}
	for key, value := range want {
		if labels[key] != value {
			t.Errorf("container_cpu_usage_seconds_total{id=%q} label %s = %q, want %q (labels %v)", cgroup, key, labels[key], value, labels)
		}
	}
	if got, ok := valueByID(families["container_cpu_usage_seconds_total"], cgroup); !ok || math.Abs(got-float64(*work.CPU.UsageCoreNanoSeconds)/1e9) > 1e-9 {
		t.Errorf("cpu %v s, the summary of the same snapshot says %v ns", got, *work.CPU.UsageCoreNanoSeconds)
	}
	if got, ok := valueByID(families["container_memory_working_set_bytes"], cgroup); !ok || got != float64(*work.Memory.WorkingSetBytes) {
		t.Errorf("working set %v, the summary says %d", got, *work.Memory.WorkingSetBytes)
	}
	podCgroup := parentOf(cgroup)
	if labels := seriesByID(families["container_memory_working_set_bytes"])[podCgroup]; labels["pod"] != "busy" || labels["namespace"] != namespace || labels["container"] != "" {
		t.Errorf("pod cgroup %s labels %v, want the busy pod and no container", podCgroup, labels)
	}
	for _, name := range []string{"container_network_receive_bytes_total", "container_oom_events_total", "machine_memory_bytes", "cadvisor_version_info"} {
		if families[name] == nil {
			t.Errorf("family %s missing", name)
		}
	}
}

func parentOf(cgroup string) string {
	for i := len(cgroup) - 1; i > 0; i-- {
		if cgroup[i] == '/' {
			return cgroup[:i]
		}
	}
	return "/"
}
