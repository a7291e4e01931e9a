package collector

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// readResult is what one worker found for one entry during a pass.
type readResult struct {
	sample   *cadvisor.Sample
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
	case isVanished(err) || !c.anyDirExists(e.name, st.dirs):
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

func (c *Collector) anyDirExists(name string, dirs hierarchySet) bool {
	for h := range numHierarchies {
		if dirs.has(h) && isDir(c.mounts.dir(h, name).String()) {
			return true
		}
	}
	return false
}

// sampleBlock is a sample and the pressure stats it points to, allocated
// as one object instead of four.
type sampleBlock struct {
	cadvisor.Sample
	psi [3]cadvisor.PSIStats
}

// readSample reads one cgroup: its controllers (the CPU last, then the
// clock: see controllerReader), pressure, I/O, and cgroup.procs last. A
// file that vanished means the cgroup did; one that reads but whose
// cgroup.procs is gone by the end is dropped too.
func (c *Collector) readSample(name string, st *entryState, buf *[]byte) (*cadvisor.Sample, int, error) {
	block := &sampleBlock{}
	sample := &block.Sample
	sample.CPUs = c.machine.NumCores
	if err := st.reader.readBeforeCPU(buf, sample); err != nil {
		return nil, 0, fmt.Errorf("read cgroup %s: %w", name, err)
	}
	if err := st.reader.readCPU(buf, sample); err != nil {
		return nil, 0, fmt.Errorf("read cpu of cgroup %s: %w", name, err)
	}
	sample.Timestamp = time.Now()
	if st.spec.HasMemory {
		if name == "/" {
			if err := c.fillRootMemory(&sample.Memory); err != nil {
				return nil, 0, err
			}
		} else if sample.Memory.Limit == 0 {
			sample.Memory.Limit = c.machine.MemoryCapacity
		}
		sample.Memory.Reservation = st.spec.reservation
	}
	dirs := c.dirs(name, st)
	if err := readPressure(block, st, dirs.pressure, buf); err != nil {
		return nil, 0, err
	}
	if err := readDiskIO(sample, &st.spec.io, dirs.io, buf); err != nil {
		return nil, 0, err
	}
	data, err := readListAt(*buf, dirs.procs, "cgroup.procs")
	*buf = data[:cap(data)]
	if err != nil {
		return nil, 0, err
	}
	count, firstPID := countProcs(data)
	sample.Processes.Count = count
	return sample, firstPID, nil
}

// fillRootMemory applies cAdvisor's raw-handler rules for "/": the limits
// are the machine's memory and swap, and swap usage is SwapTotal-SwapFree.
func (c *Collector) fillRootMemory(mem *cadvisor.MemoryStats) error {
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

// readPressure reads the cgroup's PSI files into the block, relative to
// one descriptor of their directory. A file that is missing or refuses to
// be read (ENOTSUP: a kernel that needs psi=1) leaves that pressure nil, as
// the library's statPSI does; memory pressure is read only where memory is.
func readPressure(block *sampleBlock, st *entryState, dir cgroupDir, buf *[]byte) error {
	wanted := st.pressure
	wanted[1] = wanted[1] && st.spec.HasMemory
	if wanted == [numPressureFiles]bool{} {
		return nil
	}
	dirfd, err := openDir(dir)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	targets := [numPressureFiles]**cadvisor.PSIStats{&block.CPU.PSI, &block.Memory.PSI, &block.IOPressure}
	for i, file := range pressureFiles {
		if !wanted[i] {
			continue
		}
		data, err := readFileAt(*buf, dirfd, dir, file)
		*buf = data[:cap(data)]
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTSUP) {
			continue
		}
		if err != nil {
			return err
		}
		if err := parsePSIInto(data, &block.psi[i]); err != nil {
			return fmt.Errorf("parse %s/%s: %w", dir, file, err)
		}
		*targets[i] = &block.psi[i]
	}
	return nil
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
				r.sample.Network = &cadvisor.NetworkStats{Interfaces: ifaces}
				return
			}
			if !isVanished(err) {
				c.logger.V(2).Info("Failed to read network stats", "cgroup", entries[jobs[j]].name, "pid", pid, "err", err)
			}
		}
	})
}

func (c *Collector) readNetDev(buf *[]byte, pid int) ([]cadvisor.InterfaceStats, error) {
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
