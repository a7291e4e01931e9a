package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// CNIBinDir is where Debian's containernetworking-plugins installs the
// plugins.
const CNIBinDir = "/usr/lib/cni"

// lockDir holds the host-wide locks that let harnesses in several test
// processes share one machine. /run is a tmpfs, so stale locks vanish on
// reboot; flock locks vanish with their process.
const lockDir = "/run/kss-e2e"

// requirement is one thing the harness runs and the Debian package that
// ships it.
type requirement struct {
	path    string // a command looked up in PATH, or an absolute file path
	pkg     string
	command bool
}

// requirements lists what the harness runs.
func requirements() []requirement {
	return []requirement{
		{path: "containerd", pkg: "containerd", command: true},
		{path: "ctr", pkg: "containerd", command: true},
		{path: "runc", pkg: "runc", command: true},
		{path: "ip", pkg: "iproute2", command: true},
		{path: filepath.Join(CNIBinDir, "bridge"), pkg: "containernetworking-plugins"},
		{path: filepath.Join(CNIBinDir, "host-local"), pkg: "containernetworking-plugins"},
		{path: filepath.Join(CNIBinDir, "loopback"), pkg: "containernetworking-plugins"},
	}
}

// missingPackages returns the Debian packages to install.
func missingPackages() []string { return missingFrom(requirements()) }

// missingFrom returns the packages of the requirements that are not met,
// without duplicates, in order.
func missingFrom(reqs []requirement) []string {
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range reqs {
		var err error
		if r.command {
			_, err = exec.LookPath(r.path)
		} else {
			_, err = os.Stat(r.path)
		}
		if err != nil && !seen[r.pkg] {
			seen[r.pkg] = true
			pkgs = append(pkgs, r.pkg)
		}
	}
	return pkgs
}

// EnsureInstalled installs containerd, runc, the CNI plugins and iproute2
// with apt-get when any of them is missing, running apt-get update only if
// the first install fails. It holds a host-wide lock, so test packages that
// call it in parallel install once. logf may be nil.
func EnsureInstalled(ctx context.Context, logf func(string, ...any)) error {
	logf = orDiscard(logf)
	if len(missingPackages()) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("installing %s needs root", strings.Join(missingPackages(), " "))
	}
	unlock, err := lockFile(ctx, filepath.Join(lockDir, "install.lock"))
	if err != nil {
		return err
	}
	defer unlock()

	// Another process may have installed them while we waited.
	pkgs := missingPackages()
	if len(pkgs) == 0 {
		return nil
	}
	start := time.Now()
	logf("apt-get install %s", strings.Join(pkgs, " "))
	if err := aptGet(ctx, append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...); err != nil {
		logf("apt-get install failed (%v), running apt-get update", err)
		if err := aptGet(ctx, "update"); err != nil {
			return err
		}
		if err := aptGet(ctx, append([]string{"install", "-y", "--no-install-recommends"}, pkgs...)...); err != nil {
			return err
		}
	}
	logf("installed %s in %v", strings.Join(pkgs, " "), time.Since(start).Round(time.Millisecond))
	if still := missingPackages(); len(still) > 0 {
		return fmt.Errorf("still missing after apt-get install: %s", strings.Join(still, " "))
	}
	return nil
}

func aptGet(ctx context.Context, args ...string) error {
	args = append([]string{"-o", "DPkg::Lock::Timeout=300"}, args...)
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get %s: %w: %s", strings.Join(args, " "), err, tail(out, 2000))
	}
	return nil
}

// lockFile takes an exclusive flock on path, waiting for it while ctx
// allows, and returns the function that releases it.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tryLockFile takes an exclusive flock on path without waiting. ok is
// false if another process holds it.
func tryLockFile(path string) (unlock func(), ok bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, false, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, true, nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}

func orDiscard(logf func(string, ...any)) func(string, ...any) {
	if logf == nil {
		return func(string, ...any) {}
	}
	return logf
}
