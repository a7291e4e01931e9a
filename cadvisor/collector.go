package cadvisor

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/opencontainers/cgroups"
	"github.com/prometheus/procfs"
	"k8s.io/klog/v2"
)

// Config for New.
type Config struct {
	// CgroupMount is where the cgroup hierarchies are mounted; default
	// "/sys/fs/cgroup".
	CgroupMount string
	// ProcRoot is the proc mount; default "/proc".
	ProcRoot string
	// SysRoot is the sysfs mount; default "/sys".
	SysRoot string
	// Tracked lists cgroup names (paths relative to the hierarchy root, e.g.
	// "/kubepods", "/kubepods.slice", "/system.slice/containerd.service")
	// tracked together with all their descendants. "/" itself is always
	// tracked, but not recursively.
	Tracked []string
	// Retention is the span of samples kept per cgroup; default 2m.
	Retention time.Duration
	// Interval is the expected housekeeping interval; it sizes the ring
	// buffers. Default 10s.
	Interval time.Duration
	// RescanInterval is how often the tracked trees are walked in full as a
	// safety net for missed inotify events; default 1m.
	RescanInterval time.Duration
	// Workers is how many cgroups are read in parallel during a pass;
	// default GOMAXPROCS, at most 4.
	Workers int
	Logger  klog.Logger
}

const (
	defaultCgroupMount    = "/sys/fs/cgroup"
	defaultProcRoot       = "/proc"
	defaultSysRoot        = "/sys"
	defaultRetention      = 2 * time.Minute
	defaultInterval       = 10 * time.Second
	defaultRescanInterval = time.Minute
	maxDefaultWorkers     = 4
	// maxNetworkCandidates bounds how many processes of a pod are tried when
	// the first one exits between listing and reading its net/dev.
	maxNetworkCandidates = 3
)

func (cfg Config) withDefaults() Config {
	if cfg.CgroupMount == "" {
		cfg.CgroupMount = defaultCgroupMount
	}
	if cfg.ProcRoot == "" {
		cfg.ProcRoot = defaultProcRoot
	}
	if cfg.SysRoot == "" {
		cfg.SysRoot = defaultSysRoot
	}
	if cfg.Retention <= 0 {
		cfg.Retention = defaultRetention
	}
	if cfg.Interval <= 0 {
		cfg.Interval = defaultInterval
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = defaultRescanInterval
	}
	if cfg.Workers <= 0 {
		cfg.Workers = min(runtime.GOMAXPROCS(0), maxDefaultWorkers)
	}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = klog.Background()
	}
	return cfg
}

// Collector samples the tracked cgroups. New it, Start it once, then call
// Housekeep from one goroutine at a time.
type Collector struct {
	cfg     Config
	logger  klog.Logger
	mounts  mounts
	trees   []tree
	tracked []string
	procFS  procfs.FS
	machine *Machine
	// ringSize is ceil(Retention/Interval)+1.
	ringSize int

	store     *store
	discovery *discovery

	// Reused by Housekeep between passes; Housekeep is not reentrant.
	housekeeping sync.Mutex
	results      []readResult
	passIndex    map[string]int
	buffers      [][]byte
}

// New detects the cgroup layout and reads the machine facts the collector
// needs (memory and swap capacity for the root, boot time for creation
// times). It starts nothing.
func New(cfg Config) (*Collector, error) {
	cfg = cfg.withDefaults()
	m, err := detectMounts(cfg.CgroupMount)
	if err != nil {
		return nil, err
	}
	procFS, err := procfs.NewFS(cfg.ProcRoot)
	if err != nil {
		return nil, fmt.Errorf("open procfs at %s: %w", cfg.ProcRoot, err)
	}
	machine, err := ReadMachine(cfg.ProcRoot, cfg.SysRoot)
	if err != nil {
		return nil, err
	}
	c := &Collector{
		cfg:       cfg,
		logger:    cfg.Logger,
		mounts:    m,
		trees:     m.trees(),
		tracked:   normalizeTracked(cfg.Tracked),
		procFS:    procFS,
		machine:   machine,
		ringSize:  int(math.Ceil(float64(cfg.Retention)/float64(cfg.Interval))) + 1,
		store:     newStore(),
		passIndex: map[string]int{},
		buffers:   make([][]byte, cfg.Workers),
	}
	for i := range c.buffers {
		c.buffers[i] = make([]byte, 16<<10)
	}
	c.discovery = newDiscovery(c)
	return c, nil
}

// normalizeTracked cleans the names, drops "/" (never recursive) and names
// covered by another tracked name.
func normalizeTracked(in []string) []string {
	var out []string
	for _, name := range in {
		name = normalizeCgroupName(name)
		if name == "/" {
			continue
		}
		out = append(out, name)
	}
	var roots []string
	for _, name := range out {
		covered := false
		for _, other := range out {
			if other != name && isAncestorOrSelf(other, name) {
				covered = true
				break
			}
		}
		if !covered && !containsString(roots, name) {
			roots = append(roots, name)
		}
	}
	return roots
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// Hierarchy is the detected cgroup layout.
func (c *Collector) Hierarchy() Hierarchy { return c.mounts.hierarchy }

// Start discovers the tracked cgroups, then keeps discovery running in the
// background (inotify, plus a full rescan every RescanInterval) until ctx
// ends. It returns once the initial discovery is done.
func (c *Collector) Start(ctx context.Context) error {
	if err := c.discovery.start(ctx); err != nil {
		return err
	}
	c.logger.V(2).Info("Cgroup discovery started", "collector", c.describe(), "cgroups", len(c.store.list()))
	return nil
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

// readResult is what one worker found for one entry during a pass.
type readResult struct {
	sample   *Sample
	gen      uint64
	firstPID int
	vanished bool
	// netPIDs are processes whose network namespace stands for this pod
	// cgroup's network (pod cgroups only).
	netPIDs [maxNetworkCandidates]int
	nNet    int
}

// Housekeep samples every tracked cgroup once and returns a new immutable
// View. It must not be called concurrently with itself.
func (c *Collector) Housekeep(ctx context.Context) *View {
	c.housekeeping.Lock()
	defer c.housekeeping.Unlock()

	// Apply what inotify queued so far: a cgroup created before this call
	// is sampled by it.
	c.discovery.drain()
	entries := c.store.list()
	if cap(c.results) < len(entries) {
		c.results = make([]readResult, len(entries))
	}
	results := c.results[:len(entries)]
	clear(results)

	c.parallel(ctx, len(entries), func(worker, i int) {
		results[i] = c.readEntry(entries[i], &c.buffers[worker])
	})
	c.readNetworks(ctx, entries, results)

	// Events queued during the pass tell which reads straddled a removal.
	c.discovery.drain()
	var vanished []string
	for i, e := range entries {
		r := &results[i]
		if r.vanished {
			vanished = append(vanished, e.name)
			continue
		}
		if r.sample != nil && e.gen.Load() == r.gen && !e.removed.Load() {
			e.ring.push(r.sample, c.cfg.Retention)
		}
	}
	if len(vanished) > 0 {
		c.discovery.refreshNames(vanished)
	}
	return c.buildView(entries)
}

// buildView publishes the rings as fresh slices: one backing array for all
// samples and one for all infos, so a pass allocates O(1) times here.
func (c *Collector) buildView(entries []*entry) *View {
	total, live := 0, 0
	for _, e := range entries {
		if !e.removed.Load() {
			total += e.ring.n
			live++
		}
	}
	samples := make([]*Sample, 0, total)
	infos := make([]CgroupInfo, 0, live)
	view := &View{Cgroups: make(map[string]*CgroupInfo, live)}
	for _, e := range entries {
		if e.removed.Load() {
			continue
		}
		start := len(samples)
		samples = e.ring.appendTo(samples)
		infos = append(infos, CgroupInfo{
			Name:    e.name,
			Spec:    e.state.Load().spec.Spec,
			Samples: samples[start:len(samples):len(samples)],
		})
		view.Cgroups[e.name] = &infos[len(infos)-1]
	}
	view.Time = time.Now()
	return view
}

// parallel runs fn for 0..n-1 on the worker pool; worker identifies the
// goroutine so that fn can use per-worker buffers.
func (c *Collector) parallel(ctx context.Context, n int, fn func(worker, i int)) {
	workers := min(c.cfg.Workers, n)
	if workers <= 1 {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}

// readEntry reads one cgroup and classifies failures: a cgroup that went
// away is routine; anything else is logged once per failure streak.
func (c *Collector) readEntry(e *entry, buf *[]byte) readResult {
	st := e.state.Load()
	result := readResult{gen: e.gen.Load()}
	sample, firstPID, err := c.readSample(e.name, st, buf)
	switch {
	case err == nil:
		result.sample, result.firstPID = sample, firstPID
		if e.failing {
			c.logger.V(2).Info("Reading cgroup works again", "cgroup", e.name)
			e.failing = false
		}
	case isVanished(err) || !c.anyDirExists(st.paths):
		result.vanished = true
		c.logger.V(4).Info("Cgroup vanished while reading it", "cgroup", e.name, "err", err)
	case !e.failing:
		e.failing = true
		c.logger.Error(err, "Failed to read cgroup; keeping its previous samples", "cgroup", e.name)
	default:
		c.logger.V(4).Info("Reading cgroup still fails", "cgroup", e.name, "err", err)
	}
	return result
}

func (c *Collector) anyDirExists(paths cgroupPaths) bool {
	for _, dir := range paths.dirs() {
		if isDir(dir) {
			return true
		}
	}
	return false
}

// readSample reads one cgroup. The v1 library calls return zeros rather
// than errors for a directory that disappeared, so cgroup.procs is read
// last: if it is gone, so is the cgroup, and the sample is dropped.
func (c *Collector) readSample(name string, st *entryState, buf *[]byte) (*Sample, int, error) {
	sample := &Sample{Timestamp: time.Now()}
	stats, err := st.manager.Stats(&st.options)
	if err != nil && !st.tolerateStatsErrors {
		return nil, 0, fmt.Errorf("read stats of cgroup %s: %w", name, err)
	}
	unified := c.mounts.hierarchy == HierarchyV2
	if stats != nil {
		sample.CPU = cpuFromStats(&stats.CpuStats)
		if st.spec.HasMemory {
			sample.Memory = memoryFromStats(&stats.MemoryStats, unified)
		}
		if st.hasPids {
			sample.Processes.ThreadsCount = stats.PidsStats.Current
			sample.Processes.ThreadsLimit = stats.PidsStats.Limit
		}
	}
	if st.spec.HasMemory {
		if name == "/" {
			if err := c.fillRootMemory(&sample.Memory, stats, unified); err != nil {
				return nil, 0, err
			}
		} else {
			if sample.Memory.Limit == 0 {
				sample.Memory.Limit = c.machine.MemoryCapacity
			}
			oomKills, err := st.manager.OOMKillCount()
			if err != nil && !isVanished(err) {
				return nil, 0, fmt.Errorf("read oom kills of cgroup %s: %w", name, err)
			}
			sample.Memory.OOMKills = oomKills
		}
		sample.Memory.Reservation = st.spec.reservation
	}
	var err2 error
	if sample.CPU.PSI == nil && st.cpuPressure != "" {
		sample.CPU.PSI, err2 = readPSI(buf, st.cpuPressure)
	}
	if err2 == nil && st.spec.HasMemory && sample.Memory.PSI == nil && st.memoryPressure != "" {
		sample.Memory.PSI, err2 = readPSI(buf, st.memoryPressure)
	}
	if err2 == nil && st.ioPressure != "" {
		sample.IOPressure, err2 = readPSI(buf, st.ioPressure)
	}
	if err2 != nil {
		return nil, 0, err2
	}
	data, err := readInto(*buf, st.procsFile)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, 0, err
	}
	count, firstPID := countProcs(data)
	sample.Processes.Count = count
	return sample, firstPID, nil
}

// fillRootMemory applies cAdvisor's raw-handler rules for "/": the limits
// are the machine's memory and swap, swap usage is SwapTotal-SwapFree, and
// on cgroup2, which has no memory.current at the root, usage is anon+file.
func (c *Collector) fillRootMemory(mem *MemoryStats, stats *cgroups.Stats, unified bool) error {
	if unified && stats != nil {
		mem.Usage = unifiedRootUsage(stats.MemoryStats.Stats)
		mem.WorkingSet = WorkingSet(mem.Usage, mem.InactiveFile)
	}
	mem.Limit = c.machine.MemoryCapacity
	mem.SwapLimit = c.machine.SwapCapacity
	meminfo, err := c.procFS.Meminfo()
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(c.cfg.ProcRoot, "meminfo"), err)
	}
	if meminfo.SwapTotal != nil && meminfo.SwapFree != nil && *meminfo.SwapTotal >= *meminfo.SwapFree {
		mem.SwapUsage = (*meminfo.SwapTotal - *meminfo.SwapFree) * 1024
	}
	return nil
}

func readPSI(buf *[]byte, path string) (*PSIStats, error) {
	data, err := readInto(*buf, path)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, err
	}
	psi, err := parsePSI(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return psi, nil
}

// readNetworks fills the network of the root (pid 1's namespace) and of
// every pod cgroup (the namespace of a process found in the pod: all
// containers of a pod share the sandbox's namespace).
func (c *Collector) readNetworks(ctx context.Context, entries []*entry, results []readResult) {
	clear(c.passIndex)
	for i, e := range entries {
		if e.pod == e.name {
			c.passIndex[e.name] = i
		}
	}
	var jobs []int
	for i, e := range entries {
		r := &results[i]
		if r.sample == nil {
			continue
		}
		if e.name == "/" && e.state.Load().spec.HasNetwork {
			r.netPIDs[0], r.nNet = 1, 1
			jobs = append(jobs, i)
			continue
		}
		if r.firstPID == 0 || e.pod == "" {
			continue
		}
		podIndex, ok := c.passIndex[e.pod]
		if !ok || results[podIndex].sample == nil {
			continue
		}
		pod := &results[podIndex]
		if pod.nNet == 0 {
			jobs = append(jobs, podIndex)
		}
		if pod.nNet < maxNetworkCandidates {
			pod.netPIDs[pod.nNet] = r.firstPID
			pod.nNet++
		}
	}
	c.parallel(ctx, len(jobs), func(worker, j int) {
		r := &results[jobs[j]]
		for _, pid := range r.netPIDs[:r.nNet] {
			ifaces, err := c.readNetDev(&c.buffers[worker], pid)
			if err == nil {
				r.sample.Network = &NetworkStats{Interfaces: ifaces}
				return
			}
			if !isVanished(err) {
				c.logger.V(2).Info("Failed to read network stats", "cgroup", entries[jobs[j]].name, "pid", pid, "err", err)
			}
		}
	})
}

func (c *Collector) readNetDev(buf *[]byte, pid int) ([]InterfaceStats, error) {
	path := filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid), "net", "dev")
	data, err := readInto(*buf, path)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, err
	}
	ifaces, err := parseNetDev(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return FilterInterfaces(ifaces), nil
}

// describe is for log lines and tests.
func (c *Collector) describe() string {
	return fmt.Sprintf("%s cgroups at %s tracking / and %s", c.mounts.hierarchy, c.cfg.CgroupMount, strings.Join(c.tracked, ", "))
}
