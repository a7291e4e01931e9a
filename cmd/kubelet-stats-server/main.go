// Command kubelet-stats-server serves the kubelet's stats surface
// (/stats/summary and friends) from its own cgroup collector and the
// container runtime, one instance per node.
package main

import (
	"os"
	"runtime/debug"

	"github.com/kubelet-stats-server/kubelet-stats-server/cmd/kubelet-stats-server/app"
)

// defaultGCPercent is the garbage collector's target when GOGC is not set:
// the heap may grow by half its live size before a collection instead of
// Go's default of all of it. A node agent's memory is taken from the node's
// pods; at 500 pods this keeps the resident set under 80 MiB for a few
// more collections a minute (docs/performance.md).
const defaultGCPercent = 50

func main() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(defaultGCPercent)
	}
	if err := app.NewCommand().Execute(); err != nil {
		os.Exit(1)
	}
}
