package collector

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/procfs"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
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
	// default GOMAXPROCS-1 (at least 1, at most 4). One P is left to the
	// request path: a pass is a stream of short syscalls that never hands
	// its P back, so with every P reading cgroups a request waits for the
	// scheduler's 10 ms preemption (and the network poller for sysmon's),
	// which put /stats/summary's p99 at 39 ms on a busy 2-core node.
	Workers int
	// OnCgroupEvent, when set, is told of every cgroup discovery adds to or
	// removes from the tracked set (events_discovery.go). It is called with
	// discovery's lock held and must not block.
	OnCgroupEvent func(CgroupEvent)
	Logger        klog.Logger
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
		cfg.Workers = min(max(runtime.GOMAXPROCS(0)-1, 1), maxDefaultWorkers)
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
	machine *cadvisor.Machine
	// ringSize is ceil(Retention/Interval)+1.
	ringSize int

	store     *store
	discovery *discovery
	started   atomic.Bool

	// Reused by Housekeep between passes; Housekeep is not reentrant.
	housekeeping sync.Mutex
	results      []readResult
	liveEntries  []*entry
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
		if !covered && !slices.Contains(roots, name) {
			roots = append(roots, name)
		}
	}
	return roots
}

// Hierarchy is the detected cgroup layout.
func (c *Collector) Hierarchy() Hierarchy { return c.mounts.hierarchy }

// Start discovers the tracked cgroups, then keeps discovery running in the
// background (inotify, plus a full rescan every RescanInterval) until ctx
// ends. It returns once the initial discovery is done.
func (c *Collector) Start(ctx context.Context) error {
	if !c.started.CompareAndSwap(false, true) {
		return fmt.Errorf("cgroup collector already started")
	}
	if err := c.discovery.start(ctx); err != nil {
		return err
	}
	c.logger.V(2).Info("Cgroup discovery started", "collector", c.describe(), "cgroups", len(c.store.list()))
	return nil
}

// Housekeep samples every tracked cgroup once and returns a new immutable
// View. It must not be called concurrently with itself.
func (c *Collector) Housekeep(ctx context.Context) *cadvisor.View {
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
			e.ring.Push(r.sample, c.cfg.Retention)
		}
	}
	if len(vanished) > 0 {
		c.discovery.refreshNames(vanished)
	}
	return c.buildView(entries)
}

// buildView publishes the rings as fresh slices: one backing array for the
// newest samples and one for all infos, so a pass allocates O(1) times
// here; the histories are published as they are. Removal is decided once
// per entry up front, since discovery may remove entries concurrently.
func (c *Collector) buildView(entries []*entry) *cadvisor.View {
	live := c.liveEntries[:0]
	newest := 0
	for _, e := range entries {
		if !e.removed.Load() {
			live = append(live, e)
			newest += min(e.ring.Len(), 2)
		}
	}
	c.liveEntries = live
	samples := make([]*cadvisor.Sample, 0, newest)
	infos := make([]cadvisor.CgroupInfo, len(live))
	view := &cadvisor.View{Cgroups: make(map[string]*cadvisor.CgroupInfo, len(live))}
	for i, e := range live {
		start := len(samples)
		samples = e.ring.AppendNewest(samples)
		infos[i] = cadvisor.CgroupInfo{
			Name:    e.name,
			Spec:    e.state.Load().spec.Spec,
			Samples: samples[start:len(samples):len(samples)],
			History: e.ring.History(),
		}
		view.Cgroups[e.name] = &infos[i]
	}
	clear(c.liveEntries) // do not keep removed entries reachable
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

// describe summarises the collector for the start-up log line.
func (c *Collector) describe() string {
	return fmt.Sprintf("%s cgroups at %s tracking / and %s", c.mounts.hierarchy, c.cfg.CgroupMount, strings.Join(c.tracked, ", "))
}
