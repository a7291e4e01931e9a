package pods

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// nodePaths are the key paths of a summary body's node.
func nodePaths(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	var summary struct {
		Node map[string]any `json:"node"`
	}
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	return framework.KeyPaths(summary.Node)
}

// podPaths are the key paths of the pod named name in a summary body.
func podPaths(t *testing.T, body []byte, name string) map[string]bool {
	t.Helper()
	var summary struct {
		Pods []map[string]any `json:"pods"`
	}
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	for _, pod := range summary.Pods {
		if ref, _ := pod["podRef"].(map[string]any); ref["name"] == name {
			return framework.KeyPaths(pod)
		}
	}
	t.Fatalf("pod %s not in the summary", name)
	return nil
}

// testShapeMatchesKubelet compares the busy pod's JSON with the pod in kubelet
// v1.36.3's summary of the same kind of pod (one container burning cpu under
// a memory limit, an emptyDir): every key the kubelet writes must be there,
// and no other.
func testShapeMatchesKubelet(t *testing.T, srv *serverproc.Server) {
	sample, err := os.ReadFile("../../../server/testdata/kubelet-v1.36.3/summary.json")
	if err != nil {
		t.Fatal(err)
	}
	want := podPaths(t, sample, "stats-work-0-ceonode")
	// Volume stats arrive within an analyzer period and then stay.
	waitForSummary(t, srv, "", "the busy pod's volume stats", func(s *statsapi.Summary) bool {
		pod := findPod(s, namespace, "busy")
		return pod != nil && pod.VolumeStats != nil
	})
	_, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/stats/summary", nil, nil)
	compareKeys(t, "the busy pod", podPaths(t, body, "busy"), want)
	compareKeys(t, "the node", nodePaths(t, body), nodePaths(t, sample))
}

func compareKeys(t *testing.T, what string, got, want map[string]bool) {
	t.Helper()
	var missing, extra []string
	for path := range want {
		if !got[path] {
			missing = append(missing, path)
		}
	}
	for path := range got {
		if !want[path] {
			extra = append(extra, path)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 || len(extra) > 0 {
		t.Errorf("%s: keys differ from the kubelet's:\nmissing: %v\nextra: %v", what, missing, extra)
	}
}
