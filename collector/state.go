package collector

import (
	"os"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// entryState is how to read one cgroup; immutable once stored. It holds
// no path: the readers put each one together from a mount and the cgroup's
// name when they open a file (Collector.dirs).
type entryState struct {
	// dirs are the hierarchies the cgroup has a directory in.
	dirs   hierarchySet
	reader controllerReader
	// pressure says which of pressureFiles the cgroup's directory in the
	// cgroup2 hierarchy has (all on v2, PSI only on hybrid).
	pressure [numPressureFiles]bool
	spec     cgroupSpec
}

// cgroupDirs are the directories a pass reads besides the controllers'.
type cgroupDirs struct {
	// procs holds the cgroup.procs counted last: a cgroup whose files all
	// read but which is gone by then is dropped (readSample). It is the
	// first hierarchy of v1Controllers the cgroup is in, or cgroup2 on v2.
	procs cgroupDir
	// pressure holds the PSI files: the cgroup's cgroup2 directory.
	pressure cgroupDir
	// io holds the I/O files: cgroup2 on v2, blkio on v1.
	io cgroupDir
}

// dirs are the directories of cgroup name, whose state is st.
func (c *Collector) dirs(name string, st *entryState) cgroupDirs {
	procs := hUnified
	for h := range hUnified {
		if st.dirs.has(h) {
			procs = h
			break
		}
	}
	io := cgroupDir{mount: c.mounts.blkio, name: name}
	if c.mounts.hierarchy == HierarchyV2 {
		io = c.mounts.dir(hUnified, name)
	}
	return cgroupDirs{procs: c.mounts.dir(procs, name), pressure: c.mounts.dir(hUnified, name), io: io}
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

// resolveDirs finds the hierarchies that have a directory for the cgroup;
// exists is false when it is in none of the primary hierarchies.
func (c *Collector) resolveDirs(name string) (dirs hierarchySet, exists bool) {
	if c.mounts.hierarchy == HierarchyV2 {
		if !isDir(c.mounts.dir(hUnified, name).String()) {
			return 0, false
		}
		dirs.add(hUnified)
		return dirs, true
	}
	for h := range hUnified {
		if c.mounts.dirs[h] != "" && isDir(c.mounts.dir(h, name).String()) {
			dirs.add(h)
		}
	}
	if dirs == 0 {
		return 0, false
	}
	if c.mounts.hierarchy == HierarchyHybrid && isDir(c.mounts.dir(hUnified, name).String()) {
		dirs.add(hUnified)
	}
	return dirs, true
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
	if e != nil {
		name = e.name // the string the store, the readers and the view share
	}
	dirs, exists := c.resolveDirs(name)
	if !exists {
		if e != nil {
			c.logger.V(4).Info("Cgroup removed", "cgroup", name)
			c.store.remove(e)
			c.notifyRemoved(name)
		}
		return
	}
	if e == nil {
		e = &entry{name: name, pod: podCgroupOf(name), ring: cadvisor.NewSampleRing(c.ringSize)}
		e.state.Store(c.newState(name, dirs))
		c.store.add(e)
		c.notifyAdded(e)
		c.logger.V(4).Info("Cgroup added", "cgroup", name)
		return
	}
	old := e.state.Load()
	if old.dirs != dirs {
		e.gen.Add(1)
		e.state.Store(c.newState(name, dirs))
		return
	}
	if respec {
		updated := *old
		updated.spec = c.readSpec(name, dirs, &old.spec)
		e.state.Store(&updated)
	}
}

// readSpec reads the cgroup's spec. prev, the spec read before for the same
// directories, supplies what cannot change while they exist: the creation
// time and which I/O files there are (a rescan re-reads only the limits).
func (c *Collector) readSpec(name string, dirs hierarchySet, prev *cgroupSpec) cgroupSpec {
	spec := specFromInputs(c.readSpecInputs(name, dirs, prev), c.machine.BootTime, c.machine.NumCores)
	switch {
	case name == "/":
		spec.HasNetwork = len(c.machine.NetworkDevices) > 0
	case podCgroupOf(name) == name:
		spec.HasNetwork = true
	}
	return spec
}

// newState builds the reader of one cgroup. It only records which
// directories and optional files exist; nothing is created or written.
func (c *Collector) newState(name string, dirs hierarchySet) *entryState {
	st := &entryState{dirs: dirs, spec: c.readSpec(name, dirs, nil)}
	if c.mounts.hierarchy == HierarchyV2 {
		dir := c.mounts.dir(hUnified, name)
		r := &v2Reader{
			dir:    dir,
			root:   name == "/",
			memory: fileExists(dir.file("memory.stat")),
			peak:   fileExists(dir.file("memory.peak")),
			swap:   fileExists(dir.file("memory.swap.current")),
			pids:   fileExists(dir.file("pids.current")),
		}
		st.reader = r
		st.findPressure(dir)
		return st
	}
	r := &v1Reader{mounts: &c.mounts, name: name, root: name == "/"}
	for h := range hUnified {
		// The v1 root has no pids.current (cAdvisor drops it too).
		if dirs.has(h) && (h != hPids || name != "/") {
			r.has.add(h)
		}
	}
	if r.has.has(hMemory) {
		memory := r.dir(hMemory)
		r.useHierarchy = readUseHierarchy(memory)
		r.memsw = fileExists(memory.file("memory.memsw.limit_in_bytes"))
	}
	st.reader = r
	if dirs.has(hUnified) {
		st.findPressure(c.mounts.dir(hUnified, name))
	}
	return st
}

// pressureFiles are the PSI files, in the order of sampleBlock.psi.
var pressureFiles = [...]string{"cpu.pressure", "memory.pressure", "io.pressure"}

const numPressureFiles = len(pressureFiles)

// findPressure records which pressure files dir has.
func (st *entryState) findPressure(dir cgroupDir) {
	for i, file := range pressureFiles {
		st.pressure[i] = fileExists(dir.file(file))
	}
}

// readUseHierarchy reads memory.use_hierarchy; a file that cannot be read
// counts as on, the only value kernels since 5.x allow.
func readUseHierarchy(dir cgroupDir) bool {
	data, err := os.ReadFile(dir.file("memory.use_hierarchy"))
	if err != nil {
		return true
	}
	v, ok := parseTrimmedUint(data)
	return !ok || v == 1
}
