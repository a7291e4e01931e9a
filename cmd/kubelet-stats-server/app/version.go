package app

import (
	"github.com/spf13/cobra"

	"github.com/kubelet-stats-server/kubelet-stats-server/internal/version"
)

// addVersionFlag gives cmd --version, which prints the same line the
// startup log carries and exits; cobra handles the flag before RunE, so
// no other flag is validated and nothing is started.
func addVersionFlag(cmd *cobra.Command) {
	cmd.Version = version.Get().String()
	cmd.SetVersionTemplate("{{.Name}} {{.Version}}\n")
	cmd.Flags().Bool("version", false, "Print the version, the commit and the Go version it was built with, and exit.")
}
