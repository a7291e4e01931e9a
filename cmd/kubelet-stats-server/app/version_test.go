package app

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/internal/version"
)

// --version prints the build's line and exits before validation and Run:
// the invalid port would otherwise fail the command.
func TestVersionFlag(t *testing.T) {
	cmd := NewCommand()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"--version", "--read-only-port=-1"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("--version: %v\n%s", err, out.String())
	}
	if got, want := out.String(), "kubelet-stats-server "+version.Get().String()+"\n"; got != want {
		t.Errorf("--version printed %q, want %q", got, want)
	}
	usage := cmd.Flags().Lookup("version").Usage
	if !strings.Contains(usage, "Print the version") {
		t.Errorf("--version usage %q", usage)
	}
}
