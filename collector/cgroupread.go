package collector

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// controllerReader reads a cgroup's controller files into a sample.
// readSample calls readBeforeCPU, then readCPU, and stamps the sample right
// after: a rate is Δusage/Δtimestamp, so nothing slow may come between the
// CPU usage read and the clock.
//
// The readers read exactly the files the stats surface uses, each once,
// into the worker's buffer (what opencontainers/cgroups' Stats read and
// was thrown away is listed in docs/performance.md); the values follow the
// library's parsing, which is what cAdvisor and so the kubelet read.
type controllerReader interface {
	readBeforeCPU(buf *[]byte, s *cadvisor.Sample) error
	readCPU(buf *[]byte, s *cadvisor.Sample) error
}

// v1Reader reads the memory, pids, cpu and cpuacct hierarchies of cgroup v1.
type v1Reader struct {
	mounts *mounts
	name   string
	// has lists the hierarchies the cgroup's directories are read in (never
	// pids for the root, as in cAdvisor).
	has hierarchySet
	// root skips the memory limits and OOM counter, which the root takes
	// from the machine (fillRootMemory) or does not have.
	root bool
	// useHierarchy is memory.use_hierarchy, read with the spec: the kernel
	// only lets it change while the cgroup has no children, and since 5.x
	// it is always 1.
	useHierarchy bool
	// memsw is whether memory.memsw.limit_in_bytes exists (swap accounting).
	memsw bool
}

// dir is the cgroup's directory in hierarchy h.
func (r *v1Reader) dir(h hierarchyID) cgroupDir { return r.mounts.dir(h, r.name) }

func (r *v1Reader) readBeforeCPU(buf *[]byte, s *cadvisor.Sample) error {
	if r.has.has(hMemory) {
		if err := r.readMemory(buf, &s.Memory); err != nil {
			return err
		}
	}
	if r.has.has(hPids) {
		return readPids(buf, unix.AT_FDCWD, r.dir(hPids), &s.Processes)
	}
	return nil
}

// readMemory reads memory.stat, usage, max usage, failcnt and, except for
// the root, the limits and the OOM kill counter, from one directory
// descriptor.
func (r *v1Reader) readMemory(buf *[]byte, mem *cadvisor.MemoryStats) error {
	dir := r.dir(hMemory)
	dirfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	read := func(name string) ([]byte, error) {
		data, err := readFileAt(*buf, dirfd, dir, name)
		*buf = data[:cap(data)]
		return data, err
	}
	data, err := read("memory.stat")
	if err != nil {
		return err
	}
	stat, err := parseMemoryStat(data)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	stat.applyV1(mem, r.useHierarchy)
	values := []struct {
		file   string
		target *uint64
	}{
		{"memory.usage_in_bytes", &mem.Usage},
		{"memory.max_usage_in_bytes", &mem.MaxUsage},
		{"memory.failcnt", &mem.Failcnt},
		{"memory.limit_in_bytes", &mem.Limit},
		{"memory.memsw.limit_in_bytes", &mem.SwapLimit},
	}
	for _, v := range values {
		if r.root && v.target == &mem.Limit {
			break // the root's limits are the machine's
		}
		if v.target == &mem.SwapLimit && !r.memsw {
			continue
		}
		if err := readValue(buf, dirfd, dir, v.file, v.target); err != nil {
			return err
		}
	}
	mem.WorkingSet = cadvisor.WorkingSet(mem.Usage, mem.InactiveFile)
	if r.root {
		return nil
	}
	data, err = read("memory.oom_control")
	if isVanished(err) {
		return nil // no OOM counter (the library's reading too)
	}
	if err != nil {
		return err
	}
	if mem.OOMKills, err = valueOfKey(data, "oom_kill"); err != nil {
		return fmt.Errorf("%s/memory.oom_control: %w", dir, err)
	}
	return nil
}

// readCPU reads cpu.stat's CFS counters, cpuacct.stat's user and system
// split, the per-CPU usage and, last, the total. The kernel computes
// cpuacct.usage as the sum of the per-CPU counters, but reads each file at
// its own moment: the total is read from its own file, as the library and
// so the kubelet read it, and last, right before the sample is stamped.
func (r *v1Reader) readCPU(buf *[]byte, s *cadvisor.Sample) error {
	if r.has.has(hCPU) {
		dir := r.dir(hCPU)
		data, err := readFileAt(*buf, unix.AT_FDCWD, dir, "cpu.stat")
		*buf = data[:cap(data)]
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		stat, err := parseCPUStat(data)
		if err != nil {
			return fmt.Errorf("%s: %w", dir, err)
		}
		s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTime = stat.periods, stat.throttledPeriods, stat.throttled
	}
	if !r.has.has(hCPUAcct) {
		return nil
	}
	dir := r.dir(hCPUAcct)
	data, err := readFileAt(*buf, unix.AT_FDCWD, dir, "cpuacct.stat")
	*buf = data[:cap(data)]
	if err != nil {
		return err
	}
	if s.CPU.UsageUser, s.CPU.UsageSystem, err = parseCPUAcctStat(data); err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	data, err = readFileAt(*buf, unix.AT_FDCWD, dir, "cpuacct.usage_percpu")
	*buf = data[:cap(data)]
	if err != nil {
		return err
	}
	var perCPU [64]uint64
	values, err := parsePerCPU(data, perCPU[:0])
	if err != nil {
		return fmt.Errorf("%s: %w", dir, err)
	}
	if len(values) > 0 {
		s.CPU.PerCPU = append([]uint64(nil), values...)
	}
	return readValue(buf, unix.AT_FDCWD, dir, "cpuacct.usage", &s.CPU.UsageTotal)
}

// v2Reader reads one cgroup2 directory. Which optional files exist is
// decided when the reader is built (newState), so a pass opens no file in
// vain.
type v2Reader struct {
	dir cgroupDir
	// root has no memory.current and takes its limits from the machine.
	root bool
	// memory is whether the memory controller is enabled (memory.stat).
	memory bool
	// peak is memory.peak (kernel 5.19+), swap memory.swap.current and
	// memory.swap.max, pids pids.current and pids.max.
	peak, swap, pids bool
}

func (r *v2Reader) readBeforeCPU(buf *[]byte, s *cadvisor.Sample) error {
	if !r.memory && !r.pids {
		return nil
	}
	dirfd, err := openDir(r.dir)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	if r.memory {
		if err := r.readMemory(buf, dirfd, &s.Memory); err != nil {
			return err
		}
	}
	if r.pids {
		return readPids(buf, dirfd, r.dir, &s.Processes)
	}
	return nil
}

// readMemory follows the library's statMemory and cAdvisor's cgroup2
// reading: usage memory.current, MaxUsage memory.peak, limit memory.max
// ("max" is MaxUint64), swap the swap-only counters.
func (r *v2Reader) readMemory(buf *[]byte, dirfd int, mem *cadvisor.MemoryStats) error {
	data, err := readFileAt(*buf, dirfd, r.dir, "memory.stat")
	*buf = data[:cap(data)]
	if err != nil {
		return err
	}
	stat, err := parseMemoryStat(data)
	if err != nil {
		return fmt.Errorf("%s: %w", r.dir, err)
	}
	stat.applyV2(mem)
	if r.root {
		mem.Usage = stat.unifiedRootUsage()
		mem.WorkingSet = cadvisor.WorkingSet(mem.Usage, mem.InactiveFile)
		return nil
	}
	values := []struct {
		file   string
		target *uint64
		read   bool
	}{
		{"memory.current", &mem.Usage, true},
		{"memory.max", &mem.Limit, true},
		{"memory.peak", &mem.MaxUsage, r.peak},
		{"memory.swap.current", &mem.SwapUsage, r.swap},
		{"memory.swap.max", &mem.SwapLimit, r.swap},
	}
	for _, v := range values {
		if !v.read {
			continue
		}
		if err := readValue(buf, dirfd, r.dir, v.file, v.target); err != nil {
			return err
		}
	}
	mem.WorkingSet = cadvisor.WorkingSet(mem.Usage, mem.InactiveFile)
	data, err = readFileAt(*buf, dirfd, r.dir, "memory.events")
	*buf = data[:cap(data)]
	if isVanished(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if mem.OOMKills, err = valueOfKey(data, "oom_kill"); err != nil {
		return fmt.Errorf("%s/memory.events: %w", r.dir, err)
	}
	return nil
}

// readCPU reads cpu.stat, which on cgroup2 has the usage and, with the
// cpu controller enabled, the CFS counters.
func (r *v2Reader) readCPU(buf *[]byte, s *cadvisor.Sample) error {
	data, err := readFileAt(*buf, unix.AT_FDCWD, r.dir, "cpu.stat")
	*buf = data[:cap(data)]
	if err != nil {
		return err
	}
	stat, err := parseCPUStat(data)
	if err != nil {
		return fmt.Errorf("%s: %w", r.dir, err)
	}
	s.CPU.UsageTotal, s.CPU.UsageUser, s.CPU.UsageSystem = stat.usageUsec*1000, stat.userUsec*1000, stat.systemUsec*1000
	s.CPU.Periods, s.CPU.ThrottledPeriods, s.CPU.ThrottledTime = stat.periods, stat.throttledPeriods, stat.throttled*1000
	return nil
}

// readPids reads pids.current and pids.max; an unlimited pids.max ("max")
// is 0, as the library reports it.
func readPids(buf *[]byte, dirfd int, dir cgroupDir, p *cadvisor.ProcessStats) error {
	if err := readValue(buf, dirfd, dir, "pids.current", &p.ThreadsCount); err != nil {
		return err
	}
	if err := readValue(buf, dirfd, dir, "pids.max", &p.ThreadsLimit); err != nil {
		return err
	}
	if p.ThreadsLimit == ^uint64(0) {
		p.ThreadsLimit = 0
	}
	return nil
}

// readValue reads a one-value file of dir into target.
func readValue(buf *[]byte, dirfd int, dir cgroupDir, name string, target *uint64) error {
	data, err := readFileAt(*buf, dirfd, dir, name)
	*buf = data[:cap(data)]
	if err != nil {
		return err
	}
	v, err := parseCgroupValue(data)
	if err != nil {
		return fmt.Errorf("%s/%s: %w", dir, name, err)
	}
	*target = v
	return nil
}
