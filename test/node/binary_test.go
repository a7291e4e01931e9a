package node

import (
	"bytes"
	"os"
	"os/exec"
	"syscall"
	"testing"

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
