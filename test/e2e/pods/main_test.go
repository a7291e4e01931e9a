// Package pods runs real pods under a real containerd and checks what the
// real binary reports for them: the issue "Pods and containers from a real
// runtime".
package pods

import (
	"encoding/json"
	"fmt"
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

// Limits of the waits below. The slowest condition awaited is containerd's
// image fs usage, measured every stats_collect_period (10 s); a tick is 1 s
// (serverproc's --housekeeping-interval), 20 s leaves room for a loaded
// machine.
const (
	summaryWait = time.Minute
	tickWait    = 20 * time.Second
)

// waitForSummary polls until ready accepts a summary and returns it; it
// fails the test, naming what, after summaryWait.
func waitForSummary(t *testing.T, srv *serverproc.Server, query, what string, ready func(*statsapi.Summary) bool) *statsapi.Summary {
	t.Helper()
	var summary *statsapi.Summary
	framework.Eventually(t, summaryWait, what, func() bool {
		summary = getSummary(t, srv, query)
		return ready(summary)
	})
	return summary
}

// waitTicks returns once the server published n new snapshots, observed as
// changes of the node cpu sample time; it fails the test when one takes
// longer than tickWait.
func waitTicks(t *testing.T, srv *serverproc.Server, n int) {
	t.Helper()
	last := getSummary(t, srv, "").Node.CPU.Time
	for seen := range n {
		what := fmt.Sprintf("new snapshot %d of %d (node cpu time stuck at %s)", seen+1, n, last.UTC().Format(time.RFC3339Nano))
		framework.Eventually(t, tickWait, what, func() bool {
			current := getSummary(t, srv, "").Node.CPU.Time
			if current.Equal(&last) {
				return false
			}
			last = current
			return true
		})
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
