package framework

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

// startRuntime installs what is missing, starts a harness containerd and
// registers its teardown. It skips without root.
func startRuntime(t *testing.T) *Runtime {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containerd, creates cgroups, bridges and network namespaces")
	}
	start := time.Now()
	if err := EnsureInstalled(t.Context(), t.Logf); err != nil {
		t.Fatalf("EnsureInstalled: %v", err)
	}
	t.Logf("EnsureInstalled took %v", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	r, err := StartContainerd(t.Context(), Options{Logf: t.Logf})
	if err != nil {
		t.Fatalf("StartContainerd: %v", err)
	}
	t.Logf("StartContainerd took %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() && r.Running() {
			t.Logf("containerd log tail:\n%s", r.LogTail(4000))
		}
		if err := r.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return r
}

// podTraces is what a pod leaves on the host while it runs, recorded to
// check that teardown removes all of it.
type podTraces struct {
	SandboxID string
	Cgroup    string
	NetNSPath string // mount point of a private network namespace
	PIDs      []int
	Dirs      []string
}

func tracesOf(t *testing.T, r *Runtime, pod *Pod) podTraces {
	t.Helper()
	tr := podTraces{SandboxID: pod.SandboxID, Cgroup: pod.CgroupParent, Dirs: []string{pod.LogDir}, PIDs: []int{pod.Pid}}
	for _, dir := range pod.Volumes {
		tr.Dirs = append(tr.Dirs, dir)
	}
	for _, c := range pod.Containers {
		tr.PIDs = append(tr.PIDs, c.Pid)
	}
	if !pod.HostNetwork {
		if !strings.HasPrefix(pod.NetNSPath, r.Dir()+"/") {
			t.Fatalf("pod %s: network namespace at %q, want it under the work dir", pod.Name, pod.NetNSPath)
		}
		if !strings.Contains(readFile(t, "/proc/self/mountinfo"), " "+pod.NetNSPath+" ") {
			t.Fatalf("pod %s: network namespace %s is not mounted", pod.Name, pod.NetNSPath)
		}
		tr.NetNSPath = pod.NetNSPath
	}
	return tr
}

func TestHarness(t *testing.T) {
	t.Parallel()
	r := startRuntime(t)
	ctx := t.Context()

	start := time.Now()
	if err := r.ImportTestImages(ctx); err != nil {
		t.Fatalf("ImportTestImages: %v", err)
	}
	t.Logf("ImportTestImages took %v", time.Since(start).Round(time.Millisecond))

	specs := []PodSpec{
		{
			Name: "busy", Namespace: "e2e", EmptyDirs: []string{"data"},
			Containers: []ContainerSpec{{
				Name: "busy", Args: []string{"-cpu", "0.2", "-mem", "50", "-write", "/data", "-net", "-net-interval", "100ms"},
				MemoryLimitBytes: 100 << 20, CPULimitMilli: 500,
				Mounts: []VolumeMount{{Volume: "data", MountPath: "/data"}},
			}},
		},
		{
			Name: "idle", Namespace: "e2e",
			Containers: []ContainerSpec{{Name: "sleeper", Image: PauseImage}, {Name: "worker"}},
		},
		{
			Name: "hostnet", Namespace: "e2e", HostNetwork: true,
			Containers: []ContainerSpec{{Name: "main"}},
		},
	}
	pods := map[string]*Pod{}
	for _, spec := range specs {
		start := time.Now()
		pod, err := r.RunPod(ctx, spec)
		if err != nil {
			t.Fatalf("RunPod %s: %v", spec.Name, err)
		}
		t.Logf("RunPod %s (%d containers) took %v", spec.Name, len(spec.Containers), time.Since(start).Round(time.Millisecond))
		pods[spec.Name] = pod
	}

	t.Run("cgroups at the kubelet's cgroupfs paths", func(t *testing.T) {
		for _, pod := range pods {
			if want := "/kubepods/burstable/pod" + pod.UID; pod.CgroupParent != want {
				t.Errorf("pod %s: cgroup parent %s, want %s", pod.Name, pod.CgroupParent, want)
			}
			ids := []string{pod.SandboxID}
			for _, c := range pod.Containers {
				ids = append(ids, c.ID)
			}
			for _, controller := range []string{"cpu", "cpuacct", "memory", "pids", "blkio"} {
				for _, id := range ids {
					dir := filepath.Join("/sys/fs/cgroup", controller, pod.CgroupParent, id)
					if _, err := os.Stat(dir); err != nil {
						t.Errorf("pod %s: %v", pod.Name, err)
					}
				}
			}
			for _, c := range pod.Containers {
				procs := readFile(t, filepath.Join("/sys/fs/cgroup/memory", pod.CgroupPath(c), "cgroup.procs"))
				if !containsField(procs, strconv.Itoa(c.Pid)) {
					t.Errorf("%s/%s: pid %d not in its memory cgroup (procs %q)", pod.Name, c.Name, c.Pid, procs)
				}
			}
		}
	})

	busyPod := pods["busy"]
	busy := busyPod.Container("busy")

	t.Run("limits", func(t *testing.T) {
		dir := busyPod.CgroupPath(busy)
		if got := readInt(t, filepath.Join("/sys/fs/cgroup/memory", dir, "memory.limit_in_bytes")); got != 100<<20 {
			t.Errorf("memory.limit_in_bytes = %d, want %d", got, 100<<20)
		}
		if got := readInt(t, filepath.Join("/sys/fs/cgroup/cpu", dir, "cpu.cfs_quota_us")); got != 50000 {
			t.Errorf("cpu.cfs_quota_us = %d, want 50000", got)
		}
	})

	t.Run("busy uses memory and CPU", func(t *testing.T) {
		dir := busyPod.CgroupPath(busy)
		pollUntil(t, "50 MiB of RSS in the busy container", func() bool {
			return memoryStat(t, filepath.Join("/sys/fs/cgroup/memory", dir, "memory.stat"), "total_rss") >= 50<<20
		})
		usage := filepath.Join("/sys/fs/cgroup/cpuacct", dir, "cpuacct.usage")
		u0, t0 := readInt(t, usage), time.Now()
		time.Sleep(2 * time.Second) // the measurement window, not synchronisation
		u1, t1 := readInt(t, usage), time.Now()
		cores := float64(u1-u0) / float64(t1.Sub(t0).Nanoseconds())
		t.Logf("busy container used %.3f cores (asked for 0.2, limit 0.5)", cores)
		// The lower bound shows the duty cycle runs; the upper one the quota.
		if cores < 0.05 || cores > 0.55 {
			t.Errorf("busy container used %.3f cores, want about 0.2 and at most the 0.5 limit", cores)
		}
	})

	t.Run("emptyDir and log", func(t *testing.T) {
		dataDir := busyPod.Volumes["data"]
		wantDir := filepath.Join(r.RootDir(), "pods", busyPod.UID, "volumes", "kubernetes.io~empty-dir", "data")
		if dataDir != wantDir {
			t.Errorf("emptyDir at %s, want %s", dataDir, wantDir)
		}
		pollUntil(t, "1 MiB written into the emptyDir", func() bool {
			st, err := os.Stat(filepath.Join(dataDir, "work.dat"))
			return err == nil && st.Size() == 1<<20
		})
		wantLog := filepath.Join("/var/log/pods", "e2e_busy_"+busyPod.UID, "busy", "0.log")
		if busy.LogPath != wantLog {
			t.Errorf("log path %s, want %s", busy.LogPath, wantLog)
		}
		pollUntil(t, "a tick in the busy container's log", func() bool {
			b, _ := os.ReadFile(busy.LogPath)
			return bytes.Contains(b, []byte("work: start")) && bytes.Contains(b, []byte("work: tick"))
		})
	})

	t.Run("pod network", func(t *testing.T) {
		subnet := netip.MustParsePrefix(r.PodSubnet())
		hostNS, _ := os.Readlink("/proc/self/ns/net")
		addrs, err := InterfaceAddrs(busyPod.Pid, "eth0")
		if err != nil {
			t.Fatal(err)
		}
		// Entering the pod's namespace must not leak into the process: the
		// main thread, which /proc/self shows, may be the one that entered.
		for range 50 {
			if _, err := InterfaceAddrs(busyPod.Pid, "eth0"); err != nil {
				t.Fatal(err)
			}
		}
		if ns, _ := os.Readlink("/proc/self/ns/net"); ns != hostNS {
			t.Errorf("after InterfaceAddrs the process is in netns %s, was %s", ns, hostNS)
		}
		var v4 []netip.Prefix
		for _, a := range addrs {
			if a.Addr().Is4() {
				v4 = append(v4, a)
			}
		}
		if len(v4) != 1 || !subnet.Contains(v4[0].Addr()) || v4[0].Addr().String() != busyPod.IP {
			t.Errorf("eth0 addresses %v, pod IP %s, want one in %s", addrs, busyPod.IP, subnet)
		}
		if other := pods["idle"]; other.IP == busyPod.IP || !subnet.Contains(netip.MustParseAddr(other.IP)) {
			t.Errorf("idle pod IP %s, busy pod IP %s", other.IP, busyPod.IP)
		}
		tx0, rx0 := netDev(t, busy.Pid, "eth0")
		pollUntil(t, "eth0 tx and rx growing", func() bool {
			tx, rx := netDev(t, busy.Pid, "eth0")
			return tx > tx0 && rx > rx0
		})
	})

	t.Run("host network", func(t *testing.T) {
		hp := pods["hostnet"]
		if hp.IP != "" {
			t.Errorf("host-network pod has IP %q", hp.IP)
		}
		self, _ := os.Readlink("/proc/self/ns/net")
		for _, pid := range []int{hp.Pid, hp.Containers[0].Pid} {
			if ns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid)); ns != self {
				t.Errorf("pid %d in netns %s, want the host's %s", pid, ns, self)
			}
		}
	})

	t.Run("CRI sees what RunPod made", func(t *testing.T) {
		resp, err := r.CRI().ListContainers(ctx, &runtimeapi.ListContainersRequest{})
		if err != nil {
			t.Fatal(err)
		}
		running := map[string]*runtimeapi.Container{}
		for _, c := range resp.Containers {
			if c.State == runtimeapi.ContainerState_CONTAINER_RUNNING {
				running[c.Id] = c
			}
		}
		for _, pod := range pods {
			for _, c := range pod.Containers {
				got := running[c.ID]
				if got == nil {
					t.Errorf("%s/%s is not running", pod.Name, c.Name)
					continue
				}
				if got.Labels[LabelContainerName] != c.Name || got.Labels[LabelPodUID] != pod.UID || got.PodSandboxId != pod.SandboxID {
					t.Errorf("%s/%s: labels %v, sandbox %s", pod.Name, c.Name, got.Labels, got.PodSandboxId)
				}
			}
		}
	})

	t.Run("restart keeps the exited instance", func(t *testing.T) {
		pod, err := r.RunPod(ctx, PodSpec{Name: "restarter", Namespace: "e2e", Containers: []ContainerSpec{{
			Name: "crash", Args: []string{"-exit-after", "300ms", "-exit-code", "3"},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		old := pod.Container("crash")
		code, err := r.WaitContainerExited(ctx, pod, "crash")
		if err != nil || code != 3 {
			t.Fatalf("WaitContainerExited = %d, %v; want 3", code, err)
		}
		if err := r.RestartContainer(ctx, pod, "crash"); err != nil {
			t.Fatal(err)
		}
		cur := pod.Container("crash")
		if cur.ID == old.ID || cur.Attempt != 1 || filepath.Base(cur.LogPath) != "1.log" {
			t.Errorf("after restart: %+v (old %s)", cur, old.ID)
		}
		st, err := r.CRI().ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: old.ID})
		if err != nil || st.Status.State != runtimeapi.ContainerState_CONTAINER_EXITED {
			t.Errorf("old instance: %v, %v; want it kept as exited", st.GetStatus().GetState(), err)
		}
		pollUntil(t, "the new instance logging into 1.log", func() bool {
			b, _ := os.ReadFile(cur.LogPath)
			return bytes.Contains(b, []byte("work: start"))
		})
		if err := r.RemovePod(ctx, pod); err != nil {
			t.Fatal(err)
		}
		if dirs := CgroupDirs(pod.CgroupParent); len(dirs) > 0 {
			t.Errorf("RemovePod left cgroups %v", dirs)
		}
	})

	var traces []podTraces
	for _, pod := range pods {
		traces = append(traces, tracesOf(t, r, pod))
	}
	if t.Failed() {
		t.Logf("containerd log tail:\n%s", r.LogTail(4000))
	}
	start = time.Now()
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	t.Logf("Stop with %d pods took %v", len(pods), time.Since(start).Round(time.Millisecond))
	assertTornDown(t, r, traces)
}

// TestStopAfterKill covers the paths where containerd died and the pods'
// shims and processes are orphans: Stop must still remove everything, by
// restarting containerd, or by PID when containerd cannot come back.
func TestStopAfterKill(t *testing.T) {
	t.Parallel()
	for _, restartable := range []bool{true, false} {
		t.Run(fmt.Sprintf("restartable=%v", restartable), func(t *testing.T) {
			r := startRuntime(t)
			pod, err := r.RunPod(t.Context(), PodSpec{Name: "orphan", EmptyDirs: []string{"v"}, Containers: []ContainerSpec{{Name: "c", Args: []string{"-mem", "5"}}}})
			if err != nil {
				t.Fatal(err)
			}
			tr := tracesOf(t, r, pod)
			if err := r.Kill(); err != nil {
				t.Fatal(err)
			}
			if r.Running() {
				t.Fatal("Running after Kill")
			}
			for _, pid := range tr.PIDs {
				if !alive(pid) {
					t.Errorf("pod process %d died with containerd", pid)
				}
			}
			if !restartable {
				if err := os.WriteFile(r.config, []byte("version = not-toml"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			if err := r.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			assertTornDown(t, r, []podTraces{tr})
		})
	}
}

func assertTornDown(t *testing.T, r *Runtime, traces []podTraces) {
	t.Helper()
	for _, tr := range traces {
		checkTracesGone(t, tr)
	}
	if strings.Contains(readFile(t, "/proc/self/mountinfo"), r.Dir()+"/") {
		t.Errorf("mounts under %s left", r.Dir())
	}
	if pids := processesInside(r.Dir()); len(pids) > 0 {
		t.Errorf("processes of the harness left: %v", pids)
	}
	if _, err := os.Stat(r.Dir()); !os.IsNotExist(err) {
		t.Errorf("work dir %s still exists (%v)", r.Dir(), err)
	}
	if _, err := net.InterfaceByName(r.Bridge()); err == nil {
		t.Errorf("bridge %s still exists", r.Bridge())
	}
}

// checkTracesGone checks that no cgroup, process, network namespace or
// directory of a pod is left.
func checkTracesGone(t *testing.T, tr podTraces) {
	t.Helper()
	if dirs := CgroupDirs(tr.Cgroup); len(dirs) > 0 {
		t.Errorf("cgroups left: %v", dirs)
	}
	for _, pid := range tr.PIDs {
		if alive(pid) {
			t.Errorf("process %d still alive", pid)
		}
	}
	if tr.NetNSPath != "" && strings.Contains(readFile(t, "/proc/self/mountinfo"), " "+tr.NetNSPath+" ") {
		t.Errorf("network namespace %s still mounted", tr.NetNSPath)
	}
	for _, d := range tr.Dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists (%v)", d, err)
		}
	}
	if cached, _ := filepath.Glob(filepath.Join(cniCacheDir, "*-"+tr.SandboxID+"-*")); len(cached) > 0 {
		t.Errorf("CNI cache entries left: %v", cached)
	}
}

// pollUntil polls cond until it holds; the test binary's -timeout bounds it.
func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(pollInterval):
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readInt(t *testing.T, path string) int64 {
	t.Helper()
	v, err := strconv.ParseInt(strings.TrimSpace(readFile(t, path)), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func containsField(s, field string) bool {
	for _, f := range strings.Fields(s) {
		if f == field {
			return true
		}
	}
	return false
}

func memoryStat(t *testing.T, path, key string) int64 {
	t.Helper()
	s := bufio.NewScanner(strings.NewReader(readFile(t, path)))
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), " ")
		if ok && k == key {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatalf("%s has no %s", path, key)
	return 0
}

// netDev returns tx and rx bytes of iface as seen by process pid.
func netDev(t *testing.T, pid int, iface string) (tx, rx uint64) {
	t.Helper()
	s := bufio.NewScanner(strings.NewReader(readFile(t, fmt.Sprintf("/proc/%d/net/dev", pid))))
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || strings.TrimSpace(name) != iface {
			continue
		}
		f := strings.Fields(rest)
		rx, _ = strconv.ParseUint(f[0], 10, 64)
		tx, _ = strconv.ParseUint(f[8], 10, 64)
		return tx, rx
	}
	t.Fatalf("process %d has no %s", pid, iface)
	return 0, 0
}

const dieEnv = "KSS_E2E_DIE_IN"

// TestReapsDeadHarness runs a harness with a pod in a child process that
// exits without Stop, then checks that the next harness removes what it left.
func TestReapsDeadHarness(t *testing.T) {
	if tempDir := os.Getenv(dieEnv); tempDir != "" {
		runAndDie(t, tempDir)
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs containerd, creates cgroups, bridges and network namespaces")
	}
	t.Parallel()
	if err := EnsureInstalled(t.Context(), t.Logf); err != nil {
		t.Fatal(err)
	}
	tempDir := t.TempDir()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestReapsDeadHarness$", "-test.v")
	cmd.Env = append(os.Environ(), dieEnv+"="+tempDir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child harness: %v\n%s", err, out)
	}
	_, record, ok := strings.Cut(string(out), "LEFTOVERS ")
	if !ok {
		t.Fatalf("child printed no leftovers:\n%s", out)
	}
	record, _, _ = strings.Cut(record, "\n")
	var left struct {
		Dir    string
		Traces podTraces
	}
	if err := json.Unmarshal([]byte(record), &left); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(left.Dir); err != nil {
		t.Fatalf("the dead harness left no work dir: %v", err)
	}
	for _, pid := range left.Traces.PIDs {
		if !alive(pid) {
			t.Fatalf("pod process %d did not outlive its harness; nothing to reap", pid)
		}
	}

	r, err := StartContainerd(t.Context(), Options{Logf: t.Logf, TempDir: tempDir})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := r.Stop(); err != nil {
			t.Error(err)
		}
	}()
	if _, err := os.Stat(left.Dir); !os.IsNotExist(err) {
		t.Errorf("work dir of the dead harness still exists (%v)", err)
	}
	checkTracesGone(t, left.Traces)
	if pids := processesInside(left.Dir); len(pids) > 0 {
		t.Errorf("processes of the dead harness left: %v", pids)
	}
}

// runAndDie is the child of TestReapsDeadHarness.
func runAndDie(t *testing.T, tempDir string) {
	r, err := StartContainerd(t.Context(), Options{TempDir: tempDir})
	if err != nil {
		t.Fatal(err)
	}
	pod, err := r.RunPod(t.Context(), PodSpec{Name: "doomed", EmptyDirs: []string{"v"}, Containers: []ContainerSpec{{Name: "c"}}})
	if err != nil {
		_ = r.Stop() // the run failed already; its error is the one to report
		t.Fatal(err)
	}
	record, _ := json.Marshal(struct {
		Dir    string
		Traces podTraces
	}{r.Dir(), tracesOf(t, r, pod)})
	fmt.Printf("LEFTOVERS %s\n", record)
	os.Exit(0) // no Stop: the process dies with everything running
}
