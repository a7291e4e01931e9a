package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// platform is one os/arch the image is built for.
type platform struct{ OS, Arch string }

func (p platform) String() string { return p.OS + "/" + p.Arch }

// variant is the OCI platform variant registries and runtimes expect:
// arm64 images are v8.
func (p platform) variant() string {
	if p.Arch == "arm64" {
		return "v8"
	}
	return ""
}

// binary is one compiled binary and what its toolchain recorded about the
// source it was built from.
type binary struct {
	Platform platform
	Content  []byte
	Revision string    // vcs.revision, empty without VCS information
	Modified bool      // vcs.modified
	Time     time.Time // vcs.time, zero if unknown
}

// compileAll builds pkg statically for every platform, one after the
// other (the machines have two cores; go build already uses both).
func compileAll(ctx context.Context, pkg, ldflags, out string, plats []platform) ([]binary, error) {
	var binaries []binary
	for _, p := range plats {
		path := filepath.Join(out, "bin", p.OS+"-"+p.Arch, "kubelet-stats-server")
		start := time.Now()
		if err := compile(ctx, pkg, ldflags, path, p); err != nil {
			return nil, err
		}
		b, err := readBinary(path, p)
		if err != nil {
			return nil, err
		}
		fmt.Printf("built %s for %s in %v (%.1f MB)\n", pkg, p, time.Since(start).Round(100*time.Millisecond), float64(len(b.Content))/1e6)
		binaries = append(binaries, b)
	}
	return binaries, nil
}

// compile runs go build for one platform. -s -w drop the symbol table and
// DWARF (about a third of the binary); the build info that --version and
// the image labels read is kept.
func compile(ctx context.Context, pkg, ldflags, path string, p platform) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", strings.TrimSpace(ldflags+" -s -w"), "-o", path, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+p.OS, "GOARCH="+p.Arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %w\n%s", pkg, p, err, out)
	}
	return nil
}

// readBinary loads a compiled binary with its VCS stamp.
func readBinary(path string, p platform) (binary, error) {
	content, err := os.ReadFile(path)
	if err != nil {
		return binary{}, err
	}
	info, err := buildinfo.Read(bytes.NewReader(content))
	if err != nil {
		return binary{}, fmt.Errorf("build info of %s: %w", path, err)
	}
	b := binary{Platform: p, Content: content}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			b.Revision = s.Value
		case "vcs.modified":
			b.Modified = s.Value == "true"
		case "vcs.time":
			if b.Time, err = time.Parse(time.RFC3339, s.Value); err != nil {
				return binary{}, fmt.Errorf("%s: vcs.time %q: %w", path, s.Value, err)
			}
		}
	}
	return b, nil
}
