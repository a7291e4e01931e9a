package provider

import (
	"context"
	"fmt"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
)

// RuntimeService is the part of the CRI client a tick needs.
type RuntimeService interface {
	ListPodSandbox(ctx context.Context) ([]*runtimeapi.PodSandbox, error)
	ListContainers(ctx context.Context) ([]*runtimeapi.Container, error)
	ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error)
	ListPodSandboxStats(ctx context.Context) ([]*runtimeapi.PodSandboxStats, error)
	ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error)
}

// StatsSource values of --stats-source.
const (
	// StatsSourceCollector takes pod and container cpu, memory, swap and io
	// from our collector and identity and filesystems from CRI (the kubelet's
	// default path).
	StatsSourceCollector = "collector"
	// StatsSourceCRI takes everything from ListPodSandboxStats (the kubelet's
	// PodAndContainerStatsFromCRI path).
	StatsSourceCRI = "cri"
)

// runtimeIdentity is who runs on the node: cheap calls, refreshed at every
// tick.
type runtimeIdentity struct {
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.Container
	imageFs    *runtimeapi.ImageFsInfoResponse
}

// runtimeStats is the runtime's own measurements. containerd answers
// ListContainerStats with one shim round trip per container, whose shim
// reads the container's cgroups again (about 600 ms at 100 containers on
// the test machine, and a quarter of a core at 500 pods every 10 s), so
// they are refreshed beside the tick rather than inside it, the tick waits
// for them only while it has none, and in the collector mode they are
// refreshed only as often as statsDue says.
type runtimeStats struct {
	// strict is set when sandboxStats came from ListPodSandboxStats
	// (--stats-source=cri); containerStats is empty then.
	strict         bool
	containerStats []*runtimeapi.ContainerStats
	sandboxStats   []*runtimeapi.PodSandboxStats
}

// fetchIdentity lists sandboxes, containers and image filesystems.
func fetchIdentity(ctx context.Context, rt RuntimeService) (*runtimeIdentity, error) {
	identity := &runtimeIdentity{}
	var err error
	if identity.sandboxes, err = rt.ListPodSandbox(ctx); err != nil {
		return nil, fmt.Errorf("failed to list all pod sandboxes: %w", err)
	}
	if identity.containers, err = rt.ListContainers(ctx); err != nil {
		return nil, fmt.Errorf("failed to list all containers: %w", err)
	}
	if identity.imageFs, err = rt.ImageFsInfo(ctx); err != nil {
		return nil, fmt.Errorf("failed to get imageFs info: %w", err)
	}
	return identity, nil
}

// fetchStats asks for ListPodSandboxStats when strict, falling back to
// ListContainerStats when the runtime does not implement it.
func fetchStats(ctx context.Context, rt RuntimeService, strict bool) (*runtimeStats, error) {
	stats := &runtimeStats{}
	var err error
	if strict {
		stats.sandboxStats, err = rt.ListPodSandboxStats(ctx)
		stats.strict = err == nil
		if err != nil && !cri.IsUnimplemented(err) {
			return nil, fmt.Errorf("failed to list all pod sandbox stats: %w", err)
		}
	}
	if !stats.strict {
		if stats.containerStats, err = rt.ListContainerStats(ctx); err != nil {
			return nil, fmt.Errorf("failed to list all container stats: %w", err)
		}
	}
	stats.dropLabels()
	return stats, nil
}

// dropLabels drops the labels and annotations the runtime repeats in the
// stats' attributes: nothing reads them there (the pod view has them), and
// at 500 pods they were 4 of the 5.5 MB the stats kept until the next
// refresh.
func (s *runtimeStats) dropLabels() {
	for _, stats := range s.containerStats {
		dropAttributeLabels(stats.GetAttributes())
	}
	for _, sandbox := range s.sandboxStats {
		if attributes := sandbox.GetAttributes(); attributes != nil {
			attributes.Labels, attributes.Annotations = nil, nil
		}
		for _, stats := range sandbox.GetLinux().GetContainers() {
			dropAttributeLabels(stats.GetAttributes())
		}
	}
}

func dropAttributeLabels(attributes *runtimeapi.ContainerAttributes) {
	if attributes != nil {
		attributes.Labels, attributes.Annotations = nil, nil
	}
}

// maxRuntimeWait bounds how long a tick waits for the refreshes it
// started: a healthy runtime answers its lists in milliseconds (7–23 ms at
// 100 pods, docs/performance.md).
const maxRuntimeWait = time.Second

// runtimeWait is how long a tick with this interval waits for the
// runtime: a quarter of the interval, at most maxRuntimeWait, so that a
// tick keeps its cadence whatever the runtime does.
func runtimeWait(interval time.Duration) time.Duration {
	return min(interval/4, maxRuntimeWait)
}

// runtimeRefresh keeps the runtime's answers fresh beside the housekeeping
// tick: the pod view (sandboxes, containers, image filesystem) and the
// runtime's own stats. Each tick starts the refreshes not already running
// (the stats only when due: statsDue) and waits a short budget for them,
// so that a new pod shows up in the tick
// that saw it; a runtime that answers late or never (every call is bounded
// by --runtime-request-timeout) leaves the tick with the last good answers,
// and the next tick picks up a late one.
type runtimeRefresh struct {
	runtime RuntimeService
	wantCRI bool
	budget  time.Duration
	logger  klog.Logger
	metrics *metrics

	identity refresher[*runtimeIdentity]
	stats    refresher[*runtimeStats]

	// statsPeriod is how often the collector mode refreshes the stats
	// when nothing makes them due sooner (statsDue); statsStarted is when
	// the newest refresh began. Only the tick goroutine touches them.
	statsPeriod  time.Duration
	statsStarted time.Time
}

func newRuntimeRefresh(cfg Config, m *metrics) *runtimeRefresh {
	return &runtimeRefresh{
		runtime:     cfg.Runtime,
		wantCRI:     cfg.StatsSource == StatsSourceCRI,
		budget:      runtimeWait(cfg.Interval),
		logger:      cfg.Logger,
		metrics:     m,
		statsPeriod: cfg.RuntimeStatsPeriod,
	}
}

// runtimeRound is one tick's use of the refreshes: begun before the
// collector samples, so that a healthy runtime answers meanwhile, and
// collected after it.
type runtimeRound struct {
	refresh *runtimeRefresh
	ctx     context.Context
	// identity and stats are closed when the refreshes this tick started
	// end; nil when one from an earlier tick was still running.
	identity, stats <-chan struct{}
}

// begin starts the refreshes not already in flight, the stats only when
// due (statsDue); they run on ctx. statsWanted says the last tick met a
// running container that needs fresh stats (podList.statsWanted).
func (r *runtimeRefresh) begin(ctx context.Context, now time.Time, statsWanted bool) *runtimeRound {
	round := &runtimeRound{
		refresh:  r,
		ctx:      ctx,
		identity: r.identity.start(ctx, r.refreshIdentity),
	}
	if r.statsDue(now, statsWanted) {
		if round.stats = r.stats.start(ctx, r.refreshStats); round.stats != nil {
			r.statsStarted = now
		}
	}
	return round
}

// statsDue says whether a tick refreshes the runtime's stats. From
// ListPodSandboxStats (--stats-source=cri) they are the pods' only stats:
// every tick. In the collector mode they only give the writable layer's
// usage, which containerd itself refreshes every 10 s and which joins the
// volumes (measured every --volume-stats-agg-period) in ephemeral storage,
// and the cpu and memory of containers without a cgroup: once per
// statsPeriod, and at every tick while a running container needs fresh
// ones (statsWanted).
func (r *runtimeRefresh) statsDue(now time.Time, statsWanted bool) bool {
	newest := r.stats.newest()
	return newest == nil || newest.strict || statsWanted || now.Sub(r.statsStarted) >= r.statsPeriod
}

// answers waits the budget at most and returns the newest answers: the pod
// view this tick started if it came in time. It waits for the stats only
// while there are none yet (the first tick): they are slow to answer and
// the next tick picks them up.
func (round *runtimeRound) answers() (*runtimeIdentity, *runtimeStats) {
	r := round.refresh
	deadline := time.Now().Add(r.budget)
	awaitUntil(round.ctx, round.identity, deadline)
	if r.stats.newest() == nil {
		awaitUntil(round.ctx, round.stats, deadline)
	}
	return r.identity.newest(), r.stats.newest()
}

// wait blocks until every refresh in flight has ended; they end with the
// context they run on.
func (r *runtimeRefresh) wait() {
	r.identity.wait()
	r.stats.wait()
}

// failed counts and logs a failed refresh, unless it failed because the
// server is stopping.
func (r *runtimeRefresh) failed(ctx context.Context, err error, msg string) {
	if ctx.Err() != nil {
		return
	}
	r.metrics.runtimeErrors.Inc()
	r.logger.Error(err, msg)
}

func (r *runtimeRefresh) refreshIdentity(ctx context.Context, previous *runtimeIdentity) *runtimeIdentity {
	start := time.Now()
	identity, err := fetchIdentity(ctx, r.runtime)
	r.metrics.runtimeDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		r.failed(ctx, err, "Container runtime failed; serving the last pod view")
		return previous
	}
	r.logger.V(4).Info("Refreshed the runtime's pod view", "duration", time.Since(start),
		"sandboxes", len(identity.sandboxes), "containers", len(identity.containers))
	return identity
}

// refreshStats asks for ListPodSandboxStats under --stats-source=cri until
// the runtime says it does not implement it, then for ListContainerStats.
func (r *runtimeRefresh) refreshStats(ctx context.Context, previous *runtimeStats) *runtimeStats {
	strict := r.wantCRI && (previous == nil || previous.strict)
	start := time.Now()
	stats, err := fetchStats(ctx, r.runtime, strict)
	r.metrics.statsDuration.Observe(time.Since(start).Seconds())
	switch {
	case err != nil:
		r.failed(ctx, err, "Container runtime stats failed; keeping the last ones")
		return previous
	case strict && !stats.strict:
		r.logger.Error(nil, "The runtime does not implement ListPodSandboxStats; --stats-source=cri falls back to the collector")
	}
	r.logger.V(4).Info("Refreshed runtime stats", "duration", time.Since(start), "strict", stats.strict)
	return stats
}
