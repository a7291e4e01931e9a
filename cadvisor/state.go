package cadvisor

import (
	"path/filepath"

	"github.com/opencontainers/cgroups"
)

// statsManager is the part of the opencontainers/cgroups managers we use.
type statsManager interface {
	Stats(opts *cgroups.StatsOptions) (*cgroups.Stats, error)
	OOMKillCount() (uint64, error)
}

// entryState is how to read one cgroup; immutable once stored.
type entryState struct {
	paths   cgroupPaths
	manager statsManager
	options cgroups.StatsOptions
	// tolerateStatsErrors is set for the cgroup2 root, where some files do
	// not exist and the library reports that as an error.
	tolerateStatsErrors bool
	hasPids             bool
	procsFile           string
	// cpuPressure and memoryPressure are read by us on hybrid (the library
	// reads them on v2); ioPressure on both. "" when absent.
	cpuPressure, memoryPressure, ioPressure string
	spec                                    cgroupSpec
}

// inScope reports whether name is tracked: "/" or inside a tracked tree.
func (c *Collector) inScope(name string) bool {
	if name == "/" {
		return true
	}
	for _, root := range c.tracked {
		if isAncestorOrSelf(root, name) {
			return true
		}
	}
	return false
}

// resolvePaths finds the cgroup's directories; exists is false when it is
// in none of the primary hierarchies.
func (c *Collector) resolvePaths(name string) (paths cgroupPaths, exists bool) {
	if c.mounts.hierarchy == HierarchyV2 {
		dir := filepath.Join(c.mounts.unified, name)
		if !isDir(dir) {
			return cgroupPaths{}, false
		}
		return cgroupPaths{unified: dir}, true
	}
	paths.v1 = map[string]string{}
	for controller, mount := range c.mounts.v1 {
		if dir := filepath.Join(mount, name); isDir(dir) {
			paths.v1[controller] = dir
		}
	}
	if len(paths.v1) == 0 {
		return cgroupPaths{}, false
	}
	if c.mounts.hierarchy == HierarchyHybrid {
		if dir := filepath.Join(c.mounts.unified, name); isDir(dir) {
			paths.unified = dir
		}
	}
	return paths, true
}

// refresh brings the store in line with the filesystem for one cgroup:
// add it, drop it, or rebuild its readers when its directories changed.
// respec re-reads the spec of an unchanged cgroup. Called with the
// discovery lock held, so refreshes never race each other.
func (c *Collector) refresh(name string, respec bool) {
	if !c.inScope(name) {
		return
	}
	e := c.store.get(name)
	paths, exists := c.resolvePaths(name)
	if !exists {
		if e != nil {
			c.logger.V(4).Info("Cgroup removed", "cgroup", name)
			c.store.remove(e)
		}
		return
	}
	if e == nil {
		e = &entry{name: name, pod: podCgroupOf(name), ring: newSampleRing(c.ringSize)}
		e.state.Store(c.newState(name, paths))
		c.store.add(e)
		c.logger.V(4).Info("Cgroup added", "cgroup", name)
		return
	}
	old := e.state.Load()
	if !old.paths.equal(paths) {
		e.gen.Add(1)
		e.state.Store(c.newState(name, paths))
		return
	}
	if respec {
		updated := *old
		updated.spec = c.readSpec(name, paths)
		e.state.Store(&updated)
	}
}

func (c *Collector) readSpec(name string, paths cgroupPaths) cgroupSpec {
	spec := specFromInputs(c.readSpecInputs(name, paths), c.machine.BootTime, c.machine.NumCores)
	switch {
	case name == "/":
		spec.HasNetwork = len(c.machine.NetworkDevices) > 0
	case podCgroupOf(name) == name:
		spec.HasNetwork = true
	}
	return spec
}

// newState builds the reader of one cgroup. Managers only record paths;
// nothing is created or written (no Apply, no Set).
func (c *Collector) newState(name string, paths cgroupPaths) *entryState {
	st := &entryState{paths: paths, spec: c.readSpec(name, paths)}
	if c.mounts.hierarchy == HierarchyV2 {
		dir := paths.unified
		st.manager = newV2Manager(dir)
		st.options.Controllers = cgroups.CPU
		if fileExists(filepath.Join(dir, "memory.stat")) {
			st.options.Controllers |= cgroups.Memory
		}
		if fileExists(filepath.Join(dir, "pids.current")) {
			st.options.Controllers |= cgroups.Pids
			st.hasPids = true
		}
		st.tolerateStatsErrors = name == "/"
		st.procsFile = filepath.Join(dir, "cgroup.procs")
		st.ioPressure = existingFile(dir, "io.pressure")
		return st
	}
	managerPaths := map[string]string{}
	for controller, dir := range paths.v1 {
		// The v1 root has no pids.current (cAdvisor drops it too).
		if controller == "pids" && name == "/" {
			continue
		}
		managerPaths[controller] = dir
	}
	for controller := range managerPaths {
		switch controller {
		case "cpu", "cpuacct":
			st.options.Controllers |= cgroups.CPU
		case "memory":
			st.options.Controllers |= cgroups.Memory
		case "pids":
			st.options.Controllers |= cgroups.Pids
			st.hasPids = true
		}
	}
	st.manager = newV1Manager(managerPaths)
	for _, controller := range v1Controllers {
		if dir, ok := paths.v1[controller]; ok {
			st.procsFile = filepath.Join(dir, "cgroup.procs")
			break
		}
	}
	if paths.unified != "" {
		st.cpuPressure = existingFile(paths.unified, "cpu.pressure")
		st.memoryPressure = existingFile(paths.unified, "memory.pressure")
		st.ioPressure = existingFile(paths.unified, "io.pressure")
	}
	return st
}

func existingFile(dir, file string) string {
	path := filepath.Join(dir, file)
	if !fileExists(path) {
		return ""
	}
	return path
}
