package v2vm

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// bootConfig is one boot of the VM.
type bootConfig struct {
	artifacts *artifacts
	layout    string
	// runDir receives out.img, console.log and the extracted results.
	runDir  string
	timeout time.Duration
	// debug streams the guest's test output to the console as well.
	debug bool
}

const (
	guestMemoryMiB = 2048
	// outImageBytes bounds the results archive (logs and captured trees).
	outImageBytes = 256 << 20
)

// qemuArgs boots the cloud kernel under TCG (the hosts have no usable KVM)
// with the results disk as vda and the root image as vdb. snapshot=on keeps
// the root image unchanged, so both layouts boot the same image. tsc=reliable
// keeps cpu.stat from losing ticks under emulation (see the recipe in
// DESIGN.md's references). The network card (eth0, the node's interface in
// the summary, as on a real node) is plugged into a hub with no other port:
// no traffic leaves the VM.
func qemuArgs(cfg bootConfig, outImage, console string) []string {
	a := cfg.artifacts
	return []string{
		"-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "2", "-m", strconv.Itoa(guestMemoryMiB),
		"-kernel", a.kernel.vmlinuz, "-initrd", a.initramfs,
		"-append", kernelCommandLine(cfg),
		"-drive", "file=" + outImage + ",format=raw,if=virtio",
		"-drive", "file=" + a.rootImage + ",format=raw,if=virtio,snapshot=on",
		"-netdev", "hubport,id=nic0,hubid=0", "-device", "virtio-net-pci,netdev=nic0,mac=52:54:00:6b:73:73",
		"-nodefaults", "-no-user-config", "-display", "none", "-monitor", "none",
		"-serial", "file:" + console, "-no-reboot",
	}
}

func kernelCommandLine(cfg bootConfig) string {
	line := "console=ttyS0 quiet panic=-1 tsc=reliable v2vm.layout=" + cfg.layout
	if cfg.debug {
		line += " v2vm.console=1"
	}
	return line
}

// boot runs the VM until it powers off, and extracts the results archive
// it wrote into runDir/out. It fails when qemu fails, the deadline passes or
// the VM wrote no archive; the error carries the console's tail.
func boot(ctx context.Context, cfg bootConfig) error {
	if err := os.RemoveAll(cfg.runDir); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.runDir, 0o755); err != nil {
		return err
	}
	outImage := filepath.Join(cfg.runDir, "out.img")
	console := filepath.Join(cfg.runDir, "console.log")
	if err := createSparse(outImage, outImageBytes); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "qemu-system-x86_64", qemuArgs(cfg, outImage, console)...)
	cmd.WaitDelay = 10 * time.Second
	out, err := runDyingWithUs(cmd)
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("the VM did not power off within %v; console:\n%s", cfg.timeout, fileTail(console, 6000))
	case err != nil:
		return fmt.Errorf("qemu: %w: %s; console:\n%s", err, out, fileTail(console, 6000))
	}
	if err := extractTar(outImage, filepath.Join(cfg.runDir, "out")); err != nil {
		return fmt.Errorf("the VM wrote no results (%w); console:\n%s", err, fileTail(console, 6000))
	}
	return os.Remove(outImage)
}

// runDyingWithUs runs cmd like CombinedOutput, killed if this process
// dies first (a go test -timeout panic must not leave qemu running).
// Pdeathsig fires when the forking thread ends, so the fork happens on a
// thread locked until cmd is waited for.
func runDyingWithUs(cmd *exec.Cmd) ([]byte, error) {
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		done <- cmd.Run()
	}()
	err := <-done
	return out.Bytes(), err
}

func createSparse(path string, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// extractTar unpacks the archive at the start of a raw disk image. The
// guest wrote directories and plain files only.
func extractTar(image, dir string) error {
	f, err := os.Open(image)
	if err != nil {
		return err
	}
	defer f.Close()
	r := tar.NewReader(f)
	n := 0
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read results archive: %w", err)
		}
		name := filepath.Clean(hdr.Name)
		if strings.HasPrefix(name, "..") || filepath.IsAbs(name) {
			return fmt.Errorf("results archive entry %q escapes", hdr.Name)
		}
		target := filepath.Join(dir, name)
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			data, err := io.ReadAll(r)
			if err != nil {
				return err
			}
			if err := os.WriteFile(target, data, 0o644); err != nil {
				return err
			}
			n++
		}
	}
	if n == 0 {
		return errors.New("empty results archive")
	}
	return nil
}

// fileTail is the last n bytes of a file, or why it cannot be read.
func fileTail(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	offset := max(0, info.Size()-n)
	data := make([]byte, info.Size()-offset)
	if _, err := f.ReadAt(data, offset); err != nil && !errors.Is(err, io.EOF) {
		return err.Error()
	}
	return string(data)
}
