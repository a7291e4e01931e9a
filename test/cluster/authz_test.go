package cluster

import (
	"crypto/tls"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// testAuthorization asks the server's secure port directly: every bearer
// token goes to the real API server as a TokenReview and every request as
// a SubjectAccessReview.
func testAuthorization(t *testing.T, cp *controlPlane, n *node) {
	cp.apply(t, "metrics-reader", `apiVersion: v1
kind: ServiceAccount
metadata: {name: metrics-reader, namespace: `+namespace+`}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kss-nodes-metrics}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kss-metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kss-nodes-metrics}
subjects:
- {kind: ServiceAccount, name: metrics-reader, namespace: `+namespace+`}
`)
	token := strings.TrimSpace(cp.kubectl(t, "create", "token", "metrics-reader", "-n", namespace))
	base := "https://127.0.0.1:" + strconv.Itoa(n.port)

	plain := cp.httpsClient(t, nil)
	bearer := http.Header{"Authorization": {"Bearer " + token}}
	if status, body := get(t, plain, base+"/metrics/resource", bearer); status != http.StatusOK || !strings.Contains(body, "container_cpu_usage_seconds_total") {
		t.Errorf("token allowed nodes/metrics: /metrics/resource = %d %.200q", status, body)
	}
	want := "Forbidden (user=system:serviceaccount:" + namespace + ":metrics-reader, verb=get, resource=nodes, subresource(s)=[stats])\n"
	if status, body := get(t, plain, base+"/stats/summary", bearer); status != http.StatusForbidden || body != want {
		t.Errorf("token without nodes/stats: /stats/summary = %d %q, want 403 %q", status, body, want)
	}
	if status, body := get(t, plain, base+"/stats/summary", http.Header{"Authorization": {"Bearer not-a-token"}}); status != http.StatusUnauthorized {
		t.Errorf("unknown token: /stats/summary = %d %q, want 401", status, body)
	}
	if status, body := get(t, plain, base+"/metrics/resource", nil); status != http.StatusUnauthorized {
		t.Errorf("no credentials: /metrics/resource = %d %q, want 401", status, body)
	}

	kubeletClient := cp.httpsClient(t, &cp.kubeletClient)
	for _, path := range []string{"/stats/summary", "/metrics/resource", "/metrics/cadvisor", "/stats/", "/spec/", "/pods"} {
		if status, body := get(t, kubeletClient, base+path, nil); status != http.StatusOK {
			t.Errorf("the API server's kubelet client certificate: %s = %d %.200q", path, status, body)
		}
	}
}

// httpsClient trusts the lab CA and presents the client certificate pair
// (certificate and key files) when it is not nil.
func (cp *controlPlane) httpsClient(t *testing.T, pair *[2]string) *http.Client {
	t.Helper()
	config := &tls.Config{RootCAs: cp.ca.pool()}
	if pair != nil {
		cert, err := tls.LoadX509KeyPair(pair[0], pair[1])
		if err != nil {
			t.Fatal(err)
		}
		config.Certificates = []tls.Certificate{cert}
	}
	transport := &http.Transport{TLSClientConfig: config}
	t.Cleanup(transport.CloseIdleConnections)
	return &http.Client{Timeout: 30 * time.Second, Transport: transport}
}

func get(t *testing.T, client *http.Client, url string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}
