package provider

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// CgroupSampler is the part of the collector a tick needs.
type CgroupSampler interface {
	Housekeep(ctx context.Context) *cadvisor.View
}

// Config wires a Provider. Every I/O dependency is passed in so that tests
// can drive ticks with fixtures.
type Config struct {
	NodeName string
	// BootTime is the node's start time (full-mode node.startTime).
	BootTime time.Time
	// RootDir is the kubelet root dir whose filesystem is node.fs; "/" is
	// used while it does not exist.
	RootDir string
	// SystemCgroups are the node.systemContainers entries.
	SystemCgroups []SystemCgroup
	// Interval is the housekeeping period.
	Interval time.Duration
	Sampler  CgroupSampler
	// FsStats is statfs of a directory (collector.DirFsStats).
	FsStats func(path string) (cadvisor.FsStats, error)
	// Rlimit reads the node's process limits (collector.ReadRlimit).
	Rlimit func() cadvisor.Rlimit
	// PodRoot is the cgroup holding all pods ("/kubepods", "/kubepods.slice").
	PodRoot string
	// Runtime is the container runtime; nil serves pods from the cgroup tree.
	Runtime RuntimeService
	// Machine is the machine facts /spec/ serves; nil leaves /spec/ without
	// an answer.
	Machine *cadvisor.Machine
	// StatsSource is StatsSourceCollector (default) or StatsSourceCRI.
	StatsSource string
	// RuntimeStatsPeriod is how often the collector mode asks the runtime
	// for its container stats when no running container needs them sooner
	// (runtimeRefresh.statsDue); 0 asks at every tick.
	RuntimeStatsPeriod time.Duration
	// PodLogsDir is the kubelet's pod log root (/var/log/pods) and
	// ContainerLogsDir its symlink farm (/var/log/containers).
	PodLogsDir       string
	ContainerLogsDir string
	// Volumes has the pods' volume stats; nil leaves pods without volume.
	Volumes PodVolumeSource
	// Events receives each tick's names and OOM counters for the events
	// API (events.go); nil for none.
	Events *EventFeed
	// Registerer receives the provider's own metrics; nil keeps them private.
	Registerer prometheus.Registerer
	Logger     klog.Logger
}

// Provider runs the housekeeping loop and publishes one immutable Snapshot
// per tick.
type Provider struct {
	cfg        Config
	current    atomic.Pointer[snapshot.Snapshot]
	generation uint64
	started    time.Time
	// lastTick is the unix-nano time the last tick completed, read by Healthy.
	lastTick atomic.Int64

	// runtime refreshes the runtime's answers beside the tick; nil without
	// a runtime.
	runtime *runtimeRefresh
	metrics *metrics

	// The fields below are only touched by the tick goroutine.
	rates *cpuRateCache
	// lastIdentity and lastStats are the runtime's answers this tick uses:
	// the newest good ones, served while the runtime fails or hangs.
	lastIdentity *runtimeIdentity
	lastStats    *runtimeStats
	// runtimeStatsWanted asks the next tick to refresh the runtime's stats
	// whatever their period (podList.statsWanted).
	runtimeStatsWanted bool
	// podStatuses are the runtime statuses behind the published /pods,
	// which the next tick reuses for sandboxes and containers whose state
	// did not change.
	podStatuses *runtimeStatuses
}

// New returns a Provider; call Run to start ticking.
func New(cfg Config) *Provider {
	p := &Provider{cfg: cfg, started: time.Now(), metrics: newMetrics(cfg.Registerer)}
	var cores int
	if cfg.Machine != nil {
		cores = cfg.Machine.NumCores
	}
	p.rates = newCPURateCache().withCores(cores)
	if cfg.Runtime != nil {
		p.runtime = newRuntimeRefresh(cfg, p.metrics)
	}
	return p
}

// Current returns the newest snapshot, or nil before the first tick.
func (p *Provider) Current() *snapshot.Snapshot { return p.current.Load() }

// Healthy fails when housekeeping has not completed for three intervals.
func (p *Provider) Healthy() error {
	last := p.started
	if nanos := p.lastTick.Load(); nanos != 0 {
		last = time.Unix(0, nanos)
	}
	if since := time.Since(last); since > 3*p.cfg.Interval {
		return fmt.Errorf("housekeeping has not completed for %s (interval %s)", since.Round(time.Second), p.cfg.Interval)
	}
	return nil
}

// Run ticks immediately and then every Interval until ctx ends, and returns
// once the runtime calls in flight have ended with ctx. Ticks never overlap:
// a slow tick delays the next one.
func (p *Provider) Run(ctx context.Context) {
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	if p.runtime != nil {
		defer p.runtime.wait()
	}
	for {
		p.Tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Tick samples everything once and publishes a new snapshot. A tick that
// cannot build the node keeps the previous snapshot, so a transient failure
// never replaces good data with an error. The runtime refreshes it starts
// run on ctx; it waits for the runtime a short budget at most
// (runtimeRefresh), and as long again for the status calls of /pods.
func (p *Provider) Tick(ctx context.Context) {
	start := time.Now()
	var round *runtimeRound
	if p.runtime != nil {
		round = p.runtime.begin(ctx, start, p.runtimeStatsWanted)
	}
	view := p.cfg.Sampler.Housekeep(ctx)
	if round != nil {
		p.lastIdentity, p.lastStats = round.answers()
	}
	in := nodeInputs{
		nodeName:      p.cfg.NodeName,
		bootTime:      p.cfg.BootTime,
		view:          view,
		rlimit:        p.cfg.Rlimit(),
		systemCgroups: p.cfg.SystemCgroups,
	}
	if fs, err := p.cfg.FsStats(p.rootFsPath()); err != nil {
		p.cfg.Logger.Error(err, "Failed to get root filesystem stats", "path", p.rootFsPath())
	} else {
		in.rootFs = &fs
	}
	inv := p.takeInventory(view)
	pods := p.buildPods(inv, in.rootFs, start)
	in.imageFs, p.runtimeStatsWanted = pods.imageFs, pods.statsWanted
	snap, err := p.build(in, pods.full, pods.cpuAndMemory)
	if err != nil {
		p.cfg.Logger.Error(err, "Housekeeping tick did not produce a snapshot; keeping the previous one")
		return
	}
	if snap.SummaryBody, err = snapshot.EncodeSummary(snap.Summary); err != nil {
		p.cfg.Logger.Error(err, "Failed to encode the summary; requests will encode it")
	}
	snap.Cgroups = snapshot.NewCgroups(view, p.cfg.Machine, inv.pods)
	statusCtx, cancel := p.statusContext(ctx)
	podObjects := p.addPodList(statusCtx, view, inv, snap)
	cancel()
	p.publish(snap, start, len(view.Cgroups))
	p.observeEvents(view, podObjects)
}

// statusContext bounds the status calls /pods makes inside the tick (of
// new or changed sandboxes and containers) by the runtime budget: a
// runtime that does not answer in time leaves /pods the last statuses, and
// the next tick asks again.
func (p *Provider) statusContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if p.runtime == nil {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, p.runtime.budget)
}

func (p *Provider) publish(snap *snapshot.Snapshot, start time.Time, cgroups int) {
	p.generation++
	snap.Generation = p.generation
	snap.Time = time.Now()
	p.current.Store(snap)
	p.lastTick.Store(snap.Time.UnixNano())
	p.metrics.tickDuration.Observe(time.Since(start).Seconds())
	p.metrics.trackedCgroups.Set(float64(cgroups))
	p.metrics.pods.Set(float64(len(snap.Summary.Pods)))
	p.cfg.Logger.V(4).Info("Published snapshot", "generation", snap.Generation,
		"cgroups", cgroups, "duration", time.Since(start))
}

func (p *Provider) build(in nodeInputs, pods, cpuMemPods []statsapi.PodStats) (*snapshot.Snapshot, error) {
	node, err := buildNodeStats(in)
	if err != nil {
		return nil, err
	}
	cpuAndMemoryNode, err := buildNodeCPUAndMemoryStats(in)
	if err != nil {
		return nil, err
	}
	return &snapshot.Snapshot{
		Summary:      &statsapi.Summary{Node: node, Pods: pods},
		CPUAndMemory: &statsapi.Summary{Node: cpuAndMemoryNode, Pods: cpuMemPods},
	}, nil
}

// rootFsPath is the kubelet root dir, or "/" on a machine without one.
func (p *Provider) rootFsPath() string {
	if _, err := os.Stat(p.cfg.RootDir); err != nil {
		return "/"
	}
	return p.cfg.RootDir
}

// buildPods builds the summary's pods of the inventory in both modes:
// from the runtime's answers of this tick, or from the cgroup tree without a
// runtime. A failing runtime leaves its last good answers, joined with
// fresh collector data, instead of failing the summary.
func (p *Provider) buildPods(inv *inventory, rootFs *cadvisor.FsStats, now time.Time) podList {
	var pods podList
	host := newNodeStorage(p.cfg.PodLogsDir, p.cfg.RootDir, p.cfg.FsStats, p.cfg.Volumes)
	if p.cfg.Runtime == nil {
		pods.full, pods.cpuAndMemory = buildPodsFromCgroups(inv, cgroupPodDisk{rootFs: rootFs, host: host})
		pods.sort()
		return pods
	}
	identity, stats := p.lastIdentity, p.lastStats
	if identity == nil || stats == nil {
		return podList{full: []statsapi.PodStats{}, cpuAndMemory: []statsapi.PodStats{}}
	}
	state := &runtimeState{runtimeIdentity: identity, runtimeStats: stats}
	in := podAssembly{
		now:       now,
		inventory: inv,
		runtime:   state,
		rootFs:    rootFs,
		host:      host,
		rates:     p.rates,
	}
	if state.strict {
		pods.full, pods.cpuAndMemory = buildPodsStrictlyFromRuntime(in)
	} else {
		pods.full, pods.cpuAndMemory, pods.statsWanted = buildPodsFromRuntime(in)
	}
	p.rates.expire(now)
	pods.imageFs = imageFsStats(state.imageFs, in.host)
	pods.sort()
	return pods
}

// podList is one tick's pods in both summary modes, plus the runtime's
// image filesystem that comes with them.
type podList struct {
	full, cpuAndMemory []statsapi.PodStats
	imageFs            *statsapi.FsStats
	// statsWanted says the next tick refreshes the runtime's stats
	// whatever their period (buildPodsFromRuntime).
	statsWanted bool
}

func (l podList) sort() {
	sortPods(l.full)
	sortPods(l.cpuAndMemory)
}
