package pods

import (
	"context"
	"math"
	"net/http"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	namespace      = "e2e"
	busyLimitBytes = 100 << 20
)

func threePods(t *testing.T, c *framework.Cluster) (busy, idle, hostNet *framework.Pod) {
	t.Helper()
	ctx := context.Background()
	var err error
	busy, err = c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "busy", Namespace: namespace, EmptyDirs: []string{"scratch"},
		Containers: []framework.ContainerSpec{{
			Name: "work", Image: framework.WorkImage, MemoryLimitBytes: busyLimitBytes,
			Args:   []string{"-cpu", "0.2", "-mem", "50", "-net", "-write", "/scratch"},
			Mounts: []framework.VolumeMount{{Volume: "scratch", MountPath: "/scratch"}},
		}},
	})
	if err != nil {
		t.Fatalf("run busy pod: %v", err)
	}
	idle, err = c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "idle", Namespace: namespace,
		Containers: []framework.ContainerSpec{
			{Name: "main", Image: framework.PauseImage},
			{Name: "sidecar", Image: framework.WorkImage},
		},
	})
	if err != nil {
		t.Fatalf("run idle pod: %v", err)
	}
	hostNet, err = c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "hostnet", Namespace: namespace, HostNetwork: true,
		Containers: []framework.ContainerSpec{{Name: "main", Image: framework.PauseImage}},
	})
	if err != nil {
		t.Fatalf("run host-network pod: %v", err)
	}
	return busy, idle, hostNet
}

const allReadyWhat = "the three pods with their containers and the busy container's cpu rate"

// allReady is true once the three pods are listed with their containers and
// the busy container has a cpu rate.
func allReady(s *statsapi.Summary) bool {
	busy := findContainer(findPod(s, namespace, "busy"), "work")
	idle := findPod(s, namespace, "idle")
	return busy != nil && busy.CPU != nil && busy.CPU.UsageNanoCores != nil &&
		idle != nil && len(idle.Containers) == 2 && findPod(s, namespace, "hostnet") != nil
}

func TestPodsFromContainerd(t *testing.T) {
	c := framework.StartCluster(t, "kss-e2e")
	busy, idle, hostNet := threePods(t, c)
	srv := serverproc.Start(t, serverBinary, c.ServerArgs("--volume-stats-agg-period=1s")...)
	summary := waitForSummary(t, srv, "", allReadyWhat, allReady)

	t.Run("pod set and identity", func(t *testing.T) {
		if len(summary.Pods) != 3 {
			t.Errorf("pods = %d, want exactly the 3 pods of this test", len(summary.Pods))
		}
		for _, want := range []struct {
			pod        *framework.Pod
			containers []string
		}{{busy, []string{"work"}}, {idle, []string{"main", "sidecar"}}, {hostNet, []string{"main"}}} {
			got := findPod(summary, want.pod.Namespace, want.pod.Name)
			if got == nil {
				t.Errorf("pod %s missing", want.pod.Name)
				continue
			}
			if got.PodRef.UID != want.pod.UID {
				t.Errorf("pod %s uid = %q, want %q", want.pod.Name, got.PodRef.UID, want.pod.UID)
			}
			if names := containerNames(got); !slices.Equal(names, want.containers) {
				t.Errorf("pod %s containers = %v, want %v", want.pod.Name, names, want.containers)
			}
			if got.StartTime.IsZero() {
				t.Errorf("pod %s has no startTime", want.pod.Name)
			}
		}
	})

	t.Run("busy container cpu matches its cgroup", func(t *testing.T) {
		cgroup := busy.CgroupPath(busy.Container("work"))
		usage := func() uint64 {
			v, err := framework.CPUUsageNanos(cgroup)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		startUsage, start := usage(), time.Now()
		var rates []float64
		for len(rates) < 5 {
			waitTicks(t, srv, 1)
			work := findContainer(findPod(getSummary(t, srv, ""), namespace, "busy"), "work")
			if work == nil || work.CPU == nil || work.CPU.UsageNanoCores == nil {
				t.Fatal("busy container lost its cpu rate")
			}
			rates = append(rates, float64(*work.CPU.UsageNanoCores))
		}
		truth := float64(usage()-startUsage) / time.Since(start).Seconds()
		var mean float64
		for _, r := range rates {
			mean += r / float64(len(rates))
		}
		if math.Abs(mean-truth) > 0.25*truth {
			t.Errorf("usageNanoCores averages %.0f over 5 ticks, cgroup says %.0f nanocores", mean, truth)
		}
		if truth < 0.1e9 || truth > 0.4e9 {
			t.Errorf("the busy container burned %.2f cores, want about 0.2: the workload is off", truth/1e9)
		}
	})

	t.Run("busy container memory against its limit", func(t *testing.T) {
		work := findContainer(findPod(summary, namespace, "busy"), "work")
		mem := work.Memory
		if mem == nil || mem.WorkingSetBytes == nil || mem.AvailableBytes == nil || mem.UsageBytes == nil {
			t.Fatalf("memory = %+v", mem)
		}
		if *mem.WorkingSetBytes < 50<<20 || *mem.WorkingSetBytes > busyLimitBytes {
			t.Errorf("workingSetBytes = %d, want between 50 MiB and the 100 MiB limit", *mem.WorkingSetBytes)
		}
		if *mem.AvailableBytes+*mem.WorkingSetBytes != busyLimitBytes {
			t.Errorf("availableBytes %d + workingSetBytes %d != limit %d", *mem.AvailableBytes, *mem.WorkingSetBytes, busyLimitBytes)
		}
	})

	t.Run("pod cpu and memory come from the pod cgroup", func(t *testing.T) {
		pod := findPod(summary, namespace, "busy")
		if pod.CPU == nil || pod.Memory == nil || pod.CPU.UsageCoreNanoSeconds == nil || pod.Memory.UsageBytes == nil {
			t.Fatalf("pod cpu/memory = %+v / %+v", pod.CPU, pod.Memory)
		}
		if pod.CPU.PSI == nil {
			t.Error("pod cpu has no psi: it was summed from containers instead of read from the pod cgroup")
		}
		work := findContainer(pod, "work")
		if *pod.CPU.UsageCoreNanoSeconds < *work.CPU.UsageCoreNanoSeconds {
			t.Errorf("pod cpu %d < its container's %d", *pod.CPU.UsageCoreNanoSeconds, *work.CPU.UsageCoreNanoSeconds)
		}
		if pod.ProcessStats == nil || pod.ProcessStats.ProcessCount == nil || *pod.ProcessStats.ProcessCount < 1 {
			t.Errorf("process_stats = %+v", pod.ProcessStats)
		}
	})

	t.Run("pod network grows after traffic", func(t *testing.T) {
		first := findPod(getSummary(t, srv, ""), namespace, "busy").Network
		if first == nil || first.Name != "eth0" || first.TxBytes == nil {
			t.Fatalf("busy pod network = %+v, want eth0 counters", first)
		}
		framework.Eventually(t, summaryWait, "the busy pod's tx bytes to grow", func() bool {
			now := findPod(getSummary(t, srv, ""), namespace, "busy").Network
			return now != nil && now.TxBytes != nil && *now.TxBytes > *first.TxBytes && *now.RxBytes >= *first.RxBytes
		})
		hostNetwork := findPod(summary, namespace, "hostnet").Network
		if hostNetwork == nil || !slices.Equal(interfaceNames(hostNetwork), interfaceNames(summary.Node.Network)) {
			t.Errorf("host-network pod interfaces = %v, want the node's %v", interfaceNames(hostNetwork), interfaceNames(summary.Node.Network))
		}
	})

	t.Run("filesystems", func(t *testing.T) {
		work := findContainer(findPod(summary, namespace, "busy"), "work")
		if work.Rootfs == nil || work.Rootfs.CapacityBytes == nil || work.Rootfs.AvailableBytes == nil {
			t.Errorf("rootfs = %+v, want writable-layer usage and the filesystem's capacity", work.Rootfs)
		}
		if work.Logs == nil || work.Logs.UsedBytes == nil || work.Logs.InodesUsed == nil || *work.Logs.InodesUsed < 1 {
			t.Errorf("logs = %+v, want du of the container's log directory", work.Logs)
		}
		// containerd measures image usage every stats_collect_period (10s);
		// until then it reports 0.
		runtime := waitForSummary(t, srv, "", "containerd's image fs usage", func(s *statsapi.Summary) bool {
			r := s.Node.Runtime
			return r != nil && r.ImageFs != nil && r.ImageFs.UsedBytes != nil && *r.ImageFs.UsedBytes > 0
		}).Node.Runtime
		if fs := runtime.ImageFs; fs.CapacityBytes == nil || fs.AvailableBytes == nil || fs.InodesUsed == nil || runtime.ContainerFs == nil {
			t.Errorf("imageFs = %+v, want usage, inodes and the filesystem's capacity", fs)
		}
		eph := findPod(summary, namespace, "busy").EphemeralStorage
		if eph == nil || eph.UsedBytes == nil || eph.CapacityBytes == nil {
			t.Errorf("ephemeral-storage = %+v", eph)
		}
	})

	t.Run("emptyDir volume measured in the background", func(t *testing.T) {
		// The work container writes 1 MiB into its emptyDir at start.
		withVolume := waitForSummary(t, srv, "", "1 MiB in the busy pod's emptyDir", func(s *statsapi.Summary) bool {
			pod := findPod(s, namespace, "busy")
			return pod != nil && len(pod.VolumeStats) == 1 && *pod.VolumeStats[0].UsedBytes >= 1<<20
		})
		pod := findPod(withVolume, namespace, "busy")
		volume := pod.VolumeStats[0]
		dir := filepath.Join(c.Runtime.RootDir(), "pods", busy.UID, "volumes", "kubernetes.io~empty-dir", "scratch")
		var st unix.Statfs_t
		if err := unix.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if volume.Name != "scratch" || *volume.CapacityBytes != st.Blocks*uint64(st.Bsize) || *volume.InodesUsed < 2 ||
			*volume.UsedBytes > 2<<20 || volume.PVCRef != nil {
			t.Errorf("volume %+v, want scratch with 1 MiB, the dir and its file, on a filesystem of %d bytes",
				volume, st.Blocks*uint64(st.Bsize))
		}
		// An ephemeral volume counts toward ephemeral storage.
		if eph := pod.EphemeralStorage; eph == nil || *eph.UsedBytes < *volume.UsedBytes {
			t.Errorf("ephemeral-storage %+v does not include the emptyDir's %d bytes", eph, *volume.UsedBytes)
		}
		for _, other := range []string{"idle", "hostnet"} {
			if p := findPod(withVolume, namespace, other); p != nil && p.VolumeStats != nil {
				t.Errorf("pod %s without volumes lists %+v", other, p.VolumeStats)
			}
		}
	})

	t.Run("keys match the kubelet's pod", func(t *testing.T) {
		testShapeMatchesKubelet(t, srv)
	})

	t.Run("only_cpu_and_memory", func(t *testing.T) {
		cpuMem := getSummary(t, srv, "?only_cpu_and_memory=true")
		if len(cpuMem.Pods) != 3 {
			t.Fatalf("pods = %d, want 3", len(cpuMem.Pods))
		}
		for _, pod := range cpuMem.Pods {
			if pod.Network != nil || pod.EphemeralStorage != nil || pod.ProcessStats != nil || pod.VolumeStats != nil {
				t.Errorf("pod %s carries more than cpu, memory and swap", pod.PodRef.Name)
			}
			if pod.CPU == nil || pod.Memory == nil {
				t.Errorf("pod %s lacks cpu or memory", pod.PodRef.Name)
			}
			for _, container := range pod.Containers {
				if container.CPU == nil || container.Memory == nil || container.Rootfs != nil || container.Logs != nil || container.IO != nil {
					t.Errorf("container %s/%s = %+v", pod.PodRef.Name, container.Name, container)
				}
			}
		}
	})

	t.Run("metrics/resource matches the summary of the same snapshot", func(t *testing.T) {
		testResourceMetrics(t, srv)
	})

	t.Run("metrics/cadvisor labels and values", func(t *testing.T) {
		testCadvisorMetrics(t, srv, busy)
	})

	t.Run("stats-source=cri gives the same pods from ListPodSandboxStats", func(t *testing.T) {
		criServer := serverproc.Start(t, serverBinary, c.ServerArgs("--stats-source=cri")...)
		fromCRI := waitForSummary(t, criServer, "", allReadyWhat+" from --stats-source=cri", allReady)
		checkStrictSource(t, criServer, fromCRI)
		ours := getSummary(t, srv, "")
		for _, pod := range ours.Pods {
			other := findPod(fromCRI, pod.PodRef.Namespace, pod.PodRef.Name)
			if other == nil {
				t.Errorf("pod %s missing with --stats-source=cri", pod.PodRef.Name)
				continue
			}
			if !slices.Equal(containerNames(&pod), containerNames(other)) {
				t.Errorf("pod %s containers %v vs %v", pod.PodRef.Name, containerNames(&pod), containerNames(other))
			}
		}
		if len(fromCRI.Pods) != len(ours.Pods) {
			t.Errorf("--stats-source=cri lists %d pods, default lists %d", len(fromCRI.Pods), len(ours.Pods))
		}
		a := findContainer(findPod(ours, namespace, "busy"), "work").Memory.WorkingSetBytes
		b := findContainer(findPod(fromCRI, namespace, "busy"), "work").Memory.WorkingSetBytes
		if a == nil || b == nil || math.Abs(float64(*a)-float64(*b)) > 0.1*float64(*a) {
			t.Errorf("busy working set %v (collector) vs %v (cri), want within 10%%", a, b)
		}
	})

	t.Run("restarted container appears once", func(t *testing.T) {
		beforeRestart := time.Now().Truncate(time.Second)
		if err := c.Runtime.RestartContainer(context.Background(), idle, "sidecar"); err != nil {
			t.Fatal(err)
		}
		waitTicks(t, srv, 2)
		pod := findPod(getSummary(t, srv, ""), namespace, "idle")
		if names := containerNames(pod); !slices.Equal(names, []string{"main", "sidecar"}) {
			t.Errorf("containers after restart = %v, want [main sidecar]", names)
		}
		if sidecar := findContainer(pod, "sidecar"); sidecar == nil || sidecar.StartTime.Time.Before(beforeRestart) {
			t.Errorf("sidecar after restart = %+v, want the new instance (started after %v)", sidecar, beforeRestart)
		}
	})

	t.Run("removed pod is gone within two ticks", func(t *testing.T) {
		if err := c.Runtime.RemovePod(context.Background(), hostNet); err != nil {
			t.Fatal(err)
		}
		waitTicks(t, srv, 2)
		if findPod(getSummary(t, srv, ""), namespace, "hostnet") != nil {
			t.Error("removed pod still listed two ticks later")
		}
	})

	t.Run("runtime down keeps serving, runtime back shows new pods", func(t *testing.T) {
		if err := c.Runtime.Kill(); err != nil {
			t.Fatal(err)
		}
		waitTicks(t, srv, 2)
		during := getSummary(t, srv, "")
		if findPod(during, namespace, "busy") == nil || during.Node.CPU == nil {
			t.Errorf("with containerd down the summary lost node stats or the last pod view: %d pods", len(during.Pods))
		}
		_, _, metrics := serverproc.Do(t, http.MethodGet, srv.Base+"/metrics", nil, nil)
		if errors := metricValue(string(metrics), "kubelet_stats_server_runtime_errors_total"); errors < 1 {
			t.Errorf("kubelet_stats_server_runtime_errors_total = %v with containerd down, want >= 1", errors)
		}
		if err := c.Runtime.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Runtime.RunPod(context.Background(), framework.PodSpec{
			Name: "after-restart", Namespace: namespace,
			Containers: []framework.ContainerSpec{{Name: "main", Image: framework.PauseImage}},
		}); err != nil {
			t.Fatal(err)
		}
		waitForSummary(t, srv, "", "the pod started after the runtime restart", func(s *statsapi.Summary) bool {
			return findPod(s, namespace, "after-restart") != nil
		})
		status, _, _ := serverproc.Do(t, http.MethodGet, srv.Base+"/healthz", nil, nil)
		if status != http.StatusOK {
			t.Errorf("healthz = %d after the runtime came back", status)
		}
	})
}

// checkStrictSource fails unless the pods came from ListPodSandboxStats: a
// runtime without it makes the server fall back to the collector, which
// would pass every comparison with the default server.
func checkStrictSource(t *testing.T, srv *serverproc.Server, summary *statsapi.Summary) {
	t.Helper()
	log := srv.Log()
	if strings.Contains(log, "falls back to the collector") {
		t.Errorf("the server fell back from --stats-source=cri to the collector")
	}
	strictRefresh := slices.ContainsFunc(strings.Split(log, "\n"), func(line string) bool {
		return strings.Contains(line, `"Refreshed runtime stats"`) && strings.Contains(line, "strict=true")
	})
	if !strictRefresh {
		t.Errorf("the server log shows no refresh from ListPodSandboxStats (strict=true)")
	}
	// containerd reports network stats only for a sandbox with a network
	// namespace of its own; the collector path gives a host-network pod the
	// node's interfaces (see "pod network grows after traffic").
	switch hostNet := findPod(summary, namespace, "hostnet"); {
	case hostNet == nil:
		t.Errorf("host-network pod missing with --stats-source=cri")
	case hostNet.Network != nil:
		t.Errorf("host-network pod network %v with --stats-source=cri, want none, as containerd reports it", interfaceNames(hostNet.Network))
	}
}

func interfaceNames(network *statsapi.NetworkStats) []string {
	if network == nil {
		return nil
	}
	var names []string
	for _, iface := range network.Interfaces {
		names = append(names, iface.Name)
	}
	return names
}

// metricValue is the value of an unlabelled series in Prometheus text, or -1.
func metricValue(exposition, name string) float64 {
	for _, line := range strings.Split(exposition, "\n") {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err == nil {
				return v
			}
		}
	}
	return -1
}
