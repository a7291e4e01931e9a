package main

import (
	"archive/tar"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

const (
	ociTarName = "kubelet-stats-server.oci.tar"
	// containerdNameAnnotation names the image on `ctr images import`
	// (buildx writes it too); ref.name holds the tag alone, as the OCI
	// image layout spec intends.
	containerdNameAnnotation = "io.containerd.image.name"
	refNameAnnotation        = "org.opencontainers.image.ref.name"
)

func layoutDir(out string) string { return filepath.Join(out, "oci") }

func dockerTarName(p platform) string {
	return fmt.Sprintf("kubelet-stats-server.%s-%s.docker.tar", p.OS, p.Arch)
}

// assembleAndWrite builds the images and index from the binaries, writes
// the OCI layout, its tarball and one docker tarball per platform, and
// reports what it wrote to w.
func assembleAndWrite(w io.Writer, out, tag, version string, certs []byte, binaries []binary) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("--tag %q: %w", tag, err)
	}
	m, err := metaOf(version, binaries)
	if err != nil {
		return err
	}
	idx, images, err := imageIndex(binaries, certs, m)
	if err != nil {
		return err
	}
	if err := writeLayout(layoutDir(out), idx, ref); err != nil {
		return err
	}
	ociTar := filepath.Join(out, ociTarName)
	if err := tarDir(layoutDir(out), ociTar, m.Created); err != nil {
		return err
	}
	digest, err := idx.Digest()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "image index %s@%s (%s, created %s)\n  OCI layout: %s\n  OCI archive: %s\n",
		ref, digest, version, m.Created.Format(time.RFC3339), layoutDir(out), ociTar)
	for i, img := range images {
		path := filepath.Join(out, dockerTarName(binaries[i].Platform))
		if err := tarball.WriteToFile(path, ref, img); err != nil {
			return fmt.Errorf("docker archive %s: %w", path, err)
		}
		fmt.Fprintf(w, "  docker archive (%s): %s\n", binaries[i].Platform, path)
	}
	return nil
}

// writeLayout writes a fresh OCI image layout at dir whose index.json
// holds idx, named ref. Old contents go first: blobs of earlier builds
// would otherwise pile up in it and in the tarball.
func writeLayout(dir string, idx v1.ImageIndex, ref name.Tag) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	err = p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		containerdNameAnnotation: ref.Name(),
		refNameAnnotation:        ref.TagStr(),
	}))
	if err != nil {
		return fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	return nil
}

// tarDir archives dir (an OCI layout) with sorted entries, fixed times and
// root ownership, so the archive is as reproducible as its blobs.
func tarDir(dir, path string, mtime time.Time) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() {
		if closeErr := f.Close(); err == nil {
			err = closeErr
		}
	}()
	tw := tar.NewWriter(f)
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return addToTar(tw, p, filepath.ToSlash(rel), d, mtime)
	})
	if err != nil {
		return fmt.Errorf("archive %s: %w", dir, err)
	}
	return tw.Close()
}

func addToTar(tw *tar.Writer, path, name string, d fs.DirEntry, mtime time.Time) error {
	hdr := &tar.Header{Name: name, Mode: 0o644, ModTime: mtime, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
	if d.IsDir() {
		hdr.Name, hdr.Mode, hdr.Typeflag = name+"/", 0o755, tar.TypeDir
		return tw.WriteHeader(hdr)
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	info, err := src.Stat()
	if err != nil {
		return err
	}
	hdr.Size = info.Size()
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	_, err = io.Copy(tw, src)
	return err
}
