// Package otel runs the OpenTelemetry Collector's kubeletstats receiver, its
// own Go package through its factory, against the real server binary on
// real containerd pods, with the options that make it read /pods. It is a
// module of its own so that the Collector's dependencies stay out of the
// server's go.mod.
package otel

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

var serverBinary string

// TestMain builds the server in the repository's own module, so that the
// binary links the server's dependency versions, not this module's (which
// the receiver's requirements may raise), unless a prebuilt one is given.
func TestMain(m *testing.M) {
	os.Exit(framework.Main(func() int {
		if os.Getenv(serverproc.PrebuiltEnv) == "" {
			dir, err := os.MkdirTemp("", "kss-otel-")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary := filepath.Join(dir, "kubelet-stats-server")
			build := exec.Command("go", "build", "-o", binary, "./cmd/kubelet-stats-server")
			build.Dir = filepath.Join("..", "..")
			if out, err := build.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build server: %v\n%s", err, out)
				return 1
			}
			if err := os.Setenv(serverproc.PrebuiltEnv, binary); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return serverproc.RunTests(m, &serverBinary)
	}))
}
