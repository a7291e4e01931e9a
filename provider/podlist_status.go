package provider

import (
	"context"
	"encoding/json"
	"hash/fnv"
	"math"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
)

// podStatusReader is what /pods asks the runtime beyond the lists of a
// tick. The CRI client has it; a runtime without it gives pods with what the
// lists say (no images by tag, no start times, no pod IPs).
type podStatusReader interface {
	RuntimeName(ctx context.Context) (string, error)
	PodSandboxStatus(ctx context.Context, id string) (*runtimeapi.PodSandboxStatus, error)
	ContainerStatus(ctx context.Context, id string) (*runtimeapi.ContainerStatusResponse, error)
}

// containerStatusResync is how long a running container's status is
// reused at most. Its state and times change only with its state, which
// every tick sees in ListContainers; its resources change with an in-place
// resize, which this bounds how late /pods shows.
const containerStatusResync = time.Minute

// statusResyncAfter is how long the container's status is reused: between
// half containerStatusResync and all of it, by its ID, so that the
// containers of a node started together are not all asked again in one
// tick. At 500 pods the verbose answers of 2,000 containers are 15 MB to
// decode, a burst the heap would otherwise grow for once a minute.
func statusResyncAfter(id string) time.Duration {
	h := fnv.New64a()
	h.Write([]byte(id))
	half := containerStatusResync / 2
	return half + time.Duration(h.Sum64()%uint64(half))
}

// runtimeStatuses are the statuses behind one snapshot's /pods. The next
// tick reuses those whose sandbox or container is in the same state, so
// that a steady node costs no status calls. It is never modified once its
// snapshot is published.
type runtimeStatuses struct {
	runtime    string
	sandboxes  map[string]*runtimeapi.PodSandboxStatus
	containers map[string]containerStatusEntry
}

type containerStatusEntry struct {
	status *runtimeapi.ContainerStatus
	// resources are those the kubelet gave the container, as the runtime
	// knows them; nil when it does not say.
	resources *runtimeapi.LinuxContainerResources
	fetched   time.Time
}

// statusFetcher answers one tick's status questions from the previous
// snapshot's statuses or from the runtime. After the first failing call it
// asks no more (a runtime that is down would make every call wait for its
// timeout) and serves what the previous snapshot had.
type statusFetcher struct {
	ctx    context.Context
	reader podStatusReader
	prev   *runtimeStatuses
	next   *runtimeStatuses
	now    time.Time
	err    error
}

// newStatusFetcher returns a fetcher; reader may be nil (no statuses) and
// previous nil (the first tick).
func newStatusFetcher(ctx context.Context, reader podStatusReader, previous *runtimeStatuses, now time.Time) *statusFetcher {
	if previous == nil {
		previous = &runtimeStatuses{}
	}
	return &statusFetcher{
		ctx: ctx, reader: reader, prev: previous, now: now,
		next: &runtimeStatuses{
			runtime:    previous.runtime,
			sandboxes:  map[string]*runtimeapi.PodSandboxStatus{},
			containers: map[string]containerStatusEntry{},
		},
	}
}

func (f *statusFetcher) canAsk() bool { return f.reader != nil && f.err == nil }

func (f *statusFetcher) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}

// runtimeName is the runtime's name as the kubelet puts it in container
// IDs, asked once.
func (f *statusFetcher) runtimeName() string {
	if f.next.runtime == "" && f.canAsk() {
		name, err := f.reader.RuntimeName(f.ctx)
		if err != nil {
			f.fail(err)
		} else {
			f.next.runtime = name
		}
	}
	return f.next.runtime
}

// sandbox returns the sandbox's status, asked again when its state changed.
func (f *statusFetcher) sandbox(sandbox *runtimeapi.PodSandbox) *runtimeapi.PodSandboxStatus {
	cached := f.prev.sandboxes[sandbox.Id]
	if (cached == nil || cached.State != sandbox.State) && f.canAsk() {
		status, err := f.reader.PodSandboxStatus(f.ctx, sandbox.Id)
		switch {
		case cri.IsNotFound(err): // removed since the list: nothing to show
		case err != nil:
			f.fail(err)
		default:
			// /pods takes them from the sandbox's list entry.
			status.Labels, status.Annotations = nil, nil
			cached = status
		}
	}
	if cached != nil {
		f.next.sandboxes[sandbox.Id] = cached
	}
	return cached
}

// container returns the container's status, asked again when its state
// changed or statusResyncAfter passed; the zero entry when the runtime
// could not be asked.
func (f *statusFetcher) container(container *runtimeapi.Container) containerStatusEntry {
	cached, found := f.prev.containers[container.Id]
	stale := !found || cached.status.GetState() != container.State || f.now.Sub(cached.fetched) >= statusResyncAfter(container.Id)
	if stale && f.canAsk() {
		resp, err := f.reader.ContainerStatus(f.ctx, container.Id)
		switch {
		case cri.IsNotFound(err): // removed since the list: nothing to show
		case err != nil:
			f.fail(err)
		default:
			cached, found = containerStatusEntry{status: resp.GetStatus(), resources: runtimeResources(resp), fetched: f.now}, true
			if cached.status != nil {
				// /pods takes them from the container's list entry.
				cached.status.Labels, cached.status.Annotations = nil, nil
			}
		}
	}
	if !found {
		return containerStatusEntry{}
	}
	f.next.containers[container.Id] = cached
	return cached
}

// runtimeResources are the container's resources from its status, or from
// the OCI spec of the verbose answer (for runtimes that report none in the
// status); nil when neither has them.
func runtimeResources(resp *runtimeapi.ContainerStatusResponse) *runtimeapi.LinuxContainerResources {
	if linux := resp.GetStatus().GetResources().GetLinux(); linux != nil {
		return linux
	}
	return specResources(resp.GetInfo()["info"])
}

// verboseContainerInfo is the part of containerd's verbose Info["info"]
// that holds the OCI spec's resources: what the kubelet asked for.
type verboseContainerInfo struct {
	RuntimeSpec *struct {
		Linux *struct {
			Resources *struct {
				CPU *struct {
					Shares *uint64 `json:"shares"`
					Quota  *int64  `json:"quota"`
					Period *uint64 `json:"period"`
				} `json:"cpu"`
				Memory *struct {
					Limit *int64 `json:"limit"`
				} `json:"memory"`
			} `json:"resources"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

func specResources(info string) *runtimeapi.LinuxContainerResources {
	if info == "" {
		return nil
	}
	var parsed verboseContainerInfo
	if json.Unmarshal([]byte(info), &parsed) != nil || parsed.RuntimeSpec == nil ||
		parsed.RuntimeSpec.Linux == nil || parsed.RuntimeSpec.Linux.Resources == nil {
		return nil
	}
	spec := parsed.RuntimeSpec.Linux.Resources
	out := &runtimeapi.LinuxContainerResources{}
	if cpu := spec.CPU; cpu != nil {
		out.CpuShares = int64(min(valueOrZero(cpu.Shares), math.MaxInt64))
		out.CpuQuota = valueOrZero(cpu.Quota)
		out.CpuPeriod = int64(min(valueOrZero(cpu.Period), math.MaxInt64))
	}
	if memory := spec.Memory; memory != nil {
		out.MemoryLimitInBytes = valueOrZero(memory.Limit)
	}
	return out
}

func valueOrZero[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
