// Package pods runs real pods under a real containerd and checks what the
// real binary reports for them: the issue "Pods and containers from a real
// runtime".
package pods

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(framework.Main(func() int { return serverproc.RunTests(m, &serverBinary) }))
}

func getSummary(t *testing.T, srv *serverproc.Server, query string) *statsapi.Summary {
	t.Helper()
	status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/stats/summary"+query, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/stats/summary%s = %d: %s", query, status, body)
	}
	var summary statsapi.Summary
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	return &summary
}

// waitForSummary polls until ready accepts a summary and returns it.
func waitForSummary(t *testing.T, srv *serverproc.Server, query string, ready func(*statsapi.Summary) bool) *statsapi.Summary {
	t.Helper()
	for {
		summary := getSummary(t, srv, query)
		if ready(summary) {
			return summary
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitTicks returns once the server published n new snapshots, observed as
// changes of the node cpu sample time.
func waitTicks(t *testing.T, srv *serverproc.Server, n int) {
	t.Helper()
	last := getSummary(t, srv, "").Node.CPU.Time
	for seen := 0; seen < n; {
		time.Sleep(100 * time.Millisecond)
		current := getSummary(t, srv, "").Node.CPU.Time
		if !current.Equal(&last) {
			seen++
			last = current
		}
	}
}

func findPod(summary *statsapi.Summary, namespace, name string) *statsapi.PodStats {
	for i := range summary.Pods {
		if summary.Pods[i].PodRef.Namespace == namespace && summary.Pods[i].PodRef.Name == name {
			return &summary.Pods[i]
		}
	}
	return nil
}

func findContainer(pod *statsapi.PodStats, name string) *statsapi.ContainerStats {
	if pod == nil {
		return nil
	}
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}

func containerNames(pod *statsapi.PodStats) []string {
	var names []string
	for _, c := range pod.Containers {
		names = append(names, c.Name)
	}
	return names
}

// cgroupFile reads a v1 controller file of a cgroup.
func cgroupFile(t *testing.T, controller, cgroup, file string) string {
	t.Helper()
	data, err := os.ReadFile("/sys/fs/cgroup/" + controller + cgroup + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}
