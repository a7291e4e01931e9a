package server

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// inlined returns the text of the first element named tag in html.
func inlined(t *testing.T, html, tag string) string {
	t.Helper()
	start := strings.Index(html, "<"+tag+">")
	end := strings.Index(html, "</"+tag+">")
	if start < 0 || end < start {
		t.Fatalf("no <%s> element in the page", tag)
	}
	return html[start+len(tag)+2 : end]
}

func TestPageServedOnRoot(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	resp, body := do(t, http.MethodGet, ts.URL+"/", "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET / = %d %q, want 200 text/html", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`id="rows"`, `data-key="cpu"`, `data-key="memory"`, `fetch('history'`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %s", want)
		}
	}
	// Self-contained: no reference to any other document, and the policy
	// allows exactly the inline style and script.
	if ref := regexp.MustCompile(`(?i)\b(src|href)\s*=|https?://|@import|url\(`).FindString(body); ref != "" {
		t.Errorf("the page refers to another resource: %q", ref)
	}
	csp := resp.Header.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'", "connect-src 'self'", "frame-ancestors 'none'",
		"script-src '" + cspHash(inlined(t, body, "script")) + "'",
		"style-src '" + cspHash(inlined(t, body, "style")) + "'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("Content-Security-Policy %q lacks %q", csp, want)
		}
	}
	if strings.Contains(body, "{{") {
		t.Error("the page has an unreplaced placeholder")
	}

	etag := resp.Header.Get("ETag")
	if resp, body := do(t, http.MethodGet, ts.URL+"/", "", "", "If-None-Match", etag); resp.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("GET / with its ETag = %d %q, want 304", resp.StatusCode, body)
	}
	if resp, body := do(t, http.MethodHead, ts.URL+"/", "", ""); resp.StatusCode != http.StatusOK || body != "" || resp.ContentLength <= 0 {
		t.Errorf("HEAD / = %d, length %d, body %q: want 200 with a length and no body", resp.StatusCode, resp.ContentLength, body)
	}
	if resp, _ := do(t, http.MethodPost, ts.URL+"/", "", ""); resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST / = %d Allow %q, want 405 GET, HEAD", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

// TestPageOnlyOnRoot: the page must not turn every unknown path into a
// page: they keep net/http's 404, as on the kubelet.
func TestPageOnlyOnRoot(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	for _, path := range []string{"/index.html", "/nope", "/history.json", "/ui/page.js"} {
		if resp, body := do(t, http.MethodGet, ts.URL+path, "", ""); resp.StatusCode != http.StatusNotFound || body != muxNotFound {
			t.Errorf("GET %s = %d %q, want net/http's 404", path, resp.StatusCode, body)
		}
	}
}

func TestPageSubresources(t *testing.T) {
	for path, want := range map[string][]string{
		"/":          {"stats"},
		"/history":   {"stats"},
		"/history/":  {"stats"},
		"/historyx":  {"proxy"},
		"/index.htm": {"proxy"},
	} {
		if got := requestSubresources(path); !slices.Equal(got, want) {
			t.Errorf("requestSubresources(%q) = %v, want %v", path, got, want)
		}
	}
}

// TestPageOnTheSecurePort: the page and its data are authorized as
// nodes/stats alone, like /stats/summary whose numbers they show.
func TestPageOnTheSecurePort(t *testing.T) {
	api := authtest.NewAPIServer(t)
	ca := authtest.NewCA(t, "clients")
	cfg := webhookAuthConfig(t, api)
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	ts := startSecurePort(t, cfg, TLSConfig{})
	grants := map[string]string{"viewer": "stats", "proxy-only": "proxy"}
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		attrs := spec.ResourceAttributes
		return attrs != nil && attrs.Resource == "nodes" && attrs.Name == testNodeName && grants[spec.User] == attrs.Subresource
	})
	viewer := ts.client(ptr(ca.ClientCert(t, "viewer")))
	proxyOnly := ts.client(ptr(ca.ClientCert(t, "proxy-only")))
	for path, want := range map[string]string{"/": "<!doctype html>", historyPath: `{"node":"node-a"`} {
		if status, body := ts.get(t, viewer, http.MethodGet, path); status != http.StatusOK || !strings.HasPrefix(body, want) {
			t.Errorf("GET %s with nodes/stats = %d %.40q, want 200 and %q", path, status, body, want)
		}
		status, body := ts.get(t, proxyOnly, http.MethodGet, path)
		forbidden := "Forbidden (user=proxy-only, verb=get, resource=nodes, subresource(s)=[stats])\n"
		if status != http.StatusForbidden || body != forbidden {
			t.Errorf("GET %s with nodes/proxy only = %d %.60q, want 403 %q", path, status, body, forbidden)
		}
		if status, _ := ts.get(t, ts.client(nil), http.MethodGet, path); status != http.StatusUnauthorized {
			t.Errorf("GET %s without credentials = %d, want 401", path, status)
		}
	}
}
