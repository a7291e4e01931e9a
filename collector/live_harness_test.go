package collector

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sys/unix"
)

const liveMount = "/sys/fs/cgroup"

// liveCgroups owns a parent cgroup (/kstest-<random>) in the real v1
// controllers this collector reads (plus the cgroup2 of a hybrid machine,
// where PSI lives) and everything the test creates under it. Cleanup kills
// the processes and removes the cgroups.
type liveCgroups struct {
	t      testing.TB
	parent string
	// mounts are the hierarchies cgroups are created in.
	mounts []string

	mu    sync.Mutex
	procs []*helperProc
}

type helperProc struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	pid   int
}

// skipUnlessLiveV1 skips tests that need root and a v1 memory hierarchy.
func skipUnlessLiveV1(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live cgroup tests need root")
	}
	if !fileExists(filepath.Join(liveMount, "memory", "memory.stat")) {
		t.Skip("live cgroup tests need a cgroup v1 memory hierarchy at " + liveMount + "/memory")
	}
}

func newLiveCgroups(t testing.TB) *liveCgroups {
	t.Helper()
	lc := newUnmanagedLiveCgroups(t)
	t.Cleanup(func() {
		if err := lc.cleanup(); err != nil {
			t.Error(err)
		}
	})
	return lc
}

// newUnmanagedLiveCgroups is newLiveCgroups for a tree that outlives t
// (the benchmark tree); the caller runs cleanup.
func newUnmanagedLiveCgroups(t testing.TB) *liveCgroups {
	t.Helper()
	skipUnlessLiveV1(t)
	random := make([]byte, 4)
	_, _ = rand.Read(random)
	lc := &liveCgroups{t: t, parent: "/kstest-" + hex.EncodeToString(random)}
	for _, controller := range v1Controllers {
		if dir := filepath.Join(liveMount, controller); isDir(dir) {
			lc.mounts = append(lc.mounts, dir)
		}
	}
	if unified := filepath.Join(liveMount, "unified"); fileExists(filepath.Join(unified, "cgroup.controllers")) {
		lc.mounts = append(lc.mounts, unified)
	}
	lc.mkdir(lc.parent)
	return lc
}

// name returns the cgroup name of a path relative to the parent.
func (lc *liveCgroups) name(rel string) string {
	if rel == "" {
		return lc.parent
	}
	return lc.parent + "/" + rel
}

// mkdir creates name (and missing ancestors) in every hierarchy.
func (lc *liveCgroups) mkdir(name string) {
	lc.t.Helper()
	for _, mount := range lc.mounts {
		if err := os.MkdirAll(filepath.Join(mount, name), 0o755); err != nil {
			lc.t.Fatalf("mkdir cgroup %s: %v", name, err)
		}
	}
}

// rmdir removes name from every hierarchy; it must have no processes left.
func (lc *liveCgroups) rmdir(name string) {
	lc.t.Helper()
	for _, mount := range lc.mounts {
		if err := removeCgroupDir(filepath.Join(mount, name)); err != nil {
			lc.t.Fatalf("rmdir cgroup %s: %v", name, err)
		}
	}
}

// write writes a control file of one controller.
func (lc *liveCgroups) write(controller, name, file, value string) {
	lc.t.Helper()
	path := filepath.Join(liveMount, controller, name, file)
	if err := os.WriteFile(path, []byte(value), 0o644); err != nil {
		lc.t.Fatalf("write %s: %v", path, err)
	}
}

// readUint reads a one-number control file of one controller.
func (lc *liveCgroups) readUint(controller, name, file string) uint64 {
	lc.t.Helper()
	path := filepath.Join(liveMount, controller, name, file)
	data, err := os.ReadFile(path)
	if err != nil {
		lc.t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
	if err != nil {
		lc.t.Fatalf("parse %s: %v", path, err)
	}
	return v
}

// memoryStat reads one key of memory.stat.
func (lc *liveCgroups) memoryStat(name, key string) uint64 {
	lc.t.Helper()
	return lc.readStatField("memory", name, "memory.stat", key)
}

// readStatField reads one "key value" line of a flat-keyed cgroup file.
func (lc *liveCgroups) readStatField(controller, name, file, key string) uint64 {
	lc.t.Helper()
	data, err := os.ReadFile(filepath.Join(liveMount, controller, name, file))
	if err != nil {
		lc.t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	lc.t.Fatalf("no %s in %s of %s", key, file, name)
	return 0
}

// start runs a helper workload (see runHelper) in cgroup name and waits
// until it has done its setup there.
func (lc *liveCgroups) start(name, mode string) *helperProc {
	lc.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		lc.t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GOMAXPROCS=1")
	return lc.run(name, cmd, true)
}

// startSleep runs /usr/bin/sleep (cheaper than a helper) in cgroup name.
func (lc *liveCgroups) startSleep(name string) *helperProc {
	lc.t.Helper()
	return lc.run(name, exec.Command("sleep", "infinity"), false)
}

func (lc *liveCgroups) run(name string, cmd *exec.Cmd, handshake bool) *helperProc {
	lc.t.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		lc.t.Fatal(err)
	}
	var stdout io.Reader
	if handshake {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			lc.t.Fatal(err)
		}
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		lc.t.Fatal(err)
	}
	p := &helperProc{cmd: cmd, stdin: stdin, pid: cmd.Process.Pid}
	lc.mu.Lock()
	lc.procs = append(lc.procs, p)
	lc.mu.Unlock()
	lc.move(p.pid, name)
	if handshake {
		if _, err := io.WriteString(stdin, "go\n"); err != nil {
			lc.t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "ready\n" {
			lc.t.Fatalf("helper in %s: %q, %v", name, line, err)
		}
	}
	return p
}

// move puts pid into cgroup name in every hierarchy.
func (lc *liveCgroups) move(pid int, name string) {
	lc.t.Helper()
	for _, mount := range lc.mounts {
		path := filepath.Join(mount, name, "cgroup.procs")
		if err := os.WriteFile(path, []byte(strconv.Itoa(pid)), 0o644); err != nil {
			lc.t.Fatalf("move %d to %s: %v", pid, path, err)
		}
	}
}

// stop kills a process and reaps it, so that its cgroup can be removed.
func (lc *liveCgroups) stop(p *helperProc) {
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
}

func (lc *liveCgroups) cleanup() error {
	lc.mu.Lock()
	procs := lc.procs
	lc.procs = nil
	lc.mu.Unlock()
	for _, p := range procs {
		_ = p.cmd.Process.Kill()
	}
	for _, p := range procs {
		_ = p.cmd.Wait()
	}
	var errs []error
	for _, mount := range lc.mounts {
		if err := removeCgroupTree(filepath.Join(mount, lc.parent)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeCgroupTree removes a cgroup directory and its descendants, deepest
// first (cgroupfs only removes empty cgroups and cannot rm their files).
func removeCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := removeCgroupDir(d); err != nil {
			return err
		}
	}
	return nil
}

// removeCgroupDir retries EBUSY for a while: a killed process leaves its
// cgroup only once the kernel has finished tearing it down.
func removeCgroupDir(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || err == unix.ENOENT {
			return nil
		}
		if err != unix.EBUSY || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// errorCountingSink is a logr sink that counts error-level lines and keeps
// their messages, to assert that routine events are not logged as errors.
type errorCountingSink struct {
	t testing.TB
	// closed stops forwarding to t.Logf once the test is over; background
	// discovery may still log while cleanup removes cgroups.
	closed atomic.Bool
	errors atomic.Int32
	mu     sync.Mutex
	msgs   []string
}

func newErrorCountingLogger(t testing.TB) (logr.Logger, *errorCountingSink) {
	sink := &errorCountingSink{t: t}
	t.Cleanup(func() { sink.closed.Store(true) })
	return logr.New(sink), sink
}

func (s *errorCountingSink) Init(logr.RuntimeInfo)  {}
func (s *errorCountingSink) Enabled(level int) bool { return level <= 4 }
func (s *errorCountingSink) Info(level int, msg string, kv ...any) {
	if !s.closed.Load() {
		s.t.Logf("collector V(%d): %s %v", level, msg, kv)
	}
}
func (s *errorCountingSink) Error(err error, msg string, kv ...any) {
	s.errors.Add(1)
	s.mu.Lock()
	s.msgs = append(s.msgs, fmt.Sprintf("%s: %v %v", msg, err, kv))
	s.mu.Unlock()
	if !s.closed.Load() {
		s.t.Logf("collector ERROR: %s: %v %v", msg, err, kv)
	}
}
func (s *errorCountingSink) WithValues(...any) logr.LogSink { return s }
func (s *errorCountingSink) WithName(string) logr.LogSink   { return s }
func (s *errorCountingSink) errorMessages() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.msgs...)
}
