package main

import (
	"context"
	"fmt"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// push uploads the image index of the OCI layout at dir to ref, with the
// credentials of ~/.docker/config.json and its helpers (docker login,
// crane auth login), and returns the index digest.
func push(ctx context.Context, dir, ref string) (v1.Hash, error) {
	dst, err := name.ParseReference(ref)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("--image %q: %w", ref, err)
	}
	idx, err := layoutImageIndex(dir)
	if err != nil {
		return v1.Hash{}, err
	}
	err = remote.WriteIndex(dst, idx, remote.WithContext(ctx), remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("push %s: %w", dst, err)
	}
	return idx.Digest()
}

// layoutImageIndex is the one image index that build put into the layout.
func layoutImageIndex(dir string) (v1.ImageIndex, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s (run make image first): %w", dir, err)
	}
	top, err := p.ImageIndex()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	manifest, err := top.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	if len(manifest.Manifests) != 1 {
		return nil, fmt.Errorf("OCI layout %s names %d manifests, want the one image index", dir, len(manifest.Manifests))
	}
	return top.ImageIndex(manifest.Manifests[0].Digest)
}
