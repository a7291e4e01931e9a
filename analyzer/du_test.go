package analyzer

import (
	"os"
	"path/filepath"
	"testing"
)

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, size), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDiskUsageCountsHardLinksOnce(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "a"), 64<<10)
	writeFile(t, filepath.Join(root, "sub", "b"), 8<<10)
	if err := os.Link(filepath.Join(root, "a"), filepath.Join(root, "sub", "a-link")); err != nil {
		t.Fatal(err)
	}
	usage, err := DiskUsage(root)
	if err != nil {
		t.Fatal(err)
	}
	// root, a, sub, sub/b; the link is the same inode as a.
	if usage.Inodes != 4 {
		t.Errorf("inodes = %d, want 4", usage.Inodes)
	}
	if usage.Bytes < 72<<10 || usage.Bytes > 72<<10+64<<10 {
		t.Errorf("bytes = %d, want a little over 72 KiB (the hard link counted once)", usage.Bytes)
	}
}

func TestDiskUsageMissingRoot(t *testing.T) {
	if _, err := DiskUsage(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("DiskUsage of a missing directory succeeded")
	}
}

func TestFilesUsageSkipsSubdirectories(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "0.log"), 16<<10)
	writeFile(t, filepath.Join(dir, "0.log.20261122-1.gz"), 4<<10)
	writeFile(t, filepath.Join(dir, "nested", "ignored.log"), 1<<20)
	usage, err := FilesUsage(dir)
	if err != nil {
		t.Fatal(err)
	}
	if usage.Inodes != 2 {
		t.Errorf("inodes = %d, want the 2 regular files", usage.Inodes)
	}
	if usage.Bytes < 20<<10 || usage.Bytes >= 1<<20 {
		t.Errorf("bytes = %d, want about 20 KiB without the nested file", usage.Bytes)
	}
	if _, err := FilesUsage(filepath.Join(dir, "missing")); err == nil {
		t.Error("FilesUsage of a missing directory succeeded; the kubelet reports logs as nil then")
	}
}
