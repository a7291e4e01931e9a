package analyzer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Usage is what a directory tree occupies on disk.
type Usage struct {
	// Bytes is the sum of st_blocks*512: allocated space, not file sizes.
	Bytes uint64
	// Inodes counts the entries, the top directory included.
	Inodes uint64
}

// inodeKey identifies a file across hard links.
type inodeKey struct {
	dev uint64
	ino uint64
}

// DiskUsage walks root like the kubelet's fs.DiskUsage: it stays on root's
// device, counts a hard-linked inode once, and skips entries that vanish
// during the walk.
func DiskUsage(root string) (Usage, error) {
	var top unix.Stat_t
	if err := unix.Lstat(root, &top); err != nil {
		return Usage{}, fmt.Errorf("stat %s: %w", root, err)
	}
	seen := make(map[inodeKey]struct{})
	var usage Usage
	err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, walkErr error) error {
		if walkErr != nil {
			if errors.Is(walkErr, fs.ErrNotExist) {
				return nil
			}
			return walkErr
		}
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil
			}
			return fmt.Errorf("stat %s: %w", path, err)
		}
		if st.Dev != top.Dev {
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				return filepath.SkipDir
			}
			return nil
		}
		if st.Nlink > 1 {
			key := inodeKey{dev: st.Dev, ino: st.Ino}
			if _, dup := seen[key]; dup {
				return nil
			}
			seen[key] = struct{}{}
		}
		usage.Bytes += uint64(st.Blocks) * 512
		usage.Inodes++
		return nil
	})
	if err != nil {
		return Usage{}, fmt.Errorf("walk %s: %w", root, err)
	}
	return usage, nil
}

// FilesUsage sums the regular files directly in dir, the way the kubelet
// measures a container's log directory: rotated and previous-restart logs
// count, subdirectories do not. A missing directory is an error.
func FilesUsage(dir string) (Usage, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Usage{}, fmt.Errorf("list %s: %w", dir, err)
	}
	var usage Usage
	for _, entry := range entries {
		if !entry.Type().IsRegular() {
			continue
		}
		var st unix.Stat_t
		path := filepath.Join(dir, entry.Name())
		if err := unix.Lstat(path, &st); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return Usage{}, fmt.Errorf("stat %s: %w", path, err)
		}
		usage.Bytes += uint64(st.Blocks) * 512
		usage.Inodes++
	}
	return usage, nil
}
