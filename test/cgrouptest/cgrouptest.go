// Package cgrouptest creates real cgroups with real processes in them for
// tests and benchmarks, on cgroup v1 (the cpu, cpuacct, memory and pids
// hierarchies) and v2, and removes them again.
package cgrouptest

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// v1Hierarchies are the controllers the collector reads on cgroup v1.
var v1Hierarchies = []string{"cpu", "cpuacct", "memory", "pids"}

// Tree owns cgroups created under one parent and the processes put in them.
type Tree struct {
	mount string
	v2    bool
	// created lists cgroup names in creation order, so Remove can go
	// children first.
	created []string
	procs   []*exec.Cmd
}

// New returns a Tree for the cgroup filesystem at mount ("/sys/fs/cgroup").
// It fails when the machine has no writable cgroup hierarchy we understand.
func New(mount string) (*Tree, error) {
	if _, err := os.Stat(filepath.Join(mount, "cgroup.controllers")); err == nil {
		return &Tree{mount: mount, v2: true}, nil
	}
	if _, err := os.Stat(filepath.Join(mount, "memory", "memory.usage_in_bytes")); err != nil {
		return nil, fmt.Errorf("no cgroup v1 memory hierarchy under %s: %w", mount, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("creating cgroups needs root")
	}
	return &Tree{mount: mount}, nil
}

// dirs are the directories that make up one cgroup name.
func (tr *Tree) dirs(name string) []string {
	if tr.v2 {
		return []string{filepath.Join(tr.mount, name)}
	}
	out := make([]string, 0, len(v1Hierarchies))
	for _, h := range v1Hierarchies {
		out = append(out, filepath.Join(tr.mount, h, name))
	}
	return out
}

// Create makes the cgroup (and missing parents) in every hierarchy, and
// remembers each one it made for Cleanup, parents included.
func (tr *Tree) Create(name string) error {
	var missing []string
	for p := path.Clean(name); p != "/" && p != "."; p = path.Dir(p) {
		if dirs := tr.dirs(p); len(dirs) > 0 {
			if _, err := os.Stat(dirs[0]); errors.Is(err, fs.ErrNotExist) {
				missing = append([]string{p}, missing...)
			}
		}
	}
	for _, dir := range tr.dirs(name) {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup %s: %w", dir, err)
		}
	}
	tr.created = append(tr.created, missing...)
	return nil
}

// Start runs a command inside the cgroup: it is started, then moved into the
// cgroup in every hierarchy before it gets real work (callers that need the
// process to start inside the cgroup should make it wait on stdin).
func (tr *Tree) Start(name string, cmd *exec.Cmd) error {
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	tr.procs = append(tr.procs, cmd)
	return tr.Move(name, cmd.Process.Pid)
}

// Move writes pid into the cgroup's cgroup.procs in every hierarchy.
func (tr *Tree) Move(name string, pid int) error {
	for _, dir := range tr.dirs(name) {
		file := filepath.Join(dir, "cgroup.procs")
		if err := os.WriteFile(file, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			return fmt.Errorf("move pid %d to %s: %w", pid, file, err)
		}
	}
	return nil
}

// StartSleeper starts `sleep infinity` in the cgroup.
func (tr *Tree) StartSleeper(name string) (*exec.Cmd, error) {
	cmd := exec.Command("sleep", "infinity")
	return cmd, tr.Start(name, cmd)
}

// Kill kills one process started by this tree and waits for it.
func Kill(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}

// RemoveCgroup removes one cgroup (which must have no processes and no
// children) from every hierarchy, retrying briefly because the kernel
// releases a cgroup asynchronously after its last process exits.
func (tr *Tree) RemoveCgroup(name string) error {
	var last error
	for attempt := 0; attempt < 100; attempt++ {
		last = nil
		for _, dir := range tr.dirs(name) {
			if err := syscall.Rmdir(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				last = fmt.Errorf("remove cgroup %s: %w", dir, err)
			}
		}
		if last == nil {
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last
}

// Cleanup kills every process the tree started and removes every cgroup it
// created, children first.
func (tr *Tree) Cleanup() error {
	for _, cmd := range tr.procs {
		Kill(cmd)
	}
	tr.procs = nil
	var errs []error
	for i := len(tr.created) - 1; i >= 0; i-- {
		if err := tr.RemoveCgroup(tr.created[i]); err != nil {
			errs = append(errs, err)
		}
	}
	tr.created = nil
	return errors.Join(errs...)
}
