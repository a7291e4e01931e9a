package register

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	"k8s.io/utils/ptr"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// runtimePod is a pod as the provider's /pods list has it.
func runtimePod(name, uid string, hostNetwork bool, containers ...string) corev1.Pod {
	pod := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "team", UID: types.UID(uid),
			Labels: map[string]string{"app": name}, Annotations: map[string]string{"note": "kept"}},
		Spec: corev1.PodSpec{NodeName: testNode, HostNetwork: hostNetwork,
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: corev1.PodQOSBurstable},
	}
	if !hostNetwork {
		pod.Status.PodIP = "10.217.0.5"
		pod.Status.PodIPs = []corev1.PodIP{{IP: "10.217.0.5"}}
	}
	for _, c := range containers {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{
			Name: c, Image: "localhost/work:1",
			VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}},
			Resources: corev1.ResourceRequirements{
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi")},
				Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("100Mi"), corev1.ResourceCPU: resource.MustParse("100m")},
			},
		})
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c, Ready: true, ContainerID: "containerd://" + c + "-1", Image: "localhost/work:1",
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{}},
			VolumeMounts: []corev1.VolumeMountStatus{{Name: "data", MountPath: "/data"}},
		})
	}
	return pod
}

func newTestMirrors(t *testing.T, client *fake.Clientset, src *fakeSource) *mirrors {
	m := newMirrors(testConfig(t, client, src), testConfig(t, client, src).Logger)
	m.setNode(&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "node-uid"}})
	return m
}

func listPods(t *testing.T, client *fake.Clientset) map[string]corev1.Pod {
	t.Helper()
	pods, err := client.CoreV1().Pods("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		out[p.Namespace+"/"+p.Name] = p
	}
	return out
}

func TestMirrorPodsFollowTheRuntime(t *testing.T) {
	client := newClient()
	src := &fakeSource{}
	m := newTestMirrors(t, client, src)
	ctx := context.Background()

	src.setPods(runtimePod("web", "rt-web", false, "app", "sidecar"), runtimePod("host", "rt-host", true, "agent"))
	m.sync(ctx)
	pods := listPods(t, client)
	web, ok := pods["team/web"]
	if !ok || len(pods) != 2 {
		t.Fatalf("mirror pods %v, want team/web and team/host", pods)
	}
	if web.Annotations[mirrorAnnotation] != "rt-web" || web.Annotations["note"] != "kept" || web.Labels["app"] != "web" {
		t.Errorf("metadata %+v", web.ObjectMeta)
	}
	if len(web.OwnerReferences) != 1 || web.OwnerReferences[0].UID != "node-uid" || !ptr.Deref(web.OwnerReferences[0].Controller, false) {
		t.Errorf("owner references %+v, want the node as controller", web.OwnerReferences)
	}
	if web.Spec.NodeName != testNode || len(web.Spec.Volumes) != 0 || len(web.Spec.Containers) != 2 ||
		len(web.Spec.Containers[0].VolumeMounts) != 0 || web.Spec.Containers[0].Image != "localhost/work:1" {
		t.Errorf("spec %+v", web.Spec)
	}
	if web.Status.Phase != corev1.PodRunning || web.Status.PodIP != "10.217.0.5" || web.Status.HostIP != "192.0.2.10" ||
		len(web.Status.ContainerStatuses) != 2 || web.Status.ContainerStatuses[0].ContainerID != "containerd://app-1" ||
		web.Status.ContainerStatuses[0].VolumeMounts != nil {
		t.Errorf("status %+v", web.Status)
	}
	if host := pods["team/host"]; host.Status.PodIP != "192.0.2.10" || len(host.Status.PodIPs) != 1 {
		t.Errorf("host-network pod's IPs %q %v, want the node's InternalIP like the kubelet", host.Status.PodIP, host.Status.PodIPs)
	}

	// Unchanged: no API call beyond the list.
	before := len(client.Actions())
	m.sync(ctx)
	if after := len(client.Actions()); after != before {
		t.Errorf("%d API calls for an unchanged runtime, want 0: %v", after-before, client.Actions()[before:])
	}

	// A container restarted: the status follows.
	restarted := runtimePod("web", "rt-web", false, "app", "sidecar")
	restarted.Status.ContainerStatuses[0].RestartCount = 1
	restarted.Status.ContainerStatuses[0].ContainerID = "containerd://app-2"
	src.setPods(restarted, runtimePod("host", "rt-host", true, "agent"))
	m.sync(ctx)
	if got := listPods(t, client)["team/web"].Status.ContainerStatuses[0]; got.RestartCount != 1 || got.ContainerID != "containerd://app-2" {
		t.Errorf("after the restart, status %+v", got)
	}

	// The sandbox went: so does its mirror.
	src.setPods(restarted)
	m.sync(ctx)
	if pods := listPods(t, client); len(pods) != 1 {
		t.Errorf("after team/host's sandbox went, mirror pods %v", pods)
	}
	src.setPods()
	m.sync(ctx)
	if pods := listPods(t, client); len(pods) != 0 {
		t.Errorf("with no pods left, mirror pods %v", pods)
	}
}

func TestMirrorSyncWaitsForTheFirstSnapshot(t *testing.T) {
	stale := mirrorPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "old", Namespace: "team", UID: "rt-old"}}, testNode, "node-uid")
	client := newClient(stale)
	m := newTestMirrors(t, client, &fakeSource{})
	m.sync(context.Background())
	if pods := listPods(t, client); len(pods) != 1 {
		t.Errorf("before the first snapshot, mirror pods %v: nothing is known to be gone yet", pods)
	}
}

func TestMirrorPodsOfAnEarlierRunAreAdoptedOrDeleted(t *testing.T) {
	gone := mirrorPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "gone", Namespace: "team", UID: "rt-gone"}}, testNode, "node-uid")
	kept := mirrorPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team", UID: "rt-web"}}, testNode, "node-uid")
	kept.UID = "api-web"
	foreign := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "user", Namespace: "team", UID: "api-user"}, Spec: corev1.PodSpec{NodeName: testNode}}
	client := newClient(gone, kept, foreign)
	src := &fakeSource{}
	src.setPods(runtimePod("web", "rt-web", false, "app"))
	m := newTestMirrors(t, client, src)
	m.sync(context.Background())
	pods := listPods(t, client)
	if _, ok := pods["team/gone"]; ok {
		t.Error("the mirror of a pod that went while the server was down is still there")
	}
	if web := pods["team/web"]; web.UID != "api-web" || web.Status.Phase != corev1.PodRunning {
		t.Errorf("team/web uid %s phase %s: want the earlier mirror adopted and its status posted", web.UID, web.Status.Phase)
	}
	if _, ok := pods["team/user"]; !ok {
		t.Error("a pod that is no mirror pod was deleted")
	}
}

func TestMirrorLeavesPodsThatAreNotMirrors(t *testing.T) {
	user := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team", UID: "api-user"}}
	client := newClient(user)
	src := &fakeSource{}
	src.setPods(runtimePod("web", "rt-web", false, "app"))
	m := newTestMirrors(t, client, src)
	m.sync(context.Background())
	m.sync(context.Background())
	got := listPods(t, client)["team/web"]
	if got.UID != "api-user" || got.Annotations[mirrorAnnotation] != "" {
		t.Errorf("the user's pod was replaced: %+v", got.ObjectMeta)
	}
	if countActions(client, "delete", "pods", "") != 0 || countActions(client, "patch", "pods", "status") != 0 {
		t.Errorf("the user's pod was written to: %v", client.Actions())
	}
}

func TestMirrorOfAnEarlierPodOfTheSameNameIsReplaced(t *testing.T) {
	earlier := mirrorPod(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "team", UID: "rt-web-1"}}, testNode, "node-uid")
	earlier.UID = "api-1"
	client := newClient(earlier)
	src := &fakeSource{}
	// Adopted at start, then gone: the runtime runs a new pod of that name.
	src.setPods(runtimePod("web", "rt-web-2", false, "app"))
	m := newTestMirrors(t, client, src)
	m.sync(context.Background())
	m.sync(context.Background())
	if got := listPods(t, client)["team/web"]; got.Annotations[mirrorAnnotation] != "rt-web-2" || got.UID == "api-1" {
		t.Errorf("team/web mirrors %q (uid %s), want the new pod rt-web-2", got.Annotations[mirrorAnnotation], got.UID)
	}
}

func TestMirrorIsMadeAgainWhenTheContainersChange(t *testing.T) {
	client := newClient()
	src := &fakeSource{}
	m := newTestMirrors(t, client, src)
	src.setPods(runtimePod("web", "rt-web", false, "app"))
	m.sync(context.Background())
	first := listPods(t, client)["team/web"].UID
	src.setPods(runtimePod("web", "rt-web", false, "app", "late"))
	m.sync(context.Background())
	got := listPods(t, client)["team/web"]
	if got.UID == first || len(got.Spec.Containers) != 2 || len(got.Status.ContainerStatuses) != 2 {
		t.Errorf("uid %s (first %s), %d containers, %d statuses: want a new mirror with both containers",
			got.UID, first, len(got.Spec.Containers), len(got.Status.ContainerStatuses))
	}
}

func TestSandboxWithoutContainersIsNotMirroredYet(t *testing.T) {
	client := newClient()
	src := &fakeSource{}
	src.setPods(runtimePod("web", "rt-web", false))
	m := newTestMirrors(t, client, src)
	m.sync(context.Background())
	if pods := listPods(t, client); len(pods) != 0 {
		t.Errorf("mirror pods %v: a pod without containers fails the API server's validation", pods)
	}
}

func TestMirrorResourcesKeepRequestsWithinLimits(t *testing.T) {
	got := mirrorResources(corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), "example.com/gpu": resource.MustParse("1")},
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("201m"), corev1.ResourceMemory: resource.MustParse("1Gi"),
			"example.com/gpu": resource.MustParse("1")},
	})
	if cpu := got.Requests[corev1.ResourceCPU]; cpu.Cmp(resource.MustParse("200m")) != 0 {
		t.Errorf("cpu request %s, want clamped to the 200m limit", cpu.String())
	}
	if memory := got.Requests[corev1.ResourceMemory]; memory.Cmp(resource.MustParse("1Gi")) != 0 {
		t.Errorf("memory request %s, want 1Gi", memory.String())
	}
	if _, found := got.Requests["example.com/gpu"]; found {
		t.Error("an extended resource was kept: the API server would need the node to offer it")
	}
}

func TestOOMKillEvents(t *testing.T) {
	client := newClient()
	src := &fakeSource{owners: map[string][3]string{"/kubepods/podrt-web/abc": {"team", "web", "app"}}}
	r := New(testConfig(t, client, src))
	r.mirrors.put("rt-web", &mirror{namespace: "team", name: "web", uid: "api-web"})

	r.RecordOOMKill(cadvisor.OOMKill{PID: 42, ProcessName: "work", Cgroup: "/kubepods/podrt-web/abc", LimitCgroup: "/kubepods/podrt-web/abc"})
	r.RecordOOMKill(cadvisor.OOMKill{PID: 7, ProcessName: "java", Cgroup: "/system.slice/app", LimitCgroup: "/"})
	r.RecordOOMKill(cadvisor.OOMKill{PID: 8, ProcessName: "cron", Cgroup: "/system.slice/cron", LimitCgroup: "/system.slice/cron"})
	r.recorder.drain(context.Background())
	events, err := client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range events.Items {
		got = append(got, fmt.Sprintf("%s %s %s %s/%s %s/%s", e.Type, e.Reason, e.Message,
			e.InvolvedObject.APIVersion, e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name))
	}
	sort.Strings(got)
	want := []string{
		"Warning OOMKilling Memory cgroup out of memory: killed process 42 (work) of container app v1/Pod team/web",
		"Warning SystemOOM System OOM encountered, victim process: java, pid: 7 /Node /node-a",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events %q, want %q (a kill outside pods under its own limit posts nothing, as in the kubelet)", got, want)
	}
	if ref := r.mirrors.podRef("team", "web", "app"); ref.UID != "api-web" || ref.FieldPath != "spec.containers{app}" {
		t.Errorf("pod reference %+v, want the mirror's UID and the container's field path", ref)
	}
}
