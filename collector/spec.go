package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

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
	cadvisor.Spec
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
func (c *Collector) readSpecInputs(name string, dirs hierarchySet, prev *cgroupSpec) specInputs {
	in := specInputs{unified: c.mounts.hierarchy == HierarchyV2}
	var scratch [256]byte
	read := func(h hierarchyID, file string) string {
		if !dirs.has(h) {
			return ""
		}
		return readSpecFile(scratch[:], c.mounts.dir(h, name), file)
	}
	if in.unified {
		dir := c.mounts.dir(hUnified, name)
		in.hasCPU = true
		in.hasMem = name == "/" || fileExists(dir.file("memory.max"))
		in.weight = read(hUnified, "cpu.weight")
		in.cpuMax = read(hUnified, "cpu.max")
		in.cpuMask = read(hUnified, "cpuset.cpus.effective")
		in.reservation = read(hUnified, "memory.min")
		in.hasDiskIO = true
		if prev == nil {
			in.io = ioFiles{stat: fileExists(dir.file("io.stat"))}
		}
	} else {
		in.hasCPU = dirs.has(hCPU) || dirs.has(hCPUAcct)
		in.hasMem = dirs.has(hMemory)
		in.shares = read(hCPU, "cpu.shares")
		in.quota = read(hCPU, "cpu.cfs_quota_us")
		in.period = read(hCPU, "cpu.cfs_period_us")
		if c.mounts.cpuset != "" {
			in.cpuMask = readSpecFile(scratch[:], cgroupDir{mount: c.mounts.cpuset, name: name}, "cpuset.cpus")
		}
		in.reservation = read(hMemory, "memory.soft_limit_in_bytes")
		if prev == nil && c.mounts.blkio != "" {
			blkio := cgroupDir{mount: c.mounts.blkio, name: name}
			in.hasDiskIO = isDir(blkio.String())
			if in.hasDiskIO {
				in.io = ioFiles{blkio: blkioCandidates(blkio, usesBFQ(c.machine.DiskMap))}
			}
		}
	}
	if prev != nil {
		in.oldest, in.io = prev.CreationTime, prev.io
		in.hasDiskIO = prev.HasDiskIO
		return in
	}
	in.oldest = c.oldestModTime(name, dirs)
	return in
}

// readSpecFile reads a one-value file of the spec, trimmed; "" when it
// cannot be read.
func readSpecFile(scratch []byte, dir cgroupDir, file string) string {
	data, err := readFileAt(scratch, unix.AT_FDCWD, dir, file)
	if err != nil {
		return ""
	}
	return string(bytes.TrimSpace(data))
}

// oldestModTime is cAdvisor's creation time heuristic: a cgroup directory's
// mtime changes when children come and go, so the mtime of
// cgroup.clone_children (v1) or cgroup.events (cgroup2), which the kernel
// sets at mkdir, is used when it is older.
func (c *Collector) oldestModTime(name string, dirs hierarchySet) time.Time {
	var oldest time.Time
	consider := func(path string) {
		if fi, err := os.Stat(path); err == nil && (oldest.IsZero() || fi.ModTime().Before(oldest)) {
			oldest = fi.ModTime()
		}
	}
	for h := range numHierarchies {
		if !dirs.has(h) {
			continue
		}
		dir := c.mounts.dir(h, name).String()
		consider(dir)
		if h == hUnified {
			consider(filepath.Join(dir, "cgroup.events"))
		} else {
			consider(filepath.Join(dir, "cgroup.clone_children"))
		}
	}
	return oldest
}
