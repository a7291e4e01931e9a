package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

const (
	entrypoint = "/kubelet-stats-server"
	caPath     = "/etc/ssl/certs/ca-certificates.crt"
	// nonrootID is the image's default user and group, distroless's
	// "nonroot": the image runs without root unless the pod asks for it.
	nonrootID = 65532
	sourceURL = "https://github.com/kubelet-stats-server/kubelet-stats-server"
)

// meta is what every platform's image says about the build.
type meta struct {
	Version  string
	Revision string
	Created  time.Time
}

// metaOf takes the revision and time from the binaries, which must agree.
// Created is the commit time, so that rebuilding a commit gives the same
// digests: SOURCE_DATE_EPOCH (the Makefile sets it from git), else the
// binaries' VCS stamp, else 1970.
func metaOf(version string, binaries []binary) (meta, error) {
	m := meta{Version: version}
	for i, b := range binaries {
		if i > 0 && (b.Revision != m.Revision || !b.Time.Equal(m.Created)) {
			return meta{}, fmt.Errorf("%s was built from %s, %s from %s", binaries[0].Platform, m.Revision, b.Platform, b.Revision)
		}
		m.Revision, m.Created = b.Revision, b.Time
	}
	if epoch, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		m.Created = time.Unix(epoch, 0)
	}
	if m.Created.IsZero() {
		m.Created = time.Unix(0, 0)
	}
	m.Created = m.Created.UTC()
	return m, nil
}

// labels are the org.opencontainers.image.* annotations, put on every
// image config (what `docker inspect` and `crictl inspecti` show) and on
// the index (what registries show).
func labels(m meta) map[string]string {
	l := map[string]string{
		"org.opencontainers.image.title":         "kubelet-stats-server",
		"org.opencontainers.image.description":   "The kubelet's stats API (/stats/summary, /metrics/resource, /metrics/cadvisor) from one static binary per node",
		"org.opencontainers.image.version":       m.Version,
		"org.opencontainers.image.created":       m.Created.Format(time.RFC3339),
		"org.opencontainers.image.source":        sourceURL,
		"org.opencontainers.image.url":           sourceURL,
		"org.opencontainers.image.documentation": sourceURL + "/blob/main/docs/deploy.md",
	}
	if m.Revision != "" {
		l["org.opencontainers.image.revision"] = m.Revision
	}
	return l
}

// file is one entry of the image's only layer.
type file struct {
	name string // relative, no leading slash; directories end in /
	mode int64
	id   int // uid and gid
	body []byte
}

// rootfs is the whole filesystem, parents before children. Nothing in it
// needs root: the binary and certificates are world-readable, /tmp is
// sticky and world-writable, and nonroot has a home and a passwd entry
// (some libraries look the user up).
func rootfs(bin, certs []byte) []file {
	return []file{
		{name: "etc/", mode: 0o755},
		{name: "etc/passwd", mode: 0o644, body: []byte(
			"root:x:0:0:root:/root:/sbin/nologin\n" +
				"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, body: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{name: "etc/ssl/", mode: 0o755},
		{name: "etc/ssl/certs/", mode: 0o755},
		{name: caPath[1:], mode: 0o644, body: certs},
		{name: "home/", mode: 0o755},
		{name: "home/nonroot/", mode: 0o700, id: nonrootID},
		{name: "root/", mode: 0o700},
		{name: "tmp/", mode: 0o1777},
		{name: entrypoint[1:], mode: 0o755, body: bin},
	}
}

// layerTar writes files as a tar with fixed times and owners, so the same
// inputs give the same layer digest.
func layerTar(files []file, mtime time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.id, Gid: f.id, ModTime: mtime, Format: tar.FormatPAX}
		if hdr.Name[len(hdr.Name)-1] == '/' {
			hdr.Typeflag = tar.TypeDir
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(f.body))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar header %s: %w", f.name, err)
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, fmt.Errorf("tar %s: %w", f.name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// platformImage is the OCI image of one binary.
func platformImage(b binary, certs []byte, m meta) (v1.Image, error) {
	layerBytes, err := layerTar(rootfs(b.Content, certs), m.Created)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer for %s: %w", b.Platform, err)
	}
	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created:   v1.Time{Time: m.Created},
		CreatedBy: "hack/image: kubelet-stats-server, CA certificates, /etc/passwd",
	}})
	if err != nil {
		return nil, fmt.Errorf("image for %s: %w", b.Platform, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cfg = cfg.DeepCopy()
	cfg.Created = v1.Time{Time: m.Created}
	cfg.OS, cfg.Architecture, cfg.Variant = b.Platform.OS, b.Platform.Arch, b.Platform.variant()
	cfg.Config.Entrypoint = []string{entrypoint}
	cfg.Config.User = strconv.Itoa(nonrootID) + ":" + strconv.Itoa(nonrootID)
	cfg.Config.WorkingDir = "/"
	cfg.Config.Labels = labels(m)
	return mutate.ConfigFile(img, cfg)
}

// imageIndex puts one image per platform into an OCI image index.
func imageIndex(binaries []binary, certs []byte, m meta) (v1.ImageIndex, []v1.Image, error) {
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	images := make([]v1.Image, 0, len(binaries))
	for _, b := range binaries {
		img, err := platformImage(b, certs, m)
		if err != nil {
			return nil, nil, err
		}
		images = append(images, img)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: b.Platform.OS, Architecture: b.Platform.Arch, Variant: b.Platform.variant()},
		}})
	}
	annotated, ok := mutate.Annotations(idx, labels(m)).(v1.ImageIndex)
	if !ok {
		return nil, nil, fmt.Errorf("annotating the index lost its type")
	}
	return annotated, images, nil
}
