package kubeclient

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The registration's requests, bodies and Status errors are pinned against
// a fake API server in register's TestWireRequests; these are the
// client's own choices.

func TestRequestsAreJSONWithTheConfiguredUserAgent(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mu.Lock()
		seen = append(seen, req.Method+" "+req.URL.Path+" "+req.Header.Get("Accept")+" "+req.UserAgent())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`))
	}))
	defer server.Close()
	// A kubeconfig may ask for protobuf; this client speaks JSON only.
	client, err := New(&rest.Config{Host: server.URL, UserAgent: "kss/test", QPS: 50, Burst: 100,
		ContentConfig: rest.ContentConfig{ContentType: "application/vnd.kubernetes.protobuf"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	_, err = client.Leases("kube-node-lease").Get(ctx, "node-a", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("lease get: %v, want the API server's NotFound", err)
	}
	if _, err := client.Nodes().Get(ctx, "node-a", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("node get: %v, want the API server's NotFound", err)
	}
	want := []string{
		"GET /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/node-a application/json, */* kss/test",
		"GET /api/v1/nodes/node-a application/json, */* kss/test",
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(seen, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

func TestQPSWithoutBurstIsRefused(t *testing.T) {
	if _, err := New(&rest.Config{Host: "http://127.0.0.1:1", QPS: 5}); err == nil || !strings.Contains(err.Error(), "burst") {
		t.Errorf("New = %v, want an error about the burst", err)
	}
}
