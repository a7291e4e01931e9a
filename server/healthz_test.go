package server

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHealthz(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	const nosniff = "nosniff"
	for _, tc := range []struct {
		name       string
		failing    bool
		target     string
		wantStatus int
		wantBody   string
	}{
		{"ok", false, "/healthz", 200, "ok"},
		{"ok verbose", false, "/healthz?verbose", 200, "[+]ping ok\n[+]housekeeping ok\nhealthz check passed\n"},
		{"ping", false, "/healthz/ping", 200, "ok"},
		{"housekeeping", false, "/healthz/housekeeping", 200, "ok"},
		{"failing", true, "/healthz", 500, "[+]ping ok\n[-]housekeeping failed: reason withheld\nhealthz check failed\n"},
		{"failing verbose", true, "/healthz?verbose", 500, "[+]ping ok\n[-]housekeeping failed: reason withheld\nhealthz check failed\n"},
		{"failing excluded", true, "/healthz?exclude=housekeeping", 200, "ok"},
		{"failing excluded verbose", true, "/healthz?exclude=housekeeping&verbose", 200,
			"[+]ping ok\n[+]housekeeping excluded: ok\nhealthz check passed\n"},
		{"failing check", true, "/healthz/housekeeping", 500,
			"internal server error: " + errHousekeepingStalled.Error() + "\n"},
		{"failing, ping still ok", true, "/healthz/ping", 200, "ok"},
		{"unknown check", false, "/healthz/nope", 404, "404 page not found\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.failing {
				ts.health.fail(errHousekeepingStalled)
			} else {
				ts.health.fail(nil)
			}
			resp, body := do(t, "GET", ts.URL+tc.target, "", "")
			if resp.StatusCode != tc.wantStatus || body != tc.wantBody {
				t.Errorf("got %d %q, want %d %q", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			// The root handler and http.Error set nosniff; a passing
			// per-check handler writes "ok" alone, as upstream.
			wantNosniff := !strings.HasPrefix(tc.target, "/healthz/") || tc.wantStatus != http.StatusOK
			if got := resp.Header.Get("X-Content-Type-Options"); (got == nosniff) != wantNosniff {
				t.Errorf("X-Content-Type-Options %q", got)
			}
		})
	}
}

func TestHealthzWithoutHealthChecker(t *testing.T) {
	srv := httptest.NewServer(NewReadOnlyHandler(Config{}, &fakeSource{}, nil))
	defer srv.Close()
	resp, body := do(t, "GET", srv.URL+"/healthz?verbose", "", "")
	if resp.StatusCode != http.StatusOK || body != "[+]ping ok\nhealthz check passed\n" {
		t.Errorf("got %s %q", resp.Status, body)
	}
}
