package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

func TestRequestSubresources(t *testing.T) {
	tests := []struct {
		path string
		want []string
	}{
		{"/stats/summary", []string{"stats"}},
		{"/stats/", []string{"stats"}},
		{"/stats", []string{"stats"}},
		{"/stats/container", []string{"stats"}},
		{"/statsfoo", []string{"proxy"}},
		{"/metrics", []string{"metrics"}},
		{"/metrics/resource", []string{"metrics"}},
		{"/metrics/cadvisor", []string{"metrics"}},
		{"/metricsfoo", []string{"proxy"}},
		{"/logs/", []string{"log"}},
		{"/logs", []string{"log"}},
		{"/checkpoint/ns/pod/c", []string{"checkpoint"}},
		{"/statusz", []string{"statusz"}},
		{"/flagz", []string{"configz"}},
		{"/pods", []string{"pods", "proxy"}},
		{"/pods/", []string{"pods", "proxy"}},
		{"/podsx", []string{"proxy"}},
		{"/healthz", []string{"healthz", "proxy"}},
		{"/healthz/ping", []string{"healthz", "proxy"}},
		{"/healthz/housekeeping", []string{"healthz", "proxy"}},
		{"/configz", []string{"configz", "proxy"}},
		{"/runningpods/", []string{"pods", "proxy"}},
		{"/runningpods", []string{"pods", "proxy"}},
		{"/spec/", []string{"spec", "proxy"}},
		{"/spec", []string{"spec", "proxy"}},
		{"/specfoo", []string{"proxy"}},
		{"/run/ns/pod/c", []string{"proxy"}},
		{"/debug/pprof/", []string{"proxy"}},
		{"/", []string{"stats"}}, // ours: the page (the kubelet asks proxy for a 404)
		{"", []string{"proxy"}},
	}
	for _, tt := range tests {
		if got := requestSubresources(tt.path); !slices.Equal(got, tt.want) {
			t.Errorf("requestSubresources(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestRequestVerb(t *testing.T) {
	for method, want := range map[string]string{
		"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete",
		"HEAD": "", "OPTIONS": "", "CONNECT": "", "TRACE": "", "get": "",
	} {
		if got := requestVerb(method); got != want {
			t.Errorf("requestVerb(%q) = %q, want %q", method, got, want)
		}
	}
}

func TestX509ClientCertificates(t *testing.T) {
	ca := authtest.NewCA(t, "cluster-ca")
	other := authtest.NewCA(t, "other-ca")
	api := authtest.NewAPIServer(t)
	cfg := webhookAuthConfig(t, api)
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	ts := startSecurePort(t, cfg, TLSConfig{})

	apiserverClient := ca.ClientCert(t, "kube-apiserver-kubelet-client", "kubeadm:cluster-admins", "system:masters")
	status, body := ts.get(t, ts.client(&apiserverClient), "GET", "/stats/summary")
	if status != http.StatusOK {
		t.Fatalf("client certificate of the client CA: %d %q, want 200", status, body)
	}
	var summary statsapi.Summary
	if err := json.Unmarshal([]byte(body), &summary); err != nil || summary.Node.NodeName != craftedSummary().Node.NodeName {
		t.Errorf("summary = %.200s (%v)", body, err)
	}
	reviews := api.TakeReviews()
	if len(reviews) != 1 {
		t.Fatalf("SubjectAccessReviews = %+v, want one", reviews)
	}
	// DER sorts the Organization values of one name, so compare sorted.
	if got := reviews[0]; got.User != "kube-apiserver-kubelet-client" ||
		!slices.Equal(slices.Sorted(slices.Values(got.Groups)), []string{"kubeadm:cluster-admins", "system:authenticated", "system:masters"}) {
		t.Errorf("review names user %q groups %v, want CN and O plus system:authenticated", got.User, got.Groups)
	}

	stranger := other.ClientCert(t, "kube-apiserver-kubelet-client", "system:masters")
	for name, client := range map[string]*http.Client{
		"certificate from another CA": ts.client(&stranger),
		"no credentials":              ts.client(nil),
	} {
		if status, body := ts.get(t, client, "GET", "/stats/summary"); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%s: %d %q, want 401 Unauthorized", name, status, body)
		}
	}
	if n := api.AccessReviews(); n != 1 {
		t.Errorf("unauthenticated requests were sent to authorization: %d reviews", n)
	}
	if len(ts.log.matching("Unable to authenticate the request due to an error")) == 0 {
		t.Error("the foreign certificate's verification error is not logged")
	}
}

func TestAnonymousRequestsAreAuthorized(t *testing.T) {
	api := authtest.NewAPIServer(t)
	cfg := webhookAuthConfig(t, api)
	cfg.Anonymous = true
	cfg.UnauthorizedCacheTTL = 0
	ts := startSecurePort(t, cfg, TLSConfig{})
	anonymous := ts.client(nil)

	api.SetPolicy(authtest.DenyAll)
	status, body := ts.get(t, anonymous, "GET", "/stats/summary")
	want := "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[stats])\n"
	if status != http.StatusForbidden || body != want {
		t.Errorf("anonymous, denied: %d %q, want 403 %q", status, body, want)
	}
	reviews := api.TakeReviews()
	if len(reviews) != 1 || reviews[0].User != "system:anonymous" || !slices.Equal(reviews[0].Groups, []string{"system:unauthenticated"}) {
		t.Errorf("reviews = %+v, want one for system:anonymous in system:unauthenticated", reviews)
	}

	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		return spec.User == "system:anonymous" && spec.ResourceAttributes.Subresource == "stats"
	})
	if status, _ := ts.get(t, anonymous, "GET", "/stats/summary"); status != http.StatusOK {
		t.Errorf("anonymous, allowed: %d, want 200", status)
	}
	status, body = ts.get(t, anonymous, "GET", "/healthz")
	want = "Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n"
	if status != http.StatusForbidden || body != want {
		t.Errorf("anonymous /healthz: %d %q, want 403 %q", status, body, want)
	}
}

func TestBearerTokens(t *testing.T) {
	api := authtest.NewAPIServer(t)
	api.SetToken("metrics-server-token", authenticationv1.UserInfo{
		Username: "system:serviceaccount:kube-system:metrics-server",
		UID:      "0b5ba6c9",
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
	})
	ts := startSecurePort(t, webhookAuthConfig(t, api), TLSConfig{})
	client := ts.client(nil)

	for _, scheme := range []string{"Bearer", "bearer"} {
		status, body := ts.get(t, client, "GET", "/stats/summary", "Authorization", scheme+" metrics-server-token")
		if status != http.StatusOK {
			t.Errorf("%q token: %d %q, want 200", scheme, status, body)
		}
	}
	if n := api.TokenReviews(); n != 1 {
		t.Errorf("TokenReviews = %d, want 1 (the second request is answered from the cache)", n)
	}
	reviews := api.TakeReviews()
	if len(reviews) != 1 || reviews[0].User != "system:serviceaccount:kube-system:metrics-server" || reviews[0].UID != "0b5ba6c9" {
		t.Errorf("reviews = %+v, want one for the token's user", reviews)
	}

	status, body := ts.get(t, client, "GET", "/stats/summary", "Authorization", "Bearer unknown-token")
	if status != http.StatusUnauthorized || body != "Unauthorized" {
		t.Errorf("unknown token: %d %q, want 401 Unauthorized", status, body)
	}

	api.Down()
	status, body = ts.get(t, client, "GET", "/stats/summary", "Authorization", "Bearer another-token")
	if status != http.StatusUnauthorized || body != "Unauthorized" {
		t.Errorf("TokenReview webhook down: %d %q, want 401 Unauthorized (as the kubelet)", status, body)
	}
	if status, _ := ts.get(t, client, "GET", "/stats/summary", "Authorization", "Bearer metrics-server-token"); status != http.StatusOK {
		t.Errorf("cached token while the webhook is down: %d, want 200", status)
	}
}

func TestAuthorizationWebhookDownIs500AndServingGoesOn(t *testing.T) {
	api := authtest.NewAPIServer(t)
	api.SetToken("alice-token", authenticationv1.UserInfo{Username: "alice"})
	cfg := webhookAuthConfig(t, api)
	cfg.TokenCacheTTL = time.Hour
	ts := startSecurePort(t, cfg, TLSConfig{})
	client := ts.client(nil)
	if status, _ := ts.get(t, client, "GET", "/healthz", "Authorization", "Bearer alice-token"); status != http.StatusOK {
		t.Fatalf("before the webhook goes down: %d", status)
	}

	api.Down()
	status, body := ts.get(t, client, "GET", "/stats/summary", "Authorization", "Bearer alice-token")
	want := "Authorization error (user=alice, verb=get, resource=nodes, subresource=stats)"
	if status != http.StatusInternalServerError || body != want {
		t.Errorf("webhook down: %d %q, want 500 %q", status, body, want)
	}
	if len(ts.log.matching("Authorization error", "alice")) == 0 {
		t.Error("the authorization error is not logged")
	}
	if status, _ := ts.get(t, client, "GET", "/healthz", "Authorization", "Bearer alice-token"); status != http.StatusOK {
		t.Errorf("cached decision while the webhook is down: %d, want 200", status)
	}

	api.Up(t)
	if status, body := ts.get(t, client, "GET", "/stats/summary", "Authorization", "Bearer alice-token"); status != http.StatusOK {
		t.Errorf("webhook back: %d %q, want 200", status, body)
	}
}

// checkCacheTTL sends requests until the webhook is asked a second time and
// checks that this happened after ttl (the answer was cached) but did
// happen (it expired). Any request whose answer arrived before ttl passed
// since the first one started must have been served from the cache.
func checkCacheTTL(t *testing.T, ttl time.Duration, send func(), calls func() int64) {
	t.Helper()
	before := calls()
	start := time.Now()
	send()
	if n := calls() - before; n != 1 {
		t.Fatalf("first request asked the webhook %d times, want 1", n)
	}
	for requests := 1; ; requests++ {
		send()
		elapsed := time.Since(start)
		switch n := calls() - before; {
		case n == 1 && elapsed > 50*ttl:
			t.Fatalf("still cached %v after the first answer (TTL %v)", elapsed, ttl)
		case n == 1:
			time.Sleep(ttl / 10) // poll interval
		case elapsed < ttl:
			t.Fatalf("webhook asked again %v after the first request (request %d), before the TTL %v", elapsed, requests, ttl)
		default:
			t.Logf("TTL %v: %d requests answered from the cache, asked again after %v", ttl, requests-1, elapsed)
			return
		}
	}
}

func TestWebhookCacheTTLs(t *testing.T) {
	const ttl = 400 * time.Millisecond
	api := authtest.NewAPIServer(t)
	for _, user := range []string{"alice", "bob", "carol"} {
		api.SetToken(user+"-token", authenticationv1.UserInfo{Username: user})
	}
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool { return spec.User != "carol" })

	t.Run("token", func(t *testing.T) {
		cfg := webhookAuthConfig(t, api)
		cfg.TokenCacheTTL = ttl
		ts := startSecurePort(t, cfg, TLSConfig{})
		checkCacheTTL(t, ttl, func() {
			if status, _ := ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer alice-token"); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
		}, api.TokenReviews)
	})
	t.Run("authorized", func(t *testing.T) {
		cfg := webhookAuthConfig(t, api)
		cfg.AuthorizedCacheTTL = ttl
		ts := startSecurePort(t, cfg, TLSConfig{})
		checkCacheTTL(t, ttl, func() {
			if status, _ := ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer bob-token"); status != http.StatusOK {
				t.Fatalf("status %d", status)
			}
		}, api.AccessReviews)
	})
	t.Run("unauthorized", func(t *testing.T) {
		cfg := webhookAuthConfig(t, api)
		cfg.UnauthorizedCacheTTL = ttl
		ts := startSecurePort(t, cfg, TLSConfig{})
		checkCacheTTL(t, ttl, func() {
			if status, _ := ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer carol-token"); status != http.StatusForbidden {
				t.Fatalf("status %d", status)
			}
		}, api.AccessReviews)
	})
	t.Run("defaults outlive the test", func(t *testing.T) {
		ts := startSecurePort(t, webhookAuthConfig(t, api), TLSConfig{})
		tokens, reviews := api.TokenReviews(), api.AccessReviews()
		for range 20 {
			ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer alice-token")
			ts.get(t, ts.client(nil), "GET", "/stats/summary", "Authorization", "Bearer carol-token")
		}
		if got := api.TokenReviews() - tokens; got != 2 {
			t.Errorf("TokenReviews for 2 tokens x 20 requests = %d, want 2", got)
		}
		if got := api.AccessReviews() - reviews; got != 2 {
			t.Errorf("SubjectAccessReviews for 2 users x 20 requests = %d, want 2 (one allow, one deny)", got)
		}
	})
}

// TestSubjectAccessReviewAttributes checks, for every route and method, the
// reviews the server sends (everything denied, so every subresource is
// tried in order).
func TestSubjectAccessReviewAttributes(t *testing.T) {
	api := authtest.NewAPIServer(t)
	api.SetPolicy(authtest.DenyAll)
	ts := startSecurePort(t, webhookAuthConfig(t, api), TLSConfig{})
	client := ts.client(nil)

	paths := map[string][]string{
		"/stats/summary":        {"stats"},
		"/stats/":               {"stats"},
		"/stats/container":      {"stats"},
		"/spec/":                {"spec", "proxy"},
		"/metrics/resource":     {"metrics"},
		"/healthz":              {"healthz", "proxy"},
		"/healthz/ping":         {"healthz", "proxy"},
		"/healthz/housekeeping": {"healthz", "proxy"},
		"/logs/":                {"log"},
		"/runningpods/":         {"pods", "proxy"},
		"/run/ns/pod/c":         {"proxy"},
		"/exec/ns/pod/c":        {"proxy"},
		"/containerLogs/ns/p/c": {"proxy"},
		"/debug/pprof/":         {"proxy"},
		"/portForward/ns/pod":   {"proxy"},
		"/attach/ns/pod/c":      {"proxy"},
	}
	verbs := map[string]string{
		"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "HEAD": "", "OPTIONS": "",
	}
	row := 0
	for path, subresources := range paths {
		for method, verb := range verbs {
			// A user per row, so that no review is answered from the cache.
			row++
			user := fmt.Sprintf("user-%d", row)
			api.SetToken(user, authenticationv1.UserInfo{Username: user, Groups: []string{"system:authenticated"}})
			status, body := ts.get(t, client, method, path, "Authorization", "Bearer "+user)
			if status != http.StatusForbidden {
				t.Errorf("%s %s: status %d, want 403", method, path, status)
			}
			wantBody := fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=nodes, subresource(s)=%v)\n", user, verb, subresources)
			if method == "HEAD" {
				wantBody = ""
			}
			if body != wantBody {
				t.Errorf("%s %s: body %q, want %q", method, path, body, wantBody)
			}
			var got []string
			for _, review := range api.TakeReviews() {
				attrs := review.ResourceAttributes
				if review.User != user || attrs == nil || review.NonResourceAttributes != nil {
					t.Errorf("%s %s: review %+v, want a resource review for %s", method, path, review, user)
					continue
				}
				want := authorizationv1.ResourceAttributes{Verb: verb, Version: "v1", Resource: "nodes", Subresource: attrs.Subresource, Name: testNodeName}
				if *attrs != want {
					t.Errorf("%s %s: attributes %+v, want %+v", method, path, *attrs, want)
				}
				got = append(got, attrs.Subresource)
			}
			if !slices.Equal(got, subresources) {
				t.Errorf("%s %s: reviewed subresources %v, want %v in that order", method, path, got, subresources)
			}
		}
	}
}

// TestFilterCoversEveryRoute sends unauthenticated requests to every path
// the handlers serve, found by servedPaths so that a new route is covered
// without editing this test, and to unknown paths below the web services:
// on the secure port each must be 401, before routing. (Paths the container
// does not route at all, such as /healthz/nope or /foo, get net/http's 404
// before any filter, as on the kubelet.)
func TestFilterCoversEveryRoute(t *testing.T) {
	auth, err := NewAuth(AuthConfig{NodeName: testNodeName, AuthorizationMode: AuthorizationModeAlwaysAllow,
		ClientCAFile: writeCA(t, t.TempDir(), authtest.NewCA(t, "ca"))})
	if err != nil {
		t.Fatal(err)
	}
	var metricsServed atomic.Bool
	cfg := Config{Logger: discardLogger(), Metrics: http.HandlerFunc(func(http.ResponseWriter, *http.Request) { metricsServed.Store(true) })}
	src := &fakeSource{}
	src.publish(1, craftedSummary(), cpuAndMemorySummary())
	routes := servedPaths(t, NewReadOnlyHandler(cfg, src, &fakeHealth{}), "/healthz/ping", "/healthz/"+housekeepingCheck)
	// The discovery must at least find the routes known today.
	for _, known := range []string{"/stats/summary", "/stats/", "/stats/container", "/stats/x/x", "/stats/x/x/x/x", "/spec/",
		"/metrics", "/metrics/resource", "/metrics/cadvisor", "/healthz", "/healthz/ping", "/healthz/housekeeping",
		"/run/", "/exec/", "/attach/", "/portForward/", "/containerLogs/", "/runningpods/", "/debug/pprof/", "/logs/"} {
		if !slices.Contains(routes, known) {
			t.Errorf("servedPaths did not find %s among %v", known, routes)
		}
	}
	metricsServed.Store(false)
	secure := newSecureHandler(cfg, auth, src, &fakeHealth{}, encodeSummary)
	routes = append(routes, "/stats/summary?only_cpu_and_memory=true", "/stats/nope/nope/nope", "/spec/nope")
	for _, route := range routes {
		for _, method := range []string{"GET", "POST", "HEAD", "OPTIONS"} {
			rec := httptest.NewRecorder()
			secure.ServeHTTP(rec, httptest.NewRequest(method, route, nil))
			if rec.Code != http.StatusUnauthorized {
				t.Errorf("%s %s: %d, want 401", method, route, rec.Code)
			}
		}
	}
	if metricsServed.Load() {
		t.Error("the /metrics handler ran for an unauthenticated request")
	}
}

func TestNewAuthErrors(t *testing.T) {
	tests := []struct {
		name string
		cfg  AuthConfig
		want string
	}{
		{"no mode", AuthConfig{}, "no authorization mode"},
		{"unknown mode", AuthConfig{AuthorizationMode: "RBAC"}, `unknown authorization mode "RBAC"`},
		{"webhook without client", AuthConfig{AuthorizationMode: AuthorizationModeWebhook}, "needs a SubjectAccessReview client"},
		{"missing client CA", AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: "/nonexistent/ca.crt"}, "/nonexistent/ca.crt"},
	}
	for _, tt := range tests {
		if _, err := NewAuth(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewAuth() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestNoAuthenticationMethodAnswers401(t *testing.T) {
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{})
	for _, path := range []string{"/stats/summary", "/healthz"} {
		if status, body := ts.get(t, ts.client(nil), "GET", path, "Authorization", "Bearer anything"); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%s: %d %q, want 401 Unauthorized", path, status, body)
		}
	}
}
