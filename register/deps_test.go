package register

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoClientset keeps client-go's clientset and tools/record out of
// the package: their scheme registers every API group of Kubernetes at
// start, megabytes of the binary paged in for nothing (issue 10).
func TestLinksNoClientset(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".", "../internal/kubeclient").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "k8s.io/client-go/kubernetes") || strings.HasPrefix(pkg, "k8s.io/client-go/tools/record") {
			t.Errorf("links %s", pkg)
		}
	}
}
