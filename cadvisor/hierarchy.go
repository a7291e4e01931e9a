package cadvisor

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
// cgroup.procs is looked up.
var v1Controllers = []string{"memory", "cpu", "cpuacct", "pids"}

// mounts says where the files of each kind live.
type mounts struct {
	hierarchy Hierarchy
	// v1 maps each v1 controller we read to its mount; empty on v2.
	v1 map[string]string
	// cpuset is the v1 cpuset mount, read only for the spec's CPU mask.
	cpuset string
	// unified is the cgroup2 mount: every file on v2, PSI only on hybrid.
	unified string
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
	if fileExists(filepath.Join(root, "cgroup.controllers")) {
		return mounts{hierarchy: HierarchyV2, unified: root}, nil
	}
	m := mounts{hierarchy: HierarchyV1, v1: map[string]string{}}
	for _, controller := range v1Controllers {
		dir := filepath.Join(root, controller)
		if isDir(dir) {
			m.v1[controller] = dir
		}
	}
	if len(m.v1) == 0 {
		return mounts{}, fmt.Errorf("no cgroup v2 (%s) and none of the v1 controllers %v under %s",
			filepath.Join(root, "cgroup.controllers"), v1Controllers, root)
	}
	if dir := filepath.Join(root, "cpuset"); isDir(dir) {
		m.cpuset = dir
	}
	if unified := filepath.Join(root, "unified"); fileExists(filepath.Join(unified, "cgroup.controllers")) {
		m.hierarchy = HierarchyHybrid
		m.unified = unified
	}
	return m, nil
}

// trees lists the distinct directories to walk. Co-mounted controllers
// ("cpu,cpuacct" with cpu and cpuacct symlinks) are walked once.
func (m mounts) trees() []tree {
	if m.hierarchy == HierarchyV2 {
		return []tree{{dir: m.unified, primary: true}}
	}
	var out []tree
	seen := map[string]bool{}
	for _, controller := range v1Controllers {
		dir, ok := m.v1[controller]
		if !ok {
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
		out = append(out, tree{dir: m.unified})
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
