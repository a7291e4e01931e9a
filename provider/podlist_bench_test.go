package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// manyPods is a runtime and a cgroup view of n pods with two running
// containers each, with statuses.
func manyPods(n int) (*statusRuntime, *cadvisor.View) {
	rt := &statusRuntime{
		sandboxStatuses:   map[string]*runtimeapi.PodSandboxStatus{},
		containerStatuses: map[string]*runtimeapi.ContainerStatus{},
	}
	view := testView()
	created := sampleTime.Add(-time.Hour).UnixNano()
	for i := range n {
		uid := fmt.Sprintf("0f1e2d3c-aaaa-bbbb-cccc-%012d", i)
		sandboxID := fmt.Sprintf("sandbox%d", i)
		rt.identity.sandboxes = append(rt.identity.sandboxes, &runtimeapi.PodSandbox{Id: sandboxID, CreatedAt: created,
			State:    runtimeapi.PodSandboxState_SANDBOX_READY,
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("pod%d", i), Namespace: "bench", Uid: uid},
			Labels:   map[string]string{"app": "bench", "io.kubernetes.pod.uid": uid}})
		rt.sandboxStatuses[sandboxID] = &runtimeapi.PodSandboxStatus{Id: sandboxID, State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Network: &runtimeapi.PodSandboxNetworkStatus{Ip: fmt.Sprintf("10.1.%d.%d", i/250, i%250)}}
		podCgroup := "/kubepods/burstable/pod" + uid
		view.Cgroups[podCgroup] = &cadvisor.CgroupInfo{Name: podCgroup, Samples: samplesEverySecond(2)}
		for _, name := range []string{"app", "sidecar"} {
			id := fmt.Sprintf("%s%d", name, i)
			rt.identity.containers = append(rt.identity.containers, &runtimeapi.Container{Id: id, PodSandboxId: sandboxID,
				State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: created,
				Metadata:    &runtimeapi.ContainerMetadata{Name: name},
				Labels:      map[string]string{containerPodUIDLabel: uid},
				Annotations: map[string]string{restartCountAnnotation: "0"}})
			rt.containerStatuses[id] = &runtimeapi.ContainerStatus{Id: id, State: runtimeapi.ContainerState_CONTAINER_RUNNING,
				StartedAt: created, Image: &runtimeapi.ImageSpec{Image: "registry.example/" + name + ":1"}, ImageRef: "sha256:" + name}
			view.Cgroups[podCgroup+"/"+id] = &cadvisor.CgroupInfo{Name: podCgroup + "/" + id, Samples: samplesEverySecond(2),
				Spec: cadvisor.Spec{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000}}
		}
	}
	return rt, view
}

// BenchmarkPodListTick is the /pods part of a steady tick (statuses reused,
// no runtime calls) at 100 pods of two containers, volume directories
// listed in an empty root dir, with the tick's inventory.
func BenchmarkPodListTick(b *testing.B) {
	rt, view := manyPods(100)
	p := podListProvider(b.TempDir(), rt, view)
	p.Tick(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		snap := &snapshot.Snapshot{}
		if pods := p.addPodList(context.Background(), view, p.takeInventory(view), snap); len(pods) != 100 {
			b.Fatalf("pods = %d", len(pods))
		}
	}
	if rt.calls != 1+100+200 {
		b.Errorf("status calls = %d, want only the first tick's", rt.calls)
	}
}
