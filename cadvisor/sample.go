package cadvisor

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"

	"github.com/opencontainers/cgroups"
)

// readResult is what one worker found for one entry during a pass.
type readResult struct {
	sample   *Sample
	gen      uint64
	firstPID int
	vanished bool
	// netPIDs are processes whose network namespace stands for this pod
	// cgroup's network (pod cgroups only).
	netPIDs [maxNetworkCandidates]int
	nNet    int
}

// readEntry reads one cgroup and classifies failures: a cgroup that went
// away is routine; anything else is logged once per failure streak.
func (c *Collector) readEntry(e *entry, buf *[]byte) readResult {
	st := e.state.Load()
	result := readResult{gen: e.gen.Load()}
	sample, firstPID, err := c.readSample(e.name, st, buf)
	if err != nil && !isVanished(err) {
		// A cgroup torn down mid-read can leave a file half written (a
		// "malformed line"), and one recreated under the same name at once
		// defeats the existence check below: a second read tells a broken
		// cgroup from one that merely changed under us.
		sample, firstPID, err = c.readSample(e.name, st, buf)
	}
	switch {
	case err == nil:
		result.sample, result.firstPID = sample, firstPID
		if e.failing {
			c.logger.V(2).Info("Reading cgroup works again", "cgroup", e.name)
			e.failing = false
		}
	case isVanished(err) || !c.anyDirExists(st.paths):
		result.vanished = true
		c.logger.V(4).Info("Cgroup vanished while reading it", "cgroup", e.name, "err", err)
	case !e.failing:
		e.failing = true
		c.logger.Error(err, "Failed to read cgroup; keeping its previous samples", "cgroup", e.name)
	default:
		c.logger.V(4).Info("Reading cgroup still fails", "cgroup", e.name, "err", err)
	}
	return result
}

func (c *Collector) anyDirExists(paths cgroupPaths) bool {
	for _, dir := range paths.dirs() {
		if isDir(dir) {
			return true
		}
	}
	return false
}

// readSample reads one cgroup. The v1 library calls return zeros rather
// than errors for a directory that disappeared, so cgroup.procs is read
// last: if it is gone, so is the cgroup, and the sample is dropped.
func (c *Collector) readSample(name string, st *entryState, buf *[]byte) (*Sample, int, error) {
	stats, at, err := readStats(st)
	if err != nil && !st.tolerateStatsErrors {
		return nil, 0, fmt.Errorf("read stats of cgroup %s: %w", name, err)
	}
	sample := &Sample{Timestamp: at, cpus: c.machine.NumCores}
	unified := c.mounts.hierarchy == HierarchyV2
	if stats != nil {
		sample.CPU = cpuFromStats(&stats.CpuStats)
		if st.spec.HasMemory {
			sample.Memory = memoryFromStats(&stats.MemoryStats, unified)
		}
		if st.hasPids {
			sample.Processes.ThreadsCount = stats.PidsStats.Current
			sample.Processes.ThreadsLimit = stats.PidsStats.Limit
		}
	}
	if st.spec.HasMemory {
		if name == "/" {
			if err := c.fillRootMemory(&sample.Memory, stats, unified); err != nil {
				return nil, 0, err
			}
		} else {
			if sample.Memory.Limit == 0 {
				sample.Memory.Limit = c.machine.MemoryCapacity
			}
			oomKills, err := st.manager.OOMKillCount()
			if err != nil && !isVanished(err) {
				return nil, 0, fmt.Errorf("read oom kills of cgroup %s: %w", name, err)
			}
			sample.Memory.OOMKills = oomKills
		}
		sample.Memory.Reservation = st.spec.reservation
	}
	if err := readPressure(sample, st, buf); err != nil {
		return nil, 0, err
	}
	if err := readDiskIO(sample, &st.spec.io, buf); err != nil {
		return nil, 0, err
	}
	data, err := readInto(*buf, st.procsFile)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, 0, err
	}
	count, firstPID := countProcs(data)
	sample.Processes.Count = count
	return sample, firstPID, nil
}

// fillRootMemory applies cAdvisor's raw-handler rules for "/": the limits
// are the machine's memory and swap, swap usage is SwapTotal-SwapFree, and
// on cgroup2, which has no memory.current at the root, usage is anon+file.
func (c *Collector) fillRootMemory(mem *MemoryStats, stats *cgroups.Stats, unified bool) error {
	if unified && stats != nil {
		mem.Usage = unifiedRootUsage(stats.MemoryStats.Stats)
		mem.WorkingSet = WorkingSet(mem.Usage, mem.InactiveFile)
	}
	mem.Limit = c.machine.MemoryCapacity
	mem.SwapLimit = c.machine.SwapCapacity
	meminfo, err := c.procFS.Meminfo()
	if err != nil {
		return fmt.Errorf("read %s: %w", filepath.Join(c.cfg.ProcRoot, "meminfo"), err)
	}
	if meminfo.SwapTotal != nil && meminfo.SwapFree != nil && *meminfo.SwapTotal >= *meminfo.SwapFree {
		mem.SwapUsage = (*meminfo.SwapTotal - *meminfo.SwapFree) * 1024
	}
	return nil
}

// readPressure reads the pressure files the library does not: all three on
// hybrid (from the cgroup2 mount), io.pressure on v2.
func readPressure(sample *Sample, st *entryState, buf *[]byte) error {
	var err error
	if st.cpuPressure != "" {
		if sample.CPU.PSI, err = readPSI(buf, st.cpuPressure); err != nil {
			return err
		}
	}
	if st.memoryPressure != "" && st.spec.HasMemory {
		if sample.Memory.PSI, err = readPSI(buf, st.memoryPressure); err != nil {
			return err
		}
	}
	if st.ioPressure != "" {
		if sample.IOPressure, err = readPSI(buf, st.ioPressure); err != nil {
			return err
		}
	}
	return nil
}

func readPSI(buf *[]byte, path string) (*PSIStats, error) {
	data, err := readInto(*buf, path)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, err
	}
	psi, err := parsePSI(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return psi, nil
}

// readNetworks fills the network of the root (pid 1's namespace) and of
// every pod cgroup (the namespace of a process found in the pod: all
// containers of a pod share the sandbox's namespace).
func (c *Collector) readNetworks(ctx context.Context, entries []*entry, results []readResult) {
	clear(c.passIndex)
	for i, e := range entries {
		if e.pod == e.name {
			c.passIndex[e.name] = i
		}
	}
	var jobs []int
	for i, e := range entries {
		r := &results[i]
		if r.sample == nil {
			continue
		}
		if e.name == "/" && e.state.Load().spec.HasNetwork {
			r.netPIDs[0], r.nNet = 1, 1
			jobs = append(jobs, i)
			continue
		}
		if r.firstPID == 0 || e.pod == "" {
			continue
		}
		podIndex, ok := c.passIndex[e.pod]
		if !ok || results[podIndex].sample == nil {
			continue
		}
		pod := &results[podIndex]
		if pod.nNet == 0 {
			jobs = append(jobs, podIndex)
		}
		if pod.nNet < maxNetworkCandidates {
			pod.netPIDs[pod.nNet] = r.firstPID
			pod.nNet++
		}
	}
	c.parallel(ctx, len(jobs), func(worker, j int) {
		r := &results[jobs[j]]
		for _, pid := range r.netPIDs[:r.nNet] {
			ifaces, err := c.readNetDev(&c.buffers[worker], pid)
			if err == nil {
				r.sample.Network = &NetworkStats{Interfaces: ifaces}
				return
			}
			if !isVanished(err) {
				c.logger.V(2).Info("Failed to read network stats", "cgroup", entries[jobs[j]].name, "pid", pid, "err", err)
			}
		}
	})
}

func (c *Collector) readNetDev(buf *[]byte, pid int) ([]InterfaceStats, error) {
	path := filepath.Join(c.cfg.ProcRoot, strconv.Itoa(pid), "net", "dev")
	data, err := readInto(*buf, path)
	*buf = data[:cap(data)]
	if err != nil {
		return nil, err
	}
	ifaces, err := parseNetDev(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return FilterInterfaces(ifaces), nil
}
