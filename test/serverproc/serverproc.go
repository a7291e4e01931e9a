// Package serverproc builds the real kubelet-stats-server binary and runs
// it for end-to-end tests: on a free loopback port, with its log kept for
// failure reports, killed at test cleanup.
package serverproc

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// PrebuiltEnv names an already built server binary that Build returns
// instead of compiling one, for machines without a Go toolchain: the cgroup
// v2 VM of test/v2vm builds it on the host.
const PrebuiltEnv = "KSS_SERVER_BINARY"

// Build compiles the server into a new temporary directory and returns the
// binary's path and a function removing it (or the PrebuiltEnv binary and
// a no-op). Call it from TestMain.
func Build() (binary string, cleanup func(), err error) {
	if prebuilt := os.Getenv(PrebuiltEnv); prebuilt != "" {
		if _, err := os.Stat(prebuilt); err != nil {
			return "", nil, fmt.Errorf("prebuilt server (%s): %w", PrebuiltEnv, err)
		}
		return prebuilt, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "kss-binary-")
	if err != nil {
		return "", nil, err
	}
	binary = filepath.Join(dir, "kubelet-stats-server")
	build := exec.Command("go", "build", "-o", binary, "github.com/kubelet-stats-server/kubelet-stats-server/cmd/kubelet-stats-server")
	if out, err := build.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("build server: %w\n%s", err, out)
	}
	return binary, func() { os.RemoveAll(dir) }, nil
}

// RunTests is the body of a TestMain: it builds the server once, stores
// its path in *binary, runs the tests, removes the build and returns the
// exit code.
func RunTests(m *testing.M, binary *string) int {
	built, cleanup, err := Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer cleanup()
	*binary = built
	return m.Run()
}

// lockedBuffer collects the server's log from its own goroutine while the
// test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Server is one running binary.
type Server struct {
	Cmd *exec.Cmd
	// Base is "http://127.0.0.1:<read-only port>".
	Base   string
	log    *lockedBuffer
	exited chan error
}

// Start runs the binary with the read-only port on a free loopback port,
// the secure and healthz ports off (so that tests can run several servers),
// a 1s housekeeping interval and extraArgs (which may override all of
// those), and waits until /stats/summary answers 200.
func Start(t testing.TB, binary string, extraArgs ...string) *Server {
	t.Helper()
	port := FreePort(t)
	args := append([]string{"--address=127.0.0.1", "--read-only-port=" + strconv.Itoa(port),
		"--port=0", "--healthz-port=0", "--housekeeping-interval=1s", "--stats-retention=10s", "-v=4"}, extraArgs...)
	srv := &Server{
		Cmd:    exec.Command(binary, args...),
		Base:   fmt.Sprintf("http://127.0.0.1:%d", port),
		log:    &lockedBuffer{},
		exited: make(chan error, 1),
	}
	srv.Cmd.Stdout, srv.Cmd.Stderr = srv.log, srv.log
	if err := srv.Cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", binary, err)
	}
	go func() { srv.exited <- srv.Cmd.Wait() }()
	t.Cleanup(func() {
		_ = srv.Cmd.Process.Kill()
		_ = srv.Wait() // killed: its exit status says nothing
		if t.Failed() {
			t.Logf("server log:\n%s", srv.Log())
		}
	})
	srv.WaitFor(t, "/stats/summary", http.StatusOK)
	return srv
}

// Log is what the server printed so far.
func (s *Server) Log() string { return s.log.String() }

// Wait blocks until the process exited and returns its exit error; it may
// be called any number of times.
func (s *Server) Wait() error {
	err := <-s.exited
	s.exited <- err
	return err
}

// startLimit bounds WaitFor: a server that has not answered within a
// minute (its first housekeeping tick asks the runtime once) is stuck.
const startLimit = time.Minute

// requestLimit bounds each request of Do and WaitFor; the largest answer,
// /metrics/cadvisor of a loaded node, takes well under a second.
const requestLimit = 30 * time.Second

// client bounds every request by requestLimit; it shares
// http.DefaultTransport's connections.
func client() *http.Client { return &http.Client{Timeout: requestLimit} }

// WaitFor polls path until it answers status; it fails the test when the
// server exits first or has not answered so within a minute.
func (s *Server) WaitFor(t testing.TB, path string, status int) {
	t.Helper()
	s.waitFor(t, path, status, startLimit)
}

func (s *Server) waitFor(t testing.TB, path string, status int, limit time.Duration) {
	t.Helper()
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	for {
		resp, err := client().Get(s.Base + path)
		last := fmt.Sprint(err)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
			last = resp.Status
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("server exited before %s answered %d: %v\n%s", path, status, err, s.Log())
		case <-deadline.C:
			t.Fatalf("%s did not answer %d within %v (last: %s)\n%s", path, status, limit, last, s.Log())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// FreePort returns a TCP port on loopback that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// Do sends one request, bounded by requestLimit, and returns status,
// headers and body.
func Do(t testing.TB, method, url string, header http.Header, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body of %s %s: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, data
}
