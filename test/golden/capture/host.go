package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// hierarchy is one cgroup mount the server reads, as it appears under the
// tree's cgroup/ directory: name "memory" is cgroup/memory, name "" (v2)
// is cgroup/ itself.
type hierarchy struct {
	name string
	dir  string
}

// host is this machine's cgroup layout.
type host struct {
	layout string // "v1", "hybrid" or "v2"
	mount  string
	// hierarchies are the mounts the collector reads (the v1 controllers
	// and cpuset, plus the cgroup2 mount on hybrid and v2), each once:
	// co-mounted controllers ("cpu,cpuacct" with cpu and cpuacct links)
	// are listed under their real directory, links in links.
	hierarchies []hierarchy
	links       map[string]string // v1 link name -> target, e.g. cpu -> cpu,cpuacct
	// ioDevice is the "major:minor" of the scratch directory's disk, for
	// limits.ioBps; "" when it has none.
	ioDevice string
	// enabledAtRoot are the controllers the capture turned on in the v2
	// root's subtree_control, turned off again by restoreRoot.
	enabledAtRoot []string
}

// v1Read are the v1 hierarchies the collector reads.
var v1Read = []string{"memory", "cpu", "cpuacct", "pids", "blkio", "cpuset"}

func detectHost(mount string) (*host, error) {
	if fileExists(filepath.Join(mount, "cgroup.controllers")) {
		return &host{layout: "v2", mount: mount, hierarchies: []hierarchy{{name: "", dir: mount}}}, nil
	}
	h := &host{layout: "v1", mount: mount, links: map[string]string{}}
	seen := map[string]bool{}
	for _, name := range v1Read {
		dir := filepath.Join(mount, name)
		if target, err := os.Readlink(dir); err == nil {
			h.links[name] = target
			dir = filepath.Join(mount, target)
			name = filepath.Base(target)
		}
		if !isDir(dir) || seen[name] {
			continue
		}
		seen[name] = true
		h.hierarchies = append(h.hierarchies, hierarchy{name: name, dir: dir})
	}
	if len(h.hierarchies) == 0 {
		return nil, fmt.Errorf("no cgroup v2 and none of the v1 hierarchies %v under %s", v1Read, mount)
	}
	if unified := filepath.Join(mount, "unified"); fileExists(filepath.Join(unified, "cgroup.controllers")) {
		h.layout = "hybrid"
		h.hierarchies = append(h.hierarchies, hierarchy{name: "unified", dir: unified})
	}
	return h, nil
}

// mkdir creates the cgroup in every hierarchy. v1 cpuset children start
// without CPUs and memory nodes, so they get their parent's; on v2 the
// parent is given the controllers first.
func (h *host) mkdir(name string) error {
	for _, hier := range h.hierarchies {
		dir := filepath.Join(hier.dir, name)
		if h.layout == "v2" {
			if err := h.enableControllers(filepath.Dir(dir)); err != nil {
				return err
			}
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
		if hier.name == "cpuset" {
			for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
				if err := copyValue(filepath.Join(filepath.Dir(dir), file), filepath.Join(dir, file)); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// kubeletControllers are the v2 controllers the kubelet turns on.
var kubeletControllers = []string{"cpu", "cpuset", "memory", "pids", "io", "hugetlb"}

// enableControllers turns on, in dir's subtree_control, the kubelet's
// controllers that dir has and has not turned on yet; each alone, so that
// one the kernel lacks does not stop the others. What it turns on at the
// root is remembered for restoreRoot.
func (h *host) enableControllers(dir string) error {
	available, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return fmt.Errorf("read controllers of %s: %w", dir, err)
	}
	enabled, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("read subtree_control of %s: %w", dir, err)
	}
	for _, controller := range strings.Fields(string(available)) {
		if !slices.Contains(kubeletControllers, controller) || slices.Contains(strings.Fields(string(enabled)), controller) {
			continue
		}
		if err := writeValue(filepath.Join(dir, "cgroup.subtree_control"), "+"+controller); err != nil {
			return err
		}
		if dir == h.mount {
			h.enabledAtRoot = append(h.enabledAtRoot, controller)
		}
	}
	return nil
}

// restoreRoot turns off what enableControllers turned on at the root.
func (h *host) restoreRoot() error {
	var errs []error
	for _, controller := range h.enabledAtRoot {
		errs = append(errs, writeValue(filepath.Join(h.mount, "cgroup.subtree_control"), "-"+controller))
	}
	return errors.Join(errs...)
}

// setLimits applies the kubelet's settings in the hierarchy's own terms.
func (h *host) setLimits(name string, l limits) error {
	for _, hier := range h.hierarchies {
		dir := filepath.Join(hier.dir, name)
		var files map[string]string
		switch {
		case h.layout == "v2":
			files = v2Limits(l)
		case hier.name == "cpu" || strings.Contains(hier.name, "cpu,"):
			files = v1CPULimits(l)
		case hier.name == "memory" && l.memoryBytes > 0:
			files = map[string]string{"memory.limit_in_bytes": strconv.FormatUint(l.memoryBytes, 10)}
		case hier.name == "blkio" && l.ioBps > 0 && h.ioDevice != "":
			rule := h.ioDevice + " " + strconv.FormatUint(l.ioBps, 10)
			files = map[string]string{"blkio.throttle.read_bps_device": rule, "blkio.throttle.write_bps_device": rule}
		}
		for file, value := range files {
			path := filepath.Join(dir, file)
			if !fileExists(path) {
				// The controller is not enabled: the tree shows that.
				fmt.Fprintf(os.Stderr, "capture: no %s, so %s is left unset\n", path, value)
				continue
			}
			if err := writeValue(path, value); err != nil {
				return err
			}
		}
	}
	return nil
}

func v1CPULimits(l limits) map[string]string {
	files := map[string]string{}
	if l.shares > 0 {
		files["cpu.shares"] = strconv.FormatUint(l.shares, 10)
	}
	if l.quotaUs > 0 {
		files["cpu.cfs_period_us"] = "100000"
		files["cpu.cfs_quota_us"] = strconv.FormatInt(l.quotaUs, 10)
	}
	return files
}

// v2Limits converts like the kubelet's CpuSharesToCpuWeight.
func v2Limits(l limits) map[string]string {
	files := map[string]string{}
	if l.shares > 0 {
		files["cpu.weight"] = strconv.FormatUint(1+((l.shares-2)*9999)/262142, 10)
	}
	if l.quotaUs > 0 {
		files["cpu.max"] = strconv.FormatInt(l.quotaUs, 10) + " 100000"
	}
	if l.memoryBytes > 0 {
		files["memory.max"] = strconv.FormatUint(l.memoryBytes, 10)
	}
	return files
}

// join moves the process into the cgroup in every hierarchy.
func (h *host) join(name string, pid int) error {
	for _, hier := range h.hierarchies {
		if err := writeValue(filepath.Join(hier.dir, name, "cgroup.procs"), strconv.Itoa(pid)); err != nil {
			return err
		}
	}
	return nil
}

// rmdir removes the cgroup from every hierarchy; one that is already gone
// is fine.
func (h *host) rmdir(name string) error {
	var errs []error
	for _, hier := range h.hierarchies {
		if err := os.Remove(filepath.Join(hier.dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// diskOf is the "major:minor" of the whole disk holding dir ("" for a
// filesystem without one, such as tmpfs): blkio rules name disks, not
// partitions.
func diskOf(dir string) string {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil || unix.Major(st.Dev) == 0 {
		return ""
	}
	block := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	if fileExists(filepath.Join(block, "partition")) {
		block = filepath.Join(block, "..")
	}
	dev, err := os.ReadFile(filepath.Join(block, "dev"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(dev))
}

func writeValue(path, value string) error {
	if err := os.WriteFile(path, []byte(value), 0); err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, err)
	}
	return nil
}

func copyValue(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return fmt.Errorf("read %s: %w", from, err)
	}
	return writeValue(to, strings.TrimSpace(string(data)))
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
