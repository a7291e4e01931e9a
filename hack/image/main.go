// Command image builds kubelet-stats-server's OCI image without Docker, and
// pushes it, with github.com/google/go-containerregistry. `make image` and
// `make push` run it; docs/deploy.md describes the result.
//
//	go run ./hack/image build --tag=<ref> --version=<v> [--revision=<commit>] --ldflags=<flags> [--platforms=linux/amd64,linux/arm64] [--out=bin/image]
//	go run ./hack/image push --image=<ref> [--out=bin/image]
//
// build cross-compiles the static binary (CGO_ENABLED=0) for every platform
// and writes to --out:
//
//   - oci/: an OCI image layout whose index.json names one image index
//     (one manifest per platform), tagged --tag; push reads it;
//   - kubelet-stats-server.oci.tar: the same layout as a tarball, for
//     `ctr -n k8s.io images import` and `skopeo copy oci-archive:`;
//   - kubelet-stats-server.<os>-<arch>.docker.tar: one `docker save`-style
//     tarball per platform, for `docker load` (which takes no index).
//
// Each image has one layer: the binary at /kubelet-stats-server, Debian's
// CA bundle, /etc/passwd and /etc/group with root and nonroot (65532), an
// empty /tmp and nonroot's home. Its default user is 65532; the DaemonSet
// in deploy/ runs it as root with almost every capability dropped.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("usage: image build|push [flags]")
	}
	switch args[0] {
	case "build":
		return runBuild(ctx, args[1:])
	case "push":
		return runPush(ctx, args[1:])
	default:
		return fmt.Errorf("unknown command %q: want build or push", args[0])
	}
}

func runBuild(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	out := fs.String("out", "bin/image", "output directory")
	tag := fs.String("tag", "", "image reference the outputs are tagged with, e.g. ghcr.io/you/kubelet-stats-server:v0.1.0")
	ver := fs.String("version", "", "version for the org.opencontainers.image.version label (the binary's own comes from --ldflags)")
	revision := fs.String("revision", "", "commit for the org.opencontainers.image.revision label; default the binaries' VCS stamp")
	ldflags := fs.String("ldflags", "", "go build -ldflags; -s -w are added")
	platforms := fs.String("platforms", "linux/amd64,linux/arm64", "comma-separated os/arch list")
	caBundle := fs.String("ca-certificates", "/etc/ssl/certs/ca-certificates.crt", "CA bundle copied to the same path in the image")
	pkg := fs.String("package", "./cmd/kubelet-stats-server", "the main package to build")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || *ver == "" {
		return errors.New("build: --tag and --version are required")
	}
	plats, err := parsePlatforms(*platforms)
	if err != nil {
		return err
	}
	certs, err := os.ReadFile(*caBundle)
	if err != nil {
		return fmt.Errorf("CA certificates (apt-get install ca-certificates): %w", err)
	}
	binaries, err := compileAll(ctx, *pkg, *ldflags, *out, plats)
	if err != nil {
		return err
	}
	if *revision != "" {
		for i := range binaries {
			binaries[i].Revision = *revision
		}
	}
	return assembleAndWrite(os.Stdout, *out, *tag, *ver, certs, binaries)
}

func runPush(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("push", flag.ContinueOnError)
	out := fs.String("out", "bin/image", "directory that build wrote")
	ref := fs.String("image", "", "where to push, e.g. ghcr.io/you/kubelet-stats-server:v0.1.0")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *ref == "" {
		return errors.New("push: --image is required (make push IMAGE=<ref>)")
	}
	digest, err := push(ctx, layoutDir(*out), *ref)
	if err != nil {
		return err
	}
	fmt.Printf("pushed %s@%s\n", *ref, digest)
	return nil
}

// parsePlatforms reads "linux/amd64,linux/arm64".
func parsePlatforms(list string) ([]platform, error) {
	var plats []platform
	for _, p := range strings.Split(list, ",") {
		osName, arch, ok := strings.Cut(strings.TrimSpace(p), "/")
		if !ok || osName != "linux" || arch == "" {
			return nil, fmt.Errorf("platform %q: want linux/<arch>", p)
		}
		plats = append(plats, platform{OS: osName, Arch: arch})
	}
	return plats, nil
}
