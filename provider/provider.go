package provider

import (
	"context"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"kubelet-stats-server/cadvisor"
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
	// FsStats is statfs of a directory (cadvisor.DirFsStats).
	FsStats func(path string) (cadvisor.FsStats, error)
	// Rlimit reads the node's process limits (cadvisor.ReadRlimit).
	Rlimit func() cadvisor.Rlimit
	Logger klog.Logger
}

// Provider runs the housekeeping loop and publishes one immutable Snapshot
// per tick.
type Provider struct {
	cfg        Config
	current    atomic.Pointer[Snapshot]
	generation uint64
	started    time.Time
	// lastTick is the unix-nano time the last tick completed, read by Healthy.
	lastTick atomic.Int64
}

// New returns a Provider; call Run to start ticking.
func New(cfg Config) *Provider {
	return &Provider{cfg: cfg, started: time.Now()}
}

// Current returns the newest snapshot, or nil before the first tick.
func (p *Provider) Current() *Snapshot { return p.current.Load() }

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

// Run ticks immediately and then every Interval until ctx ends. Ticks never
// overlap: a slow tick delays the next one.
func (p *Provider) Run(ctx context.Context) {
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
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
// never replaces good data with an error.
func (p *Provider) Tick(ctx context.Context) {
	start := time.Now()
	view := p.cfg.Sampler.Housekeep(ctx)
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
	snapshot, err := p.build(in)
	if err != nil {
		p.cfg.Logger.Error(err, "Housekeeping tick did not produce a snapshot; keeping the previous one")
		return
	}
	p.generation++
	snapshot.Generation = p.generation
	snapshot.Time = time.Now()
	p.current.Store(snapshot)
	p.lastTick.Store(snapshot.Time.UnixNano())
	p.cfg.Logger.V(4).Info("Published snapshot", "generation", snapshot.Generation,
		"cgroups", len(view.Cgroups), "duration", time.Since(start))
}

func (p *Provider) build(in nodeInputs) (*Snapshot, error) {
	node, err := buildNodeStats(in)
	if err != nil {
		return nil, err
	}
	cpuAndMemoryNode, err := buildNodeCPUAndMemoryStats(in)
	if err != nil {
		return nil, err
	}
	return &Snapshot{
		Summary:      &statsapi.Summary{Node: node, Pods: []statsapi.PodStats{}},
		CPUAndMemory: &statsapi.Summary{Node: cpuAndMemoryNode, Pods: []statsapi.PodStats{}},
	}, nil
}

// rootFsPath is the kubelet root dir, or "/" on a machine without one.
func (p *Provider) rootFsPath() string {
	if _, err := os.Stat(p.cfg.RootDir); err != nil {
		return "/"
	}
	return p.cfg.RootDir
}
