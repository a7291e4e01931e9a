package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/golden"
)

// maxFileBytes bounds a kept file: a larger one is an error, not a
// silently smaller tree.
const maxFileBytes = 256 << 10

// keptPrefixes are, per hierarchy, the files copied: each controller's
// whole interface, so that a reader that starts to use another of its
// files still finds it, but nothing of the controllers the server does not
// read; cgroup.procs where the collector counts processes. The files
// creation times come from are kept everywhere. On hybrid the cgroup2
// mount has the PSI files and the unified-only cpu.stat.
var keptPrefixes = map[string][]string{
	"memory":  {"memory.", "cgroup.procs"},
	"cpu":     {"cpu.", "cgroup.procs"},
	"cpuacct": {"cpuacct.", "cgroup.procs"},
	"pids":    {"pids.", "cgroup.procs"},
	"blkio":   {"blkio."},
	"cpuset":  {"cpuset."},
	"unified": {"cpu.", "memory.", "io.", "cgroup.controllers"},
	"": {"cpu.", "cpuset.", "memory.", "io.", "pids.", "hugetlb.", "misc.",
		"cgroup.procs", "cgroup.controllers", "cgroup.subtree_control", "cgroup.stat"},
}

// skippedCgroupFiles are large or never readable.
var skippedCgroupFiles = map[string]bool{
	"memory.kmem.slabinfo":  true,
	"memory.pressure_level": true,
}

// keepFile says whether a file of a hierarchy ("cpu,cpuacct" combines
// two) goes into the tree.
func keepFile(hierarchyName, file string) bool {
	switch {
	case skippedCgroupFiles[file]:
		return false
	case file == "cgroup.clone_children" || file == "cgroup.events":
		return true
	}
	names := strings.Split(hierarchyName, ",")
	for _, name := range names {
		for _, prefix := range keptPrefixes[name] {
			if strings.HasPrefix(file, prefix) {
				return true
			}
		}
	}
	return false
}

// writeTree copies everything the server reads into out.
func (c *capturer) writeTree(out string) error {
	m := &golden.Manifest{
		Hierarchy:      c.host.layout,
		Kernel:         strings.TrimSpace(readOrEmpty("/proc/sys/kernel/osrelease")),
		NodeName:       "golden-node",
		CgroupDriver:   "cgroupfs",
		RuntimeCgroups: runtimeCgroup,
		ModTimes:       map[string]int64{},
	}
	steps := []func(string, *golden.Manifest) error{
		c.copyCgroups, c.copyProc, copySys, writeEtc, writePodFiles, readRootFs,
	}
	for _, step := range steps {
		if err := step(out, m); err != nil {
			return err
		}
	}
	return golden.WriteManifest(out, m)
}

// copyCgroups copies the root and every created cgroup in each hierarchy,
// and the modification times the collector takes creation times from.
func (c *capturer) copyCgroups(out string, m *golden.Manifest) error {
	names := append([]string{"/"}, c.created...)
	for _, hier := range c.host.hierarchies {
		for _, name := range names {
			src := filepath.Join(hier.dir, c.parent, name)
			if name == "/" {
				src = hier.dir
			}
			rel := filepath.Join("cgroup", hier.name, name)
			if err := copyCgroupFiles(src, filepath.Join(out, rel), hier.name); err != nil {
				return err
			}
			recordModTimes(m, src, rel)
		}
	}
	for link, target := range c.host.links {
		if err := os.Symlink(target, filepath.Join(out, "cgroup", link)); err != nil {
			return err
		}
	}
	return nil
}

// copyCgroupFiles copies the kept, readable regular files of one cgroup
// directory (not its children). A file the kernel refuses to read is left
// out, as the server would not find anything in it either.
func copyCgroupFiles(src, dst, hierarchyName string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || !keepFile(hierarchyName, e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Mode().Perm()&0o444 == 0 {
			continue
		}
		data, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			continue
		}
		if len(data) > maxFileBytes {
			return fmt.Errorf("%s: %d bytes, more than a tree should hold", filepath.Join(src, e.Name()), len(data))
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// recordModTimes keeps the times of the directory and of the files
// cAdvisor's creation time heuristic looks at.
func recordModTimes(m *golden.Manifest, src, rel string) {
	for _, file := range []string{"", "cgroup.clone_children", "cgroup.events"} {
		if info, err := os.Stat(filepath.Join(src, file)); err == nil {
			m.ModTimes[filepath.ToSlash(filepath.Join(rel, file))] = info.ModTime().UnixNano()
		}
	}
}

// readRootFs is statfs of the node's kubelet filesystem, as the server
// would see it.
func readRootFs(_ string, m *golden.Manifest) error {
	path := "/var/lib/kubelet"
	if !isDir(path) {
		path = "/"
	}
	fs, err := collector.DirFsStats(path)
	if err != nil {
		return err
	}
	m.RootFs = golden.RootFs{Capacity: fs.Capacity, Available: fs.Available, Usage: fs.Usage,
		Inodes: fs.Inodes, InodesFree: fs.InodesFree}
	return nil
}

// writeFile writes data at out/rel, creating directories.
func writeFile(out, rel string, data []byte) error {
	path := filepath.Join(out, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o644)
}

// copyFile copies src to out/rel. Unless required, a file that cannot be
// read is left out: sysfs answers EINVAL for a virtual device's speed, and
// the server then reports none either.
func copyFile(src, out, rel string, required bool) error {
	data, err := os.ReadFile(src)
	switch {
	case err == nil:
		return writeFile(out, rel, data)
	case required:
		return fmt.Errorf("read %s: %w", src, err)
	}
	return nil
}

func readOrEmpty(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}
