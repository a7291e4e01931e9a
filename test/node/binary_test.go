package node

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// serverBinary is built once per test process by TestMain.
var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(serverproc.RunTests(m, &serverBinary))
}

func TestGracefulShutdownOnSIGTERM(t *testing.T) {
	srv := serverproc.Start(t, serverBinary)
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := srv.Wait(); err != nil {
		t.Errorf("exit after SIGTERM: %v, want status 0", err)
	}
}

// TestSIGTERMWithATricklingClientExitsZero holds a request whose body never
// completes across SIGTERM: after --shutdown-grace-period the server must
// close it and exit 0, not fail its shutdown.
func TestSIGTERMWithATricklingClientExitsZero(t *testing.T) {
	srv := serverproc.Start(t, serverBinary, "--shutdown-grace-period=300ms")
	conn, err := net.Dial("tcp", strings.TrimPrefix(srv.Base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := fmt.Fprint(conn, "POST /stats/summary HTTP/1.1\r\nHost: node\r\n"+
		"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nonly_cpu"); err != nil {
		t.Fatal(err)
	}
	// The accept queue is first in, first out: once a connection dialed
	// later is answered, the trickling one has been accepted.
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := fresh.Get(srv.Base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("exit after SIGTERM with a trickling client: %v, want status 0", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit 30s after SIGTERM with a 300ms grace period")
	}
	// The server closed the connection without answering the request.
	if err := conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if data, err := io.ReadAll(conn); err != nil || len(data) > 0 {
		t.Errorf("trickling connection after exit: read %q, %v; want a clean close", data, err)
	}
	if !strings.Contains(srv.Log(), "closing the connections still open") {
		t.Error("the forced close is not logged")
	}
}

func TestRejectsBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"--housekeeping-interval=0s"},
		{"--cgroup-driver=bogus"},
		{"--address=not-an-ip"},
		{"--read-only-port=70000"},
		{"--stats-source=both"},
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
