package main

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const testTag = "registry.example/kss/kubelet-stats-server:v0.1.0"

var testCommitTime = time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)

// fakeBinaries stand in for the compiled server: the assembly never runs
// them, and distinct bytes per platform show which one landed where.
func fakeBinaries() []binary {
	return []binary{
		{Platform: platform{"linux", "amd64"}, Content: []byte("amd64 binary"), Revision: "abc123", Time: testCommitTime},
		{Platform: platform{"linux", "arm64"}, Content: []byte("arm64 binary"), Revision: "abc123", Time: testCommitTime},
	}
}

func buildFake(t *testing.T) string {
	t.Helper()
	t.Setenv("SOURCE_DATE_EPOCH", "")
	out := t.TempDir()
	if err := assembleAndWrite(io.Discard, out, testTag, "v0.1.0", []byte("CA BUNDLE"), fakeBinaries()); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestLayoutHoldsMultiPlatformIndex(t *testing.T) {
	out := buildFake(t)
	idx, err := layoutImageIndex(layoutDir(out))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if manifest.MediaType != types.OCIImageIndex {
		t.Errorf("index media type %s, want %s", manifest.MediaType, types.OCIImageIndex)
	}
	if got := manifest.Annotations["org.opencontainers.image.version"]; got != "v0.1.0" {
		t.Errorf("index version annotation %q", got)
	}
	want := map[string]string{"linux/amd64": "amd64 binary", "linux/arm64/v8": "arm64 binary"}
	if len(manifest.Manifests) != len(want) {
		t.Fatalf("index has %d manifests, want %d", len(manifest.Manifests), len(want))
	}
	for _, desc := range manifest.Manifests {
		plat := desc.Platform.String()
		img, err := idx.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		checkImage(t, plat, img, want[plat])
		checkOCIMediaTypes(t, plat, img)
	}
}

// checkOCIMediaTypes: the layout and registries get OCI media types (a
// docker archive has none; reading one back yields docker's).
func checkOCIMediaTypes(t *testing.T, plat string, img v1.Image) {
	t.Helper()
	if mediaType, err := img.MediaType(); err != nil || mediaType != types.OCIManifestSchema1 {
		t.Errorf("%s: manifest media type %s (%v)", plat, mediaType, err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if mt, _ := layers[0].MediaType(); mt != types.OCILayer {
		t.Errorf("%s: layer media type %s, want %s", plat, mt, types.OCILayer)
	}
}

// checkImage asserts what every platform's image must be.
func checkImage(t *testing.T, plat string, img v1.Image, wantBinary string) {
	t.Helper()
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join([]string{cfg.OS, cfg.Architecture, cfg.Variant}, "/"); strings.TrimSuffix(got, "/") != plat {
		t.Errorf("%s: config platform %s", plat, got)
	}
	if cfg.Config.User != "65532:65532" || len(cfg.Config.Entrypoint) != 1 || cfg.Config.Entrypoint[0] != "/kubelet-stats-server" {
		t.Errorf("%s: user %q entrypoint %q", plat, cfg.Config.User, cfg.Config.Entrypoint)
	}
	if !cfg.Created.Equal(testCommitTime) {
		t.Errorf("%s: created %v, want the commit time %v", plat, cfg.Created, testCommitTime)
	}
	for key, want := range map[string]string{
		"org.opencontainers.image.version":  "v0.1.0",
		"org.opencontainers.image.revision": "abc123",
		"org.opencontainers.image.created":  "2026-05-01T10:00:00Z",
		"org.opencontainers.image.source":   sourceURL,
		"org.opencontainers.image.title":    "kubelet-stats-server",
	} {
		if got := cfg.Config.Labels[key]; got != want {
			t.Errorf("%s: label %s = %q, want %q", plat, key, got, want)
		}
	}
	files := layerFiles(t, img)
	if got := string(files["kubelet-stats-server"].body); got != wantBinary {
		t.Errorf("%s: binary %q, want %q", plat, got, wantBinary)
	}
	checkRootfs(t, plat, files)
}

// checkRootfs: a layout a non-root user can run in, and nothing more.
func checkRootfs(t *testing.T, plat string, files map[string]tarFile) {
	t.Helper()
	want := map[string]struct {
		mode int64
		uid  int
	}{
		"etc/": {0o755, 0}, "etc/passwd": {0o644, 0}, "etc/group": {0o644, 0},
		"etc/ssl/": {0o755, 0}, "etc/ssl/certs/": {0o755, 0}, "etc/ssl/certs/ca-certificates.crt": {0o644, 0},
		"home/": {0o755, 0}, "home/nonroot/": {0o700, 65532}, "root/": {0o700, 0}, "tmp/": {0o1777, 0},
		"kubelet-stats-server": {0o755, 0},
	}
	for path, f := range files {
		w, ok := want[path]
		if !ok {
			t.Errorf("%s: unexpected %s in the layer", plat, path)
			continue
		}
		if f.mode != w.mode || f.uid != w.uid || f.gid != w.uid {
			t.Errorf("%s: %s mode %o owner %d:%d, want %o %d", plat, path, f.mode, f.uid, f.gid, w.mode, w.uid)
		}
		if !f.mtime.Equal(testCommitTime) {
			t.Errorf("%s: %s mtime %v, want the commit time", plat, path, f.mtime)
		}
	}
	if len(files) != len(want) {
		t.Errorf("%s: layer has %d entries, want %d", plat, len(files), len(want))
	}
	if got := string(files["etc/ssl/certs/ca-certificates.crt"].body); got != "CA BUNDLE" {
		t.Errorf("%s: CA bundle %q", plat, got)
	}
	if !strings.Contains(string(files["etc/passwd"].body), "nonroot:x:65532:65532:") {
		t.Errorf("%s: /etc/passwd has no nonroot:\n%s", plat, files["etc/passwd"].body)
	}
}

type tarFile struct {
	mode     int64
	uid, gid int
	mtime    time.Time
	body     []byte
}

func layerFiles(t *testing.T, img v1.Image) map[string]tarFile {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("want one layer, got %d (%v)", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	return readTar(t, rc)
}

func readTar(t *testing.T, r io.Reader) map[string]tarFile {
	t.Helper()
	files := map[string]tarFile{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files
		}
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = tarFile{mode: hdr.Mode, uid: hdr.Uid, gid: hdr.Gid, mtime: hdr.ModTime, body: body}
	}
}

// The archive is the layout: what ctr import reads, with the image's name
// where containerd's importer looks for it.
func TestOCIArchive(t *testing.T) {
	out := buildFake(t)
	f, err := os.Open(filepath.Join(out, ociTarName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	files := readTar(t, f)
	if got := string(files["oci-layout"].body); !strings.Contains(got, `"imageLayoutVersion": "1.0.0"`) {
		t.Errorf("oci-layout %q", got)
	}
	var index v1.IndexManifest
	if err := json.Unmarshal(files["index.json"].body, &index); err != nil {
		t.Fatal(err)
	}
	if len(index.Manifests) != 1 || index.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("index.json manifests %+v, want one image index", index.Manifests)
	}
	ann := index.Manifests[0].Annotations
	if ann["io.containerd.image.name"] != testTag || ann["org.opencontainers.image.ref.name"] != "v0.1.0" {
		t.Errorf("index.json annotations %v", ann)
	}
	for path := range files {
		if !strings.HasPrefix(path, "blobs/") && path != "oci-layout" && path != "index.json" {
			t.Errorf("unexpected %s in the archive", path)
		}
	}
	// 2 images × (manifest, config, layer) + the image index.
	if blobs := countPrefix(files, "blobs/sha256/") - 1; blobs != 7 {
		t.Errorf("archive holds %d blobs, want 7", blobs)
	}
}

func countPrefix(files map[string]tarFile, prefix string) int {
	n := 0
	for path := range files {
		if strings.HasPrefix(path, prefix) {
			n++
		}
	}
	return n
}

// docker load takes one image per platform, tagged.
func TestDockerArchives(t *testing.T) {
	out := buildFake(t)
	tag, err := name.NewTag(testTag)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layoutImageIndex(layoutDir(out))
	if err != nil {
		t.Fatal(err)
	}
	manifest, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range fakeBinaries() {
		path := filepath.Join(out, dockerTarName(b.Platform))
		img, err := tarball.ImageFromPath(path, &tag)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		// The same config as the index's image: the same image.
		cfgName, err := img.ConfigName()
		if err != nil {
			t.Fatal(err)
		}
		indexImg, err := idx.Image(manifest.Manifests[i].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if want, _ := indexImg.ConfigName(); cfgName != want {
			t.Errorf("%s: config %s, the index's %s image has %s", path, cfgName, b.Platform, want)
		}
		checkImage(t, manifest.Manifests[i].Platform.String(), img, string(b.Content))
	}
}

// A commit builds the same digests every time.
func TestReproducible(t *testing.T) {
	digests := make([]v1.Hash, 2)
	for i := range digests {
		idx, err := layoutImageIndex(layoutDir(buildFake(t)))
		if err != nil {
			t.Fatal(err)
		}
		if digests[i], err = idx.Digest(); err != nil {
			t.Fatal(err)
		}
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds of the same inputs: %s and %s", digests[0], digests[1])
	}
}

func TestSourceDateEpoch(t *testing.T) {
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	m, err := metaOf("v1", fakeBinaries())
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Unix(1700000000, 0).UTC(); !m.Created.Equal(want) {
		t.Errorf("created %v, want SOURCE_DATE_EPOCH %v", m.Created, want)
	}
	mixed := fakeBinaries()
	mixed[1].Revision = "other"
	if _, err := metaOf("v1", mixed); err == nil {
		t.Error("binaries from two commits: no error")
	}
}

// push uploads the index with both platforms to a registry.
func TestPush(t *testing.T) {
	out := buildFake(t)
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/kss/kubelet-stats-server:v0.1.0"
	digest, err := push(t.Context(), layoutDir(out), ref)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	pulled, err := remote.Index(parsed)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := pulled.Digest(); got != digest {
		t.Errorf("registry holds %s, pushed %s", got, digest)
	}
	manifest, err := pulled.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range manifest.Manifests {
		img, err := pulled.Image(desc.Digest)
		if err != nil {
			t.Fatal(err)
		}
		files := layerFiles(t, img)
		if !bytes.HasPrefix(files["kubelet-stats-server"].body, []byte(desc.Platform.Architecture)) {
			t.Errorf("%s: pulled binary %q", desc.Platform, files["kubelet-stats-server"].body)
		}
	}
}

func TestParsePlatforms(t *testing.T) {
	got, err := parsePlatforms("linux/amd64, linux/arm64")
	if err != nil || len(got) != 2 || got[1] != (platform{"linux", "arm64"}) {
		t.Errorf("parsePlatforms = %v, %v", got, err)
	}
	for _, bad := range []string{"amd64", "windows/amd64", "linux/"} {
		if _, err := parsePlatforms(bad); err == nil {
			t.Errorf("parsePlatforms(%q): no error", bad)
		}
	}
}
