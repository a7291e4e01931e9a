package diff

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	// sideBySideMaxPods is the kubelet's maxPods: the largest node issue 10
	// asks about. KSS_LOAD_PODS sizes may not exceed it.
	sideBySideMaxPods   = 500
	sideBySideNamespace = "sidebyside"
	sideBySideHostname  = "kss-sbs"
	containersPerPod    = 3
	defaultSideBySide   = "100"
	// runLimitBase and runLimitPerPod bound the wait for added pods to run:
	// containerd on 2 CPUs starts about one pod (a sandbox and 3
	// containers) a second while the kubelet syncs the others.
	runLimitBase   = 3 * time.Minute
	runLimitPerPod = 2 * time.Second
	// listedLimit bounds the wait, once the pods run, for both summaries to
	// list them with rates: two housekeeping samples of each (10–15 s).
	listedLimit = 5 * time.Minute
	// teardownLimit bounds removing the pods through CRI.
	teardownLimit = 10 * time.Minute
	// stragglerLimit is how long processes may stay in the pods' cgroups
	// after their sandboxes are gone before they are killed, as an error.
	stragglerLimit = 30 * time.Second
	sandboxWorkers = 4
	removeAttempts = 5
)

// TestSideBySide runs a real kubelet v1.36.3 (maxPods: 500) and this server
// on one containerd, with static pods of 3 sleeping containers each on the
// host network, grown to each size of KSS_LOAD_PODS in turn (100 unless
// set; make bench-kubelet runs 100,250,500), and at each size measures both
// servers' /stats/summary with one keep-alive client, alternating between
// them, and the CPU and memory of the kubelet, ours and containerd (whom
// the kubelet asks on every request). The table goes to the log and to
// KSS_LOAD_REPORT; docs/performance.md has the numbers.
func TestSideBySide(t *testing.T) {
	if os.Getenv(sideBySideEnv) != "1" {
		t.Skipf("the kubelet side by side runs with %s=1 (make bench-kubelet)", sideBySideEnv)
	}
	sizes := sideBySideSizes(t)
	pairs := requestPairs(t)
	kubelet := kubeletBinary(t)
	checkKubeletVersion(t, kubelet)
	left := &leftovers{}
	t.Cleanup(func() { left.check(t) })
	claimKubeletDefaultRoot(t)
	env := startSideBySide(t, kubelet, left)

	var results []*sideBySideResult
	for _, pods := range sizes {
		ok := t.Run(fmt.Sprintf("pods=%d", pods), func(t *testing.T) {
			start := time.Now()
			env.grow(t, pods)
			res := env.measure(t, pods, pairs)
			res.startup = time.Since(start) - res.measuring
			results = append(results, res)
		})
		if !ok {
			break // the next size builds on this one's pods
		}
	}
	if len(results) == 0 {
		return
	}
	report := formatSideBySide(results, pairs)
	t.Logf("kubelet side by side:\n%s", report)
	if path := os.Getenv("KSS_LOAD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// sideBySide is one containerd with the kubelet and ours over it.
type sideBySide struct {
	rt         *framework.Runtime
	cgroupRoot string
	kubelet    *kubeletProcess
	ours       *serverproc.Server
	// client is the one keep-alive client of waits and measurements;
	// bodies are taken as sent (no gzip is asked of either).
	client *http.Client
	pods   int // static pods written so far
}

// startSideBySide starts containerd with a cgroup root of its own (never
// /kubepods, where other tests' pods may run and whose unknown pods a
// kubelet would kill), the kubelet with that root and maxPods, and ours on
// the kubelet's directories. Cleanup takes them down in reverse: ours, the
// kubelet and its mounts, every sandbox through CRI, containerd, the
// cgroup root.
func startSideBySide(t *testing.T, kubelet string, left *leftovers) *sideBySide {
	cluster := framework.StartCluster(t, "kss-sbs")
	env := &sideBySide{rt: cluster.Runtime, cgroupRoot: cluster.CgroupRoot,
		client: &http.Client{Timeout: requestLimit, Transport: &http.Transport{DisableCompression: true}}}
	left.cgroupRoot, left.dirs = env.cgroupRoot, append(left.dirs, env.rt.Dir())
	linkCadvisorSocket(t, env.rt.Socket())
	t.Cleanup(func() { env.removePods(t) })
	env.kubelet = newKubelet(t)
	left.dirs = append(left.dirs, filepath.Dir(env.kubelet.rootDir))
	env.kubelet.start(t, kubelet, env.rt, sideBySideHostname,
		fmt.Sprintf("maxPods: %d\ncgroupRoot: %s\n", sideBySideMaxPods, env.cgroupRoot))
	env.ours = serverproc.Start(t, serverBinary, "--container-runtime-endpoint="+env.rt.Endpoint(),
		"--cgroup-root="+env.cgroupRoot, "--cgroup-driver=cgroupfs", "--root-dir="+env.kubelet.rootDir,
		"--pod-logs-dir="+env.kubelet.podLogsDir, "--housekeeping-interval=10s", "--stats-retention=2m", "-v=0")
	return env
}

// grow writes static pods until there are pods of them, then waits until
// containerd runs them all and both summaries list them with rates.
func (e *sideBySide) grow(t *testing.T, pods int) {
	added := pods - e.pods
	start := time.Now()
	for ; e.pods < pods; e.pods++ {
		e.writePod(t, e.pods)
	}
	e.waitRunning(t, pods, runLimitBase+time.Duration(added)*runLimitPerPod)
	t.Logf("%d pods (%d new) run after %s", pods, added, time.Since(start).Round(time.Second))
	for _, s := range []struct{ who, base string }{{"kubelet", e.kubelet.base}, {"ours", e.ours.Base}} {
		e.waitListed(t, s.who, s.base, pods)
	}
	t.Logf("both summaries list %d pods with rates after %s", pods, time.Since(start).Round(time.Second))
}

// writePod writes static pod i: 3 containers of the pause image (each a
// process sleeping until it is killed), on the host network, so that 500
// pods need no 500 addresses. It is written under a hidden name and
// renamed, since the kubelet ignores hidden files and would otherwise read
// a half-written one.
func (e *sideBySide) writePod(t *testing.T, i int) {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Pod\nmetadata:\n  name: idle-%03d\n  namespace: %s\nspec:\n  hostNetwork: true\n  containers:\n",
		i, sideBySideNamespace)
	for c := range containersPerPod {
		fmt.Fprintf(&b, "  - {name: sleep-%d, image: %q, imagePullPolicy: Never}\n", c, framework.PauseImage)
	}
	name := fmt.Sprintf("idle-%03d.yaml", i)
	hidden := filepath.Join(e.kubelet.manifests, "."+name)
	writeFile(t, hidden, b.String())
	if err := os.Rename(hidden, filepath.Join(e.kubelet.manifests, name)); err != nil {
		t.Fatal(err)
	}
}

// waitRunning waits until containerd has pods ready sandboxes and three
// times as many running containers in the namespace; it fails with what
// runs and the kubelet's and containerd's logs when limit passes.
func (e *sideBySide) waitRunning(t *testing.T, pods int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for {
		sandboxes, containers, err := e.running()
		if err == nil && sandboxes == pods && containers == pods*containersPerPod {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s containerd runs %d of %d sandboxes and %d of %d containers (%v)\nkubelet log:\n%s\ncontainerd log:\n%s",
				limit, sandboxes, pods, containers, pods*containersPerPod, err, e.kubelet.logTail(40), e.rt.LogTail(2000))
		}
		time.Sleep(2 * time.Second) // the poll interval of a wait with a deadline
	}
}

// running counts ready sandboxes and running containers of the namespace.
func (e *sideBySide) running() (sandboxes, containers int, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ns := map[string]string{"io.kubernetes.pod.namespace": sideBySideNamespace}
	sb, err := e.rt.CRI().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{Filter: &runtimeapi.PodSandboxFilter{
		State: &runtimeapi.PodSandboxStateValue{State: runtimeapi.PodSandboxState_SANDBOX_READY}, LabelSelector: ns}})
	if err != nil {
		return 0, 0, fmt.Errorf("list sandboxes: %w", err)
	}
	cs, err := e.rt.CRI().ListContainers(ctx, &runtimeapi.ListContainersRequest{Filter: &runtimeapi.ContainerFilter{
		State: &runtimeapi.ContainerStateValue{State: runtimeapi.ContainerState_CONTAINER_RUNNING}, LabelSelector: ns}})
	if err != nil {
		return len(sb.Items), 0, fmt.Errorf("list containers: %w", err)
	}
	return len(sb.Items), len(cs.Containers), nil
}

// waitListed waits until base's summary lists pods pods of the namespace,
// each with its 3 containers and their CPU rates and working sets.
func (e *sideBySide) waitListed(t *testing.T, who, base string, pods int) {
	deadline := time.Now().Add(listedLimit)
	for {
		listed, err := e.listed(base)
		if err == nil && listed == pods {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s the %s summary lists %d of %d pods complete (%v)\nkubelet log:\n%s",
				listedLimit, who, listed, pods, err, e.kubelet.logTail(40))
		}
		time.Sleep(2 * time.Second) // the poll interval of a wait with a deadline
	}
}

// listed counts the namespace's pods with all containers, rates and
// working sets in base's summary.
func (e *sideBySide) listed(base string) (int, error) {
	resp, err := e.client.Get(base + "/stats/summary")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/stats/summary: %s", resp.Status)
	}
	var s statsapi.Summary
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return 0, fmt.Errorf("decode summary: %w", err)
	}
	n := 0
	for _, pod := range s.Pods {
		if pod.PodRef.Namespace == sideBySideNamespace && complete(pod.Containers) {
			n++
		}
	}
	return n, nil
}

func complete(containers []statsapi.ContainerStats) bool {
	if len(containers) != containersPerPod {
		return false
	}
	for _, c := range containers {
		if c.CPU == nil || c.CPU.UsageNanoCores == nil || c.Memory == nil || c.Memory.WorkingSetBytes == nil {
			return false
		}
	}
	return true
}

// removePods stops and removes every sandbox through CRI, a few at a time
// (containerd's own teardown does them one by one within a minute, too
// little for 500), once the kubelet is gone and cannot restart them. Then
// no process may be left in the pods' cgroups; stragglers are killed and
// fail the test.
func (e *sideBySide) removePods(t *testing.T) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), teardownLimit)
	defer cancel()
	resp, err := e.rt.CRI().ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		t.Errorf("teardown: list sandboxes: %v", err)
		return
	}
	ids := make(chan string)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for range sandboxWorkers {
		wg.Go(func() {
			for id := range ids {
				if err := e.removeSandbox(ctx, id); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, sb := range resp.Items {
		ids <- sb.Id
	}
	close(ids)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Errorf("teardown: %v", err)
	}
	t.Logf("teardown: removed %d sandboxes in %s", len(resp.Items), time.Since(start).Round(time.Second))
	e.killStragglers(t)
}

// removeSandbox stops and removes one sandbox. Under the load of hundreds
// of shims containerd 1.6 may answer StopPodSandbox before it has seen a
// killed container's exit, and then refuses the removal ("cannot delete
// running task", FailedPrecondition): that is retried a few times, as the
// kubelet's pod GC would.
func (e *sideBySide) removeSandbox(ctx context.Context, id string) error {
	for attempt := 1; ; attempt++ {
		if _, err := e.rt.CRI().StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: id}); err != nil {
			return fmt.Errorf("stop sandbox %s: %w", id, err)
		}
		_, err := e.rt.CRI().RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: id})
		if err == nil {
			return nil
		}
		if status.Code(err) != codes.FailedPrecondition || attempt == removeAttempts {
			return fmt.Errorf("remove sandbox %s (attempt %d): %w", id, attempt, err)
		}
		time.Sleep(time.Second) // a retry's pause, bounded by removeAttempts
	}
}

// killStragglers waits for the pods' cgroups to empty and kills what is
// still there after stragglerLimit, failing the test.
func (e *sideBySide) killStragglers(t *testing.T) {
	deadline := time.Now().Add(stragglerLimit)
	for {
		pids := cgroupProcesses(e.cgroupRoot)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("teardown: processes %v still in %s after the sandboxes were removed: killing them", pids, e.cgroupRoot)
			for _, pid := range pids {
				if p, err := os.FindProcess(pid); err == nil {
					_ = p.Kill()
				}
			}
			return
		}
		time.Sleep(200 * time.Millisecond) // the poll interval of a wait with a deadline
	}
}

// cgroupProcesses lists the processes in cgroupPath and below, in any
// hierarchy.
func cgroupProcesses(cgroupPath string) []int {
	var pids []int
	for _, dir := range framework.CgroupDirs(cgroupPath) {
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, _ := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	slices.Sort(pids)
	return slices.Compact(pids)
}

// leftovers is what the test must leave behind it: no process naming its
// directories (the kubelet, ours, containerd, shims), no mount below them,
// no cgroup of its root, no link at cAdvisor's containerd socket.
type leftovers struct {
	dirs       []string
	cgroupRoot string
}

func (l *leftovers) check(t *testing.T) {
	for _, dir := range l.dirs {
		if pids := processesNaming(dir); len(pids) > 0 {
			t.Errorf("left running: processes %v name %s", pids, dir)
		}
		if mounts := mountsUnder(t, dir); len(mounts) > 0 {
			t.Errorf("left mounted: %v", mounts)
		}
	}
	if l.cgroupRoot != "" {
		if dirs := framework.CgroupDirs(l.cgroupRoot); len(dirs) > 0 {
			t.Errorf("left behind: cgroups %v (processes %v)", dirs, cgroupProcesses(l.cgroupRoot))
		}
	}
	if _, err := os.Lstat(cadvisorSocket); err == nil {
		t.Errorf("left behind: %s", cadvisorSocket)
	}
}

// processesNaming lists live processes whose command line names a path in
// dir.
func processesNaming(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir+"/")) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// mountsUnder lists the mount points below dir (field 5 of mountinfo).
func mountsUnder(t *testing.T, dir string) []string {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// sideBySideSizes is KSS_LOAD_PODS ascending (each size adds pods to the
// last), each at most sideBySideMaxPods.
func sideBySideSizes(t *testing.T) []int {
	value := os.Getenv("KSS_LOAD_PODS")
	if value == "" {
		value = defaultSideBySide
	}
	var sizes []int
	for _, field := range strings.Split(value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 || n > sideBySideMaxPods {
			t.Fatalf("KSS_LOAD_PODS=%q: want pod counts from 1 to %d separated by commas", value, sideBySideMaxPods)
		}
		sizes = append(sizes, n)
	}
	slices.Sort(sizes)
	return slices.Compact(sizes)
}
