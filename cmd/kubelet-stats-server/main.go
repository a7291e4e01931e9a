// Command kubelet-stats-server serves the kubelet's stats surface
// (/stats/summary and friends) from its own cgroup collector and the
// container runtime, one instance per node.
package main

import (
	"os"

	"github.com/kubelet-stats-server/kubelet-stats-server/cmd/kubelet-stats-server/app"
)

func main() {
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
