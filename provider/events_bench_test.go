package provider

import (
	"fmt"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// BenchmarkEventIndex builds one tick's event index for 100 pods of three
// containers, what every tick does.
func BenchmarkEventIndex(b *testing.B) {
	identity := &runtimeIdentity{}
	var pods []corev1.Pod
	for p := range 100 {
		uid := fmt.Sprintf("0a1b2c3d-0000-4000-8000-%012d", p)
		identity.sandboxes = append(identity.sandboxes, &runtimeapi.PodSandbox{Id: fmt.Sprintf("sandbox%d", p),
			Metadata: &runtimeapi.PodSandboxMetadata{Name: fmt.Sprintf("pod%d", p), Namespace: "default", Uid: uid}})
		pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod%d", p), Namespace: "default", UID: types.UID(uid)}}
		for c := range 3 {
			id := fmt.Sprintf("c%d-%d", p, c)
			identity.containers = append(identity.containers, &runtimeapi.Container{Id: id, Metadata: &runtimeapi.ContainerMetadata{Name: fmt.Sprintf("c%d", c)}})
			pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{Name: fmt.Sprintf("c%d", c), ContainerID: "containerd://" + id})
		}
		pods = append(pods, pod)
	}
	b.ReportAllocs()
	for b.Loop() {
		newEventIndex(pods, identity)
	}
}
