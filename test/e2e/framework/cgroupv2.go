package framework

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// delegateControllers enables, in mountpoint and in each existing ancestor
// of cgroupPath below it, every controller the cgroup has for its
// children, as runc's and the kubelet's cgroup managers do before creating
// a cgroup on v2. Without it a pod cgroup made by mkdir has no memory.max,
// and its memory limit was silently not set. A mountpoint without
// cgroup.controllers (a v1 hierarchy) is left alone.
func delegateControllers(mountpoint, cgroupPath string) error {
	if _, err := os.Stat(filepath.Join(mountpoint, "cgroup.controllers")); err != nil {
		return nil
	}
	dir := mountpoint
	parts := strings.Split(strings.Trim(cgroupPath, "/"), "/")
	for _, part := range parts[:len(parts)-1] {
		if err := enableSubtreeControllers(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	return enableSubtreeControllers(dir)
}

// enableSubtreeControllers writes +<controller> for each controller in
// dir's cgroup.controllers to its cgroup.subtree_control.
func enableSubtreeControllers(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("controllers of %s: %w", dir, err)
	}
	controllers := strings.Fields(string(data))
	if len(controllers) == 0 {
		return nil
	}
	for i, c := range controllers {
		controllers[i] = "+" + c
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(controllers, " ")), 0o644); err != nil {
		return fmt.Errorf("delegate controllers of %s: %w", dir, err)
	}
	return nil
}

// IsCgroupV2 reports whether this machine runs cgroup v2 alone (no v1
// controllers).
func IsCgroupV2() bool {
	_, err := os.Stat("/sys/fs/cgroup/cgroup.controllers")
	return err == nil
}

// CPUUsageNanos is a cgroup's cumulative CPU time in nanoseconds from the
// kernel's own file: cpuacct.usage on cgroup v1, usage_usec of cpu.stat on
// v2 (microseconds there).
func CPUUsageNanos(cgroupPath string) (uint64, error) {
	if !IsCgroupV2() {
		data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup/cpuacct", cgroupPath, "cpuacct.usage"))
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	}
	data, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", cgroupPath, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "usage_usec "); ok {
			usec, err := strconv.ParseUint(v, 10, 64)
			return usec * 1000, err
		}
	}
	return 0, fmt.Errorf("no usage_usec in cpu.stat of %s", cgroupPath)
}

// ReportedCPUShares is the cpu shares cAdvisor (and so the server) reports
// for a container the kubelet gave shares: the same on v1; on v2 runc
// stores them as cpu.weight and cAdvisor converts the weight back, which
// rounds (256 becomes weight 10, reported as 237).
func ReportedCPUShares(shares uint64) uint64 {
	if !IsCgroupV2() {
		return shares
	}
	weight := 1 + ((shares-2)*9999)/262142 // runc's ConvertCPUSharesToCgroupV2Value
	return 2 + ((weight-1)*262142)/9999    // cAdvisor's inverse
}
