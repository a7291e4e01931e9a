package image

import (
	"context"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"testing"
	"time"
)

// builtImage is what `make image` wrote for one platform.
type builtImage struct {
	Tag        string
	Version    string
	OCIArchive string
	// DockerArchive is this machine's platform's docker-load tarball.
	DockerArchive string
}

// makeImage runs `make image` for this machine's platform only (a cold
// arm64 build costs minutes; hack/image's unit tests cover the two-platform
// index) with a version of its own, so that --version in the container
// can only print what this build stamped.
func makeImage(t *testing.T) builtImage {
	t.Helper()
	out := t.TempDir()
	img := builtImage{
		Tag:           "localhost/kss-e2e/kubelet-stats-server:e2e",
		Version:       "v0.0.0-e2e." + time.Now().UTC().Format("20060102150405.000000000"),
		OCIArchive:    filepath.Join(out, "kubelet-stats-server.oci.tar"),
		DockerArchive: filepath.Join(out, "kubelet-stats-server.linux-"+goruntime.GOARCH+".docker.tar"),
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "make", "-s", "image", "IMAGE="+img.Tag, "VERSION="+img.Version,
		"IMAGE_PLATFORMS=linux/"+goruntime.GOARCH, "IMAGE_OUT="+out)
	cmd.Dir = moduleRoot(t)
	output, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, output)
	}
	t.Logf("make image took %v:\n%s", time.Since(start).Round(100*time.Millisecond), output)
	return img
}

func moduleRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("locate the module root: %v", err)
	}
	return strings.TrimSpace(string(out))
}
