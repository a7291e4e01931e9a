package server

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

const formType = "application/x-www-form-urlencoded"

func TestSummaryModes(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	for _, tc := range []struct {
		name             string
		method, target   string
		contentType      string
		body             string
		wantCPUAndMemory bool
	}{
		{name: "GET", method: "GET", target: "/stats/summary"},
		{name: "GET trailing slash", method: "GET", target: "/stats/summary/"},
		{name: "POST without body", method: "POST", target: "/stats/summary"},
		{name: "true", method: "GET", target: "/stats/summary?only_cpu_and_memory=true", wantCPUAndMemory: true},
		{name: "true with trailing slash", method: "GET", target: "/stats/summary/?only_cpu_and_memory=true", wantCPUAndMemory: true},
		{name: "true next to other keys", method: "GET", target: "/stats/summary?a=b&only_cpu_and_memory=true&c", wantCPUAndMemory: true},
		{name: "True", method: "GET", target: "/stats/summary?only_cpu_and_memory=True"},
		{name: "1", method: "GET", target: "/stats/summary?only_cpu_and_memory=1"},
		{name: "empty", method: "GET", target: "/stats/summary?only_cpu_and_memory="},
		{name: "key only", method: "GET", target: "/stats/summary?only_cpu_and_memory"},
		{name: "twice", method: "GET", target: "/stats/summary?only_cpu_and_memory=true&only_cpu_and_memory=true"},
		{name: "POST query true", method: "POST", target: "/stats/summary?only_cpu_and_memory=true", wantCPUAndMemory: true},
		{name: "POST urlencoded body true", method: "POST", target: "/stats/summary", contentType: formType,
			body: "only_cpu_and_memory=true", wantCPUAndMemory: true},
		{name: "POST urlencoded body True", method: "POST", target: "/stats/summary", contentType: formType,
			body: "only_cpu_and_memory=True"},
		{name: "POST body and query count twice", method: "POST", target: "/stats/summary?only_cpu_and_memory=true",
			contentType: formType, body: "only_cpu_and_memory=true"},
		{name: "POST JSON body is not a form", method: "POST", target: "/stats/summary", contentType: "application/json",
			body: "only_cpu_and_memory=true"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, ts.URL+tc.target, tc.contentType, tc.body)
			want := ts.full
			if tc.wantCPUAndMemory {
				want = ts.cpuAndMemory
			}
			wantBody, err := encodeSummary(want)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %s, body %q", resp.Status, body)
			}
			if got := resp.Header.Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type %q, want application/json", got)
			}
			if got := resp.Header.Get("Content-Length"); got != strconv.Itoa(len(wantBody)) {
				t.Errorf("Content-Length %q, want %d", got, len(wantBody))
			}
			if body != string(wantBody) {
				t.Errorf("body\n got: %s\nwant: %s", body, wantBody)
			}
		})
	}
}

func TestOnlyCPUAndMemory(t *testing.T) {
	for _, tc := range []struct {
		query string
		want  bool
	}{
		{"only_cpu_and_memory=true", true},
		{"x=1&only_cpu_and_memory=true", true},
		{"only_cpu_and_memory=True", false},
		{"only_cpu_and_memory=TRUE", false},
		{"only_cpu_and_memory=1", false},
		{"only_cpu_and_memory=true&only_cpu_and_memory=true", false},
		{"only_cpu_and_memory=true&only_cpu_and_memory=false", false},
		{"only_cpu_and_memory=+true", false},
		{"only_cpu_and_memory", false},
		{"", false},
	} {
		r := httptest.NewRequest("GET", "/stats/summary?"+tc.query, nil)
		if err := r.ParseForm(); err != nil {
			t.Fatalf("%q: %v", tc.query, err)
		}
		if got := onlyCPUAndMemory(r.Form); got != tc.want {
			t.Errorf("onlyCPUAndMemory(%q) = %v, want %v", tc.query, got, tc.want)
		}
	}
}

func TestSummaryFormErrorsAre500(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	const want = `Internal Error: parse form failed: invalid URL escape "%zz"`
	for _, tc := range []struct{ name, method, target, body string }{
		{"query", "GET", "/stats/summary?only_cpu_and_memory=%zz", ""},
		{"urlencoded POST body", "POST", "/stats/summary", "only_cpu_and_memory=%zz"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(t, tc.method, ts.URL+tc.target, formType, tc.body)
			if resp.StatusCode != http.StatusInternalServerError || body != want {
				t.Errorf("got %s %q, want 500 %q", resp.Status, body, want)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
		})
	}
	if len(ts.log.matching("HTTP InternalServerError serving", "parse form failed")) != 2 {
		t.Errorf("want both errors logged, log: %q", ts.log.lines)
	}
}

func TestSummaryBeforeFirstSnapshotIs503(t *testing.T) {
	src := &fakeSource{}
	ts := newTestServer(t, Config{}, src)
	addr := ts.Listener.Addr().String()
	want := "HTTP/1.1 503 Service Unavailable\r\n" +
		"Retry-After: 10\r\n" +
		"Content-Length: 53\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\n" +
		"\r\n" +
		"stats not ready: first housekeeping has not completed"
	for _, target := range []string{"/stats/summary", "/stats/summary?only_cpu_and_memory=true"} {
		got := rawExchange(t, addr, "GET", "GET "+target+" HTTP/1.1\r\nHost: kubelet\r\n\r\n")
		if string(got) != want {
			t.Errorf("GET %s\n got: %q\nwant: %q", target, got, want)
		}
	}

	src.publish(1, craftedSummary(), cpuAndMemorySummary())
	resp, body := do(t, "GET", ts.URL+"/stats/summary", "", "")
	if resp.StatusCode != http.StatusOK || body != craftedSummaryJSON {
		t.Errorf("after the first snapshot: %s %q", resp.Status, body)
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "10"},
		{Config{RetryAfter: 1500 * time.Millisecond}, "2"},
		{Config{RetryAfter: time.Nanosecond}, "1"},
		{Config{RetryAfter: time.Minute}, "60"},
	} {
		if got := retryAfterSeconds(tc.cfg.withDefaults().RetryAfter); got != tc.want {
			t.Errorf("RetryAfter %v: got %q, want %q", tc.cfg.RetryAfter, got, tc.want)
		}
	}
}

func TestSummaryFormBodyLimit(t *testing.T) {
	const limit = 64
	ts := newTestServer(t, Config{MaxRequestBodyBytes: limit}, nil)
	atLimit := "only_cpu_and_memory=true&pad=" + strings.Repeat("x", limit-len("only_cpu_and_memory=true&pad="))
	resp, body := do(t, "POST", ts.URL+"/stats/summary", formType, atLimit)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "cpu-and-memory-only") {
		t.Errorf("body of exactly %d bytes: %s %q", limit, resp.Status, body)
	}
	resp, body = do(t, "POST", ts.URL+"/stats/summary", formType, atLimit+"x")
	const want = "request body too large: the limit is 64 bytes"
	if resp.StatusCode != http.StatusRequestEntityTooLarge || body != want {
		t.Errorf("body of %d bytes: got %s %q, want 413 %q", limit+1, resp.Status, body, want)
	}
}

// TestHugeFormBodyIsNotBuffered announces a 1 GiB urlencoded body and
// expects 413 after the server has read only the default 1 MiB limit; the
// client never sends the rest.
func TestHugeFormBodyIsNotBuffered(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	conn, err := net.Dial("tcp", ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const announced = 1 << 30
	header := fmt.Sprintf("POST /stats/summary HTTP/1.1\r\nHost: kubelet\r\nContent-Type: %s\r\nContent-Length: %d\r\n\r\n", formType, announced)
	if _, err := io.WriteString(conn, header); err != nil {
		t.Fatal(err)
	}
	sent := make(chan int64, 1)
	go func() {
		// Write until the server stops reading and closes the connection.
		chunk := []byte(strings.Repeat("a", 64<<10))
		var n int64
		for n < announced {
			w, err := conn.Write(chunk)
			n += int64(w)
			if err != nil {
				break
			}
		}
		sent <- n
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: "POST"})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || string(body) != "request body too large: the limit is 1048576 bytes" {
		t.Errorf("got %s %q", resp.Status, body)
	}
	if !resp.Close {
		t.Errorf("the server should close the connection after an oversized body")
	}
	conn.Close()
	if n := <-sent; n >= announced {
		t.Errorf("the client sent the whole %d bytes before the server answered", n)
	}
}

func TestSummaryBadSnapshotsAre500(t *testing.T) {
	nan := craftedSummary()
	nan.Node.CPU.PSI = &statsapi.PSIStats{Some: statsapi.PSIData{Avg10: math.NaN()}}
	for _, tc := range []struct {
		name string
		full *statsapi.Summary
		want string
	}{
		{"nil summary", nil, "Internal Error: snapshot 7: summary missing"},
		{"unencodable summary", nan, "Internal Error: snapshot 7: encode summary: json: unsupported value: NaN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := &fakeSource{}
			src.publish(7, tc.full, cpuAndMemorySummary())
			ts := newTestServer(t, Config{}, src)
			for range 2 {
				resp, body := do(t, "GET", ts.URL+"/stats/summary", "", "")
				if resp.StatusCode != http.StatusInternalServerError || body != tc.want {
					t.Errorf("got %s %q, want 500 %q", resp.Status, body, tc.want)
				}
			}
			if n := ts.encodes.Load(); n > 1 {
				t.Errorf("%d encodings of one snapshot, want at most 1", n)
			}
			resp, _ := do(t, "GET", ts.URL+"/stats/summary?only_cpu_and_memory=true", "", "")
			if resp.StatusCode != http.StatusOK {
				t.Errorf("the other mode of the snapshot is fine, got %s", resp.Status)
			}
		})
	}
}

func TestPanicInRouteIs500AndServingGoesOn(t *testing.T) {
	src := &panickingSource{}
	src.publish(1, craftedSummary(), cpuAndMemorySummary())
	ts := newTestServer(t, Config{}, src)

	resp, body := do(t, "GET", ts.URL+"/stats/summary", "", "")
	if resp.StatusCode != http.StatusInternalServerError || body != panicMessage {
		t.Errorf("panicking request: got %s %q, want 500 %q", resp.Status, body, panicMessage)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if got := ts.log.matching("Observed a panic", "provider exploded", "summaryHandler"); len(got) != 1 {
		t.Errorf("want one panic log entry with the stack, log: %q", ts.log.lines)
	}

	resp, body = do(t, "GET", ts.URL+"/stats/summary", "", "")
	if resp.StatusCode != http.StatusOK || body != craftedSummaryJSON {
		t.Errorf("request after the panic: %s %q", resp.Status, body)
	}
}

type panickingHealth struct{}

func (panickingHealth) Healthy() error { panic("health check exploded") }

func TestPanicInPlainHandlerIs500(t *testing.T) {
	log := &logLines{}
	srv := httptest.NewServer(NewReadOnlyHandler(Config{Logger: log.logger()}, &fakeSource{}, panickingHealth{}))
	defer srv.Close()
	resp, body := do(t, "GET", srv.URL+"/healthz", "", "")
	if resp.StatusCode != http.StatusInternalServerError || body != panicMessage {
		t.Errorf("got %s %q, want 500 %q", resp.Status, body, panicMessage)
	}
	if len(log.matching("Observed a panic", "health check exploded")) != 1 {
		t.Errorf("panic not logged once: %q", log.lines)
	}
	resp, body = do(t, "GET", srv.URL+"/healthz/ping", "", "")
	if resp.StatusCode != http.StatusOK || body != "ok" {
		t.Errorf("after the panic: %s %q", resp.Status, body)
	}
}

// TestPanicAfterResponseStartedAbortsConnection: once the status line is
// out, a 500 is impossible; the client must see a broken response rather
// than a short body it could take for complete.
func TestPanicAfterResponseStartedAbortsConnection(t *testing.T) {
	log := &logLines{}
	cfg := Config{Logger: log.logger()}.withDefaults()
	c := newContainer(cfg.Logger)
	ws := new(restful.WebService)
	ws.Path("/half")
	ws.Route(ws.GET("").To(func(_ *restful.Request, resp *restful.Response) {
		resp.Header().Set("Content-Length", "100")
		resp.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(resp, "partial")
		resp.Flush()
		panic("exploded mid-response")
	}))
	c.Add(ws)
	srv := httptest.NewServer(withGuards(cfg, c))
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/half")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != io.ErrUnexpectedEOF {
		t.Errorf("reading the body: got %q, %v; want io.ErrUnexpectedEOF", body, err)
	}
	if len(log.matching("Observed a panic", "exploded mid-response")) != 1 {
		t.Errorf("panic not logged once: %q", log.lines)
	}
}

func TestDebuggingPathsAreDisabled(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	for _, path := range []string{"/run/ns/pod/c", "/exec/ns/pod/c", "/attach/ns/pod/c", "/portForward/ns/pod",
		"/containerLogs/ns/pod/c", "/runningpods/", "/debug/pprof/heap", "/logs/"} {
		resp, body := do(t, "GET", ts.URL+path, "", "")
		if resp.StatusCode != http.StatusMethodNotAllowed || body != "Debug endpoints are disabled.\n" {
			t.Errorf("GET %s: %s %q", path, resp.Status, body)
		}
	}
}

func TestAccessLog(t *testing.T) {
	log := &logLines{}
	src := &fakeSource{}
	src.publish(1, craftedSummary(), cpuAndMemorySummary())
	h := NewReadOnlyHandler(Config{Logger: log.logger()}, src, &fakeHealth{})
	for _, tc := range []struct {
		method, target string
		want           []string
	}{
		{"GET", "/stats/summary?only_cpu_and_memory=false",
			[]string{`"method"="GET"`, `"path"="/stats/summary"`, `"status"=200`, fmt.Sprintf(`"bytes"=%d`, len(craftedSummaryJSON))}},
		{"DELETE", "/stats/summary", []string{`"method"="DELETE"`, `"status"=405`, `"bytes"=23`}},
		{"GET", "/healthz", []string{`"path"="/healthz"`, `"status"=200`, `"bytes"=2`}},
		{"GET", "/nope", []string{`"path"="/nope"`, `"status"=404`, `"bytes"=19`}},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(tc.method, tc.target, nil))
		if got := log.matching(append([]string{`"level"=4`, `"msg"="HTTP"`, `"duration"=`}, tc.want...)...); len(got) != 1 {
			t.Errorf("%s %s: want one access log line with %q, log: %q", tc.method, tc.target, tc.want, log.lines)
		}
	}

	quiet := &logLines{}
	h = NewReadOnlyHandler(Config{Logger: quiet.loggerAt(3)}, src, &fakeHealth{})
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/stats/summary", nil))
	if len(quiet.lines) != 0 {
		t.Errorf("access log at verbosity below 4: %q", quiet.lines)
	}
}

func TestNewHTTPServer(t *testing.T) {
	h := http.NotFoundHandler()
	s := NewHTTPServer("127.0.0.1:10255", h)
	if s.Addr != "127.0.0.1:10255" || s.IdleTimeout != idleTimeout || s.MaxHeaderBytes != 1<<20 ||
		s.ReadHeaderTimeout <= 0 || s.ReadTimeout != readTimeout || s.WriteTimeout != writeTimeout {
		t.Errorf("server settings: %+v", s)
	}
	if idleTimeout.Seconds() != 90 {
		t.Errorf("idle timeout %v, the kubelet's is 90s", idleTimeout)
	}
}
