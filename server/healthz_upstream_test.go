package server

import (
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"

	"k8s.io/apiserver/pkg/server/healthz"
)

// TestHealthzMatchesUpstream serves our healthz handlers and
// k8s.io/apiserver's, with the same checks, and compares status, headers
// and body of every request byte for byte.
func TestHealthzMatchesUpstream(t *testing.T) {
	var failure atomic.Pointer[error]
	housekeeping := func(*http.Request) error {
		if err := failure.Load(); err != nil {
			return *err
		}
		return nil
	}
	ours := http.NewServeMux()
	installHealthChecks(ours, []healthCheck{pingCheck(), {name: housekeepingCheck, check: housekeeping}})
	upstream := http.NewServeMux()
	healthz.InstallHandler(upstream, healthz.PingHealthz, healthz.NamedCheck(housekeepingCheck, housekeeping))

	targets := []string{
		"/healthz", "/healthz?verbose", "/healthz?verbose=false", "/healthz?exclude=housekeeping",
		"/healthz?exclude=housekeeping&verbose", "/healthz?exclude=ping&exclude=housekeeping&verbose",
		"/healthz?exclude=zeta&exclude=alpha&exclude=%22q%22&verbose", "/healthz?exclude=nope",
		"/healthz?exclude=housekeeping&exclude=housekeeping", "/healthz/", "/healthz/ping", "/healthz/housekeeping",
		"/healthz/nope", "/healthz/ping/", "/healthz?exclude=",
	}
	stalled := errors.New("housekeeping stalled: no tick for 1m0s")
	for _, failing := range []bool{false, true} {
		if failing {
			failure.Store(&stalled)
		} else {
			failure.Store(nil)
		}
		for _, target := range targets {
			for _, method := range []string{"GET", "HEAD", "POST"} {
				compareResponses(t, ours, upstream, method, target)
			}
		}
	}
}

// TestHealthzPortMatchesUpstream: the healthz port's handler is upstream's
// InstallHandler without checks (ping only).
func TestHealthzPortMatchesUpstream(t *testing.T) {
	upstream := http.NewServeMux()
	healthz.InstallHandler(upstream)
	for _, target := range []string{"/healthz", "/healthz?verbose", "/healthz?exclude=ping&verbose", "/healthz/ping", "/healthz/log", "/"} {
		compareResponses(t, NewHealthzPortHandler(), upstream, "GET", target)
	}
}

// compareResponses sends one request to both handlers over real HTTP and
// fails the test when the answers differ in anything but their Date.
func compareResponses(t *testing.T, ours, upstream http.Handler, method, target string) {
	t.Helper()
	got, want := roundTrip(t, ours, method, target), roundTrip(t, upstream, method, target)
	if got.status != want.status || got.body != want.body || !maps.EqualFunc(got.header, want.header, slices.Equal) {
		t.Errorf("%s %s:\n got %d %v %q\nwant %d %v %q", method, target, got.status, got.header, got.body, want.status, want.header, want.body)
	}
}

type answer struct {
	status int
	header http.Header
	body   string
}

func roundTrip(t *testing.T, h http.Handler, method, target string) answer {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	req, err := http.NewRequest(method, srv.URL+target, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	return answer{status: resp.StatusCode, header: resp.Header, body: string(body)}
}
