package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

func testPodList() *corev1.PodList {
	return &corev1.PodList{
		TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"},
		Items: []corev1.Pod{{
			ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: "feed",
				CreationTimestamp: metav1.NewTime(time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC))},
			Spec: corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "app", Image: "app:1"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", ContainerID: "containerd://c1", Ready: true}}},
		}},
	}
}

// publishPods stores a snapshot of generation gen carrying pods, encoded
// as the provider encodes them; nil is a snapshot without a pod list.
func publishPods(t *testing.T, src *fakeSource, gen uint64, pods *corev1.PodList) {
	t.Helper()
	var body []byte
	if pods != nil {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(pods); err != nil {
			t.Fatal(err)
		}
		body = buf.Bytes()
	}
	src.snapshot.Store(&snapshot.Snapshot{Generation: gen, Time: time.Now(),
		Summary: craftedSummary(), CPUAndMemory: cpuAndMemorySummary(), Pods: body})
}

// TestPodsEndpoint: /pods answers the snapshot's pod list as the kubelet's
// getPods does: compact JSON with kind and apiVersion and a trailing newline,
// Content-Type application/json; GET only.
func TestPodsEndpoint(t *testing.T) {
	src := &fakeSource{}
	publishPods(t, src, 1, testPodList())
	ts := newTestServer(t, Config{}, src)

	resp, body := do(t, http.MethodGet, ts.URL+"/pods", "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /pods = %d %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	want := `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[{"metadata":{"name":"web","namespace":"shop",` +
		`"uid":"feed","creationTimestamp":"2026-11-22T13:00:00Z"},"spec":{"containers":[{"name":"app","image":"app:1",` +
		`"resources":{}}],"nodeName":"node-a"},"status":{"phase":"Running","containerStatuses":[{"name":"app",` +
		`"state":{},"lastState":{},"ready":true,"restartCount":0,"image":"","imageID":"","containerID":"containerd://c1"}]}}]}` + "\n"
	if body != want {
		t.Errorf("body =\n%s\nwant\n%s", body, want)
	}
	var decoded corev1.PodList
	if err := json.Unmarshal([]byte(body), &decoded); err != nil || len(decoded.Items) != 1 || decoded.Items[0].UID != "feed" {
		t.Errorf("decoded = %+v, %v", decoded, err)
	}

	if resp, _ := do(t, http.MethodPost, ts.URL+"/pods", "", ""); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /pods = %d, want 405", resp.StatusCode)
	}
}

// TestPodsEndpointEmptyAndNotReady: no pods is "items":null, as the
// kubelet's nil slice; before the first snapshot, 503 as /stats/summary.
func TestPodsEndpointEmptyAndNotReady(t *testing.T) {
	src := &fakeSource{}
	ts := newTestServer(t, Config{}, src)
	resp, _ := do(t, http.MethodGet, ts.URL+"/pods", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("GET /pods before the first snapshot = %d (Retry-After %q), want 503", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, pods := range []*corev1.PodList{{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}, nil} {
		publishPods(t, src, 2, pods)
		resp, body := do(t, http.MethodGet, ts.URL+"/pods", "", "")
		if want := `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}` + "\n"; resp.StatusCode != http.StatusOK || body != want {
			t.Errorf("GET /pods without pods = %d %q, want %q", resp.StatusCode, body, want)
		}
	}
}

// TestPodsOnTheSecurePort: /pods is authorized as nodes/pods, then
// nodes/proxy, as in the kubelet: the OTel receiver's usual RBAC (nodes/stats
// plus nodes/proxy) reads it, nodes/stats alone gets the kubelet's 403.
func TestPodsOnTheSecurePort(t *testing.T) {
	api := authtest.NewAPIServer(t)
	ca := authtest.NewCA(t, "clients")
	cfg := webhookAuthConfig(t, api)
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	ts := startSecurePort(t, cfg, TLSConfig{})
	grants := map[string][]string{"otel": {"stats", "proxy"}, "stats-only": {"stats"}}
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		attrs := spec.ResourceAttributes
		if attrs == nil || attrs.Resource != "nodes" || attrs.Name != testNodeName {
			return false
		}
		for _, granted := range grants[spec.User] {
			if granted == attrs.Subresource {
				return true
			}
		}
		return false
	})
	otel := ts.client(ptr(ca.ClientCert(t, "otel")))
	status, body := ts.get(t, otel, http.MethodGet, "/pods")
	if status != http.StatusOK || !strings.HasPrefix(body, `{"kind":"PodList","apiVersion":"v1"`) {
		t.Errorf("/pods with nodes/proxy = %d %q, want 200 and a PodList", status, body)
	}
	statsOnly := ts.client(ptr(ca.ClientCert(t, "stats-only")))
	status, body = ts.get(t, statsOnly, http.MethodGet, "/pods")
	want := "Forbidden (user=stats-only, verb=get, resource=nodes, subresource(s)=[pods proxy])\n"
	if status != http.StatusForbidden || body != want {
		t.Errorf("/pods with nodes/stats only = %d %q, want 403 %q", status, body, want)
	}
}
