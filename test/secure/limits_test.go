package secure

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// floodFDLimit is the server's RLIMIT_NOFILE in the flood test: low, so
// that a few hundred connections reach the limits. From it the server
// derives a reserve of 128 descriptors, 192 connections per serving port
// and 16 per client address.
const floodFDLimit = 512

// TestConnectionFlood floods the real binary, its open-file limit lowered,
// with slow-body requests on the read-only port and idle unauthenticated
// TLS connections on the secure port, first within the ports' caps, then
// past its file descriptor reserve. Throughout, the healthz port answers
// and housekeeping goes on without "too many open files"; within the caps
// the secure port serves a client from another address too; afterwards
// every descriptor is given back.
func TestConnectionFlood(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	caFile := filepath.Join(t.TempDir(), "ca.crt")
	authtest.WriteFile(t, caFile, ca.CertPEM)
	s := startSecureBinary(t, withFDLimit(t, serverBinary, floodFDLimit), "--client-ca-file="+caFile, "-v=4")
	pid := s.Cmd.Process.Pid
	if limits := readFile(t, fmt.Sprintf("/proc/%d/limits", pid)); !regexp.MustCompile(`Max open files\s+512\s+512`).MatchString(limits) {
		t.Fatalf("the server's open-file limit is not %d:\n%s", floodFDLimit, limits)
	}
	cert := ca.ClientCert(t, "scraper")
	scraper := client(s.trust(t), &cert)
	// A new connection per request, so that each one is accepted anew.
	scraper.Transport.(*http.Transport).DisableKeepAlives = true
	housekeeping := func() float64 {
		return secureMetric(t, scraper, s.URL, "kubelet_stats_server_housekeeping_duration_seconds_count")
	}
	ticksBefore := housekeeping()
	baseline := openFDs(t, pid)

	var flood attackers
	defer flood.close()
	readOnly, secure := strings.TrimPrefix(s.Base, "http://"), strings.TrimPrefix(s.URL, "https://")
	// 20 addresses × 20 slow bodies: past the read-only port's cap of 192.
	flood.slowBodies(t, readOnly, addresses(2, 20), 20)
	// 8 addresses × 24 idle TLS connections: past each one's share of 16.
	flood.idleTLS(t, secure, addresses(40, 8), 24)
	open := openFDs(t, pid)
	t.Logf("within the caps: %d connections opened, %d held by the server, %d descriptors open (baseline %d)",
		flood.count(), open-baseline, open, baseline)
	if open > floodFDLimit-128 {
		t.Errorf("%d descriptors open, more than the limit %d less the reserve 128", open, floodFDLimit)
	}
	if status, body := get(t, http.DefaultClient, s.HealthzURL); status != http.StatusOK || body != "ok" {
		t.Errorf("healthz port within the caps: %d %q", status, body)
	}
	if status, _ := get(t, scraper, s.URL+"/stats/summary"); status != http.StatusOK {
		t.Errorf("secure port for another client within the caps: %d", status)
	}

	// 6 addresses more × 16: the secure port reaches the descriptor reserve.
	flood.idleTLS(t, secure, addresses(48, 6), 16)
	open = openFDs(t, pid)
	t.Logf("past the reserve: %d connections opened, %d descriptors open", flood.count(), open)
	if status, body, err := tryGet(s.HealthzURL); status != http.StatusOK || body != "ok" {
		t.Errorf("healthz port past the reserve: %d %q %v", status, body, err)
	}
	// The count may catch a housekeeping pass's cgroup files (4 readers, a
	// few files each) and an accept in flight on top of the connections.
	if open > floodFDLimit-128+16 {
		t.Errorf("%d descriptors open past the reserve, want at most the limit %d less the reserve 128 (and the collector's few files)", open, floodFDLimit)
	}
	if !logShows(s, "file descriptor reserve reached") {
		t.Error("no refusal for the descriptor reserve in the log")
	}
	waitForTicks(t, s, 2) // housekeeping goes on past the reserve

	flood.close()
	settled := waitForFDs(t, pid, baseline+2)
	if ticks := housekeeping(); ticks < ticksBefore+2 {
		t.Errorf("housekeeping ticks %v after the flood, %v before: sampling stalled", ticks, ticksBefore)
	}
	if strings.Contains(s.Log(), "too many open files") {
		t.Errorf("the server ran out of descriptors:\n%s", grepLines(s.Log(), "too many open files", 5))
	}
	t.Logf("after the flood: %d descriptors open (baseline %d)", settled, baseline)
}

// withFDLimit returns a script that runs binary with RLIMIT_NOFILE limit
// (soft and hard, so that Go's start-up raise of the soft limit to the hard
// one keeps it); exec keeps the process ID.
func withFDLimit(t *testing.T, binary string, limit int) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "kubelet-stats-server")
	body := fmt.Sprintf("#!/bin/sh\nulimit -n %d || exit 1\nexec '%s' \"$@\"\n", limit, binary)
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script
}

// addresses are n loopback addresses from 127.0.0.<first>: each a client
// of its own to the server's per-client share.
func addresses(first, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("127.0.0.%d", first+i)
	}
	return out
}

// attackers are the flood's connections, held until close.
type attackers struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (a *attackers) add(c net.Conn) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conns = append(a.conns, c)
}

func (a *attackers) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns)
}

func (a *attackers) close() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, c := range a.conns {
		c.Close()
	}
	a.conns = nil
}

// slowBodies opens perAddr connections from each address that send the
// headers of a form POST and one byte of its 1,000-byte body.
func (a *attackers) slowBodies(t *testing.T, addr string, from []string, perAddr int) {
	t.Helper()
	const request = "POST /stats/summary HTTP/1.1\r\nHost: node\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\na"
	a.dialEach(t, from, perAddr, func(d *net.Dialer) {
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			return // refused
		}
		a.add(conn)
		_, _ = io.WriteString(conn, request)
	})
}

// idleTLS opens perAddr connections from each address that complete the
// handshake without a client certificate and send nothing.
func (a *attackers) idleTLS(t *testing.T, addr string, from []string, perAddr int) {
	t.Helper()
	a.dialEach(t, from, perAddr, func(d *net.Dialer) {
		conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return // refused
		}
		a.add(conn)
	})
}

// dialEach runs dial perAddr times from every address, the addresses in
// parallel, and returns when all are done.
func (a *attackers) dialEach(t *testing.T, from []string, perAddr int, dial func(*net.Dialer)) {
	t.Helper()
	var wg sync.WaitGroup
	for _, ip := range from {
		wg.Go(func() {
			d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 10 * time.Second}
			for range perAddr {
				dial(d)
			}
		})
	}
	wg.Wait()
}

// openFDs counts the open file descriptors of process pid.
func openFDs(t *testing.T, pid int) int {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("count the server's descriptors: %v", err)
	}
	return len(entries)
}

// waitForFDs polls until process pid has at most want descriptors open and
// returns the count.
func waitForFDs(t *testing.T, pid, want int) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := openFDs(t, pid)
		if n <= want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d descriptors still open 30s after the clients went, want at most %d", n, want)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// logShows polls the server's log for text, for up to 10s.
func logShows(s *secureServer, text string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.Log(), text) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
	return true
}

// tryGet is one GET with a 10s timeout, an error being no test failure.
func tryGet(url string) (int, string, error) {
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// waitForTicks waits for n more housekeeping ticks, counted in the log
// (the provider logs every snapshot it publishes at -v=4): the data ports
// may refuse every connection meanwhile, so /metrics cannot tell.
func waitForTicks(t *testing.T, s *secureServer, n int) {
	t.Helper()
	const published = "Published snapshot"
	want := strings.Count(s.Log(), published) + n
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(s.Log(), published) < want {
		if time.Now().After(deadline) {
			t.Fatalf("fewer than %d housekeeping ticks in 30s", n)
		}
		time.Sleep(50 * time.Millisecond) // poll interval
	}
}

// secureMetric reads one unlabelled sample from the secure port's /metrics.
func secureMetric(t *testing.T, c *http.Client, base, name string) float64 {
	t.Helper()
	resp, err := c.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// grepLines returns up to n lines of text containing s.
func grepLines(text, s string, n int) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, s) && len(out) < n {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
