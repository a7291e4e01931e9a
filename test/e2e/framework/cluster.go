package framework

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
	"time"

	"github.com/prometheus/procfs"
)

// skipEnv set to 1 lets an end-to-end package run without root skip its
// tests instead of failing, for a developer's non-root `go test ./...`.
const skipEnv = "KSS_SKIP_E2E"

// Main is the TestMain body of an end-to-end package: containerd is
// installed when missing and run (typically serverproc.RunTests) gives the
// exit code. Without root the package fails, saying why: a tier that was
// asked for must not pass without running. KSS_SKIP_E2E=1 skips it instead.
func Main(run func() int) int {
	return mainAs(os.Geteuid(), os.Getenv(skipEnv), os.Stderr, run)
}

func mainAs(euid int, skip string, stderr io.Writer, run func() int) int {
	if euid != 0 {
		if skip == "1" {
			fmt.Fprintf(stderr, "skipping: the end-to-end tests need root, and %s=1 asks to skip them\n", skipEnv)
			return 0
		}
		fmt.Fprintf(stderr, "FAIL: the end-to-end tests need root: they run containerd and create cgroups, "+
			"bridges and network namespaces. Run them as root (make e2e), or set %s=1 to skip them.\n", skipEnv)
		return 1
	}
	logf := func(format string, args ...any) { fmt.Fprintf(stderr, format+"\n", args...) }
	if err := EnsureInstalled(context.Background(), logf); err != nil {
		fmt.Fprintln(stderr, "install containerd:", err)
		return 1
	}
	return run()
}

// Cluster is one containerd with its test images plus a cgroup root of its
// own, so that a test's pods never mix with anything else on the machine.
type Cluster struct {
	Runtime    *Runtime
	CgroupRoot string
}

// StartCluster starts containerd for t, with pods under
// /<name>-<pid>-<n>/kubepods/burstable, and stops it at t's cleanup. With
// CgroupDriverEnv=systemd the pods go to the node's
// /kubepods.slice/kubepods-burstable.slice instead (see startSystemdCluster).
func StartCluster(t testing.TB, name string) *Cluster {
	t.Helper()
	if os.Getenv(CgroupDriverEnv) == DriverSystemd {
		return startSystemdCluster(t)
	}
	cgroupRoot := fmt.Sprintf("/%s-%d-%d", name, os.Getpid(), time.Now().UnixNano()%100000)
	// The pod root with the node's allocatable memory as its limit, as the
	// kubelet enforces node allocatable on it (no reservations: all of it).
	// Removed last, after containerd took its pods down.
	t.Cleanup(func() {
		if err := removePodCgroups(cgroupRoot); err != nil {
			t.Errorf("remove %s: %v", cgroupRoot, err)
		}
	})
	memTotal, err := memTotalBytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := createCgroup(cgroupRoot+"/kubepods", memTotal); err != nil {
		t.Fatal(err)
	}
	return startClusterRuntime(t, cgroupRoot, Options{
		Logf:         t.Logf,
		CgroupParent: cgroupRoot + "/kubepods/burstable",
		PodLogDir:    t.TempDir(),
	})
}

// startSystemdCluster runs the pods in the node's kubepods.slice with the
// systemd driver: systemd places a slice by its name, so a test root of
// their own is impossible. Only for a machine without a kubelet (the v2
// VM); Stop removes the pods, systemd keeps the empty QoS slices. As with
// cgroupfs, the pod root gets the machine's memory as its limit (node
// allocatable), made through systemd.
func startSystemdCluster(t testing.TB) *Cluster {
	t.Helper()
	memTotal, err := memTotalBytes()
	if err != nil {
		t.Fatal(err)
	}
	if err := createSlice("/kubepods.slice", memTotal); err != nil {
		t.Fatal(err)
	}
	return startClusterRuntime(t, "/", Options{
		Logf:         t.Logf,
		CgroupParent: "/kubepods.slice/kubepods-burstable.slice",
		PodLogDir:    t.TempDir(),
		CgroupDriver: DriverSystemd,
	})
}

func startClusterRuntime(t testing.TB, cgroupRoot string, opts Options) *Cluster {
	t.Helper()
	rt, err := StartContainerd(context.Background(), opts)
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	if err := rt.ImportTestImages(context.Background()); err != nil {
		t.Fatalf("import test images: %v", err)
	}
	return &Cluster{Runtime: rt, CgroupRoot: cgroupRoot}
}

// ServerArgs point the stats server at this cluster, followed by extra.
func (c *Cluster) ServerArgs(extra ...string) []string {
	return append([]string{
		"--container-runtime-endpoint=" + c.Runtime.Endpoint(),
		"--cgroup-root=" + c.CgroupRoot,
		"--cgroup-driver=" + c.Runtime.CgroupDriver(),
		"--pod-logs-dir=" + c.Runtime.PodLogDir(),
		"--root-dir=" + c.Runtime.RootDir(),
	}, extra...)
}

// memTotalBytes is the machine's memory capacity, MemTotal of /proc/meminfo.
func memTotalBytes() (int64, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, err
	}
	meminfo, err := fs.Meminfo()
	if err != nil {
		return 0, fmt.Errorf("read meminfo: %w", err)
	}
	if meminfo.MemTotal == nil {
		return 0, fmt.Errorf("meminfo has no MemTotal")
	}
	return int64(*meminfo.MemTotal) * 1024, nil
}
