package v2vm

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// stage is the VM's root filesystem being assembled in a host directory,
// later turned into an ext4 image. Its /usr is merged like Debian's
// (bin, sbin, lib and lib64 are links into usr), so host paths of either
// spelling land in one place.
type stage struct {
	dir string
}

// newStage empties dir and lays out the skeleton.
func newStage(dir string) (*stage, error) {
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	s := &stage{dir: dir}
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "proc", "sys", "dev", "run", "tmp",
		"var/log", "var/lib", "var/tmp", "root", "mnt", "out", "etc/systemd/system", "v2vm/bin"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	for _, l := range []string{"bin", "sbin", "lib", "lib64"} {
		if err := os.Symlink("usr/"+l, filepath.Join(dir, l)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// path is where an absolute guest path lives on the host.
func (s *stage) path(guestPath string) string { return filepath.Join(s.dir, guestPath) }

func (s *stage) writeFile(guestPath string, data []byte, perm os.FileMode) error {
	p := s.path(guestPath)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.WriteFile(p, data, perm)
}

// symlink creates guestPath -> target unless something exists there.
func (s *stage) symlink(guestPath, target string) error {
	p := s.path(guestPath)
	if _, err := os.Lstat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	return os.Symlink(target, p)
}

// hostFile copies a file of this machine to the same path in the guest. A
// symlinked path gets its real file at the real path plus a link.
func (s *stage) hostFile(path string) error {
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return err
	}
	if err := s.copyIn(real, real); err != nil {
		return err
	}
	if real != path {
		return s.symlink(path, real)
	}
	return nil
}

// copyIn puts host file src at guestPath: a hard link when the host allows
// it (the stage is thrown away after mkfs), else a copy.
func (s *stage) copyIn(src, guestPath string) error {
	dst := s.path(guestPath)
	if _, err := os.Lstat(dst); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a directory of this machine (or a file) to guestPath.
func (s *stage) copyTree(src, guestPath string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(s.path(filepath.Join(guestPath, rel)), 0o755)
		}
		return s.copyIn(p, filepath.Join(guestPath, rel))
	})
}

// lddPath matches the library paths of ldd's output: "libc.so.6 =>
// /lib/x86_64-linux-gnu/libc.so.6 (0x...)" and "/lib64/ld-linux-x86-64.so.2
// (0x...)".
var lddPath = regexp.MustCompile(`(?m)^\s*(?:\S+ => )?(/\S+) \(0x`)

// program copies an executable of this machine and every shared library
// ldd says it loads.
func (s *stage) program(ctx context.Context, path string) error {
	if err := s.hostFile(path); err != nil {
		return err
	}
	out, err := command(ctx, "", "ldd", path).CombinedOutput()
	if err != nil {
		if bytes.Contains(out, []byte("not a dynamic executable")) {
			return nil // static: it needs nothing more
		}
		return fmt.Errorf("ldd %s: %w: %s", path, err, out)
	}
	for _, m := range lddPath.FindAllSubmatch(out, -1) {
		if err := s.hostFile(string(m[1])); err != nil {
			return fmt.Errorf("library of %s: %w", path, err)
		}
	}
	return nil
}

// busybox installs a static busybox and links each of its applets that has
// no real program in the stage.
func (s *stage) busybox(ctx context.Context, path string) error {
	if err := s.copyIn(path, "/usr/bin/busybox"); err != nil {
		return err
	}
	out, err := command(ctx, "", path, "--list-full").Output()
	if err != nil {
		return fmt.Errorf("%s --list-full: %w", path, err)
	}
	scanner := bufio.NewScanner(bytes.NewReader(out))
	for scanner.Scan() {
		applet := "/" + strings.TrimSpace(scanner.Text())
		if applet == "/" || strings.HasSuffix(applet, "/busybox") {
			continue
		}
		if err := s.symlink(applet, "/usr/bin/busybox"); err != nil {
			return err
		}
	}
	return scanner.Err()
}

// size is the bytes of regular files in the stage.
func (s *stage) size() (int64, error) {
	var total int64
	err := filepath.WalkDir(s.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			total += info.Size()
		}
		return nil
	})
	return total, err
}

// image writes the stage as an ext4 image with room to spare: the guest
// writes logs and pod directories to it (qemu's snapshot=on discards them).
func (s *stage) image(ctx context.Context, image string) error {
	used, err := s.size()
	if err != nil {
		return err
	}
	sizeMiB := used*13/10>>20 + 512
	if err := os.Remove(image); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	out, err := command(ctx, "", "mkfs.ext4", "-q", "-F", "-L", "v2vm", "-E", "root_owner=0:0",
		"-d", s.dir, image, fmt.Sprintf("%dM", sizeMiB)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("mkfs.ext4 -d %s: %w: %s", s.dir, err, out)
	}
	return nil
}
