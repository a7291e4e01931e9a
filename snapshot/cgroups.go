package snapshot

import (
	"math"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// Cgroups is one tick's cgroup tree in cAdvisor's terms, with the pod and
// container that owns each cgroup: it answers the kubelet's cAdvisor JSON
// endpoints (/stats/, /stats/container, /stats/<pod>/<container>, /spec/),
// labels /metrics/cadvisor, names the owner of an OOM kill, and gives the
// page its history. It is built once per tick and never modified; its
// methods only read memory, so requests do no I/O.
type Cgroups struct {
	view    *cadvisor.View
	machine *cadvisorapi.MachineInfo
	// memoryCapacity replaces a memory limit of "max" in the JSON routes, as
	// kubelet 1.20's cAdvisor did (asKubelet120).
	memoryCapacity uint64
	// children lists the tracked direct child cgroups of each cgroup,
	// sorted; built on first use, since only the JSON routes' subcontainer
	// references need it and a snapshot is built every tick.
	childrenOnce sync.Once
	children     map[string][]string
	pods         map[podKey]*indexedPod
	// byCgroup finds the CRI identity of a container's cgroup.
	byCgroup map[string]cgroupOwner
	// podByCgroup finds a pod by its pod cgroup.
	podByCgroup map[string]*indexedPod
	// devices names block devices in I/O stats.
	devices deviceNames
	version *cadvisorapi.VersionInfo
}

// Pod is what the legacy endpoints know of one pod: its identity, its
// cgroup and its running containers.
type Pod struct {
	Namespace, Name, UID string
	// Cgroup is the pod cgroup's name ("" when it is not tracked).
	Cgroup     string
	Containers []Container
}

// Container is one running container of a pod.
type Container struct {
	Name string
	// ID is the runtime's container ID (the cgroup's ID without a runtime).
	ID string
	// Cgroup is the container cgroup's name ("" when it is not tracked).
	Cgroup string
	// Image and Labels come from CRI; empty without a runtime.
	Image  string
	Labels map[string]string
	// CreatedAt is CRI's creation time, or the cgroup's without a runtime.
	CreatedAt time.Time
}

type indexedPod struct {
	Pod
	containers map[string]*Container
}

type cgroupOwner struct {
	container *Container
	pod       *indexedPod
}

// samePassTolerance bounds how far apart a container's sample and its pod's
// sample may be to count as one housekeeping pass: a pass reads every cgroup
// within milliseconds, and passes are at least a second apart.
const samePassTolerance = 500 * time.Millisecond

// NewCgroups indexes one tick's view, machine and pods. Pods and containers
// are looked up by name; where a name repeats, the later entry wins, so
// callers list the newest last. machine may be nil (then /spec/ has no
// answer).
func NewCgroups(view *cadvisor.View, machine *cadvisor.Machine, pods []Pod) *Cgroups {
	if view == nil {
		view = &cadvisor.View{}
	}
	l := &Cgroups{
		view:     view,
		pods:     make(map[podKey]*indexedPod, len(pods)),
		byCgroup: map[string]cgroupOwner{},

		podByCgroup: make(map[string]*indexedPod, len(pods)),
	}
	if machine != nil {
		l.machine = machineInfo(machine)
		l.devices = newDeviceNames(machine.DiskMap)
		l.memoryCapacity = machine.MemoryCapacity
		l.version = &cadvisorapi.VersionInfo{KernelVersion: machine.KernelVersion, ContainerOsVersion: machine.OSVersion}
	}
	for _, in := range pods {
		pod := &indexedPod{Pod: in, containers: make(map[string]*Container, len(in.Containers))}
		pod.Containers = append([]Container(nil), in.Containers...)
		for i := range pod.Containers {
			container := &pod.Containers[i]
			pod.containers[container.Name] = container
			if container.Cgroup != "" {
				l.byCgroup[container.Cgroup] = cgroupOwner{container: container, pod: pod}
			}
		}
		l.pods[podKey{namespace: in.Namespace, name: in.Name}] = pod
		if in.Cgroup != "" {
			l.podByCgroup[in.Cgroup] = pod
		}
	}
	return l
}

// VersionInfo is what cAdvisor's version metric reports: the kernel and OS
// versions (no cAdvisor or Docker version, as in the kubelet's build);
// false when the machine is unknown. The result is shared.
func (l *Cgroups) VersionInfo() (*cadvisorapi.VersionInfo, bool) {
	return l.version, l.version != nil
}

// PodOfCgroup names the pod whose pod cgroup is cgroup or one of its
// ancestors, so that a pod's sandbox and containers are attributed to it.
func (l *Cgroups) PodOfCgroup(cgroup string) (namespace, name string, ok bool) {
	for current := cgroup; ; current = path.Dir(current) {
		if pod := l.podByCgroup[current]; pod != nil {
			return pod.Namespace, pod.Name, true
		}
		if current == "/" || current == "." {
			return "", "", false
		}
	}
}

// Owner names the pod, and the container if it is one, whose cgroup is
// cgroup or holds it.
func (l *Cgroups) Owner(cgroup string) (namespace, pod, container string, ok bool) {
	if identity, found := l.byCgroup[cgroup]; found {
		return identity.pod.Namespace, identity.pod.Name, identity.container.Name, true
	}
	namespace, pod, ok = l.PodOfCgroup(cgroup)
	return namespace, pod, "", ok
}

// AllContainerInfo is every tracked cgroup's ContainerInfo with its newest
// sample, keyed by cgroup name: cAdvisor's recursive request from "/" with
// count 1, what its Prometheus collector reads. Specs are those of kubelet
// 1.36's cAdvisor (v0.56.2), which reads an unlimited limit as MaxUint64
// (the collector then reports 0), not the JSON routes' kubelet 1.20 ones.
func (l *Cgroups) AllContainerInfo() map[string]*cadvisorapi.ContainerInfo {
	names, _ := l.Subcontainers("/")
	out := make(map[string]*cadvisorapi.ContainerInfo, len(names))
	req := cadvisorapi.ContainerInfoRequest{NumStats: 1}
	for _, name := range names {
		if info := l.view.Get(name); info != nil {
			out[name] = l.containerInfo(info, req)
		}
	}
	return out
}

// MachineInfo is the /spec/ answer; false when the machine is unknown. The
// result is shared: callers must not modify it.
func (l *Cgroups) MachineInfo() (*cadvisorapi.MachineInfo, bool) {
	return l.machine, l.machine != nil
}

// ContainerInfo is the cAdvisor ContainerInfo of a tracked cgroup ("/",
// "/kubepods/burstable/pod<uid>/<id>"), with its samples selected by req, as
// kubelet 1.20's JSON routes served it; false when the cgroup is not tracked.
func (l *Cgroups) ContainerInfo(cgroup string, req cadvisorapi.ContainerInfoRequest) (*cadvisorapi.ContainerInfo, bool) {
	info := l.view.Get(cgroup)
	if info == nil {
		return nil, false
	}
	out := l.containerInfo(info, req)
	asKubelet120(&out.Spec, l.memoryCapacity)
	return out, true
}

// Subcontainers names the cgroup and every tracked cgroup below it, sorted;
// false when the cgroup itself is not tracked. Callers convert them one by
// one with ContainerInfo, so that a large answer can be streamed.
func (l *Cgroups) Subcontainers(cgroup string) ([]string, bool) {
	if l.view.Get(cgroup) == nil {
		return nil, false
	}
	names := []string{cgroup}
	// By prefix like cAdvisor's getSubcontainers, so that a tracked cgroup
	// below an untracked one is still found.
	prefix := strings.TrimSuffix(cgroup, "/") + "/"
	for name := range l.view.Cgroups {
		if name != cgroup && strings.HasPrefix(name, prefix) {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names, true
}

// PodContainerInfo is ContainerInfo for a running container of a pod, found
// by namespace, pod name and container name. uid, when not empty, must be
// the pod's UID. False when any of them does not match or the container's
// cgroup is not tracked.
func (l *Cgroups) PodContainerInfo(namespace, pod, uid, container string, req cadvisorapi.ContainerInfoRequest) (*cadvisorapi.ContainerInfo, bool) {
	found := l.pods[podKey{namespace: namespace, name: pod}]
	if found == nil || (uid != "" && uid != found.UID) {
		return nil, false
	}
	c := found.containers[container]
	if c == nil || c.Cgroup == "" {
		return nil, false
	}
	return l.ContainerInfo(c.Cgroup, req)
}

// containerInfo converts one tracked cgroup, with its CRI identity and its
// pod's network where it is a known container.
func (l *Cgroups) containerInfo(info *cadvisor.CgroupInfo, req cadvisorapi.ContainerInfoRequest) *cadvisorapi.ContainerInfo {
	var identity *Container
	network := info
	if id, ok := l.byCgroup[info.Name]; ok {
		identity = id.container
		if podCgroup := l.view.Get(id.pod.Cgroup); podCgroup != nil {
			network = podCgroup
		}
	}
	out := containerInfo(info, identity, network, req, l.devices)
	l.childrenOnce.Do(func() { l.children = childCgroups(l.view) })
	for _, child := range l.children[info.Name] {
		out.Subcontainers = append(out.Subcontainers, cadvisorapi.ContainerReference{Name: child})
	}
	return out
}

// childCgroups maps every tracked cgroup to its tracked direct children.
func childCgroups(view *cadvisor.View) map[string][]string {
	children := map[string][]string{}
	for name := range view.Cgroups {
		if name == "/" {
			continue
		}
		parent := path.Dir(name)
		children[parent] = append(children[parent], name)
	}
	for _, names := range children {
		sort.Strings(names)
	}
	return children
}

// containerInfo converts a cgroup to cAdvisor's info/v1 ContainerInfo. The
// samples of network, when it is another cgroup (the pod of a container),
// supply the interfaces of each sample taken in the same pass.
func containerInfo(info *cadvisor.CgroupInfo, identity *Container, network *cadvisor.CgroupInfo,
	req cadvisorapi.ContainerInfoRequest, devices deviceNames) *cadvisorapi.ContainerInfo {
	out := &cadvisorapi.ContainerInfo{
		ContainerReference: cadvisorapi.ContainerReference{Name: info.Name},
		Spec:               containerSpec(info),
	}
	if network != nil && network.Latest() != nil && network.Latest().Network != nil {
		out.Spec.HasNetwork = true
	}
	if identity != nil {
		// cAdvisor's containerd handler: the ID and the cgroup name as aliases.
		out.Id = identity.ID
		out.Aliases = []string{identity.ID, info.Name}
		out.Spec.Image = identity.Image
		out.Spec.Labels = identity.Labels
		if !identity.CreatedAt.IsZero() {
			out.Spec.CreationTime = identity.CreatedAt
		}
	}
	samples, history := retainedSamples(info, req)
	var networkSamples []*cadvisor.Sample
	if network != nil && network != info {
		networkSamples = network.Samples
		if history {
			networkSamples = network.AllSamples()
		}
	}
	for _, sample := range selectSamples(samples, req) {
		stats := containerStats(sample, devices)
		netSample := sample
		if network != nil && network != info {
			netSample = nearestSample(networkSamples, sample.Timestamp, samePassTolerance)
		}
		if netSample != nil {
			stats.Network = legacyNetworkStats(netSample.Network)
		}
		out.Stats = append(out.Stats, stats)
	}
	return out
}

// containerSpec follows cAdvisor v0.56.2's GetSpec for what the collector
// reads: cpu shares, quota, period and mask; memory limit, reservation and
// swap limit from the newest sample, an unlimited one as the kernel says it
// (v1's huge value, v2's "max" as MaxUint64, as readUInt64 reads it); the
// pids limit.
func containerSpec(info *cadvisor.CgroupInfo) cadvisorapi.ContainerSpec {
	spec := info.Spec
	out := cadvisorapi.ContainerSpec{
		CreationTime: spec.CreationTime,
		HasCpu:       spec.HasCPU,
		HasMemory:    spec.HasMemory,
		HasNetwork:   spec.HasNetwork,
		HasProcesses: spec.HasProcesses,
		HasDiskIo:    spec.HasDiskIO,
	}
	if spec.HasCPU {
		out.Cpu = cadvisorapi.CpuSpec{Limit: spec.CPUShares, Mask: spec.CPUMask, Period: spec.CPUPeriod}
		if spec.CPUQuota > 0 {
			out.Cpu.Quota = uint64(spec.CPUQuota)
		}
	}
	latest := info.Latest()
	if latest == nil {
		return out
	}
	if spec.HasMemory {
		mem := latest.Memory
		out.Memory = cadvisorapi.MemorySpec{Limit: mem.Limit, Reservation: mem.Reservation, SwapLimit: mem.SwapLimit}
	}
	if spec.HasProcesses {
		out.Processes.Limit = latest.Processes.ThreadsLimit
	}
	return out
}

// asKubelet120 gives a spec kubelet 1.20's reading of cgroup2's "max", the
// reference of the JSON routes: its cAdvisor (v0.38) read "max" as 0, and
// getAdjustedSpec made a memory limit of 0 the machine's memory; the swap
// limit stayed 0. v1's huge value parsed, and stays.
func asKubelet120(spec *cadvisorapi.ContainerSpec, memoryCapacity uint64) {
	if !spec.HasMemory {
		return
	}
	if spec.Memory.Limit == math.MaxUint64 && memoryCapacity > 0 {
		spec.Memory.Limit = memoryCapacity
	}
	if spec.Memory.SwapLimit == math.MaxUint64 {
		spec.Memory.SwapLimit = 0
	}
}

// retainedSamples returns the samples req selects from: the newest two
// (Samples) when they are enough, the newest NumStats with no time range,
// as every /metrics/cadvisor build and most JSON requests ask; otherwise
// every retained sample, the older ones decoded (history true).
func retainedSamples(info *cadvisor.CgroupInfo, req cadvisorapi.ContainerInfoRequest) (samples []*cadvisor.Sample, history bool) {
	if req.Start.IsZero() && req.End.IsZero() && req.NumStats >= 0 && req.NumStats <= len(info.Samples) {
		return info.Samples, false
	}
	if info.SampleCount() == len(info.Samples) {
		return info.Samples, false
	}
	return info.AllSamples(), true
}

// selectSamples applies a ContainerInfoRequest like cAdvisor's
// TimedStore.InTimeRange: samples within [Start, End] (a zero bound is
// open), the newest NumStats of them (a negative NumStats means all),
// oldest first. samples must be oldest first; the result shares its array.
func selectSamples(samples []*cadvisor.Sample, req cadvisorapi.ContainerInfoRequest) []*cadvisor.Sample {
	lo, hi := 0, len(samples)
	if !req.Start.IsZero() {
		lo = sort.Search(len(samples), func(i int) bool { return !samples[i].Timestamp.Before(req.Start) })
	}
	if !req.End.IsZero() {
		hi = sort.Search(len(samples), func(i int) bool { return samples[i].Timestamp.After(req.End) })
	}
	if lo >= hi {
		return nil
	}
	if req.NumStats >= 0 && hi-lo > req.NumStats {
		lo = hi - req.NumStats
	}
	return samples[lo:hi]
}

// nearestSample is the sample of samples (oldest first) closest to at, or
// nil when none is within tolerance.
func nearestSample(samples []*cadvisor.Sample, at time.Time, tolerance time.Duration) *cadvisor.Sample {
	i := sort.Search(len(samples), func(i int) bool { return !samples[i].Timestamp.Before(at) })
	var best *cadvisor.Sample
	bestDistance := tolerance + 1
	for _, j := range []int{i - 1, i} {
		if j < 0 || j >= len(samples) {
			continue
		}
		if d := absDuration(samples[j].Timestamp.Sub(at)); d < bestDistance {
			best, bestDistance = samples[j], d
		}
	}
	return best
}

func absDuration(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// containerStats converts one sample. Fields the collector does not read
// stay zero; docs/legacy-endpoints.md lists them.
func containerStats(s *cadvisor.Sample, devices deviceNames) *cadvisorapi.ContainerStats {
	out := &cadvisorapi.ContainerStats{
		Timestamp: s.Timestamp,
		Cpu: cadvisorapi.CpuStats{
			Usage: cadvisorapi.CpuUsage{
				Total:  s.CPU.UsageTotal,
				PerCpu: s.CPU.PerCPU,
				User:   s.CPU.UsageUser,
				System: s.CPU.UsageSystem,
			},
			CFS: cadvisorapi.CpuCFS{
				Periods:          s.CPU.Periods,
				ThrottledPeriods: s.CPU.ThrottledPeriods,
				ThrottledTime:    s.CPU.ThrottledTime,
			},
			PSI: psi(s.CPU.PSI),
		},
		DiskIo: diskIoStats(s.DiskIO, devices, psi(s.IOPressure)),
		Memory: cadvisorapi.MemoryStats{
			Usage:             s.Memory.Usage,
			MaxUsage:          s.Memory.MaxUsage,
			Cache:             s.Memory.Cache,
			RSS:               s.Memory.RSS,
			Swap:              s.Memory.SwapUsage,
			MappedFile:        s.Memory.MappedFile,
			WorkingSet:        s.Memory.WorkingSet,
			TotalActiveFile:   s.Memory.ActiveFile,
			TotalInactiveFile: s.Memory.InactiveFile,
			Failcnt:           s.Memory.Failcnt,
			ContainerData: cadvisorapi.MemoryStatsMemoryData{
				Pgfault:    s.Memory.PageFaults,
				Pgmajfault: s.Memory.MajorPageFaults,
			},
			PSI: psi(s.Memory.PSI),
		},
		Processes: cadvisorapi.ProcessStats{
			ProcessCount:   s.Processes.Count,
			ThreadsCurrent: s.Processes.ThreadsCount,
			ThreadsMax:     s.Processes.ThreadsLimit,
		},
		OOMEvents: s.Memory.OOMKills,
	}
	return out
}

// legacyNetworkStats lists the interfaces and, like cAdvisor's libcontainer
// handler, inlines the first one.
func legacyNetworkStats(in *cadvisor.NetworkStats) cadvisorapi.NetworkStats {
	var out cadvisorapi.NetworkStats
	if in == nil || len(in.Interfaces) == 0 {
		return out
	}
	out.Interfaces = make([]cadvisorapi.InterfaceStats, len(in.Interfaces))
	for i, iface := range in.Interfaces {
		out.Interfaces[i] = cadvisorapi.InterfaceStats{
			Name:      iface.Name,
			RxBytes:   iface.RxBytes,
			RxPackets: iface.RxPackets,
			RxErrors:  iface.RxErrors,
			RxDropped: iface.RxDropped,
			TxBytes:   iface.TxBytes,
			TxPackets: iface.TxPackets,
			TxErrors:  iface.TxErrors,
			TxDropped: iface.TxDropped,
		}
	}
	out.InterfaceStats = out.Interfaces[0]
	return out
}

func psi(in *cadvisor.PSIStats) cadvisorapi.PSIStats {
	if in == nil {
		return cadvisorapi.PSIStats{}
	}
	return cadvisorapi.PSIStats{
		Full: cadvisorapi.PSIData{Total: in.Full.Total, Avg10: in.Full.Avg10, Avg60: in.Full.Avg60, Avg300: in.Full.Avg300},
		Some: cadvisorapi.PSIData{Total: in.Some.Total, Avg10: in.Some.Avg10, Avg60: in.Some.Avg60, Avg300: in.Some.Avg300},
	}
}

// machineInfo converts the machine facts. Topology, filesystems, memory by
// type and NVM stay empty; cloud fields say "unknown" as cAdvisor's do on a
// machine where no cloud was detected.
func machineInfo(m *cadvisor.Machine) *cadvisorapi.MachineInfo {
	out := &cadvisorapi.MachineInfo{
		Timestamp:        m.Timestamp,
		CPUVendorID:      m.CPUVendorID,
		NumCores:         m.NumCores,
		NumPhysicalCores: m.NumPhysicalCores,
		NumSockets:       m.NumSockets,
		CpuFrequency:     m.CPUFrequencyKHz,
		MemoryCapacity:   m.MemoryCapacity,
		SwapCapacity:     m.SwapCapacity,
		MachineID:        m.MachineID,
		SystemUUID:       m.SystemUUID,
		BootID:           m.BootID,
		CloudProvider:    cadvisorapi.UnknownProvider,
		InstanceType:     cadvisorapi.UnknownInstance,
		InstanceID:       cadvisorapi.UnNamedInstance,
	}
	for _, hp := range m.HugePages {
		out.HugePages = append(out.HugePages, cadvisorapi.HugePagesInfo{PageSize: hp.PageSizeKB, NumPages: hp.NumPages})
	}
	if m.DiskMap != nil {
		out.DiskMap = make(map[string]cadvisorapi.DiskInfo, len(m.DiskMap))
		for key, disk := range m.DiskMap {
			out.DiskMap[key] = cadvisorapi.DiskInfo{Name: disk.Name, Major: disk.Major, Minor: disk.Minor, Size: disk.Size, Scheduler: disk.Scheduler}
		}
	}
	for _, dev := range m.NetworkDevices {
		out.NetworkDevices = append(out.NetworkDevices, cadvisorapi.NetInfo{
			Name: dev.Name, MacAddress: dev.MacAddress, Speed: int64(dev.Speed), Mtu: int64(dev.MTU),
		})
	}
	return out
}

// podKey names a pod within the node.
type podKey struct{ namespace, name string }
