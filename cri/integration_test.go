package cri_test

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

// TestAgainstContainerd runs every client call against a real containerd
// with one pod, then kills and restarts containerd under the same Client.
func TestAgainstContainerd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: starts containerd and runs a pod")
	}
	ctx := t.Context()
	if err := framework.EnsureInstalled(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	rt, err := framework.StartContainerd(ctx, framework.Options{Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	pod, err := rt.RunPod(ctx, framework.PodSpec{Name: "client", Namespace: "cri", Containers: []framework.ContainerSpec{{
		Name: "work", Args: []string{"-cpu", "0.1", "-mem", "10"}, MemoryLimitBytes: 64 << 20,
	}}})
	if err != nil {
		t.Fatal(err)
	}
	container := pod.Containers[0]

	// A request timeout far beyond the test run: calls against the killed
	// runtime below must fail because it is down, not because time ran out.
	client, err := cri.Dial(ctx, cri.Config{Endpoint: rt.Endpoint(), RequestTimeout: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if client.Endpoint() != rt.Endpoint() {
		t.Errorf("Endpoint() = %s, want %s", client.Endpoint(), rt.Endpoint())
	}

	t.Run("ListPodSandbox", func(t *testing.T) {
		sandboxes, err := client.ListPodSandbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(sandboxes, func(s *runtimeapi.PodSandbox) bool { return s.Id == pod.SandboxID })
		if i < 0 {
			t.Fatalf("sandbox %s not listed in %v", pod.SandboxID, sandboxes)
		}
		md := sandboxes[i].Metadata
		if md.Name != "client" || md.Namespace != "cri" || md.Uid != pod.UID || sandboxes[i].State != runtimeapi.PodSandboxState_SANDBOX_READY {
			t.Errorf("sandbox = %v", sandboxes[i])
		}
	})

	t.Run("ListContainers", func(t *testing.T) {
		containers, err := client.ListContainers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(containers, func(c *runtimeapi.Container) bool { return c.Id == container.ID })
		if i < 0 {
			t.Fatalf("container %s not listed", container.ID)
		}
		c := containers[i]
		if c.PodSandboxId != pod.SandboxID || c.Metadata.Name != "work" || c.Labels[framework.LabelContainerName] != "work" || c.State != runtimeapi.ContainerState_CONTAINER_RUNNING {
			t.Errorf("container = %v", c)
		}
	})

	t.Run("ListContainerStats", func(t *testing.T) {
		var stat *runtimeapi.ContainerStats
		pollUntil(t, "CPU and memory stats of the container", func() bool {
			stats, err := client.ListContainerStats(ctx)
			if err != nil {
				t.Fatal(err)
			}
			i := slices.IndexFunc(stats, func(s *runtimeapi.ContainerStats) bool { return s.GetAttributes().GetId() == container.ID })
			if i < 0 {
				return false
			}
			stat = stats[i]
			return stat.GetCpu().GetUsageCoreNanoSeconds().GetValue() > 0 && stat.GetMemory().GetWorkingSetBytes().GetValue() > 0
		})
		if stat.Attributes.Metadata.GetName() != "work" {
			t.Errorf("attributes = %v", stat.Attributes)
		}
		// containerd reports available bytes only under a memory limit.
		if stat.Memory.GetAvailableBytes() == nil {
			t.Errorf("memory of a limited container lacks available bytes: %v", stat.Memory)
		}
	})

	t.Run("ListPodSandboxStats", func(t *testing.T) {
		stats, err := client.ListPodSandboxStats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(stats, func(s *runtimeapi.PodSandboxStats) bool { return s.GetAttributes().GetId() == pod.SandboxID })
		if i < 0 {
			t.Fatalf("sandbox %s has no stats in %v", pod.SandboxID, stats)
		}
		linux := stats[i].GetLinux()
		if linux.GetCpu().GetUsageCoreNanoSeconds().GetValue() == 0 || linux.GetMemory().GetWorkingSetBytes().GetValue() == 0 {
			t.Errorf("sandbox stats lack cpu or memory: %v", linux)
		}
	})

	t.Run("ImageFsInfo", func(t *testing.T) {
		fs, err := client.ImageFsInfo(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(fs.GetImageFilesystems()); n != 1 {
			t.Fatalf("%d image filesystems, want 1: %v", n, fs)
		}
		imageFs := fs.ImageFilesystems[0]
		if !strings.HasPrefix(imageFs.GetFsId().GetMountpoint(), rt.Dir()) || imageFs.GetUsedBytes() == nil {
			t.Errorf("image fs = %v, want a mountpoint under %s with used bytes", imageFs, rt.Dir())
		}
	})

	t.Run("runtime killed and restarted", func(t *testing.T) {
		if err := rt.Kill(); err != nil {
			t.Fatal(err)
		}
		_, err := client.ListPodSandbox(ctx)
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("ListPodSandbox against a dead runtime: %v, want Unavailable", err)
		}
		if want := "ListPodSandbox on " + rt.Endpoint(); !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
		if _, err := client.ListContainerStats(ctx); status.Code(err) != codes.Unavailable {
			t.Errorf("ListContainerStats against a dead runtime: %v, want Unavailable", err)
		}

		if err := rt.Restart(ctx); err != nil {
			t.Fatal(err)
		}
		pollUntil(t, "the same client reaching the restarted runtime", func() bool {
			sandboxes, err := client.ListPodSandbox(ctx)
			return err == nil && slices.ContainsFunc(sandboxes, func(s *runtimeapi.PodSandbox) bool { return s.Id == pod.SandboxID })
		})
		stats, err := client.ListContainerStats(ctx)
		if err != nil || !slices.ContainsFunc(stats, func(s *runtimeapi.ContainerStats) bool { return s.GetAttributes().GetId() == container.ID }) {
			t.Errorf("after restart: ListContainerStats = %d entries, %v; want the pod's container", len(stats), err)
		}
	})
}

func pollUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-t.Context().Done():
			t.Fatalf("gave up waiting for %s", what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
