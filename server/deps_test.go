package server

import (
	"os/exec"
	"strings"
	"testing"
)

// TestReadsOnlyTheReadModel keeps the HTTP layer on the snapshot it
// answers from: it must not link the provider, the runtime client, the
// collector or the volume analyzer (docs/layout.md), nor k8s.io/apiserver,
// whose init-time pages were half the binary's resident memory (issue 10).
func TestReadsOnlyTheReadModel(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	const module = "github.com/kubelet-stats-server/kubelet-stats-server/"
	forbidden := []string{module + "provider", module + "cri", module + "collector", module + "analyzer", "k8s.io/apiserver"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, prefix := range forbidden {
			if pkg == prefix || strings.HasPrefix(pkg, prefix+"/") {
				t.Errorf("links %s", pkg)
			}
		}
	}
}
