package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// TestRefusalsCloseTheConnection: a 401 or 403 ends the connection, so
// that a client without access cannot keep one open by asking again and
// again; allowed requests keep theirs.
func TestRefusalsCloseTheConnection(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	api := authtest.NewAPIServer(t)
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool { return spec.User != "bob" })
	cfg := webhookAuthConfig(t, api)
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	ts := startSecurePort(t, cfg, TLSConfig{})
	alice, bob := ca.ClientCert(t, "alice"), ca.ClientCert(t, "bob")
	for _, tt := range []struct {
		name      string
		client    *http.Client
		status    int
		wantClose bool
	}{
		{"no credentials", ts.client(nil), http.StatusUnauthorized, true},
		{"denied", ts.client(&bob), http.StatusForbidden, true},
		{"allowed", ts.client(&alice), http.StatusOK, false},
	} {
		reused := make([]bool, 0, 2)
		for range 2 {
			req, err := http.NewRequest("GET", ts.URL+"/healthz", nil)
			if err != nil {
				t.Fatal(err)
			}
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) }}
			resp, err := tt.client.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
			if err != nil {
				t.Fatalf("%s: %v", tt.name, err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || resp.Close != tt.wantClose {
				t.Errorf("%s: %d, Connection: close %v; want %d, %v", tt.name, resp.StatusCode, resp.Close, tt.status, tt.wantClose)
			}
		}
		if reused[1] == tt.wantClose {
			t.Errorf("%s: second request reused the connection = %v, want %v", tt.name, reused[1], !tt.wantClose)
		}
	}
}

// startHTTPServer serves h through newHTTPServer with a body read timeout
// on a loopback port and returns its address.
func startHTTPServer(t *testing.T, h http.Handler, bodyTimeout time.Duration) string {
	t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newHTTPServer(listener.Addr().String(), h, bodyTimeout)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("Serve: %v", err)
		}
	})
	return listener.Addr().String()
}

// TestSlowBodyIsCutOff: a client that sends headers and then trickles (or
// withholds) its body loses the connection after the body timeout, whether
// the handler reads the body or net/http drains it after the handler.
func TestSlowBodyIsCutOff(t *testing.T) {
	const bodyTimeout = 200 * time.Millisecond
	ts := newTestServer(t, Config{}, nil)
	addr := startHTTPServer(t, ts.Config.Handler, bodyTimeout)
	for _, request := range []string{
		// The summary handler parses the form: it waits for the body.
		"POST /stats/summary HTTP/1.1\r\nHost: node\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nonly",
		// healthz ignores the body; net/http reads it after the handler to
		// keep the connection.
		"POST /healthz HTTP/1.1\r\nHost: node\r\nContent-Length: 100\r\n\r\nx",
		"POST /healthz HTTP/1.1\r\nHost: node\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
	} {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(conn, request); err != nil {
			t.Fatal(err)
		}
		// A deadline for the test only, far beyond the body timeout.
		if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_, err = io.Copy(io.Discard, conn)
		conn.Close()
		if err != nil {
			t.Errorf("%q: connection still open %v after its body stalled (%v), want it closed after %v", firstLine(request), time.Since(start), err, bodyTimeout)
		}
	}
}

// TestBodyTimeoutSparesLongResponsesAndKeepAlive: once the body is read the
// deadline is lifted, so a response that takes longer than the body timeout
// completes and the connection is kept for the next request.
func TestBodyTimeoutSparesLongResponsesAndKeepAlive(t *testing.T) {
	const bodyTimeout = 100 * time.Millisecond
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		// A response that takes a while, past the body timeout (what is
		// being tested, not a wait for something).
		time.Sleep(3 * bodyTimeout)
		fmt.Fprintf(w, "%d bytes", len(body))
	})
	addr := startHTTPServer(t, slow, bodyTimeout)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	reader := bufio.NewReader(conn)
	for i, method := range []string{"POST", "GET", "POST"} {
		body := ""
		if method == "POST" {
			body = "containerName=/"
		}
		if _, err := fmt.Fprintf(conn, "%s /x HTTP/1.1\r\nHost: node\r\nContent-Length: %d\r\n\r\n%s", method, len(body), body); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		resp, err := http.ReadResponse(reader, nil)
		if err != nil {
			t.Fatalf("request %d (%s) on the kept connection: %v", i, method, err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := fmt.Sprintf("%d bytes", len(body)); resp.StatusCode != http.StatusOK || string(got) != want || resp.Close {
			t.Errorf("request %d: %d %q close=%v, want 200 %q on a kept connection", i, resp.StatusCode, got, resp.Close, want)
		}
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}
