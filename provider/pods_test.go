package provider

import (
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func sandbox(id, name string, created int64, state runtimeapi.PodSandboxState) *runtimeapi.PodSandbox {
	return &runtimeapi.PodSandbox{Id: id, CreatedAt: created, State: state,
		Metadata: &runtimeapi.PodSandboxMetadata{Name: name, Namespace: "ns", Uid: "uid-" + id}}
}

func TestRemoveTerminatedPods(t *testing.T) {
	ready, notReady := runtimeapi.PodSandboxState_SANDBOX_READY, runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	got := removeTerminatedPods([]*runtimeapi.PodSandbox{
		sandbox("lone-dead", "a", 1, notReady),
		sandbox("old-dead", "b", 1, notReady), sandbox("new-ready", "b", 2, ready), sandbox("newest-dead", "b", 3, notReady),
		sandbox("c1", "c", 1, notReady), sandbox("c2", "c", 5, notReady),
		{Id: "no-metadata"},
	})
	var ids []string
	for _, s := range got {
		ids = append(ids, s.Id)
	}
	want := []string{"lone-dead", "new-ready", "c2"}
	if len(ids) != len(want) {
		t.Fatalf("kept %v, want %v", ids, want)
	}
	for i := range want {
		if ids[i] != want[i] {
			t.Fatalf("kept %v, want %v", ids, want)
		}
	}
}

func TestRunningContainers(t *testing.T) {
	got := runningContainers([]*runtimeapi.Container{
		{Id: "exited", State: runtimeapi.ContainerState_CONTAINER_EXITED},
		{Id: "running", State: runtimeapi.ContainerState_CONTAINER_RUNNING},
		nil,
	})
	if len(got) != 1 || got[0].Id != "running" {
		t.Errorf("running containers = %v", got)
	}
}

func cpuUsage(ts int64, total uint64) *runtimeapi.CpuUsage {
	return &runtimeapi.CpuUsage{Timestamp: ts, UsageCoreNanoSeconds: &runtimeapi.UInt64Value{Value: total}}
}

func TestCPURateCache(t *testing.T) {
	cache := newCPURateCache()
	if rate := cache.update("c", cpuUsage(0, 1e9)); rate != nil {
		t.Errorf("first sample gave %d, want none", *rate)
	}
	if rate := cache.update("c", cpuUsage(int64(10*time.Second), 3e9)); rate == nil || *rate != 2e8 {
		t.Errorf("rate = %v, want 2e8", rate)
	}
	if rate := cache.update("c", cpuUsage(int64(10*time.Second), 3e9)); rate == nil || *rate != 2e8 {
		t.Errorf("a repeated sample gave %v, want the previous rate", rate)
	}
	if rate := cache.update("c", cpuUsage(int64(20*time.Second), 1e9)); rate != nil {
		t.Errorf("counter reset gave %d, want none", *rate)
	}
	sent := &runtimeapi.CpuUsage{UsageNanoCores: &runtimeapi.UInt64Value{Value: 42}}
	if rate := cache.update("d", sent); rate == nil || *rate != 42 {
		t.Errorf("runtime-sent usage_nano_cores = %v, want 42", rate)
	}
	if cache.update("e", nil) != nil || cache.update("e", &runtimeapi.CpuUsage{}) != nil {
		t.Error("missing cpu must give no rate")
	}
	cache.expire(time.Unix(0, int64(20*time.Second)).Add(cpuCacheTTL + time.Second))
	if len(cache.records) != 0 {
		t.Errorf("expire kept %v", cache.records)
	}
}

func TestCRIContainerStatsToleratesMissingBlocks(t *testing.T) {
	now := time.Unix(1000, 0)
	empty := &runtimeapi.ContainerStats{Attributes: &runtimeapi.ContainerAttributes{Id: "x", Metadata: &runtimeapi.ContainerMetadata{Name: "x"}}}
	full := criContainerStats(empty, nil, now)
	if full.CPU == nil || *full.CPU.UsageNanoCores != 0 || full.Memory == nil || *full.Memory.WorkingSetBytes != 0 ||
		full.Memory.AvailableBytes != nil || full.Swap == nil || !full.CPU.Time.Time.Equal(now) {
		t.Errorf("full-mode stats of an empty CRI entry = %+v", full)
	}
	cpuMem := criContainerCPUAndMemoryStats(empty, nil, now)
	if cpuMem.Memory.AvailableBytes == nil || *cpuMem.Memory.PageFaults != 0 {
		t.Errorf("cpu-and-memory mode must zero-fill every counter: %+v", cpuMem.Memory)
	}
	partial := &runtimeapi.ContainerStats{Memory: &runtimeapi.MemoryUsage{Timestamp: 5, WorkingSetBytes: &runtimeapi.UInt64Value{Value: 7}}}
	got := criContainerStats(partial, nil, now)
	if *got.Memory.WorkingSetBytes != 7 || got.Memory.UsageBytes != nil {
		t.Errorf("a CRI memory block keeps nil for missing counters: %+v", got.Memory)
	}
}

func TestSumsCountNilAsZero(t *testing.T) {
	containers := []statsapi.ContainerStats{
		{CPU: &statsapi.CPUStats{UsageCoreNanoSeconds: ptrTo(uint64(5))}, Memory: &statsapi.MemoryStats{WorkingSetBytes: ptrTo(uint64(3))}},
		{CPU: &statsapi.CPUStats{UsageCoreNanoSeconds: ptrTo(uint64(7)), UsageNanoCores: ptrTo(uint64(2))}},
	}
	cpu, mem := sumCPU(containers), sumMemory(containers)
	if *cpu.UsageCoreNanoSeconds != 12 || *cpu.UsageNanoCores != 2 || *mem.WorkingSetBytes != 3 || *mem.UsageBytes != 0 {
		t.Errorf("sums = %+v / %+v", cpu, mem)
	}
	if sumCPU(nil) != nil || sumSwap(nil) != nil {
		t.Error("sums over no containers must be nil")
	}
}

func TestEphemeralStorage(t *testing.T) {
	rootFs := &cadvisor.FsStats{Timestamp: time.Unix(100, 0), Capacity: 1000, Available: 400, Inodes: 50, InodesFree: 20}
	containers := []statsapi.ContainerStats{
		{Rootfs: &statsapi.FsStats{UsedBytes: ptrTo(uint64(10)), InodesUsed: ptrTo(uint64(2))},
			Logs: &statsapi.FsStats{UsedBytes: ptrTo(uint64(5)), InodesUsed: ptrTo(uint64(1))}},
		{Logs: &statsapi.FsStats{UsedBytes: ptrTo(uint64(99))}}, // no rootfs: its logs do not count
	}
	podLogs := usageFsStats(rootFs, analyzer.Usage{Bytes: 3, Inodes: 1}, time.Unix(200, 0))
	got := ephemeralStorage(rootFs, containers, nil, podLogs, nil)
	if *got.UsedBytes != 18 || *got.InodesUsed != 4 || *got.CapacityBytes != 1000 || !got.Time.Time.Equal(time.Unix(200, 0)) {
		t.Errorf("ephemeral-storage = used %d inodes %d cap %d time %v", *got.UsedBytes, *got.InodesUsed, *got.CapacityBytes, got.Time)
	}
	if none := ephemeralStorage(rootFs, nil, nil, nil, nil); none.UsedBytes != nil {
		t.Error("nothing to add must leave usedBytes nil")
	}
}

func TestParseLogNames(t *testing.T) {
	ref, ok := parsePodLogsDirName("kube-system_coredns-abc_1b2c-3d4e")
	if !ok || ref.Namespace != "kube-system" || ref.Name != "coredns-abc" || ref.UID != "1b2c-3d4e" {
		t.Errorf("pod log dir = %+v %v", ref, ok)
	}
	for _, bad := range []string{"a_b", "a__c", "a_b_c_d"} {
		if _, ok := parsePodLogsDirName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
	id, name, ok := parseContainerLogName("coredns-abc_kube-system_coredns-0123abcd.log")
	if !ok || id != "0123abcd" || name != "coredns" {
		t.Errorf("container log = %q %q %v", id, name, ok)
	}
	if _, _, ok := parseContainerLogName("README"); ok {
		t.Error("a non-log file parsed")
	}
}

func TestImageFsStatsNilUsedBytes(t *testing.T) {
	resp := &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{Timestamp: 1}}}
	if got := imageFsStats(resp, newNodeStorage("", "", nil, nil)); got != nil {
		t.Errorf("imageFs without used_bytes = %+v, want none (the kubelet crashes here)", got)
	}
	if imageFsStats(nil, nil) != nil {
		t.Error("no response must give no imageFs")
	}
}
