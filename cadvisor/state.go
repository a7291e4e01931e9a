package cadvisor

import (
	"os"
	"path/filepath"
)

// entryState is how to read one cgroup; immutable once stored.
type entryState struct {
	paths  cgroupPaths
	reader controllerReader
	// procsFile is the cgroup.procs counted last: a cgroup whose files all
	// read but which is gone by then is dropped (readSample).
	procsFile string
	// pressureDir holds the PSI files (the cgroup's directory on v2, its
	// cgroup2 directory on hybrid, "" without one); pressure says which
	// of pressureFiles exist there.
	pressureDir string
	pressure    [numPressureFiles]bool
	spec        cgroupSpec
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
			c.notifyRemoved(name)
		}
		return
	}
	if e == nil {
		e = &entry{name: name, pod: podCgroupOf(name), ring: newSampleRing(c.ringSize)}
		e.state.Store(c.newState(name, paths))
		c.store.add(e)
		c.notifyAdded(e)
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
		updated.spec = c.readSpec(name, paths, &old.spec)
		e.state.Store(&updated)
	}
}

// readSpec reads the cgroup's spec. prev, the spec read before for the same
// directories, supplies what cannot change while they exist: the creation
// time and which I/O files there are (a rescan re-reads only the limits).
func (c *Collector) readSpec(name string, paths cgroupPaths, prev *cgroupSpec) cgroupSpec {
	spec := specFromInputs(c.readSpecInputs(name, paths, prev), c.machine.BootTime, c.machine.NumCores)
	switch {
	case name == "/":
		spec.HasNetwork = len(c.machine.NetworkDevices) > 0
	case podCgroupOf(name) == name:
		spec.HasNetwork = true
	}
	return spec
}

// newState builds the reader of one cgroup. It only records paths and
// which optional files exist; nothing is created or written.
func (c *Collector) newState(name string, paths cgroupPaths) *entryState {
	st := &entryState{paths: paths, spec: c.readSpec(name, paths, nil)}
	if c.mounts.hierarchy == HierarchyV2 {
		dir := paths.unified
		r := &v2Reader{
			dir:    dir,
			root:   name == "/",
			memory: fileExists(filepath.Join(dir, "memory.stat")),
			peak:   fileExists(filepath.Join(dir, "memory.peak")),
			swap:   fileExists(filepath.Join(dir, "memory.swap.current")),
			pids:   fileExists(filepath.Join(dir, "pids.current")),
		}
		st.reader = r
		st.procsFile = filepath.Join(dir, "cgroup.procs")
		st.findPressure(dir)
		return st
	}
	r := &v1Reader{
		memory:  paths.v1["memory"],
		cpu:     paths.v1["cpu"],
		cpuacct: paths.v1["cpuacct"],
		root:    name == "/",
	}
	// The v1 root has no pids.current (cAdvisor drops it too).
	if name != "/" {
		r.pids = paths.v1["pids"]
	}
	if r.memory != "" {
		r.useHierarchy = readUseHierarchy(r.memory)
		r.memsw = fileExists(filepath.Join(r.memory, "memory.memsw.limit_in_bytes"))
	}
	st.reader = r
	for _, controller := range v1Controllers {
		if dir, ok := paths.v1[controller]; ok {
			st.procsFile = filepath.Join(dir, "cgroup.procs")
			break
		}
	}
	if paths.unified != "" {
		st.findPressure(paths.unified)
	}
	return st
}

// pressureFiles are the PSI files, in the order of sampleBlock.psi.
var pressureFiles = [...]string{"cpu.pressure", "memory.pressure", "io.pressure"}

const numPressureFiles = len(pressureFiles)

// findPressure records which pressure files dir has.
func (st *entryState) findPressure(dir string) {
	st.pressureDir = dir
	for i, file := range pressureFiles {
		st.pressure[i] = fileExists(filepath.Join(dir, file))
	}
}

// readUseHierarchy reads memory.use_hierarchy; a file that cannot be read
// counts as on, the only value kernels since 5.x allow.
func readUseHierarchy(dir string) bool {
	data, err := os.ReadFile(filepath.Join(dir, "memory.use_hierarchy"))
	if err != nil {
		return true
	}
	v, ok := parseTrimmedUint(data)
	return !ok || v == 1
}

func existingFile(dir, file string) string {
	path := filepath.Join(dir, file)
	if !fileExists(path) {
		return ""
	}
	return path
}
