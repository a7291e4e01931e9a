package pods

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// podListWait bounds how long /pods may take to show a change: a few of
// the server's 1 s ticks.
const podListWait = 30 * time.Second

func getPodList(t *testing.T, srv *serverproc.Server) *corev1.PodList {
	t.Helper()
	status, header, body := serverproc.Do(t, http.MethodGet, srv.Base+"/pods", nil, nil)
	if status != http.StatusOK || header.Get("Content-Type") != "application/json" {
		t.Fatalf("/pods = %d %q: %s", status, header.Get("Content-Type"), body)
	}
	if !strings.HasPrefix(string(body), `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[`) || !strings.HasSuffix(string(body), "}\n") {
		t.Fatalf("/pods body is not the kubelet's PodList encoding: %.200s", body)
	}
	var list corev1.PodList
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatalf("decode /pods: %v", err)
	}
	return &list
}

// waitForPodList polls /pods until ready accepts it.
func waitForPodList(t *testing.T, srv *serverproc.Server, what string, ready func(*corev1.PodList) bool) *corev1.PodList {
	t.Helper()
	deadline := time.Now().Add(podListWait)
	for {
		list := getPodList(t, srv)
		if ready(list) {
			return list
		}
		if time.Now().After(deadline) {
			t.Fatalf("/pods still lacks %s after %v: %+v", what, podListWait, list.Items)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func podByName(list *corev1.PodList, name string) *corev1.Pod {
	for i := range list.Items {
		if list.Items[i].Name == name {
			return &list.Items[i]
		}
	}
	return nil
}

func statusByName(pod *corev1.Pod, name string) *corev1.ContainerStatus {
	if pod == nil {
		return nil
	}
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == name {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func specByName(pod *corev1.Pod, name string) *corev1.Container {
	for i := range pod.Spec.Containers {
		if pod.Spec.Containers[i].Name == name {
			return &pod.Spec.Containers[i]
		}
	}
	return nil
}

// TestPodListFromContainerd checks /pods of the real binary against real
// containerd pods: identity, container IDs, images, addresses, resources
// from the cgroups, volumes, restarts, and the join with the summary that
// the OTel receiver makes.
func TestPodListFromContainerd(t *testing.T) {
	c := framework.StartCluster(t, "kss-e2e-podlist")
	ctx := context.Background()
	limited, err := c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "limited", Namespace: namespace, EmptyDirs: []string{"scratch"}, Labels: map[string]string{"app": "limited"},
		Containers: []framework.ContainerSpec{
			{Name: "work", Image: framework.WorkImage, Args: []string{"-cpu", "0.1", "-mem", "20", "-write", "/scratch"},
				MemoryLimitBytes: 64 << 20, CPULimitMilli: 500, CPURequestMilli: 250,
				Mounts: []framework.VolumeMount{{Volume: "scratch", MountPath: "/scratch"}}},
			{Name: "side", Image: framework.PauseImage},
		},
	})
	if err != nil {
		t.Fatalf("run limited pod: %v", err)
	}
	hostNet, err := c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "hostnet", Namespace: namespace, HostNetwork: true,
		Containers: []framework.ContainerSpec{{Name: "main", Image: framework.PauseImage}},
	})
	if err != nil {
		t.Fatalf("run host-network pod: %v", err)
	}
	srv := serverproc.Start(t, serverBinary, c.ServerArgs()...)
	list := waitForPodList(t, srv, "both pods", func(l *corev1.PodList) bool {
		return len(l.Items) == 2 && statusByName(podByName(l, "limited"), "side") != nil
	})

	t.Run("identity", func(t *testing.T) {
		for _, want := range []*framework.Pod{limited, hostNet} {
			got := podByName(list, want.Name)
			if got == nil || got.Namespace != namespace || string(got.UID) != want.UID || got.Status.Phase != corev1.PodRunning {
				t.Errorf("pod %s = %+v, want uid %s, Running", want.Name, got, want.UID)
				continue
			}
			for _, container := range want.Containers {
				status := statusByName(got, container.Name)
				if status == nil || status.ContainerID != "containerd://"+container.ID || status.State.Running == nil ||
					status.State.Running.StartedAt.IsZero() || !status.Ready || status.Image != container.Spec.Image || status.ImageID == "" {
					t.Errorf("%s/%s status = %+v, want running containerd://%s of %s", want.Name, container.Name, status, container.ID, container.Spec.Image)
				}
			}
		}
		pod := podByName(list, "limited")
		if len(pod.Labels) != 1 || pod.Labels["app"] != "limited" {
			t.Errorf("labels = %v, want the pod's own label only", pod.Labels)
		}
		if pod.Spec.NodeName == "" || pod.Status.StartTime == nil || pod.CreationTimestamp.IsZero() {
			t.Errorf("nodeName %q, startTime %v, creationTimestamp %v: want all set", pod.Spec.NodeName, pod.Status.StartTime, pod.CreationTimestamp)
		}
	})

	t.Run("network", func(t *testing.T) {
		pod := podByName(list, "limited")
		if pod.Spec.HostNetwork || pod.Status.PodIP != limited.IP || len(pod.Status.PodIPs) != 1 || pod.Status.PodIPs[0].IP != limited.IP {
			t.Errorf("limited: hostNetwork %v podIP %q podIPs %v, want the sandbox's %s", pod.Spec.HostNetwork, pod.Status.PodIP, pod.Status.PodIPs, limited.IP)
		}
		if pod := podByName(list, "hostnet"); !pod.Spec.HostNetwork || pod.Status.PodIP != "" {
			t.Errorf("hostnet: hostNetwork %v podIP %q, want host network and no address of its own", pod.Spec.HostNetwork, pod.Status.PodIP)
		}
	})

	t.Run("resources from the cgroups", func(t *testing.T) {
		pod := podByName(list, "limited")
		work := specByName(pod, "work")
		if work == nil {
			t.Fatalf("spec.containers = %+v, want work", pod.Spec.Containers)
		}
		for name, want := range map[string]struct{ got, want resource.Quantity }{
			"limits.cpu":    {work.Resources.Limits[corev1.ResourceCPU], resource.MustParse("500m")},
			"limits.memory": {work.Resources.Limits[corev1.ResourceMemory], resource.MustParse("64Mi")},
			"requests.cpu":  {work.Resources.Requests[corev1.ResourceCPU], resource.MustParse("250m")},
		} {
			if want.got.Cmp(want.want) != 0 {
				t.Errorf("work %s = %v, want %v", name, want.got.String(), want.want.String())
			}
		}
		if side := specByName(pod, "side"); side == nil || len(side.Resources.Limits)+len(side.Resources.Requests) != 0 {
			cgroup := limited.CgroupPath(limited.Container("side"))
			t.Errorf("side = %+v, want no requests or limits (cpu.shares %s, cpu.cfs_quota_us %s)", side,
				cgroupFile(t, "cpu", cgroup, "cpu.shares"), cgroupFile(t, "cpu", cgroup, "cpu.cfs_quota_us"))
		}
		if pod.Status.QOSClass != corev1.PodQOSBurstable {
			t.Errorf("qosClass = %q, want Burstable (the harness's cgroup parent)", pod.Status.QOSClass)
		}
	})

	t.Run("volumes", func(t *testing.T) {
		pod := podByName(list, "limited")
		if len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Name != "scratch" || pod.Spec.Volumes[0].EmptyDir == nil {
			t.Errorf("volumes = %+v, want the scratch emptyDir", pod.Spec.Volumes)
		}
		mounts := specByName(pod, "work").VolumeMounts
		if len(mounts) != 1 || mounts[0].Name != "scratch" || mounts[0].MountPath != "/scratch" {
			t.Errorf("work volumeMounts = %+v, want scratch at /scratch", mounts)
		}
	})

	t.Run("the summary joins /pods", func(t *testing.T) {
		summary := getSummary(t, srv, "")
		for _, podStats := range summary.Pods {
			pod := podByName(list, podStats.PodRef.Name)
			if pod == nil || string(pod.UID) != podStats.PodRef.UID {
				t.Errorf("summary pod %+v has no /pods entry with its uid", podStats.PodRef)
				continue
			}
			for _, container := range podStats.Containers {
				if status := statusByName(pod, container.Name); status == nil || status.ContainerID == "" {
					t.Errorf("summary container %s/%s has no containerID in /pods", pod.Name, container.Name)
				}
			}
		}
	})

	// A container started while the server runs: its cgroup appears before
	// runc writes its limits, and /pods must not show the defaults.
	t.Run("restarted container's resources", func(t *testing.T) {
		if err := c.Runtime.RestartContainer(ctx, limited, "work"); err != nil {
			t.Fatal(err)
		}
		current := "containerd://" + limited.Container("work").ID
		list := waitForPodList(t, srv, "the restarted work container", func(l *corev1.PodList) bool {
			status := statusByName(podByName(l, "limited"), "work")
			return status != nil && status.ContainerID == current
		})
		work := specByName(podByName(list, "limited"), "work")
		limits, requests := work.Resources.Limits, work.Resources.Requests
		if limits.Cpu().MilliValue() != 500 || limits.Memory().Value() != 64<<20 || requests.Cpu().MilliValue() != 250 {
			t.Errorf("restarted work resources = %+v, want its limits and request from the first listing on", work.Resources)
		}
	})

	t.Run("restart", func(t *testing.T) {
		old := limited.Container("side").ID
		if err := c.Runtime.RestartContainer(ctx, limited, "side"); err != nil {
			t.Fatal(err)
		}
		current := limited.Container("side").ID
		// A listing can fall between CreateContainer and StartContainer,
		// where the new container is rightly Waiting: wait for it to run.
		list := waitForPodList(t, srv, "the restarted side container running", func(l *corev1.PodList) bool {
			status := statusByName(podByName(l, "limited"), "side")
			return status != nil && status.ContainerID == "containerd://"+current && status.State.Running != nil
		})
		status := statusByName(podByName(list, "limited"), "side")
		last := status.LastTerminationState.Terminated
		if status.RestartCount != 1 || status.State.Running == nil || last == nil || last.ContainerID != "containerd://"+old ||
			last.ExitCode != 0 || last.FinishedAt.IsZero() {
			t.Errorf("restarted side = %+v (last state %+v), want restartCount 1, running, last state the exited containerd://%s", status, last, old)
		}
	})
}
