package provider

import (
	"context"
	"fmt"
	"sync"
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

// runtimeIdentity is who runs on the node: cheap calls, made every tick.
type runtimeIdentity struct {
	sandboxes  []*runtimeapi.PodSandbox
	containers []*runtimeapi.Container
	imageFs    *runtimeapi.ImageFsInfoResponse
}

// runtimeStats is the runtime's own measurements. containerd answers
// ListContainerStats with one shim round trip per container (about 600 ms
// at 100 containers on the test machine), so they are refreshed beside the
// tick rather than inside it.
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
	return stats, nil
}

// statsRefresher keeps the newest runtimeStats, refreshing in the
// background at most once at a time. The first request blocks, so the
// first snapshot already carries the runtime's numbers.
type statsRefresher struct {
	runtime  RuntimeService
	wantCRI  bool
	logger   klog.Logger
	onError  func()
	observe  func(seconds float64)
	mu       sync.Mutex
	latest   *runtimeStats
	inFlight bool
	// unimplemented records that the runtime lacks ListPodSandboxStats.
	unimplemented bool
}

// get returns the newest stats and starts a refresh if none runs.
func (r *statsRefresher) get(ctx context.Context) *runtimeStats {
	r.mu.Lock()
	if r.latest == nil && !r.inFlight {
		r.inFlight = true
		r.mu.Unlock()
		r.refresh(ctx)
		r.mu.Lock()
		latest := r.latest
		r.mu.Unlock()
		return latest
	}
	latest := r.latest
	if !r.inFlight {
		r.inFlight = true
		go r.refresh(context.WithoutCancel(ctx))
	}
	r.mu.Unlock()
	return latest
}

func (r *statsRefresher) refresh(ctx context.Context) {
	r.mu.Lock()
	strict := r.wantCRI && !r.unimplemented
	r.mu.Unlock()
	start := time.Now()
	stats, err := fetchStats(ctx, r.runtime, strict)
	r.observe(time.Since(start).Seconds())
	r.mu.Lock()
	defer r.mu.Unlock()
	r.inFlight = false
	switch {
	case err != nil:
		r.onError()
		r.logger.Error(err, "Container runtime stats failed; keeping the last ones")
		return
	case strict && !stats.strict:
		r.unimplemented = true
		r.logger.Error(nil, "The runtime does not implement ListPodSandboxStats; --stats-source=cri falls back to the collector")
	}
	r.latest = stats
	r.logger.V(4).Info("Refreshed runtime stats", "duration", time.Since(start), "strict", stats.strict)
}
