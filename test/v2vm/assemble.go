package v2vm

import (
	"context"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// assets are the guest's scripts and systemd units.
//
//go:embed initramfs-init.sh rootfs-init.sh guest.sh systemd/*
var assets embed.FS

// guestCommands are the programs of this machine's Debian packages the guest
// runs (containerd, runc, iproute2, systemd), found in PATH.
func guestCommands() []string {
	return []string{"containerd", "containerd-shim-runc-v2", "ctr", "runc", "ip", "systemctl"}
}

// guestFiles are the other files of this machine's packages the guest needs:
// the CNI plugins the e2e framework configures, and systemd itself.
func guestFiles() []string {
	return []string{"/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback",
		"/usr/lib/systemd/systemd", "/etc/os-release"}
}

// goBinary is a program of this module built statically for the guest,
// which has no Go toolchain.
type goBinary struct {
	name string
	pkg  string
	test bool // go test -c
	// data are files and directories of the module the tests read, by
	// paths relative to their package directory: they are copied to the
	// same place under guestSourceDir.
	data []string
}

func goBinaries() []goBinary {
	return []goBinary{
		{name: "kubelet-stats-server", pkg: "./cmd/kubelet-stats-server"},
		{name: "pause", pkg: "./test/e2e/images/pause"},
		{name: "work", pkg: "./test/e2e/images/work"},
		{name: "guest.test", pkg: "./test/v2vm/guest", test: true},
		{name: "pods.test", pkg: "./test/e2e/pods", test: true, data: []string{"server/testdata/kubelet-v1.36.3"}},
		{name: "legacy.test", pkg: "./test/e2e/legacy", test: true},
	}
}

// goBinaryNamed returns the goBinaries entry called name.
func goBinaryNamed(name string) goBinary {
	for _, b := range goBinaries() {
		if b.name == name {
			return b
		}
	}
	panic("no Go binary " + name)
}

const (
	// guestBinDir is where the guest finds the Go binaries.
	guestBinDir = "/v2vm/bin"
	// guestSourceDir mirrors the module's directories in the guest: each
	// test binary runs in its package's directory there, and finds the
	// data it reads by relative paths.
	guestSourceDir = "/v2vm/src"
)

// machineID is the guest's /etc/machine-id, fixed so that captured trees do
// not change from run to run.
const machineID = "6b7373763276766d0000000000000001"

// artifacts are what one boot needs.
type artifacts struct {
	kernel    *kernel
	initramfs string
	rootImage string
}

// buildGoBinaries compiles goBinaries into dir, statically and stripped.
func buildGoBinaries(ctx context.Context, moduleRoot, dir string) error {
	for _, b := range goBinaries() {
		args := []string{"build"}
		if b.test {
			args = []string{"test", "-c"}
		}
		args = append(args, "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(dir, b.name), b.pkg)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = moduleRoot
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// buildInitramfs writes the initramfs: busybox, /init and the guest
// modules in load order.
func buildInitramfs(k *kernel, busyboxPath, out string) error {
	order, err := moduleLoadOrder(k.modulesDir, guestModules())
	if err != nil {
		return err
	}
	initScript, err := assets.ReadFile("initramfs-init.sh")
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	defer f.Close()
	w := newCPIOWriter(f)
	w.dir("bin")
	w.hostFile("bin/busybox", busyboxPath)
	w.file("init", 0o755, initScript)
	w.dir("modules")
	var names []string
	for _, rel := range order {
		name := filepath.Base(rel)
		names = append(names, name)
		w.hostFile("modules/"+name, filepath.Join(k.modulesDir, rel))
	}
	w.file("modules/order", 0o644, []byte(strings.Join(names, "\n")+"\n"))
	if err := w.close(); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return f.Close()
}

// stageRoot fills the root image's tree: this machine's containerd, runc,
// CNI plugins, iproute2 and systemd with their libraries, busybox, the Go
// binaries, the scripts and units, and the plan.
func stageRoot(ctx context.Context, s *stage, moduleRoot, busyboxPath, binDir, plan string) error {
	if err := s.busybox(ctx, busyboxPath); err != nil {
		return err
	}
	for _, name := range guestCommands() {
		path, err := exec.LookPath(name)
		if err != nil {
			return fmt.Errorf("%w (make deps-v2 installs it)", err)
		}
		if err := s.program(ctx, path); err != nil {
			return err
		}
	}
	for _, path := range guestFiles() {
		if err := s.program(ctx, path); err != nil {
			return fmt.Errorf("%w (make deps-v2 installs it)", err)
		}
	}
	for _, b := range goBinaries() {
		if err := s.copyIn(filepath.Join(binDir, b.name), filepath.Join(guestBinDir, b.name)); err != nil {
			return err
		}
		if err := os.MkdirAll(s.path(filepath.Join(guestSourceDir, b.pkg)), 0o755); err != nil {
			return err
		}
		for _, d := range b.data {
			if err := s.copyTree(filepath.Join(moduleRoot, d), filepath.Join(guestSourceDir, d)); err != nil {
				return err
			}
		}
	}
	files := []struct {
		asset, guest string
		perm         os.FileMode
	}{
		{"rootfs-init.sh", "/usr/sbin/v2vm-init", 0o755},
		{"guest.sh", "/v2vm/guest.sh", 0o755},
		{"systemd/v2vm.service", "/etc/systemd/system/v2vm.service", 0o644},
		{"systemd/default.target", "/etc/systemd/system/default.target", 0o644},
		{"systemd/system.conf", "/etc/systemd/system.conf", 0o644},
	}
	for _, f := range files {
		data, err := assets.ReadFile(f.asset)
		if err != nil {
			return err
		}
		if err := s.writeFile(f.guest, data, f.perm); err != nil {
			return err
		}
	}
	etc := map[string]string{
		"/etc/passwd":     "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/group":      "root:x:0:\n",
		"/etc/hosts":      "127.0.0.1 localhost v2vm\n::1 localhost\n",
		"/etc/machine-id": machineID + "\n",
		// containerd copies it into every sandbox; the VM has no DNS.
		"/etc/resolv.conf": "",
		"/v2vm/plan":       plan,
	}
	for path, content := range etc {
		if err := s.writeFile(path, []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// prepare builds everything a boot needs under workDir, with the kernel
// cached in cacheDir, and reports how long each step took.
func prepare(ctx context.Context, moduleRoot, workDir, cacheDir, plan string, logf func(string, ...any)) (*artifacts, error) {
	busyboxPath, err := exec.LookPath("busybox")
	if err != nil {
		return nil, fmt.Errorf("%w (make deps-v2 installs busybox-static)", err)
	}
	if !isStaticBusybox(ctx, busyboxPath) {
		return nil, fmt.Errorf("%s is not static (make deps-v2 installs busybox-static)", busyboxPath)
	}
	start := time.Now()
	k, err := fetchKernel(ctx, cacheDir, logf)
	if err != nil {
		return nil, err
	}
	logf("kernel %s (%s) ready in %v", k.release, k.pkg, time.Since(start).Round(time.Millisecond))

	start = time.Now()
	binDir := filepath.Join(workDir, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return nil, err
	}
	if err := buildGoBinaries(ctx, moduleRoot, binDir); err != nil {
		return nil, err
	}
	logf("Go binaries built in %v", time.Since(start).Round(time.Millisecond))

	start = time.Now()
	a := &artifacts{kernel: k, initramfs: filepath.Join(workDir, "initramfs.cpio"), rootImage: filepath.Join(workDir, "root.img")}
	if err := buildInitramfs(k, busyboxPath, a.initramfs); err != nil {
		return nil, err
	}
	s, err := newStage(filepath.Join(workDir, "root"))
	if err != nil {
		return nil, err
	}
	if err := stageRoot(ctx, s, moduleRoot, busyboxPath, binDir, plan); err != nil {
		return nil, err
	}
	if err := s.image(ctx, a.rootImage); err != nil {
		return nil, err
	}
	if err := os.RemoveAll(s.dir); err != nil {
		return nil, err
	}
	logf("initramfs and root image built in %v", time.Since(start).Round(time.Millisecond))
	return a, nil
}

// isStaticBusybox tells busybox-static from Debian's dynamic busybox, which
// could not run in the initramfs without its libraries.
func isStaticBusybox(ctx context.Context, path string) bool {
	out, err := command(ctx, "", "ldd", path).CombinedOutput()
	return err != nil && strings.Contains(string(out), "not a dynamic executable")
}
