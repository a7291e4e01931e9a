package node

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
	"syscall"
	"testing"
	"time"
)

// serverBinary is built once per test process by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "kss-node-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	serverBinary = filepath.Join(dir, "kubelet-stats-server")
	build := exec.Command("go", "build", "-o", serverBinary, "kubelet-stats-server/cmd/kubelet-stats-server")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build server:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runningServer is one started binary.
type runningServer struct {
	cmd    *exec.Cmd
	base   string
	stderr *bytes.Buffer
	exited chan error
}

// startServer starts the binary on a free loopback port with extra flags and
// waits until it serves a summary.
func startServer(t *testing.T, extraArgs ...string) *runningServer {
	t.Helper()
	port := freePort(t)
	args := append([]string{"--address=127.0.0.1", "--read-only-port=" + strconv.Itoa(port),
		"--housekeeping-interval=1s", "--stats-retention=10s", "-v=4"}, extraArgs...)
	srv := &runningServer{
		cmd:    exec.Command(serverBinary, args...),
		base:   fmt.Sprintf("http://127.0.0.1:%d", port),
		stderr: &bytes.Buffer{},
		exited: make(chan error, 1),
	}
	srv.cmd.Stderr = srv.stderr
	if err := srv.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", serverBinary, err)
	}
	go func() { srv.exited <- srv.cmd.Wait() }()
	t.Cleanup(func() {
		_ = srv.cmd.Process.Kill()
		<-srv.exited
		if t.Failed() {
			t.Logf("server log:\n%s", srv.stderr.String())
		}
	})
	srv.waitFor(t, "/stats/summary", http.StatusOK)
	return srv
}

// waitFor polls path until it answers status or the server exits.
func (s *runningServer) waitFor(t *testing.T, path string, status int) {
	t.Helper()
	for {
		resp, err := http.Get(s.base + path)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == status {
				return
			}
		}
		select {
		case err := <-s.exited:
			s.exited <- err
			t.Fatalf("server exited before %s answered %d: %v\n%s", path, status, err, s.stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// do sends one request and returns status, headers and body.
func do(t *testing.T, method, url string, header http.Header, body io.Reader) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
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

func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	srv := startServer(t)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := <-srv.exited; err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
	srv.exited <- nil // let Cleanup's receive return
}

func TestRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--housekeeping-interval=0s"},
		{"--cgroup-driver=bogus"},
		{"--address=not-an-ip"},
		{"--read-only-port=70000"},
		{"--stats-retention=1s", "--housekeeping-interval=10s"},
	} {
		out, err := exec.Command(serverBinary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: exited 0, want a validation error", args)
			continue
		}
		if !bytes.Contains(out, []byte("--")) {
			t.Errorf("%v: error does not name the flag:\n%s", args, out)
		}
	}
}
