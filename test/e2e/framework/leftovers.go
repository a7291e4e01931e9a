package framework

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// A test binary that dies without Stop (a -timeout panic, a SIGKILL) takes
// containerd with it (PDEATHSIG) but leaves shims, pods, mounts and cgroups.
// Each work dir therefore carries an owner lock, held for the Runtime's
// life, and a journal of what it created outside itself; the next
// StartContainerd in the same TempDir removes what unowned work dirs left.
const (
	workDirPrefix = "kss-e2e-"
	ownerLockName = "owner.lock"
	journalName   = "leftovers"

	journalCgroup  = "cgroup"  // a pod cgroup path, relative to each hierarchy
	journalParent  = "parent"  // an absolute cgroup dir the harness created
	journalDir     = "dir"     // a directory outside the work dir
	journalSlot    = "slot"    // the network slot id
	journalSandbox = "sandbox" // a sandbox id, whose CNI cache entries may be left
)

// lockWorkDir takes the owner lock of a new work dir. The lock file gets its
// final name only once locked, so a concurrent reaper never sees it free.
func lockWorkDir(dir string) (unlock func(), err error) {
	tmp := filepath.Join(dir, ownerLockName+".new")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, ownerLockName)); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

// journal appends one entry to the work dir's journal.
func journal(dir, kind, value string) error {
	f, err := os.OpenFile(filepath.Join(dir, journalName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%s %s\n", kind, value); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type journalEntry struct{ kind, value string }

func readJournal(dir string) []journalEntry {
	f, err := os.Open(filepath.Join(dir, journalName))
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []journalEntry
	s := bufio.NewScanner(f)
	for s.Scan() {
		if kind, value, ok := strings.Cut(s.Text(), " "); ok && value != "" {
			out = append(out, journalEntry{kind, value})
		}
	}
	return out
}

// reapStaleWorkDirs cleans up after harnesses in tempDir whose process is
// gone. Failures are logged: they must not stop a new harness.
func reapStaleWorkDirs(tempDir string, logf func(string, ...any)) {
	dirs, _ := filepath.Glob(filepath.Join(tempDir, workDirPrefix+"*"))
	for _, dir := range dirs {
		lockPath := filepath.Join(dir, ownerLockName)
		if _, err := os.Stat(lockPath); err != nil {
			continue // still being set up, or not a work dir
		}
		unlock, ok, err := tryLockFile(lockPath)
		if err != nil || !ok {
			continue // its owner is alive
		}
		err = removeStaleWorkDir(dir, logf)
		unlock()
		if err != nil {
			logf("leftovers of a dead harness in %s: %v", dir, err)
		} else {
			logf("removed leftovers of a dead harness in %s", dir)
		}
	}
}

func removeStaleWorkDir(dir string, logf func(string, ...any)) error {
	entries := readJournal(dir)
	var cgroups []string
	for _, e := range entries {
		if e.kind == journalCgroup {
			cgroups = append(cgroups, e.value)
		}
	}
	errs := []error{
		killProcesses(func() []int {
			pids := processesInside(dir)
			for _, cg := range cgroups {
				pids = append(pids, cgroupPIDs(cg)...)
			}
			return pids
		}, logf),
		UnmountUnder(dir),
	}
	for _, cg := range cgroups {
		errs = append(errs, removePodCgroups(cg))
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		switch e.kind {
		case journalParent:
			if err := unix.Rmdir(e.value); err != nil && !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOTEMPTY) {
				errs = append(errs, fmt.Errorf("rmdir %s: %w", e.value, err))
			}
		case journalDir:
			errs = append(errs, os.RemoveAll(e.value))
		case journalSlot:
			errs = append(errs, removeFreeSlot(e.value, logf))
		case journalSandbox:
			errs = append(errs, removeCNICache(e.value))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// removeFreeSlot removes a dead harness's bridge unless a live harness has
// taken the slot since (then it has already cleaned it).
func removeFreeSlot(value string, logf func(string, ...any)) error {
	id, err := strconv.Atoi(value)
	if err != nil {
		return nil
	}
	unlock, ok, err := tryLockFile(slotLockPath(id))
	if err != nil || !ok {
		return err
	}
	defer unlock()
	bridge, network, subnet, gateway := slotNetwork(id)
	s := &netSlot{id: id, bridge: bridge, network: network, subnet: subnet, gateway: gateway}
	return s.removeHostState(logf)
}
