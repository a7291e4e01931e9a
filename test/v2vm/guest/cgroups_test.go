package guest

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const cgroupMount = "/sys/fs/cgroup"

// layout names cgroups the way the kubelet does with one cgroup driver.
type layout struct {
	name    string
	systemd bool
}

// currentLayout is the layout the VM booted; a test run elsewhere fails.
func currentLayout(t testing.TB) layout {
	t.Helper()
	switch v := os.Getenv(layoutEnv); v {
	case "cgroupfs":
		return layout{name: v}
	case "systemd":
		return layout{name: v, systemd: true}
	default:
		t.Fatalf("%s=%q, want cgroupfs or systemd", layoutEnv, v)
		return layout{}
	}
}

// podsRoot is the kubelet's pod root under cgroupRoot ("/" for a node):
// /kubepods or /kubepods.slice.
func (l layout) podsRoot(cgroupRoot string) string {
	if l.systemd {
		return path.Join(cgroupRoot, "kubepods.slice")
	}
	return path.Join(cgroupRoot, "kubepods")
}

// burstable is the Burstable QoS cgroup under the pod root.
func (l layout) burstable(podsRoot string) string {
	if l.systemd {
		return path.Join(podsRoot, "kubepods-burstable.slice")
	}
	return path.Join(podsRoot, "burstable")
}

// pod is a pod's cgroup under a QoS cgroup: pod<uid>, or
// kubepods-burstable-pod<uid with '_' for '-'>.slice.
func (l layout) pod(qos, uid string) string {
	if l.systemd {
		prefix := strings.TrimSuffix(path.Base(qos), ".slice")
		return path.Join(qos, prefix+"-pod"+strings.ReplaceAll(uid, "-", "_")+".slice")
	}
	return path.Join(qos, "pod"+uid)
}

// container is a container's cgroup as containerd names it.
func (l layout) container(pod, id string) string {
	if l.systemd {
		return path.Join(pod, "cri-containerd-"+id+".scope")
	}
	return path.Join(pod, id)
}

// tree owns cgroups it creates under its root and the processes it puts
// in them; cleanup kills the processes and removes the cgroups.
type tree struct {
	t    testing.TB
	root string

	mu    sync.Mutex
	procs []*exec.Cmd
}

// newTree creates a root cgroup /<prefix>-<random> with every controller
// enabled for its children.
func newTree(t testing.TB, prefix string) *tree {
	t.Helper()
	tr := &tree{t: t, root: "/" + prefix + "-" + randomHex(4)}
	t.Cleanup(func() {
		if err := tr.cleanup(); err != nil {
			t.Error(err)
		}
	})
	tr.mkdir(tr.root)
	return tr
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUID is a random RFC 4122 version 4 UUID, as the API server gives pods.
func newUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

// mkdir creates cgroup name and its missing ancestors, enabling in each
// ancestor every controller it has, as the kubelet and runc do on v2 (a
// child only gets a controller's files when its parent delegates it).
func (tr *tree) mkdir(name string) {
	tr.t.Helper()
	if err := mkdirCgroup(name); err != nil {
		tr.t.Fatal(err)
	}
}

func mkdirCgroup(name string) error {
	parts := strings.Split(strings.Trim(name, "/"), "/")
	dir := cgroupMount
	for _, part := range parts {
		if err := enableControllers(dir); err != nil {
			return err
		}
		dir = filepath.Join(dir, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("create cgroup: %w", err)
		}
	}
	return nil
}

// enableControllers writes +<controller> for each of dir's controllers to
// its cgroup.subtree_control.
func enableControllers(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return err
	}
	var enable []string
	for _, c := range strings.Fields(string(data)) {
		enable = append(enable, "+"+c)
	}
	if len(enable) == 0 {
		return nil
	}
	if err := os.WriteFile(filepath.Join(dir, "cgroup.subtree_control"), []byte(strings.Join(enable, " ")), 0o644); err != nil {
		return fmt.Errorf("enable controllers in %s: %w", dir, err)
	}
	return nil
}

// write writes a control file of cgroup name.
func (tr *tree) write(name, file, value string) {
	tr.t.Helper()
	if err := os.WriteFile(filepath.Join(cgroupMount, name, file), []byte(value), 0o644); err != nil {
		tr.t.Fatalf("write %s of %s: %v", file, name, err)
	}
}

// start runs a helper workload in cgroup name and waits until it has done
// its setup there.
func (tr *tree) start(name, mode string) *exec.Cmd {
	tr.t.Helper()
	exe, err := os.Executable()
	if err != nil {
		tr.t.Fatal(err)
	}
	return tr.startProgram(name, exe, mode)
}

// startProgram is start with the test binary reached through another path
// (a link whose name becomes the process's command name).
func (tr *tree) startProgram(name, exe, mode string) *exec.Cmd {
	tr.t.Helper()
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, "GOMAXPROCS=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tr.t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tr.t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tr.t.Fatal(err)
	}
	tr.mu.Lock()
	tr.procs = append(tr.procs, cmd)
	tr.mu.Unlock()
	if err := os.WriteFile(filepath.Join(cgroupMount, name, "cgroup.procs"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		tr.t.Fatalf("move %d to %s: %v", cmd.Process.Pid, name, err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		tr.t.Fatal(err)
	}
	if mode == "hog" {
		return cmd // it never says more than ready, and may be killed first
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "ready\n" {
		tr.t.Fatalf("helper %s in %s: %q, %v", mode, name, line, err)
	}
	return cmd
}

func (tr *tree) cleanup() error {
	tr.mu.Lock()
	procs := tr.procs
	tr.procs = nil
	tr.mu.Unlock()
	for _, p := range procs {
		_ = p.Process.Kill()
	}
	for _, p := range procs {
		_ = p.Wait()
	}
	return removeCgroupTree(filepath.Join(cgroupMount, tr.root))
}

// removeCgroupTree removes a cgroup and its descendants, deepest first.
func removeCgroupTree(dir string) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
	for _, d := range dirs {
		if err := rmdirCgroup(d); err != nil {
			return err
		}
	}
	return nil
}

// rmdirCgroup retries EBUSY for a while: a killed process leaves its cgroup
// only once the kernel has finished tearing it down.
func rmdirCgroup(dir string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("rmdir %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// raw reads the kernel's files of one cgroup.
type raw struct {
	t    testing.TB
	name string
}

func (r raw) path(file string) string { return filepath.Join(cgroupMount, r.name, file) }

func (r raw) text(file string) string {
	r.t.Helper()
	data, err := os.ReadFile(r.path(file))
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// uint reads a one-value file; "max" reads as maxValue.
func (r raw) uint(file string, maxValue uint64) uint64 {
	r.t.Helper()
	s := r.text(file)
	if s == "max" {
		return maxValue
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		r.t.Fatalf("parse %s: %v", r.path(file), err)
	}
	return v
}

// keyed reads one "key value" line of a flat-keyed file.
func (r raw) keyed(file, key string) uint64 {
	r.t.Helper()
	v, ok := flatKey(r.text(file), key)
	if !ok {
		r.t.Fatalf("no %s in %s", key, r.path(file))
	}
	return v
}

func flatKey(content, key string) (uint64, bool) {
	for _, line := range strings.Split(content, "\n") {
		if v, ok := strings.CutPrefix(line, key+" "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			return n, err == nil
		}
	}
	return 0, false
}

// pressureTotal is the total= of the some (or full) line of a PSI file.
func (r raw) pressureTotal(file, line string) uint64 {
	r.t.Helper()
	for _, l := range strings.Split(r.text(file), "\n") {
		if rest, ok := strings.CutPrefix(l, line+" "); ok {
			for _, field := range strings.Fields(rest) {
				if v, ok := strings.CutPrefix(field, "total="); ok {
					n, _ := strconv.ParseUint(v, 10, 64)
					return n
				}
			}
		}
	}
	r.t.Fatalf("no %s line in %s", line, r.path(file))
	return 0
}

// procs counts the lines of cgroup.procs.
func (r raw) procs() uint64 {
	r.t.Helper()
	s := r.text("cgroup.procs")
	if s == "" {
		return 0
	}
	return uint64(len(strings.Split(s, "\n")))
}
