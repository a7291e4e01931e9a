package provider

import (
	"context"
	"fmt"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"kubelet-stats-server/cri"
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

// fetchRuntime asks the runtime everything one tick needs. strict asks for
// ListPodSandboxStats; state.strict is false when the runtime does not
// implement it, and container stats were fetched instead.
func fetchRuntime(ctx context.Context, rt RuntimeService, strict bool) (*runtimeState, error) {
	state := &runtimeState{}
	var err error
	if state.sandboxes, err = rt.ListPodSandbox(ctx); err != nil {
		return nil, fmt.Errorf("failed to list all pod sandboxes: %w", err)
	}
	if state.containers, err = rt.ListContainers(ctx); err != nil {
		return nil, fmt.Errorf("failed to list all containers: %w", err)
	}
	if strict {
		state.sandboxStats, err = rt.ListPodSandboxStats(ctx)
		state.strict = err == nil
		switch {
		case cri.IsUnimplemented(err):
		case err != nil:
			return nil, fmt.Errorf("failed to list all pod sandbox stats: %w", err)
		}
	}
	if !state.strict {
		if state.containerStats, err = rt.ListContainerStats(ctx); err != nil {
			return nil, fmt.Errorf("failed to list all container stats: %w", err)
		}
	}
	if state.imageFs, err = rt.ImageFsInfo(ctx); err != nil {
		return nil, fmt.Errorf("failed to get imageFs info: %w", err)
	}
	return state, nil
}
