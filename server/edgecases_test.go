package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"
)

// kubeletExchange is one request and the response kubelet v1.36.3 gave, from
// testdata/kubelet-v1.36.3/http-edge-cases.txt.
type kubeletExchange struct {
	title   string
	method  string
	target  string
	header  string // extra request header line, "" for none
	status  string // status line without CRLF
	headers []byte // status line and headers through the blank line, CRLF as on the wire
	body    []byte // the first Content-Length bytes of the body; nil for HEAD or chunked
}

// readKubeletExchanges parses the capture: "### METHOD TARGET [Header: v]",
// then the response with CRLF line ends up to the blank line, then the body
// (its trailing newline is the capture's separator, so Content-Length says
// how much of it is the body).
func readKubeletExchanges(t *testing.T) []kubeletExchange {
	t.Helper()
	raw, err := os.ReadFile("testdata/kubelet-v1.36.3/http-edge-cases.txt")
	if err != nil {
		t.Fatalf("read capture: %v", err)
	}
	var out []kubeletExchange
	for _, block := range strings.Split(string(raw), "### ")[1:] {
		titleLine, rest, _ := strings.Cut(block, "\n")
		fields := strings.SplitN(titleLine, " ", 3)
		ex := kubeletExchange{title: titleLine, method: fields[0], target: fields[1]}
		if len(fields) == 3 {
			ex.header = fields[2]
		}
		head, body, ok := strings.Cut(rest, "\r\n\r\n")
		if !ok {
			t.Fatalf("capture block %q has no end of headers", titleLine)
		}
		ex.headers = []byte(head + "\r\n\r\n")
		ex.status, _, _ = strings.Cut(head, "\r\n")
		resp, err := http.ReadResponse(bufioReader(ex.headers), &http.Request{Method: ex.method})
		if err != nil {
			t.Fatalf("capture block %q: %v", titleLine, err)
		}
		if cl := resp.Header.Get("Content-Length"); cl != "" && ex.method != http.MethodHead {
			n, err := strconv.Atoi(cl)
			if err != nil || n > len(body) {
				t.Fatalf("capture block %q: bad Content-Length %q", titleLine, cl)
			}
			ex.body = []byte(body[:n])
		}
		out = append(out, ex)
	}
	if len(out) < 10 {
		t.Fatalf("capture has %d exchanges, want at least 10", len(out))
	}
	return out
}

func (ex kubeletExchange) request() string {
	var b strings.Builder
	b.WriteString(ex.method + " " + ex.target + " HTTP/1.1\r\nHost: kubelet\r\nUser-Agent: curl/8.5.0\r\n")
	if ex.header != "" {
		b.WriteString(ex.header + "\r\n")
	} else {
		b.WriteString("Accept: */*\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

// TestKubeletEdgeCasesByteForByte replays every captured exchange but the
// chunked summaries
// and wants the same bytes on the wire (minus Date): status line, header
// names, values and order (which tells explicit from sniffed Content-Type),
// and body.
func TestKubeletEdgeCasesByteForByte(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	addr := ts.Listener.Addr().String()
	compared := 0
	for _, ex := range readKubeletExchanges(t) {
		t.Run(ex.title, func(t *testing.T) {
			if ex.target == "/stats/" || ex.target == "/stats/container" {
				t.Skip("kept on purpose: the kubelet's cAdvisor JSON endpoints, removed in 1.21 (legacy_test.go)")
			}
			got := rawExchange(t, addr, ex.method, ex.request())
			if bytes.Contains(ex.headers, []byte("Transfer-Encoding: chunked")) {
				checkSummaryResponse(t, got, ts.full)
				return
			}
			compared++
			want := append(append([]byte{}, ex.headers...), ex.body...)
			if !bytes.Equal(got, want) {
				t.Errorf("response differs from kubelet v1.36.3\n got: %q\nwant: %q", got, want)
			}
		})
	}
	if compared < 7 {
		t.Errorf("compared %d exchanges byte for byte, want at least 7", compared)
	}
}

// checkSummaryResponse checks a 200 from /stats/summary. The kubelet streams
// it chunked; we know its length, so the framing differs by design.
func checkSummaryResponse(t *testing.T, wire []byte, want *statsapi.Summary) {
	t.Helper()
	head, body, ok := bytes.Cut(wire, []byte("\r\n\r\n"))
	if !ok {
		t.Fatalf("no end of headers in %q", wire)
	}
	wantBody, err := encodeSummary(want)
	if err != nil {
		t.Fatal(err)
	}
	wantHead := "HTTP/1.1 200 OK\r\nContent-Length: " + strconv.Itoa(len(wantBody)) + "\r\nContent-Type: application/json"
	if string(head) != wantHead {
		t.Errorf("headers\n got: %q\nwant: %q", head, wantHead)
	}
	if !bytes.Equal(body, wantBody) {
		t.Errorf("body\n got: %s\nwant: %s", body, wantBody)
	}
	var decoded statsapi.Summary
	if err := json.Unmarshal(body, &decoded); err != nil {
		t.Errorf("body does not decode into a Summary: %v", err)
	}
}
