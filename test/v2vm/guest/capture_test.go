package guest

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

// captureEnv names the directory TestCaptureTree writes
// capture-<layout>.tar.gz into; without it the test is skipped.
const captureEnv = "KSS_V2VM_CAPTURE"

// TestCaptureTree runs three pods (one busy, one idle with two containers,
// one whose container was OOM-killed) and a process named kubelet, then
// archives what the server reads on such a node: the cgroup files of the
// root, of system.slice and of the pod tree, the /proc and /sys files of
// collector.ReadMachine, ReadRlimit and the collector (with the processes of
// those cgroups), /etc/machine-id and /etc/os-release. Paths in the archive
// are relative to /, so the server can be pointed at an unpacked copy
// (--cgroup-mount=<dir>/sys/fs/cgroup, --proc-root=<dir>/proc). The archive
// is small: the cgroups of these pods only.
func TestCaptureTree(t *testing.T) {
	outDir := os.Getenv(captureEnv)
	if outDir == "" {
		t.Skipf("%s is not set", captureEnv)
	}
	lay := currentLayout(t)
	c := startNodeCluster(t, lay)
	busy := c.runBusyPod(t)
	ctx := context.Background()
	idle, err := c.rt.RunPod(ctx, framework.PodSpec{
		Name: "idle", Namespace: namespace,
		Containers: []framework.ContainerSpec{
			{Name: "main", Image: framework.PauseImage},
			{Name: "sidecar", Image: framework.WorkImage},
		},
	})
	if err != nil {
		t.Fatalf("run idle pod: %v", err)
	}
	oom, err := c.rt.RunPod(ctx, framework.PodSpec{
		Name: "oom", Namespace: namespace,
		Containers: []framework.ContainerSpec{{Name: "hog", Image: framework.WorkImage, MemoryLimitBytes: 32 << 20, Args: []string{"-mem", "64"}}},
	})
	if err != nil {
		t.Fatalf("run oom pod: %v", err)
	}
	kubelet := startKubelet(t)
	waitCtx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	if _, err := c.rt.WaitContainerExited(waitCtx, oom, "hog"); err != nil {
		t.Fatal(err)
	}
	work := raw{t, busy.CgroupPath(busy.Container("work"))}
	framework.Eventually(t, waitLimit, "the busy container to hold its 50 MiB", func() bool {
		return work.uint("memory.current", 0) >= 50<<20
	})

	podsRoot := lay.podsRoot("/")
	cgroupDirs := []string{podsRoot, "/system.slice"}
	manifest := captureManifest(lay, podsRoot, kubelet, busy, idle, oom)
	archive := filepath.Join(outDir, "capture-"+lay.name+".tar.gz")
	n, err := writeCapture(archive, cgroupDirs, manifest)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(archive)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %d files of the %s layout into %s (%d bytes)", n, lay.name, archive, info.Size())
	if info.Size() > 1<<20 {
		t.Errorf("the captured tree is %d bytes; it should stay small enough to check in", info.Size())
	}
}

// startKubelet runs a sleeping process whose command name is kubelet in
// /system.slice/kubelet.service, for the server's kubelet discovery.
func startKubelet(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "kubelet")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	const cgroup = "/system.slice/kubelet.service"
	tr := &tree{t: t, root: cgroup}
	t.Cleanup(func() {
		if err := tr.cleanup(); err != nil {
			t.Error(err)
		}
	})
	tr.mkdir(cgroup)
	tr.startProgram(cgroup, link, "sleep")
	return cgroup
}

func captureManifest(lay layout, podsRoot, kubelet string, pods ...*framework.Pod) string {
	var b strings.Builder
	release, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "A cgroup v2 node in the %s layout, captured by test/v2vm (make capture-v2).\n", lay.name)
	fmt.Fprintf(&b, "kernel: %s", release)
	fmt.Fprintf(&b, "server flags: --cgroup-driver=%s --cgroup-root=/ --kubelet-cgroups=%s --runtime-cgroups=/system.slice/v2vm.service --system-cgroups=/system.slice\n", lay.name, kubelet)
	fmt.Fprintf(&b, "pod root: %s\n", podsRoot)
	for _, p := range pods {
		fmt.Fprintf(&b, "pod %s/%s uid %s cgroup %s\n", p.Namespace, p.Name, p.UID, p.CgroupParent)
		for _, c := range p.Containers {
			fmt.Fprintf(&b, "  container %s id %s cgroup %s\n", c.Name, c.ID, p.CgroupPath(c))
		}
	}
	return b.String()
}

// procFiles and sysFiles are what collector.ReadMachine, ReadRlimit and the
// collector read outside the cgroup tree (globs, relative to /).
func procFiles() []string {
	return []string{"proc/stat", "proc/meminfo", "proc/cpuinfo", "proc/loadavg", "proc/uptime", "proc/version",
		"proc/diskstats", "proc/vmstat", "proc/swaps", "proc/pressure/*",
		"proc/sys/kernel/pid_max", "proc/sys/kernel/threads-max", "proc/sys/kernel/osrelease", "proc/sys/kernel/random/boot_id"}
}

func sysFiles() []string {
	return []string{"sys/class/dmi/id/product_uuid", "sys/kernel/mm/hugepages/*/nr_hugepages",
		"sys/block/*/dev", "sys/block/*/size", "sys/block/*/queue/scheduler",
		"sys/class/net/*/address", "sys/class/net/*/mtu", "sys/class/net/*/speed",
		"sys/devices/system/cpu/online", "sys/devices/system/cpu/possible", "sys/devices/system/cpu/present",
		"sys/devices/system/cpu/cpu*/topology/core_id", "sys/devices/system/cpu/cpu*/topology/physical_package_id",
		"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
		"etc/machine-id", "etc/os-release"}
}

// perProcessFiles are read for every process of the captured cgroups and
// pid 1: its network (pod network stats), identity and cgroup (kubelet
// discovery) and mounts.
func perProcessFiles() []string {
	return []string{"stat", "comm", "cmdline", "cgroup", "status", "net/dev", "mountinfo"}
}

// writeCapture archives the files; it returns how many it wrote.
func writeCapture(archive string, cgroupDirs []string, manifest string) (int, error) {
	files, pids, err := cgroupFiles(cgroupDirs)
	if err != nil {
		return 0, err
	}
	for _, pattern := range append(procFiles(), sysFiles()...) {
		matches, _ := filepath.Glob("/" + pattern)
		for _, m := range matches {
			files = append(files, strings.TrimPrefix(m, "/"))
		}
	}
	pids = append(pids, 1)
	for _, pid := range pids {
		for _, f := range perProcessFiles() {
			files = append(files, path.Join("proc", strconv.Itoa(pid), f))
		}
	}
	sort.Strings(files)
	files = dedupe(files)

	out, err := os.Create(archive)
	if err != nil {
		return 0, err
	}
	defer out.Close()
	gz := gzip.NewWriter(out)
	tw := tar.NewWriter(gz)
	n := 0
	add := func(name string, data []byte) error {
		n++
		hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(data)), ModTime: time.Unix(0, 0)}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	if err := add("CAPTURE.txt", []byte(manifest)); err != nil {
		return 0, err
	}
	for _, f := range files {
		// Some cgroup files are write-only (cgroup.kill, memory.reclaim)
		// and some devices lack a file: what cannot be read is left out.
		data, err := os.ReadFile("/" + f)
		if err != nil {
			continue
		}
		if err := add(f, data); err != nil {
			return 0, err
		}
	}
	// The server reads /proc/self/mountinfo (procfs.GetMounts): self is pid 1.
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "proc/self", Linkname: "1", Mode: 0o777, ModTime: time.Unix(0, 0)}); err != nil {
		return 0, err
	}
	if err := errors.Join(tw.Close(), gz.Close()); err != nil {
		return 0, err
	}
	return n, out.Close()
}

// cgroupFiles lists the files of the cgroup root (not its children), of
// each ancestor of dirs, and of dirs with all their descendants, relative to
// /, with the processes found in them.
func cgroupFiles(dirs []string) ([]string, []int, error) {
	var files []string
	var pids []int
	addDir := func(dir string, recursive bool) error {
		return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if p != dir && !recursive {
					return filepath.SkipDir
				}
				return nil
			}
			files = append(files, strings.TrimPrefix(p, "/"))
			if d.Name() == "cgroup.procs" {
				pids = append(pids, readPIDs(p)...)
			}
			return nil
		})
	}
	if err := addDir(cgroupMount, false); err != nil {
		return nil, nil, err
	}
	for _, dir := range dirs {
		for a := path.Dir(dir); a != "/"; a = path.Dir(a) {
			if err := addDir(filepath.Join(cgroupMount, a), false); err != nil {
				return nil, nil, err
			}
		}
		if err := addDir(filepath.Join(cgroupMount, dir), true); err != nil {
			return nil, nil, err
		}
	}
	return files, pids, nil
}

func readPIDs(procsFile string) []int {
	data, err := os.ReadFile(procsFile)
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(data)) {
		if pid, err := strconv.Atoi(f); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}

func dedupe(sorted []string) []string {
	out := sorted[:0]
	for i, s := range sorted {
		if i == 0 || s != sorted[i-1] {
			out = append(out, s)
		}
	}
	return out
}
