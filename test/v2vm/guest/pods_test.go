package guest

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	namespace      = "v2vm"
	busyLimitBytes = 100 << 20
	// waitLimit bounds each wait for the server; under emulation on a
	// loaded host a housekeeping pass can take seconds.
	waitLimit = 2 * time.Minute
)

// nodeCluster is containerd with its pods where a kubelet on this node
// would put them: /kubepods/burstable or /kubepods.slice/kubepods-burstable.slice.
type nodeCluster struct {
	lay layout
	rt  *framework.Runtime
}

func startNodeCluster(t *testing.T, lay layout) *nodeCluster {
	t.Helper()
	driver := framework.DriverCgroupfs
	if lay.systemd {
		driver = framework.DriverSystemd
	}
	rt, err := framework.StartContainerd(context.Background(), framework.Options{
		Logf:         t.Logf,
		CgroupParent: lay.burstable(lay.podsRoot("/")),
		CgroupDriver: driver,
		PodLogDir:    t.TempDir(),
	})
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
	return &nodeCluster{lay: lay, rt: rt}
}

// serverArgs point the server at the cluster the way a node's kubelet
// flags would, with a 1 s tick.
func (c *nodeCluster) serverArgs(extra ...string) []string {
	return append([]string{
		"--container-runtime-endpoint=" + c.rt.Endpoint(),
		"--cgroup-root=/",
		"--cgroup-driver=" + c.rt.CgroupDriver(),
		"--pod-logs-dir=" + c.rt.PodLogDir(),
		"--root-dir=" + c.rt.RootDir(),
		"--volume-stats-agg-period=1s",
	}, extra...)
}

// runBusyPod runs a pod whose container burns 0.2 CPU, holds 50 MiB under
// a 100 MiB limit, sends UDP to its gateway and writes 1 MiB to an emptyDir.
func (c *nodeCluster) runBusyPod(t *testing.T) *framework.Pod {
	t.Helper()
	pod, err := c.rt.RunPod(context.Background(), framework.PodSpec{
		Name: "busy", Namespace: namespace, EmptyDirs: []string{"scratch"},
		Containers: []framework.ContainerSpec{{
			Name: "work", Image: framework.WorkImage, MemoryLimitBytes: busyLimitBytes, CPULimitMilli: 500, CPURequestMilli: 250,
			Args:   []string{"-cpu", "0.2", "-mem", "50", "-net", "-write", "/scratch"},
			Mounts: []framework.VolumeMount{{Volume: "scratch", MountPath: "/scratch"}},
		}},
	})
	if err != nil {
		t.Fatalf("run busy pod: %v", err)
	}
	return pod
}

// TestPodsOnV2 runs pods on containerd in the VM's layout and checks what
// the real server reports against the pods' v2 files: names, the pod
// cgroup's limit, cpu and memory, and OOM kills from both of their sources.
func TestPodsOnV2(t *testing.T) {
	lay := currentLayout(t)
	c := startNodeCluster(t, lay)
	busy := c.runBusyPod(t)
	srv := serverproc.Start(t, serverBinary, c.serverArgs()...)
	summary := waitForSummary(t, srv, "the busy container's cpu rate", func(s *statsapi.Summary) bool {
		w := findContainer(findPod(s, "busy"), "work")
		return w != nil && w.CPU != nil && w.CPU.UsageNanoCores != nil && w.Memory != nil && w.Memory.WorkingSetBytes != nil
	})
	work := busy.Container("work")
	podCgroup, workCgroup := busy.CgroupParent, busy.CgroupPath(work)

	t.Run("cgroup names follow the layout", func(t *testing.T) {
		wantPod := lay.pod(lay.burstable(lay.podsRoot("/")), busy.UID)
		if podCgroup != wantPod || workCgroup != lay.container(wantPod, work.ID) {
			t.Errorf("pod cgroup %s, container %s; the %s layout names them %s and %s",
				podCgroup, workCgroup, lay.name, wantPod, lay.container(wantPod, work.ID))
		}
		for _, cg := range []string{podCgroup, workCgroup} {
			if _, err := os.Stat(path.Join(cgroupMount, cg, "cgroup.procs")); err != nil {
				t.Errorf("cgroup %s: %v", cg, err)
			}
		}
		pod := findPod(summary, "busy")
		if pod.PodRef.UID != busy.UID || len(pod.Containers) != 1 || pod.Containers[0].Name != "work" {
			t.Errorf("summary pod %+v, want busy (%s) with its container work", pod.PodRef, busy.UID)
		}
	})

	t.Run("pod cgroup carries the pod memory limit", func(t *testing.T) {
		r := raw{t, podCgroup}
		if got := r.uint("memory.max", math.MaxUint64); got != busyLimitBytes {
			t.Errorf("memory.max of pod cgroup %s = %d, want the container's %d (the kubelet's pod limit)", podCgroup, got, busyLimitBytes)
		}
	})

	t.Run("cpu and memory agree with the v2 files", func(t *testing.T) {
		testCPUAndMemory(t, srv, podCgroup, workCgroup)
	})

	t.Run("cpu rate agrees with cpu.stat", func(t *testing.T) {
		testCPURate(t, srv, workCgroup)
	})

	t.Run("OOM kill from kmsg and memory.events", func(t *testing.T) {
		testPodOOMKill(t, c, srv)
	})
}

// testCPUAndMemory brackets the served cpu usage between the cgroup's
// cpu.stat read before the snapshot's tick and after the request, and
// compares memory with memory.current and memory.stat.
func testCPUAndMemory(t *testing.T, srv *serverproc.Server, podCgroup, workCgroup string) {
	for _, cg := range []struct {
		name      string
		container bool
	}{{podCgroup, false}, {workCgroup, true}} {
		r := raw{t, cg.name}
		before := r.keyed("cpu.stat", "usage_usec") * 1000
		waitTicks(t, srv, 2)
		s := getSummary(t, srv, "")
		after := r.keyed("cpu.stat", "usage_usec") * 1000
		current, inactive := r.uint("memory.current", 0), r.keyed("memory.stat", "inactive_file")
		pod := findPod(s, "busy")
		cpu, mem := pod.CPU, pod.Memory
		if cg.container {
			w := findContainer(pod, "work")
			cpu, mem = w.CPU, w.Memory
		}
		if cpu == nil || cpu.UsageCoreNanoSeconds == nil || mem == nil || mem.WorkingSetBytes == nil || mem.UsageBytes == nil {
			t.Fatalf("%s: cpu %+v memory %+v", cg.name, cpu, mem)
		}
		if got := *cpu.UsageCoreNanoSeconds; got < before || got > after {
			t.Errorf("%s usageCoreNanoSeconds %d, cpu.stat said %d before the tick and %d after the request", cg.name, got, before, after)
		}
		// The work container holds 50 MiB still; allow 10% for the runtime's own pages.
		if want := float64(current - min(current, inactive)); math.Abs(float64(*mem.WorkingSetBytes)-want) > 0.1*want {
			t.Errorf("%s workingSetBytes %d, memory.current - inactive_file = %.0f now", cg.name, *mem.WorkingSetBytes, want)
		}
		if *mem.WorkingSetBytes < 50<<20 {
			t.Errorf("%s workingSetBytes %d, the container holds 50 MiB", cg.name, *mem.WorkingSetBytes)
		}
		if cg.container && (mem.AvailableBytes == nil || *mem.AvailableBytes+*mem.WorkingSetBytes != busyLimitBytes) {
			t.Errorf("%s availableBytes %v + workingSetBytes %d != memory.max %d", cg.name, mem.AvailableBytes, *mem.WorkingSetBytes, busyLimitBytes)
		}
		if cpu.PSI == nil || mem.PSI == nil {
			t.Errorf("%s: no PSI on cgroup v2 (cpu %v, memory %v)", cg.name, cpu.PSI, mem.PSI)
		}
	}
}

// testCPURate compares the busy container's usageNanoCores over five ticks
// with the rate its cpu.stat gives over the same time.
func testCPURate(t *testing.T, srv *serverproc.Server, cgroup string) {
	r := raw{t, cgroup}
	startUsage, start := r.keyed("cpu.stat", "usage_usec"), time.Now()
	var mean float64
	for range 5 {
		waitTicks(t, srv, 1)
		w := findContainer(findPod(getSummary(t, srv, ""), "busy"), "work")
		if w == nil || w.CPU == nil || w.CPU.UsageNanoCores == nil {
			t.Fatal("the busy container lost its cpu rate")
		}
		mean += float64(*w.CPU.UsageNanoCores) / 5
	}
	truth := float64(r.keyed("cpu.stat", "usage_usec")-startUsage) * 1000 / time.Since(start).Seconds()
	if math.Abs(mean-truth) > 0.25*truth {
		t.Errorf("usageNanoCores averages %.0f over 5 ticks, cpu.stat says %.0f nanocores", mean, truth)
	}
}

// testPodOOMKill runs a container that allocates 64 MiB under a 32 MiB
// limit. The kill must reach the server twice: from /dev/kmsg (the OOM
// counter and log line) and from memory.events (cAdvisor's
// container_oom_events_total of the pod cgroup, which outlives the
// container's own).
func testPodOOMKill(t *testing.T, c *nodeCluster, srv *serverproc.Server) {
	ctx := context.Background()
	pod, err := c.rt.RunPod(ctx, framework.PodSpec{
		Name: "oom", Namespace: namespace,
		Containers: []framework.ContainerSpec{{Name: "hog", Image: framework.WorkImage, MemoryLimitBytes: 32 << 20, Args: []string{"-mem", "64"}}},
	})
	if err != nil {
		t.Fatalf("run oom pod: %v", err)
	}
	waitCtx, cancel := context.WithTimeout(ctx, waitLimit)
	defer cancel()
	code, err := c.rt.WaitContainerExited(waitCtx, pod, "hog")
	if err != nil {
		t.Fatal(err)
	}
	if code != 137 {
		t.Fatalf("hog exited %d, want 137 (SIGKILL by the OOM killer)", code)
	}
	events := raw{t, pod.CgroupParent}.keyed("memory.events", "oom_kill")
	if events < 1 {
		t.Fatalf("memory.events of %s counts %d OOM kills", pod.CgroupParent, events)
	}
	const counted = `kubelet_stats_server_oom_kills_total{scope="cgroup"} 1`
	framework.Eventually(t, waitLimit, "the OOM kill in /metrics", func() bool {
		_, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/metrics", nil, nil)
		return strings.Contains(string(body), counted)
	})
	// The pod's limit equals the container's, so the kernel may name either
	// as the limit it hit.
	hogCgroup := pod.CgroupPath(pod.Container("hog"))
	if log := srv.Log(); !strings.Contains(log, `"OOM kill under a cgroup memory limit" logger="provider" process="work"`) ||
		!strings.Contains(log, `cgroup="`+hogCgroup+`"`) {
		t.Errorf("the kill of %s is not in the server log:\n%s", hogCgroup, tail(log, 3000))
	}
	series := `container_oom_events_total{container="",id="` + pod.CgroupParent + `"`
	framework.Eventually(t, waitLimit, "container_oom_events_total of the oom pod", func() bool {
		_, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/metrics/cadvisor", nil, nil)
		for _, line := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(line, series) {
				fields := strings.Fields(line)
				return len(fields) >= 2 && fields[1] == strconv.FormatUint(events, 10)
			}
		}
		return false
	})
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func getSummary(t *testing.T, srv *serverproc.Server, query string) *statsapi.Summary {
	t.Helper()
	status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/stats/summary"+query, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/stats/summary%s = %d: %s", query, status, body)
	}
	var summary statsapi.Summary
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	return &summary
}

func waitForSummary(t *testing.T, srv *serverproc.Server, what string, ready func(*statsapi.Summary) bool) *statsapi.Summary {
	t.Helper()
	var summary *statsapi.Summary
	framework.Eventually(t, waitLimit, what, func() bool {
		summary = getSummary(t, srv, "")
		return ready(summary)
	})
	return summary
}

// waitTicks returns once the server published n new snapshots, seen as
// changes of the node cpu sample time.
func waitTicks(t *testing.T, srv *serverproc.Server, n int) {
	t.Helper()
	last := getSummary(t, srv, "").Node.CPU.Time
	seen := 0
	framework.Eventually(t, waitLimit, strconv.Itoa(n)+" housekeeping ticks", func() bool {
		current := getSummary(t, srv, "").Node.CPU.Time
		if !current.Equal(&last) {
			seen++
			last = current
		}
		return seen >= n
	})
}

func findPod(s *statsapi.Summary, name string) *statsapi.PodStats {
	for i := range s.Pods {
		if s.Pods[i].PodRef.Namespace == namespace && s.Pods[i].PodRef.Name == name {
			return &s.Pods[i]
		}
	}
	return nil
}

func findContainer(pod *statsapi.PodStats, name string) *statsapi.ContainerStats {
	if pod == nil {
		return nil
	}
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			return &pod.Containers[i]
		}
	}
	return nil
}
