package cadvisor

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// cgroupPaths are the directories of one cgroup in the hierarchies we read.
type cgroupPaths struct {
	// v1 maps a v1 controller to the cgroup's directory in it; only
	// directories that exist are listed.
	v1 map[string]string
	// unified is the cgroup's directory in the cgroup2 hierarchy (v2: all
	// files; hybrid: PSI), "" when it does not exist.
	unified string
}

func (p cgroupPaths) equal(o cgroupPaths) bool {
	if p.unified != o.unified || len(p.v1) != len(o.v1) {
		return false
	}
	for k, v := range p.v1 {
		if o.v1[k] != v {
			return false
		}
	}
	return true
}

// dirs lists every directory, v1 controllers in v1Controllers order.
func (p cgroupPaths) dirs() []string {
	var out []string
	for _, controller := range v1Controllers {
		if dir, ok := p.v1[controller]; ok {
			out = append(out, dir)
		}
	}
	if p.unified != "" {
		out = append(out, p.unified)
	}
	return out
}

// specInputs is what readSpec found in the files; turning it into a Spec
// (specFromInputs) is pure.
type specInputs struct {
	unified bool
	hasCPU  bool
	hasMem  bool
	// v1 cpu.shares / cfs_quota_us / cfs_period_us, or v2 cpu.weight / cpu.max.
	shares, weight string
	quota, period  string
	cpuMax         string
	cpuMask        string
	// reservation is v1 memory.soft_limit_in_bytes or v2 memory.min.
	reservation string
	hasDiskIO   bool
	io          ioFiles
	// oldest is the oldest mtime among the cgroup's directories and their
	// cgroup.clone_children / cgroup.events files; zero if none was found.
	oldest time.Time
}

// cgroupSpec is the Spec plus what a sample needs but the Spec type does not
// carry.
type cgroupSpec struct {
	Spec
	reservation uint64
	io          ioFiles
}

// specFromInputs applies cAdvisor's GetSpec rules (container/common/helpers.go).
func specFromInputs(in specInputs, bootTime time.Time, numCores int) cgroupSpec {
	var out cgroupSpec
	out.HasCPU = in.hasCPU
	out.HasMemory = in.hasMem
	out.HasProcesses = true
	out.HasDiskIO = in.hasDiskIO
	out.io = in.io
	if !in.oldest.IsZero() {
		out.CreationTime = in.oldest
		if out.CreationTime.Before(bootTime) {
			out.CreationTime = bootTime
		}
	}
	out.CPUQuota = -1
	if in.unified {
		if weight, ok := parseTrimmedUint([]byte(in.weight)); ok && weight >= 1 && weight <= 10000 {
			out.CPUShares = 2 + ((weight-1)*262142)/9999
		}
		if quota, period, ok := strings.Cut(strings.TrimSpace(in.cpuMax), " "); ok {
			if q, err := strconv.ParseInt(quota, 10, 64); err == nil {
				out.CPUQuota = q
			}
			out.CPUPeriod, _ = strconv.ParseUint(period, 10, 64)
		}
	} else {
		out.CPUShares, _ = parseTrimmedUint([]byte(in.shares))
		out.CPUPeriod, _ = parseTrimmedUint([]byte(in.period))
		if q, err := strconv.ParseInt(strings.TrimSpace(in.quota), 10, 64); err == nil && q > 0 {
			out.CPUQuota = q
		}
	}
	out.CPUMask = strings.TrimSpace(in.cpuMask)
	if out.CPUMask == "" {
		out.CPUMask = "0"
		if numCores > 1 {
			out.CPUMask = fmt.Sprintf("0-%d", numCores-1)
		}
	}
	if v, ok := parseTrimmedUint([]byte(in.reservation)); ok {
		out.reservation = v
	}
	return out
}

// readSpecInputs reads the few files the spec needs. Missing files leave
// their field empty: a cgroup without a controller simply has no such spec.
// With prev (a rescan of an unchanged cgroup) the creation time and the I/O
// files are carried over instead of looked up again: at 2,000 cgroups they
// were 14 of the 20 syscalls per cgroup a rescan made.
func (c *Collector) readSpecInputs(name string, paths cgroupPaths, prev *cgroupSpec) specInputs {
	in := specInputs{unified: c.mounts.hierarchy == HierarchyV2}
	var scratch [256]byte
	read := func(dir, file string) string {
		if dir == "" {
			return ""
		}
		data, err := readFileAt(scratch[:], unix.AT_FDCWD, dir, file)
		if err != nil {
			return ""
		}
		return string(bytes.TrimSpace(data))
	}
	if in.unified {
		dir := paths.unified
		in.hasCPU = true
		in.hasMem = name == "/" || fileExists(filepath.Join(dir, "memory.max"))
		in.weight = read(dir, "cpu.weight")
		in.cpuMax = read(dir, "cpu.max")
		in.cpuMask = read(dir, "cpuset.cpus.effective")
		in.reservation = read(dir, "memory.min")
		in.hasDiskIO = true
		if prev == nil {
			in.io.stat = existingFile(dir, "io.stat")
		}
	} else {
		cpu, hasCPU := paths.v1["cpu"]
		_, hasCPUAcct := paths.v1["cpuacct"]
		memory, hasMem := paths.v1["memory"]
		in.hasCPU = hasCPU || hasCPUAcct
		in.hasMem = hasMem
		in.shares = read(cpu, "cpu.shares")
		in.quota = read(cpu, "cpu.cfs_quota_us")
		in.period = read(cpu, "cpu.cfs_period_us")
		if c.mounts.cpuset != "" {
			in.cpuMask = read(filepath.Join(c.mounts.cpuset, name), "cpuset.cpus")
		}
		in.reservation = read(memory, "memory.soft_limit_in_bytes")
		if prev == nil {
			blkio := filepath.Join(c.cfg.CgroupMount, "blkio", name)
			in.hasDiskIO = isDir(blkio)
			if in.hasDiskIO {
				in.io.blkio = blkioCandidates(blkio, usesBFQ(c.machine.DiskMap))
			}
		}
	}
	if prev != nil {
		in.oldest, in.io = prev.CreationTime, prev.io
		in.hasDiskIO = prev.HasDiskIO
		return in
	}
	in.oldest = oldestModTime(paths)
	return in
}

// oldestModTime is cAdvisor's creation time heuristic: a cgroup directory's
// mtime changes when children come and go, so the mtime of
// cgroup.clone_children (v1) or cgroup.events (cgroup2), which the kernel
// sets at mkdir, is used when it is older.
func oldestModTime(paths cgroupPaths) time.Time {
	var oldest time.Time
	consider := func(path string) {
		if fi, err := os.Stat(path); err == nil && (oldest.IsZero() || fi.ModTime().Before(oldest)) {
			oldest = fi.ModTime()
		}
	}
	for _, dir := range paths.v1 {
		consider(dir)
		consider(filepath.Join(dir, "cgroup.clone_children"))
	}
	if paths.unified != "" {
		consider(paths.unified)
		consider(filepath.Join(paths.unified, "cgroup.events"))
	}
	return oldest
}
