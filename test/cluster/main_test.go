package cluster

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// The upstream versions of the tier, which tools.sh builds.
const (
	kubernetesVersion    = "v1.36.3"
	metricsServerVersion = "v0.9.0"
)

// enableEnv must be 1 for the tier to run: its first build takes about 15
// minutes.
const enableEnv = "KSS_CLUSTER"

var (
	serverBinary string
	// toolsDir holds kube-apiserver, kubectl and metrics-server.
	toolsDir string
)

func TestMain(m *testing.M) {
	if os.Getenv(enableEnv) != "1" {
		fmt.Fprintf(os.Stderr, "skipping: the cluster tier runs with %s=1 (make e2e-cluster)\n", enableEnv)
		os.Exit(0)
	}
	os.Exit(framework.Main(func() int {
		dir, err := buildTools()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		toolsDir = dir
		return serverproc.RunTests(m, &serverBinary)
	}))
}

// buildTools runs tools.sh into bin/cluster/<versions> of the repository,
// where a warm run finds the binaries and builds nothing.
func buildTools() (string, error) {
	dir, err := filepath.Abs(filepath.Join("..", "..", "bin", "cluster", kubernetesVersion+"-ms-"+metricsServerVersion))
	if err != nil {
		return "", err
	}
	cmd := exec.Command("./tools.sh", dir)
	cmd.Env = append(os.Environ(), "K8S_VERSION="+kubernetesVersion, "METRICS_SERVER_VERSION="+metricsServerVersion)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the control plane (test/cluster/tools.sh %s): %w", dir, err)
	}
	return dir, nil
}
