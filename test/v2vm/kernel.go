package v2vm

import (
	"bufio"
	"bytes"
	"context"
	"debug/elf"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// kernelMetaPackage is Debian's package that always depends on the current
// cloud kernel. Asking it (rather than pinning an ABI such as 6.1.0-48)
// keeps working when the mirror drops old kernels.
const kernelMetaPackage = "linux-image-cloud-amd64"

// kernelEnv overrides the kernel package, e.g.
// linux-image-6.1.0-48-cloud-amd64.
const kernelEnv = "KSS_V2VM_KERNEL_PACKAGE"

// requiredKernelConfig is what the tier needs from the kernel: cgroup v2 with
// the controllers and PSI the collector reads, and what containerd, runc and
// the CNI bridge need. =m options are loaded from guestModules.
func requiredKernelConfig() []string {
	return []string{
		"CONFIG_CGROUPS=y", "CONFIG_MEMCG=y", "CONFIG_CFS_BANDWIDTH=y", "CONFIG_BLK_CGROUP=y",
		"CONFIG_CGROUP_PIDS=y", "CONFIG_CPUSETS=y", "CONFIG_PSI=y", "CONFIG_CGROUP_BPF=y",
		"CONFIG_SWAP=y", "CONFIG_DEVTMPFS=y", "CONFIG_TMPFS=y", "CONFIG_EXT4_FS=y",
		"CONFIG_NET_NS=y", "CONFIG_SECCOMP=y", "CONFIG_SERIAL_8250_CONSOLE=y",
		"CONFIG_OVERLAY_FS=m", "CONFIG_BRIDGE=m", "CONFIG_VETH=m", "CONFIG_ZRAM=m",
		"CONFIG_VIRTIO_BLK=m", "CONFIG_VIRTIO_PCI=m", "CONFIG_VIRTIO_NET=m",
	}
}

// guestModules are loaded by the initramfs, each after its dependencies:
// the virtio disks and network card, zram and its default compressor (the
// kernel would request lzo-rle through modprobe, which the VM does not
// have), overlayfs for containerd's snapshotter, the bridge and veth for
// the CNI bridge.
func guestModules() []string {
	return []string{"virtio_pci", "virtio_blk", "virtio_net", "zram", "lzo_rle", "overlay", "bridge", "veth"}
}

// kernel is an unpacked Debian kernel package.
type kernel struct {
	pkg        string
	release    string // uname -r, e.g. 6.1.0-48-cloud-amd64
	vmlinuz    string
	modulesDir string // <root>/lib/modules/<release>
}

// fetchKernel downloads the cloud kernel package with apt-get download into
// cacheDir and unpacks it there with dpkg-deb -x, unless an earlier run did;
// it never installs the package.
func fetchKernel(ctx context.Context, cacheDir string, logf func(string, ...any)) (*kernel, error) {
	pkg := os.Getenv(kernelEnv)
	if pkg == "" {
		var err error
		if pkg, err = currentCloudKernel(ctx, logf); err != nil {
			return nil, err
		}
	}
	root := filepath.Join(cacheDir, pkg)
	if k, err := unpackedKernel(pkg, root); err == nil {
		return k, nil
	}
	debDir := filepath.Join(cacheDir, "debs")
	if err := os.MkdirAll(debDir, 0o755); err != nil {
		return nil, err
	}
	logf("apt-get download %s", pkg)
	if out, err := command(ctx, debDir, "apt-get", "download", pkg).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("apt-get download %s: %w: %s", pkg, err, out)
	}
	debs, err := filepath.Glob(filepath.Join(debDir, pkg+"_*.deb"))
	if err != nil || len(debs) == 0 {
		return nil, fmt.Errorf("apt-get download %s left no .deb in %s", pkg, debDir)
	}
	tmp := root + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	if out, err := command(ctx, "", "dpkg-deb", "-x", debs[len(debs)-1], tmp).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("dpkg-deb -x %s: %w: %s", debs[len(debs)-1], err, out)
	}
	if err := os.Rename(tmp, root); err != nil {
		return nil, err
	}
	return unpackedKernel(pkg, root)
}

// currentCloudKernel asks apt which kernel package the meta package depends
// on, running apt-get update once if apt does not know it.
func currentCloudKernel(ctx context.Context, logf func(string, ...any)) (string, error) {
	pkg, err := aptDependency(ctx, kernelMetaPackage)
	if err == nil {
		return pkg, nil
	}
	logf("%v; running apt-get update", err)
	if out, err := command(ctx, "", "apt-get", "update").CombinedOutput(); err != nil {
		return "", fmt.Errorf("apt-get update: %w: %s", err, out)
	}
	return aptDependency(ctx, kernelMetaPackage)
}

func aptDependency(ctx context.Context, meta string) (string, error) {
	out, err := command(ctx, "", "apt-cache", "depends", meta).Output()
	if err != nil {
		return "", fmt.Errorf("apt-cache depends %s: %w", meta, err)
	}
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		if dep, ok := strings.CutPrefix(strings.TrimSpace(scanner.Text()), "Depends: "); ok && strings.HasPrefix(dep, "linux-image-") {
			return dep, nil
		}
	}
	return "", fmt.Errorf("apt-cache depends %s names no linux-image package", meta)
}

// unpackedKernel finds vmlinuz and the modules of an unpacked package and
// checks its config.
func unpackedKernel(pkg, root string) (*kernel, error) {
	vmlinuz, err := filepath.Glob(filepath.Join(root, "boot", "vmlinuz-*"))
	if err != nil || len(vmlinuz) != 1 {
		return nil, fmt.Errorf("no single vmlinuz in %s/boot", root)
	}
	release := strings.TrimPrefix(filepath.Base(vmlinuz[0]), "vmlinuz-")
	k := &kernel{
		pkg:        pkg,
		release:    release,
		vmlinuz:    vmlinuz[0],
		modulesDir: filepath.Join(root, "lib", "modules", release),
	}
	config, err := os.ReadFile(filepath.Join(root, "boot", "config-"+release))
	if err != nil {
		return nil, err
	}
	if missing := missingConfig(string(config), requiredKernelConfig()); len(missing) > 0 {
		return nil, fmt.Errorf("kernel %s lacks %s", pkg, strings.Join(missing, ", "))
	}
	return k, nil
}

// missingConfig returns the wanted "CONFIG_X=v" lines the config lacks.
func missingConfig(config string, want []string) []string {
	have := map[string]bool{}
	for _, line := range strings.Split(config, "\n") {
		have[strings.TrimSpace(line)] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// moduleLoadOrder returns the module files (relative to modulesDir) that
// loading names needs, each after its dependencies. The package has no
// modules.dep (depmod runs at install), so dependencies come from the
// "depends=" entry of each module's .modinfo section.
func moduleLoadOrder(modulesDir string, names []string) ([]string, error) {
	index := map[string]string{} // module name -> relative path
	err := filepath.WalkDir(modulesDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".ko") {
			rel, _ := filepath.Rel(modulesDir, path)
			index[moduleName(filepath.Base(path))] = rel
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(name string) error
	visit = func(name string) error {
		name = moduleName(name)
		switch state[name] {
		case 1:
			return fmt.Errorf("module dependency cycle at %s", name)
		case 2:
			return nil
		}
		rel, ok := index[name]
		if !ok {
			return fmt.Errorf("module %s not in %s", name, modulesDir)
		}
		state[name] = 1
		deps, err := moduleDepends(filepath.Join(modulesDir, rel))
		if err != nil {
			return err
		}
		for _, dep := range deps {
			if err := visit(dep); err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
		}
		state[name] = 2
		order = append(order, rel)
		return nil
	}
	for _, name := range names {
		if err := visit(name); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// moduleName normalises a module file or dependency name: the kernel treats
// '-' and '_' alike.
func moduleName(s string) string {
	return strings.ReplaceAll(strings.TrimSuffix(s, ".ko"), "-", "_")
}

// moduleDepends reads "depends=a,b" from a module's .modinfo section.
func moduleDepends(path string) ([]string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	section := f.Section(".modinfo")
	if section == nil {
		return nil, fmt.Errorf("%s has no .modinfo", path)
	}
	data, err := section.Data()
	if err != nil {
		return nil, fmt.Errorf("read .modinfo of %s: %w", path, err)
	}
	for _, entry := range bytes.Split(data, []byte{0}) {
		if deps, ok := bytes.CutPrefix(entry, []byte("depends=")); ok {
			if len(deps) == 0 {
				return nil, nil
			}
			return strings.Split(string(deps), ","), nil
		}
	}
	return nil, nil
}

// command is exec.CommandContext in dir ("" for the current one) with
// DEBIAN_FRONTEND set for apt.
func command(ctx context.Context, dir, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return cmd
}
