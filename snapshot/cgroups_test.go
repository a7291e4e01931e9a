package snapshot

import (
	"encoding/json"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// samplesEverySecond returns n samples one second apart ending at sampleTime,
// with cpu total i*1e9.
func samplesEverySecond(n int) []*cadvisor.Sample {
	out := make([]*cadvisor.Sample, n)
	for i := range out {
		out[i] = sampleAt(sampleTime.Add(time.Duration(i-n+1)*time.Second), uint64(i+1)*1e9, cadvisor.MemoryStats{})
	}
	return out
}

func timestamps(samples []*cadvisor.Sample) []int {
	var out []int
	for _, s := range samples {
		out = append(out, int(s.Timestamp.Sub(sampleTime)/time.Second))
	}
	return out
}

func TestSelectSamples(t *testing.T) {
	samples := samplesEverySecond(10) // at -9s .. 0s
	at := func(s int) time.Time { return sampleTime.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		req  cadvisorapi.ContainerInfoRequest
		want []int
	}{
		{"kubelet default 60 returns all there is", cadvisorapi.ContainerInfoRequest{NumStats: 60}, []int{-9, -8, -7, -6, -5, -4, -3, -2, -1, 0}},
		{"num_stats keeps the newest, oldest first", cadvisorapi.ContainerInfoRequest{NumStats: 3}, []int{-2, -1, 0}},
		{"num_stats 0 returns none", cadvisorapi.ContainerInfoRequest{NumStats: 0}, nil},
		{"num_stats -1 returns all", cadvisorapi.ContainerInfoRequest{NumStats: -1}, []int{-9, -8, -7, -6, -5, -4, -3, -2, -1, 0}},
		{"bounds are inclusive", cadvisorapi.ContainerInfoRequest{NumStats: -1, Start: at(-5), End: at(-3)}, []int{-5, -4, -3}},
		{"num_stats within a range keeps its newest", cadvisorapi.ContainerInfoRequest{NumStats: 2, Start: at(-5), End: at(-3)}, []int{-4, -3}},
		{"open start", cadvisorapi.ContainerInfoRequest{NumStats: -1, End: at(-8).Add(time.Millisecond)}, []int{-9, -8}},
		{"open end", cadvisorapi.ContainerInfoRequest{NumStats: -1, Start: at(-1).Add(-time.Millisecond)}, []int{-1, 0}},
		{"start after end", cadvisorapi.ContainerInfoRequest{NumStats: -1, Start: at(-2), End: at(-5)}, nil},
		{"range after the newest sample", cadvisorapi.ContainerInfoRequest{NumStats: -1, Start: at(1)}, nil},
		{"range before the oldest sample", cadvisorapi.ContainerInfoRequest{NumStats: -1, End: at(-10)}, nil},
		{"range between two samples", cadvisorapi.ContainerInfoRequest{NumStats: -1, Start: at(-5).Add(time.Millisecond), End: at(-4).Add(-time.Millisecond)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := timestamps(selectSamples(samples, tt.req)); !slices.Equal(got, tt.want) {
				t.Errorf("samples at %v, want %v", got, tt.want)
			}
		})
	}
	if got := selectSamples(nil, cadvisorapi.ContainerInfoRequest{NumStats: -1}); got != nil {
		t.Errorf("no samples selected %v", got)
	}
}

func TestNearestSample(t *testing.T) {
	samples := samplesEverySecond(3) // at -2s, -1s, 0s
	tests := []struct {
		offset time.Duration
		want   int // index, -1 for none
	}{
		{-2 * time.Second, 0},
		{-1*time.Second + 10*time.Millisecond, 1},
		{-1*time.Second - 10*time.Millisecond, 1},
		{-1500*time.Millisecond + time.Millisecond, 1},
		{400 * time.Millisecond, 2},
		{600 * time.Millisecond, -1},
		{-2600 * time.Millisecond, -1},
	}
	for _, tt := range tests {
		got := nearestSample(samples, sampleTime.Add(tt.offset), samePassTolerance)
		var want *cadvisor.Sample
		if tt.want >= 0 {
			want = samples[tt.want]
		}
		if got != want {
			t.Errorf("nearest to %v = %v, want sample %d", tt.offset, got, tt.want)
		}
	}
}

// fullSample fills every field the collector reads with a distinct value.
func fullSample(at time.Time) *cadvisor.Sample {
	return &cadvisor.Sample{
		Timestamp: at,
		CPU: cadvisor.CPUStats{UsageTotal: 101, UsageUser: 102, UsageSystem: 103, PerCPU: []uint64{60, 41},
			Periods: 104, ThrottledPeriods: 105, ThrottledTime: 106,
			PSI: &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 107, Avg10: 0.5}, Full: cadvisor.PSIData{Total: 108, Avg300: 0.25}}},
		Memory: cadvisor.MemoryStats{Usage: 201, MaxUsage: 202, WorkingSet: 203, RSS: 204, Cache: 205, MappedFile: 206,
			ActiveFile: 207, InactiveFile: 208, Failcnt: 209, PageFaults: 210, MajorPageFaults: 211,
			Limit: 212, Reservation: 213, SwapUsage: 214, SwapLimit: 215, OOMKills: 216,
			PSI: &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 217}}},
		IOPressure: &cadvisor.PSIStats{Full: cadvisor.PSIData{Total: 301, Avg60: 1.5}},
		Processes:  cadvisor.ProcessStats{Count: 401, ThreadsCount: 402, ThreadsLimit: 403},
		DiskIO: []cadvisor.DiskIO{
			{Major: 254, Minor: 0, Bytes: [cadvisor.NumIOOps]uint64{501, 502}, IOs: [cadvisor.NumIOOps]uint64{503, 504},
				HasBytes: 1<<cadvisor.IORead | 1<<cadvisor.IOWrite, HasIOs: 1<<cadvisor.IORead | 1<<cadvisor.IOWrite,
				Cost: &cadvisor.IOCost{Usage: 505, Wait: 506, Indebt: 507, Indelay: 508}},
			// Not a disk of the machine (a loop device), listed with v1's operations.
			{Major: 7, Minor: 3, IOs: [cadvisor.NumIOOps]uint64{511, 0, 512, 0, 0, 513},
				HasIOs: 1<<cadvisor.IORead | 1<<cadvisor.IOSync | 1<<cadvisor.IOTotal},
		},
	}
}

// testDevices names the machine's one disk.
var testDevices = newDeviceNames(map[string]cadvisor.Disk{"254:0": {Name: "vda", Major: 254, Minor: 0}})

// roundTrip encodes v and decodes it into the upstream cAdvisor type, as a
// client would.
func roundTrip[T any](t *testing.T, v any) T {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out T
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return out
}

func TestContainerInfoConvertsEveryCollectedField(t *testing.T) {
	created := sampleTime.Add(-time.Hour)
	info := &cadvisor.CgroupInfo{
		Name: "/kubepods/pod1/abc",
		Spec: cadvisor.Spec{CreationTime: created, HasCPU: true, HasMemory: true, HasProcesses: true,
			CPUShares: 512, CPUQuota: 50000, CPUPeriod: 100000, CPUMask: "0-1", HasDiskIO: true},
		Samples: []*cadvisor.Sample{fullSample(sampleTime)},
	}
	got := roundTrip[cadvisorapi.ContainerInfo](t, containerInfo(info, nil, info, cadvisorapi.ContainerInfoRequest{NumStats: 60}, testDevices))
	wantSpec := cadvisorapi.ContainerSpec{
		CreationTime: created, HasCpu: true, HasMemory: true, HasProcesses: true, HasDiskIo: true,
		Cpu:       cadvisorapi.CpuSpec{Limit: 512, Quota: 50000, Period: 100000, Mask: "0-1"},
		Memory:    cadvisorapi.MemorySpec{Limit: 212, Reservation: 213, SwapLimit: 215},
		Processes: cadvisorapi.ProcessSpec{Limit: 403},
	}
	if got.Name != info.Name || got.Id != "" || got.Aliases != nil || got.Namespace != "" {
		t.Errorf("reference = %+v, want only the cgroup name", got.ContainerReference)
	}
	if !reflect.DeepEqual(got.Spec, wantSpec) {
		t.Errorf("spec = %+v\nwant   %+v", got.Spec, wantSpec)
	}
	if len(got.Stats) != 1 {
		t.Fatalf("stats = %d, want 1", len(got.Stats))
	}
	want := cadvisorapi.ContainerStats{
		Timestamp: sampleTime,
		Cpu: cadvisorapi.CpuStats{
			Usage: cadvisorapi.CpuUsage{Total: 101, User: 102, System: 103, PerCpu: []uint64{60, 41}},
			CFS:   cadvisorapi.CpuCFS{Periods: 104, ThrottledPeriods: 105, ThrottledTime: 106},
			PSI:   cadvisorapi.PSIStats{Some: cadvisorapi.PSIData{Total: 107, Avg10: 0.5}, Full: cadvisorapi.PSIData{Total: 108, Avg300: 0.25}},
		},
		DiskIo: cadvisorapi.DiskIoStats{
			PSI: cadvisorapi.PSIStats{Full: cadvisorapi.PSIData{Total: 301, Avg60: 1.5}},
			IoServiceBytes: []cadvisorapi.PerDiskStats{
				{Device: "/dev/vda", Major: 254, Minor: 0, Stats: map[string]uint64{"Read": 501, "Write": 502}}},
			IoServiced: []cadvisorapi.PerDiskStats{
				{Device: "/dev/vda", Major: 254, Minor: 0, Stats: map[string]uint64{"Read": 503, "Write": 504}},
				{Major: 7, Minor: 3, Stats: map[string]uint64{"Read": 511, "Sync": 512, "Total": 513}}},
			IoCostUsage:   []cadvisorapi.PerDiskStats{{Device: "/dev/vda", Major: 254, Stats: map[string]uint64{"Count": 505}}},
			IoCostWait:    []cadvisorapi.PerDiskStats{{Device: "/dev/vda", Major: 254, Stats: map[string]uint64{"Count": 506}}},
			IoCostIndebt:  []cadvisorapi.PerDiskStats{{Device: "/dev/vda", Major: 254, Stats: map[string]uint64{"Count": 507}}},
			IoCostIndelay: []cadvisorapi.PerDiskStats{{Device: "/dev/vda", Major: 254, Stats: map[string]uint64{"Count": 508}}},
		},
		Memory: cadvisorapi.MemoryStats{Usage: 201, MaxUsage: 202, WorkingSet: 203, RSS: 204, Cache: 205, MappedFile: 206,
			TotalActiveFile: 207, TotalInactiveFile: 208, Failcnt: 209, Swap: 214,
			ContainerData: cadvisorapi.MemoryStatsMemoryData{Pgfault: 210, Pgmajfault: 211},
			PSI:           cadvisorapi.PSIStats{Some: cadvisorapi.PSIData{Total: 217}}},
		Processes: cadvisorapi.ProcessStats{ProcessCount: 401, ThreadsCurrent: 402, ThreadsMax: 403},
		OOMEvents: 216,
	}
	if !reflect.DeepEqual(*got.Stats[0], want) {
		t.Errorf("stats = %+v\nwant    %+v", *got.Stats[0], want)
	}
}

func TestContainerSpecLimits(t *testing.T) {
	tests := []struct {
		name       string
		spec       cadvisor.Spec
		mem        cadvisor.MemoryStats
		threads    uint64
		wantCPU    cadvisorapi.CpuSpec
		wantMemory cadvisorapi.MemorySpec
	}{
		{"v1 unlimited stays as the kernel says", cadvisor.Spec{HasCPU: true, HasMemory: true, CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000},
			cadvisor.MemoryStats{Limit: 9223372036854771712, SwapLimit: 9223372036854771712}, 0,
			cadvisorapi.CpuSpec{Limit: 2, Period: 100000}, cadvisorapi.MemorySpec{Limit: 9223372036854771712, SwapLimit: 9223372036854771712}},
		{"v2 max stays MaxUint64, as cAdvisor v0.56 reads it", cadvisor.Spec{HasMemory: true},
			cadvisor.MemoryStats{Limit: math.MaxUint64, SwapLimit: math.MaxUint64}, 0,
			cadvisorapi.CpuSpec{}, cadvisorapi.MemorySpec{Limit: math.MaxUint64, SwapLimit: math.MaxUint64}},
		{"no memory controller, no memory spec", cadvisor.Spec{HasCPU: true, CPUShares: 1024},
			cadvisor.MemoryStats{Limit: 5}, 0, cadvisorapi.CpuSpec{Limit: 1024}, cadvisorapi.MemorySpec{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sample := sampleAt(sampleTime, 0, tt.mem)
			spec := containerSpec(&cadvisor.CgroupInfo{Spec: tt.spec, Samples: []*cadvisor.Sample{sample}})
			if spec.Cpu != tt.wantCPU || spec.Memory != tt.wantMemory {
				t.Errorf("cpu/memory spec = %+v / %+v, want %+v / %+v", spec.Cpu, spec.Memory, tt.wantCPU, tt.wantMemory)
			}
		})
	}
	if spec := containerSpec(&cadvisor.CgroupInfo{Spec: cadvisor.Spec{HasMemory: true, HasCPU: true, CPUShares: 3}}); spec.Memory != (cadvisorapi.MemorySpec{}) || spec.Cpu.Limit != 3 {
		t.Errorf("spec of a cgroup without samples = %+v", spec)
	}
}

func TestAsKubelet120(t *testing.T) {
	const v1Unlimited = 9223372036854771712
	tests := []struct {
		name     string
		in, want cadvisorapi.MemorySpec
		capacity uint64
	}{
		{"v2 max memory is the machine's, max swap is none",
			cadvisorapi.MemorySpec{Limit: math.MaxUint64, SwapLimit: math.MaxUint64}, cadvisorapi.MemorySpec{Limit: 8 << 30}, 8 << 30},
		{"v1's huge value parsed in v0.38 and stays",
			cadvisorapi.MemorySpec{Limit: v1Unlimited, SwapLimit: v1Unlimited}, cadvisorapi.MemorySpec{Limit: v1Unlimited, SwapLimit: v1Unlimited}, 8 << 30},
		{"unknown machine: max stays", cadvisorapi.MemorySpec{Limit: math.MaxUint64}, cadvisorapi.MemorySpec{Limit: math.MaxUint64}, 0},
		{"a limit stays", cadvisorapi.MemorySpec{Limit: 1 << 30, SwapLimit: 1 << 30}, cadvisorapi.MemorySpec{Limit: 1 << 30, SwapLimit: 1 << 30}, 8 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := cadvisorapi.ContainerSpec{HasMemory: true, Memory: tt.in}
			asKubelet120(&spec, tt.capacity)
			if spec.Memory != tt.want {
				t.Errorf("memory spec = %+v, want %+v", spec.Memory, tt.want)
			}
		})
	}
}

// legacyFixture is a node with a root cgroup, a pod cgroup with network and
// two containers, and a sibling whose name shares the pod root's prefix.
func legacyFixture() (*cadvisor.View, []Pod) {
	pod := "/kubepods/burstable/poduid-1"
	podSamples := samplesEverySecond(3)
	for i, s := range podSamples {
		s.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{
			{Name: "eth0", RxBytes: uint64(100 * (i + 1)), TxBytes: 7}, {Name: "eth1", RxBytes: 1}}}
	}
	shifted := func(samples []*cadvisor.Sample, by time.Duration) []*cadvisor.Sample {
		for _, s := range samples {
			s.Timestamp = s.Timestamp.Add(by)
		}
		return samples
	}
	cgroup := func(name string, spec cadvisor.Spec, samples []*cadvisor.Sample) *cadvisor.CgroupInfo {
		return &cadvisor.CgroupInfo{Name: name, Spec: spec, Samples: samples}
	}
	view := &cadvisor.View{Time: sampleTime, Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for _, c := range []*cadvisor.CgroupInfo{
		cgroup("/", cadvisor.Spec{HasCPU: true, HasNetwork: true}, samplesEverySecond(3)),
		cgroup("/kubepods", cadvisor.Spec{HasCPU: true}, samplesEverySecond(3)),
		cgroup("/kubepods/burstable", cadvisor.Spec{HasCPU: true}, samplesEverySecond(3)),
		cgroup(pod, cadvisor.Spec{HasCPU: true, HasNetwork: true}, podSamples),
		// Sampled 5 ms after the pod in each pass.
		cgroup(pod+"/ctr-app", cadvisor.Spec{HasCPU: true}, shifted(samplesEverySecond(3), 5*time.Millisecond)),
		// Only two passes old.
		cgroup(pod+"/ctr-side", cadvisor.Spec{HasCPU: true}, samplesEverySecond(2)),
		cgroup(pod+"/sandbox", cadvisor.Spec{HasCPU: true}, samplesEverySecond(3)),
		cgroup("/kubepods2", cadvisor.Spec{HasCPU: true}, samplesEverySecond(1)),
		// Tracked below an untracked parent.
		cgroup("/system.slice/containerd.service", cadvisor.Spec{HasCPU: true}, samplesEverySecond(1)),
	} {
		view.Cgroups[c.Name] = c
	}
	pods := []Pod{{
		Namespace: "default", Name: "web", UID: "uid-1", Cgroup: pod,
		Containers: []Container{
			{Name: "app", ID: "ctr-app", Cgroup: pod + "/ctr-app", Image: "registry.local/app:1",
				Labels: map[string]string{"io.kubernetes.container.name": "app"}, CreatedAt: sampleTime.Add(-time.Minute)},
			{Name: "side", ID: "ctr-side", Cgroup: pod + "/ctr-side"},
			{Name: "starting", ID: "ctr-starting"},
		},
	}}
	return view, pods
}

func TestLegacyPodContainerInfo(t *testing.T) {
	view, pods := legacyFixture()
	legacy := NewCgroups(view, nil, pods)
	all := cadvisorapi.ContainerInfoRequest{NumStats: -1}
	tests := []struct {
		name                           string
		namespace, pod, uid, container string
		wantCgroup                     string
	}{
		{"by name", "default", "web", "", "app", "/kubepods/burstable/poduid-1/ctr-app"},
		{"matching uid", "default", "web", "uid-1", "side", "/kubepods/burstable/poduid-1/ctr-side"},
		{"uid mismatch", "default", "web", "uid-2", "app", ""},
		{"unknown namespace", "kube-system", "web", "", "app", ""},
		{"unknown pod", "default", "db", "", "app", ""},
		{"unknown container", "default", "web", "", "db", ""},
		{"container without a tracked cgroup", "default", "web", "", "starting", ""},
		{"the sandbox is not a container", "default", "web", "", "sandbox", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, found := legacy.PodContainerInfo(tt.namespace, tt.pod, tt.uid, tt.container, all)
			if found != (tt.wantCgroup != "") {
				t.Fatalf("found = %v, want %v", found, !found)
			}
			if found && info.Name != tt.wantCgroup {
				t.Errorf("name = %q, want %q", info.Name, tt.wantCgroup)
			}
		})
	}

	app, _ := legacy.PodContainerInfo("default", "web", "", "app", all)
	app = ptrTo(roundTrip[cadvisorapi.ContainerInfo](t, app))
	if app.Id != "ctr-app" || !slices.Equal(app.Aliases, []string{"ctr-app", app.Name}) {
		t.Errorf("reference = %+v, want the container ID and the cgroup name as aliases", app.ContainerReference)
	}
	if app.Spec.Image != "registry.local/app:1" || app.Spec.Labels["io.kubernetes.container.name"] != "app" ||
		!app.Spec.CreationTime.Equal(sampleTime.Add(-time.Minute)) || !app.Spec.HasNetwork {
		t.Errorf("spec = %+v, want CRI image, labels, creation time and the pod's network", app.Spec)
	}
	if len(app.Stats) != 3 {
		t.Fatalf("stats = %d, want 3", len(app.Stats))
	}
	for i, s := range app.Stats {
		if s.Network.Name != "eth0" || s.Network.RxBytes != uint64(100*(i+1)) || len(s.Network.Interfaces) != 2 {
			t.Errorf("sample %d network = %+v, want the pod's interfaces of the same pass", i, s.Network)
		}
	}
}

func TestLegacySubcontainers(t *testing.T) {
	view, pods := legacyFixture()
	legacy := NewCgroups(view, nil, pods)
	req := cadvisorapi.ContainerInfoRequest{NumStats: 1}
	pod := "/kubepods/burstable/poduid-1"
	got, found := legacy.Subcontainers(pod)
	if want := []string{pod, pod + "/ctr-app", pod + "/ctr-side", pod + "/sandbox"}; !found || !slices.Equal(got, want) {
		t.Errorf("subcontainers of the pod = %v, want %v", got, want)
	}
	podInfo, _ := legacy.ContainerInfo(pod, req)
	var refs []string
	for _, ref := range podInfo.Subcontainers {
		refs = append(refs, ref.Name)
	}
	if want := []string{pod + "/ctr-app", pod + "/ctr-side", pod + "/sandbox"}; !slices.Equal(refs, want) {
		t.Errorf("subcontainer references = %v, want %v", refs, want)
	}
	if got, _ := legacy.Subcontainers("/kubepods"); slices.Contains(got, "/kubepods2") {
		t.Errorf("subcontainers of /kubepods = %v: /kubepods2 is a sibling, not a child", got)
	}
	if got, _ := legacy.Subcontainers("/"); len(got) != len(view.Cgroups) || !slices.Contains(got, "/system.slice/containerd.service") {
		t.Errorf("subcontainers of / = %v, want every tracked cgroup", got)
	}
	if _, found := legacy.Subcontainers("/nope"); found {
		t.Error("an untracked cgroup was found")
	}
	if info, found := legacy.ContainerInfo("/", req); !found || len(info.Stats) != 1 || info.Stats[0].Cpu.Usage.Total != 3e9 {
		t.Errorf("root = %+v, want its newest sample", info)
	}
	if info, _ := legacy.ContainerInfo(pod+"/sandbox", req); info.Id != "" || info.Spec.HasNetwork {
		t.Errorf("a cgroup unknown to CRI = %+v, want a raw cgroup", info)
	}
	if _, found := legacy.MachineInfo(); found {
		t.Error("machine info without a machine")
	}
}

func TestLegacyNewestOfSameNamedPodsWins(t *testing.T) {
	view, pods := legacyFixture()
	newer := Pod{Namespace: "default", Name: "web", UID: "uid-9", Containers: []Container{
		{Name: "app", ID: "ctr-side", Cgroup: "/kubepods/burstable/poduid-1/ctr-side"}}}
	legacy := NewCgroups(view, nil, append(pods, newer))
	if _, found := legacy.PodContainerInfo("default", "web", "uid-1", "app", cadvisorapi.ContainerInfoRequest{}); found {
		t.Error("the older pod of a name still answers")
	}
	if info, found := legacy.PodContainerInfo("default", "web", "uid-9", "app", cadvisorapi.ContainerInfoRequest{}); !found || info.Id != "ctr-side" {
		t.Errorf("newer pod = %+v, %v", info, found)
	}
}

func TestMachineInfo(t *testing.T) {
	m := &cadvisor.Machine{
		Timestamp: sampleTime, CPUVendorID: "GenuineIntel", NumCores: 2, NumPhysicalCores: 1, NumSockets: 1,
		CPUFrequencyKHz: 2200000, MemoryCapacity: 8 << 30, SwapCapacity: 1 << 30,
		MachineID: "m", BootID: "b", SystemUUID: "u",
		HugePages:      []cadvisor.HugePages{{PageSizeKB: 2048, NumPages: 4}},
		DiskMap:        map[string]cadvisor.Disk{"8:0": {Name: "sda", Major: 8, Size: 1 << 40, Scheduler: "mq-deadline"}},
		NetworkDevices: []cadvisor.NetDevice{{Name: "eth0", MacAddress: "aa:bb", Speed: 1000, MTU: 1500}},
	}
	legacy := NewCgroups(nil, m, nil)
	info, found := legacy.MachineInfo()
	if !found {
		t.Fatal("no machine info")
	}
	got := roundTrip[cadvisorapi.MachineInfo](t, info)
	want := cadvisorapi.MachineInfo{
		Timestamp: sampleTime, CPUVendorID: "GenuineIntel", NumCores: 2, NumPhysicalCores: 1, NumSockets: 1,
		CpuFrequency: 2200000, MemoryCapacity: 8 << 30, SwapCapacity: 1 << 30,
		MachineID: "m", BootID: "b", SystemUUID: "u",
		HugePages:      []cadvisorapi.HugePagesInfo{{PageSize: 2048, NumPages: 4}},
		DiskMap:        map[string]cadvisorapi.DiskInfo{"8:0": {Name: "sda", Major: 8, Size: 1 << 40, Scheduler: "mq-deadline"}},
		NetworkDevices: []cadvisorapi.NetInfo{{Name: "eth0", MacAddress: "aa:bb", Speed: 1000, Mtu: 1500}},
		CloudProvider:  cadvisorapi.UnknownProvider, InstanceType: cadvisorapi.UnknownInstance, InstanceID: cadvisorapi.UnNamedInstance,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("machine info = %+v\nwant           %+v", got, want)
	}
	if _, found := NewCgroups(nil, nil, nil).ContainerInfo("/", cadvisorapi.ContainerInfoRequest{}); found {
		t.Error("an empty legacy view found a cgroup")
	}
}
