package framework

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// The test images, built from test/e2e/images/<name>. Both run as the
// entrypoint of a one-layer image that holds only the static binary.
const (
	// PauseImage sleeps until SIGTERM. It is also the sandbox image.
	PauseImage = "localhost/kss-e2e/pause:latest"
	// WorkImage burns CPU, holds memory, writes files, sends traffic and
	// exits on request; see test/e2e/images/work for its flags.
	WorkImage = "localhost/kss-e2e/work:latest"
)

// testImages maps image references to the program they run.
func testImages() map[string]string {
	return map[string]string{PauseImage: "pause", WorkImage: "work"}
}

// ImportTestImages builds the test images and imports them into this
// containerd, once; RunPod calls it when needed.
func (r *Runtime) ImportTestImages(ctx context.Context) error {
	r.importMu.Lock()
	defer r.importMu.Unlock()
	if r.imported {
		return nil
	}
	start := time.Now()
	outDir := filepath.Join(r.dir, "images")
	for ref, program := range testImages() {
		archive, err := buildImage(ctx, outDir, ref, program)
		if err != nil {
			return err
		}
		if err := r.ctr(ctx, "images", "import", archive); err != nil {
			return err
		}
		if err := r.waitImage(ctx, ref); err != nil {
			return err
		}
	}
	r.imported = true
	r.logf("test images built and imported in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

func (r *Runtime) ctr(ctx context.Context, args ...string) error {
	args = append([]string{"--address", r.paths.socket, "--namespace", criNamespace}, args...)
	out, err := exec.CommandContext(ctx, "ctr", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr %v: %w: %s", args, err, tail(out, 2000))
	}
	return nil
}

// waitImage polls until the CRI plugin, which learns of imported images
// through events, reports ref, for at most readyLimit.
func (r *Runtime) waitImage(ctx context.Context, ref string) error {
	ctx, cancel := context.WithTimeout(ctx, readyLimit)
	defer cancel()
	for {
		resp, err := r.images.ImageStatus(ctx, &runtimeapi.ImageStatusRequest{Image: &runtimeapi.ImageSpec{Image: ref}})
		if err == nil && resp.GetImage() != nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("image %s not visible to CRI (last error %v): %w", ref, err, ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// PrebuiltImagesEnv names a directory holding the image programs already
// built (static binaries named pause and work), for machines without a Go
// toolchain: the cgroup v2 VM of test/v2vm builds them on the host.
const PrebuiltImagesEnv = "KSS_E2E_IMAGE_BINARIES"

// buildImage compiles test/e2e/images/<program> statically (or takes it
// from PrebuiltImagesEnv) and writes a docker-archive tarball of a
// one-layer image tagged ref. It returns the archive's path.
func buildImage(ctx context.Context, outDir, ref, program string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	binary, err := imageBinary(ctx, outDir, program)
	if err != nil {
		return "", err
	}
	content, err := os.ReadFile(binary)
	if err != nil {
		return "", err
	}
	img, err := singleBinaryImage("/"+program, content)
	if err != nil {
		return "", fmt.Errorf("image %s: %w", ref, err)
	}
	tag, err := name.NewTag(ref)
	if err != nil {
		return "", err
	}
	archive := filepath.Join(outDir, program+".tar")
	if err := tarball.WriteToFile(archive, tag, img); err != nil {
		return "", fmt.Errorf("write %s: %w", archive, err)
	}
	return archive, nil
}

// imageBinary returns the path of the static binary of program: the
// prebuilt one when PrebuiltImagesEnv is set, else one built into outDir.
func imageBinary(ctx context.Context, outDir, program string) (string, error) {
	if dir := os.Getenv(PrebuiltImagesEnv); dir != "" {
		binary := filepath.Join(dir, program)
		if _, err := os.Stat(binary); err != nil {
			return "", fmt.Errorf("prebuilt image program (%s): %w", PrebuiltImagesEnv, err)
		}
		return binary, nil
	}
	srcDir, err := imagesSourceDir()
	if err != nil {
		return "", err
	}
	binary := filepath.Join(outDir, program)
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", binary, "./"+program)
	cmd.Dir = srcDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+goruntime.GOARCH)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w: %s", program, err, tail(out, 2000))
	}
	return binary, nil
}

// singleBinaryImage returns a linux image whose only layer holds the
// executable at entrypoint and an empty /tmp, and which runs it.
func singleBinaryImage(entrypoint string, binary []byte) (v1.Image, error) {
	layerTar, err := layerWithBinary(entrypoint, binary)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.OS = "linux"
	cfg.Architecture = goruntime.GOARCH
	cfg.Config.Entrypoint = []string{entrypoint}
	return mutate.ConfigFile(img, cfg)
}

func layerWithBinary(entrypoint string, binary []byte) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	modTime := time.Unix(0, 0)
	entries := []struct {
		hdr  tar.Header
		body []byte
	}{
		{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "tmp/", Mode: 0o1777, ModTime: modTime}},
		{hdr: tar.Header{Typeflag: tar.TypeReg, Name: entrypoint[1:], Mode: 0o755, Size: int64(len(binary)), ModTime: modTime}, body: binary},
	}
	for _, e := range entries {
		if err := tw.WriteHeader(&e.hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// imagesSourceDir locates test/e2e/images from this source file, so the
// harness works from any test package's working directory. Builds with
// -trimpath record a module-relative path; then ask go for the module root.
func imagesSourceDir() (string, error) {
	_, file, _, ok := goruntime.Caller(0)
	dir := filepath.Join(filepath.Dir(file), "..", "images")
	if !ok || !filepath.IsAbs(file) {
		out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
		if err != nil {
			return "", fmt.Errorf("locate the module root: %w", err)
		}
		dir = filepath.Join(strings.TrimSpace(string(out)), "test", "e2e", "images")
	}
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("test image sources: %w", err)
	}
	return dir, nil
}
