package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// TestEventsSecurePort checks that the secure port authorizes the events
// API as nodes/stats, like /stats/, and streams it over HTTP/2.
func TestEventsSecurePort(t *testing.T) {
	api := authtest.NewAPIServer(t)
	statsOnly := func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		return spec.ResourceAttributes != nil && spec.ResourceAttributes.Subresource == "stats"
	}
	api.SetPolicy(statsOnly)
	store := cadvisor.NewEventStore(cadvisor.EventLimits{DefaultCount: 10, DefaultAge: time.Hour})
	store.Add(snapshot.Event{Type: snapshot.EventOOM, Cgroup: "/", Time: time.Now()})
	ts := startSecurePortWith(t, Config{Events: store}, webhookAuthConfig(t, api), TLSConfig{})
	client := ts.client(nil)
	for _, user := range []string{"alice", "bob"} {
		api.SetToken(user, authenticationv1.UserInfo{Username: user, Groups: []string{"system:authenticated"}})
	}

	status, body := ts.get(t, client, http.MethodGet, "/api/v2.0/events?oom_events=true", "Authorization", "Bearer alice")
	if status != http.StatusOK || !strings.Contains(body, `"event_type":"oom"`) {
		t.Errorf("allowed nodes/stats: %d %q, want the event", status, body)
	}
	reviews := api.TakeReviews()
	if len(reviews) != 1 || reviews[0].ResourceAttributes.Subresource != "stats" || reviews[0].ResourceAttributes.Verb != "get" {
		t.Errorf("reviews %+v, want one get of nodes/stats", reviews)
	}

	api.SetPolicy(authtest.DenyAll)
	status, body = ts.get(t, client, http.MethodGet, "/api/v1.3/events/kubepods?stream=true&all_events=true", "Authorization", "Bearer bob")
	if want := "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[stats])\n"; status != http.StatusForbidden || body != want {
		t.Errorf("denied: %d %q, want 403 %q", status, body, want)
	}

	api.SetPolicy(statsOnly)
	req, err := http.NewRequest(http.MethodGet, ts.URL+"/api/v2.1/events?stream=true&oom_kill_events=true&subcontainers=true", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer alice")
	h2 := ts.client(nil)
	h2.Transport.(*http.Transport).ForceAttemptHTTP2 = true
	stream := openEventStreamRequest(t, h2, req)
	if stream.resp.ProtoMajor != 2 {
		t.Errorf("streamed over %s, want HTTP/2", stream.resp.Proto)
	}
	store.Add(snapshot.Event{Type: snapshot.EventOOMKill, Cgroup: "/kubepods/pod1/a", Time: time.Now(), PID: 3, ProcessName: "p"})
	if ev := stream.next(t); ev.ContainerName != "/kubepods/pod1/a" || ev.EventData.OomKill == nil || ev.EventData.OomKill.Pid != 3 {
		t.Errorf("streamed %s", jsonString(ev))
	}
	store.Close()
	if err := stream.end(t); err != nil {
		t.Errorf("the HTTP/2 stream ended with %v at Close, want a clean end", err)
	}
}
