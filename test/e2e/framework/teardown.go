package framework

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// teardownTimeout bounds each teardown phase that waits on the kernel
	// or on containerd, so that a broken machine fails Stop instead of
	// hanging the test binary.
	teardownTimeout = 30 * time.Second
	gracefulStop    = 10 * time.Second
)

// Stop tears everything down: the pods through CRI while containerd still
// answers (it restarts a killed containerd for that), then containerd and
// every leftover process by PID, the mounts under the work dir (including
// the pods' network namespaces), the pod cgroups and the cgroup parents it
// created, the pod log dirs, the bridge, and the work dir. It is safe to
// call more than once; the work dir is kept for inspection if any step
// fails.
func (r *Runtime) Stop() error {
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil
	}
	r.stopped = true
	wasStarted := r.conn != nil
	pods := make([]*Pod, 0, len(r.pods))
	for _, p := range r.pods {
		pods = append(pods, p)
	}
	r.mu.Unlock()

	var errs []error
	if wasStarted {
		ctx, cancel := context.WithTimeout(context.Background(), 2*teardownTimeout)
		if !r.Running() {
			if err := r.start(ctx); err != nil {
				r.logf("teardown: could not restart containerd to remove pods cleanly: %v", err)
			}
		}
		if r.Running() {
			if err := r.removeAllSandboxes(ctx); err != nil {
				r.logf("teardown: %v", err)
			}
		}
		cancel()
		errs = append(errs, r.stopContainerd())
	}
	errs = append(errs, killProcesses(r.leftoverPIDs, r.logf))
	errs = append(errs, UnmountUnder(r.dir))
	for _, p := range pods {
		errs = append(errs, removePodCgroup(p))
		errs = append(errs, r.removePodDirs(p))
	}
	for i := len(r.createdParents) - 1; i >= 0; i-- {
		// Another harness may still have pods there: EBUSY is fine.
		if err := unix.Rmdir(r.createdParents[i]); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
			errs = append(errs, fmt.Errorf("rmdir %s: %w", r.createdParents[i], err))
		}
	}
	if r.slot != nil {
		errs = append(errs, r.slot.release(r.logf))
	}
	if r.conn != nil {
		_ = r.conn.Close()
	}
	// The next harness's reaper retries what failed here.
	defer r.unlockDir()
	err := errors.Join(errs...)
	if err != nil {
		r.logf("teardown failed, keeping %s until the next harness starts: %v", r.dir, err)
		return err
	}
	if err := os.RemoveAll(r.dir); err != nil {
		return fmt.Errorf("remove work dir: %w", err)
	}
	r.logf("containerd stopped and cleaned up")
	return nil
}

// removeAllSandboxes stops and removes every sandbox this containerd knows,
// which stops their containers, tears down their network and unmounts their
// namespaces and rootfs.
func (r *Runtime) removeAllSandboxes(ctx context.Context) error {
	resp, err := r.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("list sandboxes: %w", err)
	}
	var errs []error
	for _, sb := range resp.Items {
		errs = append(errs, r.removeSandbox(ctx, sb.Id))
	}
	return errors.Join(errs...)
}

func (r *Runtime) removeSandbox(ctx context.Context, id string) error {
	if _, err := r.runtime.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("stop sandbox %s: %w", id, err)
	}
	if _, err := r.runtime.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id}); err != nil {
		return fmt.Errorf("remove sandbox %s: %w", id, err)
	}
	return nil
}

// stopContainerd sends SIGTERM, then SIGKILL after gracefulStop.
func (r *Runtime) stopContainerd() error {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p == nil {
		return nil
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return nil
	case <-time.After(gracefulStop):
	}
	r.logf("teardown: containerd ignored SIGTERM for %v, killing it", gracefulStop)
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("kill containerd: %w", err)
	}
	<-p.done
	return nil
}

// leftoverPIDs finds what may survive containerd: processes whose command
// line names the work dir (containerd, shims: -address <dir>/containerd.sock)
// and processes still in the pod cgroups (containers whose shim died).
func (r *Runtime) leftoverPIDs() []int {
	pids := processesInside(r.dir)
	r.mu.Lock()
	var parents []string
	for _, p := range r.pods {
		parents = append(parents, p.CgroupParent)
	}
	r.mu.Unlock()
	for _, parent := range parents {
		pids = append(pids, cgroupPIDs(parent)...)
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

// processesInside returns the PIDs whose command line names a path inside
// dir (the trailing slash keeps /tmp/kss-e2e-1 from matching
// /tmp/kss-e2e-12).
func processesInside(dir string) []int {
	s := dir + "/"
	entries, _ := os.ReadDir("/proc")
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue // exited meanwhile
		}
		if bytes.Contains(cmdline, []byte(s)) && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain spaces and parentheses.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return false
	}
	return stat[i+2] != 'Z'
}

// killProcesses SIGKILLs the processes list returns until it returns none.
func killProcesses(list func() []int, logf func(string, ...any)) error {
	deadline := time.Now().Add(teardownTimeout)
	killed := map[int]bool{}
	for {
		pids := list()
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still alive after SIGKILL: %v", pids)
		}
		for _, pid := range pids {
			// Dying takes a moment (exit of a pid namespace's init kills
			// its members first), so a pid may be listed again.
			if err := unix.Kill(pid, unix.SIGKILL); err == nil && !killed[pid] {
				killed[pid] = true
				logf("teardown: killed leftover process %d", pid)
			}
		}
		time.Sleep(pollInterval)
	}
}

// UnmountUnder lazily unmounts every mount point below dir, deepest first.
func UnmountUnder(dir string) error {
	deadline := time.Now().Add(teardownTimeout)
	for {
		mounts, err := mountpointsUnder(dir)
		if err != nil {
			return err
		}
		if len(mounts) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still mounted: %v", mounts)
		}
		for _, m := range mounts {
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return fmt.Errorf("unmount %s: %w", m, err)
			}
		}
	}
}

// mountpointsUnder lists mount points at or below dir, deepest first.
func mountpointsUnder(dir string) ([]string, error) {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, m := range parseMountinfo(info) {
		if m.mountpoint == dir || strings.HasPrefix(m.mountpoint, dir+"/") {
			out = append(out, m.mountpoint)
		}
	}
	slices.SortFunc(out, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return out, nil
}

type mountEntry struct {
	root       string // the mounted part of the source; "net:[<inode>]" for a netns
	mountpoint string
	fstype     string
	options    string // super options, which carry the v1 controllers
}

// parseMountinfo parses /proc/<pid>/mountinfo. It is pure.
func parseMountinfo(data []byte) []mountEntry {
	var out []mountEntry
	s := bufio.NewScanner(bytes.NewReader(data))
	for s.Scan() {
		// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
		fields := strings.Fields(s.Text())
		sep := slices.Index(fields, "-")
		if len(fields) < 5 || sep < 0 || sep+3 >= len(fields) {
			continue
		}
		out = append(out, mountEntry{
			root:       unescapeMountinfo(fields[3]),
			mountpoint: unescapeMountinfo(fields[4]),
			fstype:     fields[sep+1],
			options:    fields[sep+3],
		})
	}
	return out
}

// unescapeMountinfo undoes the kernel's octal escapes (\040 for space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// cgroupMountpoints returns the mount points of all cgroup hierarchies
// (v1 controllers, named v1 hierarchies and cgroup2).
func cgroupMountpoints() []string {
	info, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	return cgroupMountpointsFrom(parseMountinfo(info))
}

func cgroupMountpointsFrom(mounts []mountEntry) []string {
	var out []string
	for _, m := range mounts {
		if m.fstype == "cgroup" || m.fstype == "cgroup2" {
			out = append(out, m.mountpoint)
		}
	}
	return out
}

// missingCgroupDirs returns, for every hierarchy, the directories of
// cgroupPath and its ancestors that do not exist yet, outermost first.
func missingCgroupDirs(mountpoints []string, cgroupPath string) []string {
	var chain []string
	for p := path.Clean(cgroupPath); p != "/" && p != "."; p = path.Dir(p) {
		chain = append([]string{p}, chain...)
	}
	var out []string
	for _, mp := range mountpoints {
		for _, c := range chain {
			dir := filepath.Join(mp, c)
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				out = append(out, dir)
			}
		}
	}
	return out
}

// CgroupDirs returns the directory of cgroupPath in every cgroup hierarchy
// where it exists.
func CgroupDirs(cgroupPath string) []string {
	var out []string
	for _, mp := range cgroupMountpoints() {
		dir := filepath.Join(mp, cgroupPath)
		if _, err := os.Stat(dir); err == nil {
			out = append(out, dir)
		}
	}
	return out
}

// cgroupPIDs returns the processes in cgroupPath and below, in any
// hierarchy.
func cgroupPIDs(cgroupPath string) []int {
	var pids []int
	for _, dir := range CgroupDirs(cgroupPath) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && alive(pid) {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	return pids
}

// removePodCgroups removes cgroupPath and everything below it in every
// hierarchy, deepest first. A cgroup whose last task just died may be busy
// for a moment, so EBUSY is retried.
// RemoveCgroupTree removes a cgroup and everything below it in every
// hierarchy, deepest first; its processes must be gone.
func RemoveCgroupTree(cgroupPath string) error { return removePodCgroups(cgroupPath) }

func removePodCgroups(cgroupPath string) error {
	var errs []error
	for _, dir := range CgroupDirs(cgroupPath) {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		slices.Reverse(dirs) // WalkDir is pre-order: children follow parents
		for _, d := range dirs {
			errs = append(errs, rmdirRetry(d))
		}
	}
	return errors.Join(errs...)
}

func rmdirRetry(dir string) error {
	deadline := time.Now().Add(teardownTimeout)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(pollInterval)
	}
}
