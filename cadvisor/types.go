package cadvisor

import (
	"strconv"
	"time"
)

// Sample is one reading of one cgroup, taken at Timestamp. Samples are
// immutable once published: the store hands out pointers and never writes
// through them again.
type Sample struct {
	// Timestamp is when the cgroup files were read: right after the cpu
	// usage, which rates need it to match (see readStats).
	Timestamp time.Time
	CPU       CPUStats
	Memory    MemoryStats
	// IOPressure is the io.pressure of the cgroup; nil where the kernel has none.
	IOPressure *PSIStats
	// DiskIO is the cgroup's I/O per block device, this cgroup and its
	// descendants, in the order the kernel lists the devices: v2 io.stat,
	// v1 blkio (the files cAdvisor reads). Nil when the kernel lists none.
	DiskIO    []DiskIO
	Processes ProcessStats
	// Network is filled for the root cgroup (pid 1's namespace) and for pod
	// cgroups (the namespace of a process in the pod); nil otherwise.
	Network *NetworkStats
	// CPUs is the machine's CPU count when the sample was read, 0 when
	// unknown: NanoCores never reports more than CPUs × 1e9.
	CPUs int
}

// CPUStats holds cumulative counters in nanoseconds.
type CPUStats struct {
	UsageTotal  uint64
	UsageUser   uint64
	UsageSystem uint64
	// PerCPU is per-CPU cumulative usage where the cgroup reports it (v1 cpuacct).
	PerCPU           []uint64
	Periods          uint64
	ThrottledPeriods uint64
	ThrottledTime    uint64
	// PSI is nil where the kernel has no cpu.pressure for this cgroup.
	PSI *PSIStats
}

// MemoryStats holds bytes and counters of the memory controller.
type MemoryStats struct {
	Usage    uint64
	MaxUsage uint64
	// WorkingSet is Usage - InactiveFile, floored at 0.
	WorkingSet   uint64
	RSS          uint64
	Cache        uint64
	MappedFile   uint64
	ActiveFile   uint64
	InactiveFile uint64
	Failcnt      uint64
	// PageFaults and MajorPageFaults are pgfault/pgmajfault of memory.stat:
	// this cgroup only on v1, hierarchical on v2.
	PageFaults      uint64
	MajorPageFaults uint64
	// Limit is memory.limit_in_bytes / memory.max; math.MaxUint64 or a
	// value > 2^62 means unlimited. The root's limit is the machine's MemTotal.
	Limit uint64
	// Reservation is memory.soft_limit_in_bytes (v1) / memory.min (v2).
	Reservation uint64
	// SwapUsage is swap in use by the cgroup (v1 swap/total_swap, v2
	// memory.swap.current, root: SwapTotal-SwapFree).
	SwapUsage uint64
	// SwapLimit follows cAdvisor: v1 memory.memsw.limit_in_bytes (mem+swap),
	// v2 memory.swap.max, root: SwapTotal.
	SwapLimit uint64
	// OOMKills counts OOM kills in this cgroup where the kernel reports them
	// (v2 memory.events oom_kill, v1 memory.oom_control oom_kill).
	OOMKills uint64
	PSI      *PSIStats
}

// PSIStats is a pressure file: some and full lines.
type PSIStats struct {
	Some PSIData
	Full PSIData
}

// PSIData is one line of a pressure file. Total is in microseconds.
type PSIData struct {
	Total  uint64
	Avg10  float64
	Avg60  float64
	Avg300 float64
}

// ProcessStats counts what lives in the cgroup.
type ProcessStats struct {
	// Count is the number of lines of cgroup.procs (processes, not threads).
	Count uint64
	// ThreadsCount is pids.current where the pids controller exists.
	ThreadsCount uint64
	// ThreadsLimit is pids.max (0 when unlimited or unknown).
	ThreadsLimit uint64
}

// IOOp is an operation of cAdvisor's per-device I/O stats, named as in
// v1's blkio files; v2's io.stat maps to Read and Write.
type IOOp uint8

// The operations, in the order v1's blkio files list them.
const (
	IORead IOOp = iota
	IOWrite
	IOSync
	IOAsync
	IODiscard
	IOTotal
	// NumIOOps is the number of operations, not an operation.
	NumIOOps
)

var ioOpNames = [NumIOOps]string{"Read", "Write", "Sync", "Async", "Discard", "Total"}

// String is the operation's name in cAdvisor's stats ("Read", "Write", ...).
func (op IOOp) String() string {
	if op >= NumIOOps {
		return "IOOp(" + strconv.Itoa(int(op)) + ")"
	}
	return ioOpNames[op]
}

// IOOps is a set of operations.
type IOOps uint8

// Has reports whether op is in the set.
func (s IOOps) Has(op IOOp) bool { return s&(1<<op) != 0 }

// Add puts op in the set.
func (s *IOOps) Add(op IOOp) { *s |= 1 << op }

// DiskIO is the cumulative I/O of one cgroup on one block device.
type DiskIO struct {
	Major, Minor uint64
	// Bytes and IOs are bytes transferred and I/Os completed per operation
	// (v1 io_service_bytes / io_serviced, v2 rbytes, wbytes / rios, wios);
	// HasBytes and HasIOs say which operations the kernel listed.
	Bytes, IOs       [NumIOOps]uint64
	HasBytes, HasIOs IOOps
	// Cost is blk-iocost's cost.usage, cost.wait, cost.indebt and
	// cost.indelay in microseconds (v2 with iocost enabled); nil otherwise.
	Cost *IOCost
}

// IOCost is blk-iocost's accounting of one cgroup on one device, in
// microseconds.
type IOCost struct {
	Usage, Wait, Indebt, Indelay uint64
}

// NetworkStats lists interfaces of one network namespace in /proc/<pid>/net/dev
// order, after dropping lo, veth*, docker* and nerdctl* like cAdvisor.
type NetworkStats struct {
	Interfaces []InterfaceStats
}

// InterfaceStats are the counters of one line of /proc/<pid>/net/dev.
type InterfaceStats struct {
	Name      string
	RxBytes   uint64
	RxPackets uint64
	RxErrors  uint64
	RxDropped uint64
	TxBytes   uint64
	TxPackets uint64
	TxErrors  uint64
	TxDropped uint64
}

// Spec describes a cgroup; it is read when the cgroup is discovered and
// refreshed on rescans.
type Spec struct {
	// CreationTime is the cgroup directory's oldest mtime across the
	// hierarchies we read, clamped to be no earlier than boot time (cAdvisor).
	CreationTime time.Time
	HasCPU       bool
	HasMemory    bool
	HasNetwork   bool
	HasProcesses bool
	// HasDiskIO follows cAdvisor's GetSpec: on v2 every cgroup, on v1 a
	// cgroup with a blkio directory.
	HasDiskIO bool
	CPUShares uint64
	CPUQuota  int64 // -1 or 0 when unlimited
	CPUPeriod uint64
	CPUMask   string
}

// CgroupInfo is the published view of one tracked cgroup.
type CgroupInfo struct {
	// Name is the cgroup path relative to the hierarchy root, "/" for the
	// root, e.g. "/kubepods/burstable/pod<uid>/<container-id>".
	Name string
	Spec Spec
	// Samples are the newest two samples (one after the first pass),
	// oldest first: what rates, summaries and metrics read. AllSamples adds
	// the older ones the collector keeps for the retention window.
	Samples []*Sample
	// History holds the samples before Samples, oldest first, encoded
	// relative to each other and to Samples[0] (history.go); empty for a
	// CgroupInfo built by hand.
	History History
}

// History is a cgroup's samples before its newest two, encoded (history.go)
// by a SampleRing; the zero value holds none. It is immutable.
type History struct {
	records []byte
}

// AllSamples returns every retained sample oldest first: the older ones,
// decoded into new Samples on each call (the legacy JSON endpoints'
// num_stats and time ranges need them), then Samples. The slice is the
// caller's.
func (ci *CgroupInfo) AllSamples() []*Sample {
	if ci == nil {
		return nil
	}
	if len(ci.History.records) == 0 || len(ci.Samples) == 0 {
		return append([]*Sample(nil), ci.Samples...)
	}
	return append(decodeHistory(ci.History.records, ci.Samples[0], len(ci.Samples)), ci.Samples...)
}

// SampleCount is how many samples AllSamples returns, without decoding.
func (ci *CgroupInfo) SampleCount() int {
	if ci == nil {
		return 0
	}
	return countRecords(ci.History.records) + len(ci.Samples)
}

// Latest returns the newest sample or nil.
func (ci *CgroupInfo) Latest() *Sample {
	if ci == nil || len(ci.Samples) == 0 {
		return nil
	}
	return ci.Samples[len(ci.Samples)-1]
}

// Previous returns the sample before the newest one, or nil.
func (ci *CgroupInfo) Previous() *Sample {
	if ci == nil || len(ci.Samples) < 2 {
		return nil
	}
	return ci.Samples[len(ci.Samples)-2]
}

// View is an immutable picture of every tracked cgroup after one
// housekeeping pass. Nothing in it is written after it is returned.
type View struct {
	// Time is when the housekeeping pass finished.
	Time    time.Time
	Cgroups map[string]*CgroupInfo
}

// Get returns the named cgroup or nil.
func (v *View) Get(name string) *CgroupInfo {
	if v == nil {
		return nil
	}
	return v.Cgroups[name]
}

// FsStats is the statfs of a directory's filesystem with cAdvisor's
// semantics: Capacity = blocks*bsize, Usage = Capacity - bfree*bsize,
// Available = bavail*bsize.
type FsStats struct {
	Timestamp  time.Time
	Capacity   uint64
	Usage      uint64
	Available  uint64
	Inodes     uint64
	InodesFree uint64
}

// Rlimit is the node's process limits (kubelet pidlimit).
type Rlimit struct {
	Timestamp time.Time
	// MaxPID is min(pid_max, threads-max); nil when neither file is readable.
	MaxPID *int64
	// CurProc is the number of scheduling entities from /proc/loadavg.
	CurProc *int64
}
