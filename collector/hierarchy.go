package collector

import (
	"fmt"
	"os"
	"path/filepath"
)

// Hierarchy is the cgroup layout of the node.
type Hierarchy int

const (
	// HierarchyV1 has one mount per v1 controller and no usable cgroup2.
	HierarchyV1 Hierarchy = iota + 1
	// HierarchyV2 is the unified cgroup2 hierarchy mounted at the root.
	HierarchyV2
	// HierarchyHybrid has v1 controllers plus a controller-less cgroup2 at
	// <mount>/unified, where the kernel keeps PSI files.
	HierarchyHybrid
)

func (h Hierarchy) String() string {
	switch h {
	case HierarchyV1:
		return "v1"
	case HierarchyV2:
		return "v2"
	case HierarchyHybrid:
		return "hybrid"
	}
	return fmt.Sprintf("Hierarchy(%d)", int(h))
}

// v1Controllers are the v1 hierarchies the collector reads, in the order
// cgroup.procs is looked up; a controller's position is its hierarchyID.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// hierarchyID names a hierarchy a cgroup can have a directory in: the v1
// controllers in v1Controllers order, then the cgroup2 hierarchy.
type hierarchyID uint8

const (
	hMemory hierarchyID = iota
	hCPU
	hCPUAcct
	hPids
	hUnified
	numHierarchies
)

// hierarchySet is a set of hierarchies: those a cgroup has a directory in.
type hierarchySet uint8

func (s hierarchySet) has(h hierarchyID) bool { return s&(1<<h) != 0 }

func (s *hierarchySet) add(h hierarchyID) { *s |= 1 << h }

// mounts says where the files of each kind live.
type mounts struct {
	hierarchy Hierarchy
	// dirs is the mount of each hierarchy we read, "" where there is none:
	// the v1 controllers (none on v2) and the cgroup2 hierarchy (every file
	// on v2, PSI only on hybrid).
	dirs [numHierarchies]string
	// cpuset is the v1 cpuset mount, read only for the spec's CPU mask.
	cpuset string
	// blkio is the v1 blkio mount, where the I/O files are.
	blkio string
}

// dir is the directory of the cgroup name in hierarchy h.
func (m *mounts) dir(h hierarchyID, name string) cgroupDir {
	return cgroupDir{mount: m.dirs[h], name: name}
}

// tree is one directory hierarchy discovery walks and watches.
type tree struct {
	dir string
	// primary trees define which cgroups exist; the hybrid unified tree
	// only adds PSI to cgroups that exist in a primary tree.
	primary bool
}

// detectMounts inspects the cgroup mount. v2 is recognised by
// cgroup.controllers at the mount root, v1 by controller directories, hybrid
// by a cgroup2 (cgroup.controllers) at <mount>/unified next to them.
func detectMounts(root string) (mounts, error) {
	root = filepath.Clean(root)
	if fileExists(filepath.Join(root, "cgroup.controllers")) {
		m := mounts{hierarchy: HierarchyV2}
		m.dirs[hUnified] = root
		return m, nil
	}
	m := mounts{hierarchy: HierarchyV1}
	found := false
	for h, controller := range v1Controllers {
		dir := filepath.Join(root, controller)
		if isDir(dir) {
			m.dirs[h] = dir
			found = true
		}
	}
	if !found {
		return mounts{}, fmt.Errorf("no cgroup v2 (%s) and none of the v1 controllers %v under %s",
			filepath.Join(root, "cgroup.controllers"), v1Controllers, root)
	}
	if dir := filepath.Join(root, "cpuset"); isDir(dir) {
		m.cpuset = dir
	}
	if dir := filepath.Join(root, "blkio"); isDir(dir) {
		m.blkio = dir
	}
	if unified := filepath.Join(root, "unified"); fileExists(filepath.Join(unified, "cgroup.controllers")) {
		m.hierarchy = HierarchyHybrid
		m.dirs[hUnified] = unified
	}
	return m, nil
}

// trees lists the distinct directories to walk. Co-mounted controllers
// ("cpu,cpuacct" with cpu and cpuacct symlinks) are walked once.
func (m mounts) trees() []tree {
	if m.hierarchy == HierarchyV2 {
		return []tree{{dir: m.dirs[hUnified], primary: true}}
	}
	var out []tree
	seen := map[string]bool{}
	for _, dir := range m.dirs[:hUnified] {
		if dir == "" {
			continue
		}
		real, err := filepath.EvalSymlinks(dir)
		if err != nil {
			real = dir
		}
		if seen[real] {
			continue
		}
		seen[real] = true
		out = append(out, tree{dir: dir, primary: true})
	}
	if m.hierarchy == HierarchyHybrid {
		out = append(out, tree{dir: m.dirs[hUnified]})
	}
	return out
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
