package pods

import (
	"encoding/json"
	"net/http"
	"os"
	"slices"
	"testing"

	"kubelet-stats-server/test/serverproc"
)

// keyPaths lists every key path of a decoded JSON value, arrays merged:
// ".containers[].cpu.usageNanoCores".
func keyPaths(v any, prefix string, out map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		for key, child := range v {
			out[prefix+"."+key] = true
			keyPaths(child, prefix+"."+key, out)
		}
	case []any:
		for _, child := range v {
			keyPaths(child, prefix+"[]", out)
		}
	}
}

// nodePaths are the key paths of a summary body's node.
func nodePaths(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	var summary struct {
		Node map[string]any `json:"node"`
	}
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	paths := map[string]bool{}
	keyPaths(summary.Node, "", paths)
	return paths
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
			paths := map[string]bool{}
			keyPaths(pod, "", paths)
			return paths
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
	// Volume stats arrive within an analyzer period.
	var got map[string]bool
	for !got[".volume"] {
		_, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/stats/summary", nil, nil)
		got = podPaths(t, body, "busy")
	}
	compareKeys(t, "the busy pod", got, want)

	_, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/stats/summary", nil, nil)
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
