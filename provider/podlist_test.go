package provider

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// The CRI client is what the binary passes as Config.Runtime: /pods needs it
// to have the statuses too.
var _ podStatusReader = (*cri.Client)(nil)

// statusRuntime is fakeRuntime with statuses, counting the status calls.
type statusRuntime struct {
	fakeRuntime
	sandboxStatuses   map[string]*runtimeapi.PodSandboxStatus
	containerStatuses map[string]*runtimeapi.ContainerStatus
	// containerInfo is the verbose Info of a container's status.
	containerInfo map[string]map[string]string
	err           error
	calls         int
}

func (f *statusRuntime) RuntimeName(context.Context) (string, error) {
	f.calls++
	if f.err != nil {
		return "", f.err
	}
	return "containerd", nil
}

func (f *statusRuntime) PodSandboxStatus(_ context.Context, id string) (*runtimeapi.PodSandboxStatus, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	return f.sandboxStatuses[id], nil
}

func (f *statusRuntime) ContainerStatus(_ context.Context, id string) (*runtimeapi.ContainerStatusResponse, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if f.containerStatuses[id] == nil {
		return nil, grpcstatus.Errorf(codes.NotFound, "an error occurred when try to find container %q: not found", id)
	}
	return &runtimeapi.ContainerStatusResponse{Status: f.containerStatuses[id], Info: f.containerInfo[id]}, nil
}

const webUID = "0f1e2d3c-aaaa-bbbb-cccc-0000000000aa"

var (
	sandboxCreated = time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	appStarted     = sandboxCreated.Add(30 * time.Second)
)

// webPod is a burstable pod with a sidecar and an app container that was
// OOM-killed once, an emptyDir, a projected token, an inline and a
// persistent CSI volume, as the kubelet leaves them in containerd.
func webPod(t *testing.T, rootDir string) (*statusRuntime, *cadvisor.View) {
	t.Helper()
	volumes := filepath.Join(rootDir, "pods", webUID, "volumes")
	for _, dir := range []string{"kubernetes.io~empty-dir/scratch", "kubernetes.io~projected/kube-api-access-x",
		"kubernetes.io~csi/inline", "kubernetes.io~csi/pvc-0123", "kubernetes.io~nfs/pv-nfs"} {
		if err := os.MkdirAll(filepath.Join(volumes, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON := func(path, body string) {
		if err := os.WriteFile(filepath.Join(volumes, path), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeJSON("kubernetes.io~csi/inline/vol_data.json", `{"driverName":"inline.csi.example","volumeLifecycleMode":"Ephemeral"}`)
	writeJSON("kubernetes.io~csi/pvc-0123/vol_data.json", `{"driverName":"disk.csi.example","volumeLifecycleMode":"Persistent"}`)

	nanos := func(t time.Time) int64 { return t.UnixNano() }
	labels := func(name string) map[string]string {
		return map[string]string{containerPodUIDLabel: webUID, "io.kubernetes.container.name": name, "io.kubernetes.pod.name": "web"}
	}
	rt := &statusRuntime{fakeRuntime: fakeRuntime{identity: runtimeIdentity{
		sandboxes: []*runtimeapi.PodSandbox{
			{Id: "s0", State: runtimeapi.PodSandboxState_SANDBOX_NOTREADY, CreatedAt: nanos(sandboxCreated.Add(-time.Hour)),
				Metadata: &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "shop", Uid: webUID}},
			{Id: "s1", State: runtimeapi.PodSandboxState_SANDBOX_READY, CreatedAt: nanos(sandboxCreated),
				Metadata:    &runtimeapi.PodSandboxMetadata{Name: "web", Namespace: "shop", Uid: webUID},
				Labels:      map[string]string{"app": "web", "io.kubernetes.pod.name": "web", "io.kubernetes.pod.uid": webUID},
				Annotations: map[string]string{"kubernetes.io/config.source": "api"}},
		},
		containers: []*runtimeapi.Container{
			{Id: "app1", PodSandboxId: "s1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: nanos(appStarted),
				Metadata: &runtimeapi.ContainerMetadata{Name: "app", Attempt: 1}, Labels: labels("app"),
				Image: &runtimeapi.ImageSpec{Image: "sha256:aaa"}, ImageRef: "sha256:aaa",
				Annotations: map[string]string{
					restartCountAnnotation: "1", terminationGracePeriodAnnotation: "45",
					terminationMessagePathAnnotation: "/dev/termination-log", terminationMessagePolicyAnnotation: "File",
					portsAnnotation:          `[{"name":"http","containerPort":8080,"protocol":"TCP"}]`,
					preStopHandlerAnnotation: `{"exec":{"command":["sleep","5"]}}`,
				}},
			{Id: "app0", PodSandboxId: "s1", State: runtimeapi.ContainerState_CONTAINER_EXITED, CreatedAt: nanos(sandboxCreated.Add(2 * time.Second)),
				Metadata: &runtimeapi.ContainerMetadata{Name: "app"}, Labels: labels("app"),
				Annotations: map[string]string{restartCountAnnotation: "0"}},
			{Id: "side0", PodSandboxId: "s1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, CreatedAt: nanos(sandboxCreated.Add(time.Second)),
				Metadata: &runtimeapi.ContainerMetadata{Name: "sidecar"}, Labels: labels("sidecar"),
				Annotations: map[string]string{restartCountAnnotation: "0"}},
		},
	}}}
	rt.sandboxStatuses = map[string]*runtimeapi.PodSandboxStatus{
		"s1": {Id: "s1", State: runtimeapi.PodSandboxState_SANDBOX_READY,
			Network: &runtimeapi.PodSandboxNetworkStatus{Ip: "10.1.0.7", AdditionalIps: []*runtimeapi.PodIP{{Ip: "fd00::7"}}},
			Linux: &runtimeapi.LinuxPodSandboxStatus{Namespaces: &runtimeapi.Namespace{Options: &runtimeapi.NamespaceOption{
				Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}}}},
	}
	rt.containerStatuses = map[string]*runtimeapi.ContainerStatus{
		"app1": {Id: "app1", State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: nanos(appStarted),
			Image: &runtimeapi.ImageSpec{Image: "registry.example/app:1.2"}, ImageRef: "registry.example/app@sha256:aaa",
			Mounts: []*runtimeapi.Mount{
				{ContainerPath: "/scratch", HostPath: filepath.Join(volumes, "kubernetes.io~empty-dir/scratch")},
				{ContainerPath: "/var/run/secrets/kubernetes.io/serviceaccount", Readonly: true,
					HostPath: filepath.Join(volumes, "kubernetes.io~projected/kube-api-access-x")},
				{ContainerPath: "/etc/hosts", HostPath: filepath.Join(rootDir, "pods", webUID, "etc-hosts")},
			}},
		"app0": {Id: "app0", State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: 137, Reason: "OOMKilled",
			StartedAt: nanos(sandboxCreated.Add(3 * time.Second)), FinishedAt: nanos(appStarted.Add(-time.Second))},
		"side0": {Id: "side0", State: runtimeapi.ContainerState_CONTAINER_RUNNING, StartedAt: nanos(sandboxCreated.Add(time.Second)),
			Image: &runtimeapi.ImageSpec{Image: "registry.example/side:3"}, ImageRef: "registry.example/side@sha256:bbb"},
	}
	view := testView()
	podCgroup := "/kubepods/burstable/pod" + webUID
	sample := []*cadvisor.Sample{sampleAt(sampleTime, 1e9, cadvisor.MemoryStats{Usage: 1 << 20, Limit: 100 << 20})}
	unlimited := []*cadvisor.Sample{sampleAt(sampleTime, 1e9, cadvisor.MemoryStats{Usage: 1 << 20, Limit: 1<<63 - 4096})}
	view.Cgroups[podCgroup] = &cadvisor.CgroupInfo{Name: podCgroup, Samples: unlimited}
	view.Cgroups[podCgroup+"/app1"] = &cadvisor.CgroupInfo{Name: podCgroup + "/app1", Samples: sample,
		Spec: cadvisor.Spec{CPUShares: 256, CPUQuota: 50000, CPUPeriod: 100000}}
	view.Cgroups[podCgroup+"/side0"] = &cadvisor.CgroupInfo{Name: podCgroup + "/side0", Samples: unlimited,
		Spec: cadvisor.Spec{CPUShares: 2, CPUQuota: -1, CPUPeriod: 100000}}
	return rt, view
}

func podListProvider(rootDir string, rt RuntimeService, views ...*cadvisor.View) *Provider {
	return New(Config{
		NodeName: "node-a", RootDir: rootDir, Interval: time.Hour, PodRoot: "/kubepods",
		Sampler: &viewSequence{views: views},
		FsStats: func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1 << 30}, nil },
		Rlimit:  func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		Runtime: rt,
		Logger:  klog.Background(),
	})
}

func TestPodListFromRuntime(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	list, err := p.Current().PodList()
	if err != nil {
		t.Fatal(err)
	}
	if list == nil || list.Kind != "PodList" || list.APIVersion != "v1" || len(list.Items) != 1 {
		t.Fatalf("pods = %+v, want one pod in a v1 PodList", list)
	}
	got := list.Items[0]
	created := metav1.NewTime(sandboxCreated.Add(-time.Hour))
	started := metav1.NewTime(sandboxCreated)
	grace := int64(45)
	running := true
	want := corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "shop", UID: webUID, CreationTimestamp: created,
			Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"kubernetes.io/config.source": "api"}},
		Spec: corev1.PodSpec{
			NodeName: "node-a",
			Volumes: []corev1.Volume{
				{Name: "inline", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "inline.csi.example"}}},
				{Name: "kube-api-access-x", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{}}},
				{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			},
			Containers: []corev1.Container{
				{Name: "sidecar", Image: "registry.example/side:3"},
				{Name: "app", Image: "registry.example/app:1.2",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
					Resources: corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
					},
					VolumeMounts: []corev1.VolumeMount{
						{Name: "scratch", MountPath: "/scratch"},
						{Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
					},
					Lifecycle:                &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sleep", "5"}}}},
					TerminationMessagePath:   "/dev/termination-log",
					TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				},
			},
			TerminationGracePeriodSeconds: &grace,
		},
		Status: corev1.PodStatus{
			Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{
				{Type: corev1.PodReadyToStartContainers, Status: corev1.ConditionTrue, LastTransitionTime: created},
				{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: created},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(appStarted)},
				{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(appStarted)},
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: created},
			},
			PodIP:     "10.1.0.7",
			PodIPs:    []corev1.PodIP{{IP: "10.1.0.7"}, {IP: "fd00::7"}},
			StartTime: &started,
			QOSClass:  corev1.PodQOSBurstable,
			ContainerStatuses: []corev1.ContainerStatus{
				{Name: "app", Ready: true, Started: &running, RestartCount: 1,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(appStarted)}},
					LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
						ExitCode: 137, Reason: "OOMKilled", ContainerID: "containerd://app0",
						StartedAt:  metav1.NewTime(sandboxCreated.Add(3 * time.Second)),
						FinishedAt: metav1.NewTime(appStarted.Add(-time.Second))}},
					Image: "registry.example/app:1.2", ImageID: "registry.example/app@sha256:aaa", ContainerID: "containerd://app1",
					Resources: &corev1.ResourceRequirements{
						Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
						Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
					},
					AllocatedResources: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
					VolumeMounts: []corev1.VolumeMountStatus{
						{Name: "scratch", MountPath: "/scratch"},
						{Name: "kube-api-access-x", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true},
					}},
				{Name: "sidecar", Ready: true, Started: &running,
					State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(sandboxCreated.Add(time.Second))}},
					Image: "registry.example/side:3", ImageID: "registry.example/side@sha256:bbb", ContainerID: "containerd://side0",
					Resources: &corev1.ResourceRequirements{}},
			},
		},
	}
	// Compared as JSON, which is what /pods serves: a quantity made from
	// bytes and a parsed one differ only in a cached string.
	gotJSON, _ := json.MarshalIndent(got, "", " ")
	wantJSON, _ := json.MarshalIndent(want, "", " ")
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("pod =\n%s\nwant\n%s", gotJSON, wantJSON)
	}
}

// TestPodListResourcesFromRuntimeSpec: the resources the kubelet asked the
// runtime for (containerd's verbose status carries the OCI spec) win over
// the cgroup, which the collector may have read before runc wrote it.
func TestPodListResourcesFromRuntimeSpec(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	app := view.Cgroups["/kubepods/burstable/pod"+webUID+"/app1"]
	app.Spec = cadvisor.Spec{CPUShares: 1024, CPUQuota: -1, CPUPeriod: 100000}
	app.Samples = []*cadvisor.Sample{sampleAt(sampleTime, 1e9, cadvisor.MemoryStats{Limit: 1<<63 - 4096})}
	rt.containerInfo = map[string]map[string]string{"app1": {"info": `{"pid":42,"runtimeSpec":{"linux":{"resources":` +
		`{"cpu":{"shares":256,"quota":50000,"period":100000},"memory":{"limit":104857600}}}}}`}}
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	got := podItems(t, p.Current())[0].Spec.Containers[1]
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("100Mi")},
	}
	if got.Name != "app" || !equalResources(got.Resources, want) {
		t.Errorf("%s resources = %+v, want the runtime spec's %+v", got.Name, got.Resources, want)
	}
}

// TestPodListStaticPod: a static pod (kubernetes.io/config.source file) has
// no creationTimestamp in the kubelet's list: it never went through an API
// server.
func TestPodListStaticPod(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	rt.identity.sandboxes[1].Annotations[configSourceAnnotation] = "file"
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	pod := podItems(t, p.Current())[0]
	if !pod.CreationTimestamp.IsZero() {
		t.Errorf("static pod creationTimestamp = %v, want none", pod.CreationTimestamp)
	}
	if got := pod.Status.Conditions[0].LastTransitionTime; !got.Equal(ptrTo(metav1.NewTime(sandboxCreated.Add(-time.Hour)))) {
		t.Errorf("conditions[0].lastTransitionTime = %v, want the first sandbox's creation", got)
	}
}

// TestPodListReusesStatuses: a steady node costs no status calls; a
// container that changed state is asked again; a failing runtime is asked
// once per tick and the last statuses are served.
func TestPodListReusesStatuses(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	// version, one sandbox, three containers
	if rt.calls != 5 {
		t.Errorf("first tick made %d status calls, want 5", rt.calls)
	}
	rt.calls = 0
	p.Tick(context.Background())
	if rt.calls != 0 {
		t.Errorf("steady tick made %d status calls, want 0", rt.calls)
	}
	rt.identity.containers[2].State = runtimeapi.ContainerState_CONTAINER_EXITED
	rt.containerStatuses["side0"] = &runtimeapi.ContainerStatus{Id: "side0", State: runtimeapi.ContainerState_CONTAINER_EXITED, ExitCode: 2}
	p.Tick(context.Background())
	if rt.calls != 1 {
		t.Errorf("tick after a state change made %d status calls, want 1", rt.calls)
	}
	side := podItems(t, p.Current())[0].Status.ContainerStatuses[1]
	if side.State.Terminated == nil || side.State.Terminated.ExitCode != 2 || side.Ready {
		t.Errorf("sidecar status = %+v, want terminated with exit code 2", side)
	}

	rt.calls, rt.err = 0, errors.New("runtime down")
	rt.identity.containers[0].State = runtimeapi.ContainerState_CONTAINER_EXITED
	rt.identity.sandboxes[1].State = runtimeapi.PodSandboxState_SANDBOX_NOTREADY
	p.Tick(context.Background())
	if rt.calls != 1 {
		t.Errorf("tick with a failing runtime made %d status calls, want 1", rt.calls)
	}
	if errs := testutil.ToFloat64(p.metrics.runtimeErrors); errs != 1 {
		t.Errorf("a failing status call counted %v runtime errors, want 1", errs)
	}
	pod := podItems(t, p.Current())[0]
	if pod.Status.PodIP != "10.1.0.7" || pod.Status.ContainerStatuses[0].Image != "registry.example/app:1.2" {
		t.Errorf("pod with a failing runtime = %+v, want the last statuses", pod.Status)
	}
}

func TestPodListWithoutStatusReader(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	p := podListProvider(rootDir, &rt.fakeRuntime, view)
	p.Tick(context.Background())
	pod := podItems(t, p.Current())[0]
	app := pod.Status.ContainerStatuses[0]
	if app.ContainerID != "app1" || app.Image != "sha256:aaa" || app.State.Running == nil || pod.Status.PodIP != "" {
		t.Errorf("pod without statuses = %+v, want list data and bare IDs", pod.Status)
	}
	if got := pod.Spec.Containers[1].Resources.Limits.Memory(); got.Value() != 100<<20 {
		t.Errorf("app memory limit = %v, want the cgroup's", got)
	}
}

func TestPodListFromCgroups(t *testing.T) {
	const uid, containerID = "0f1e2d3c-aaaa-bbbb-cccc-000000000003", "c0ffee"
	rootDir, logsDir := t.TempDir(), t.TempDir()
	writeFile(t, filepath.Join(logsDir, "web_front_"+uid, "pod.log"), 10)
	if err := os.MkdirAll(filepath.Join(rootDir, "pods", uid, "volumes", "kubernetes.io~secret", "creds"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := New(Config{
		NodeName: "node-a", RootDir: rootDir, Interval: time.Hour, PodRoot: "/kubepods",
		Sampler:    &viewSequence{views: []*cadvisor.View{cgroupPodView(uid, containerID)}},
		FsStats:    func(string) (cadvisor.FsStats, error) { return cadvisor.FsStats{Capacity: 1 << 30}, nil },
		Rlimit:     func() cadvisor.Rlimit { return cadvisor.Rlimit{} },
		PodLogsDir: logsDir, ContainerLogsDir: filepath.Join(logsDir, "none"),
		Logger: klog.Background(),
	})
	p.Tick(context.Background())
	items := podItems(t, p.Current())
	if len(items) != 1 {
		t.Fatalf("pods = %+v, want the cgroup tree's pod", items)
	}
	pod := items[0]
	if pod.Name != "front" || pod.Namespace != "web" || string(pod.UID) != uid || pod.Status.Phase != corev1.PodRunning ||
		pod.Status.QOSClass != corev1.PodQOSGuaranteed || len(pod.Spec.Volumes) != 1 || pod.Spec.Volumes[0].Secret == nil {
		t.Errorf("pod = %+v", pod)
	}
	if statuses := pod.Status.ContainerStatuses; len(statuses) != 1 || statuses[0].ContainerID != containerID || statuses[0].Name != containerID {
		t.Errorf("container statuses = %+v, want the cgroup's container", statuses)
	}
}

func TestPodListEmpty(t *testing.T) {
	p := podListProvider(t.TempDir(), &fakeRuntime{}, testView())
	p.Tick(context.Background())
	want := `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}` + "\n"
	if body := string(p.Current().Pods); body != want {
		t.Errorf("pods = %s, want a list with nil items (the kubelet's \"items\":null): %s", body, want)
	}
}

func TestContainerResources(t *testing.T) {
	cgroup := func(shares uint64, quota int64, memory uint64) *cadvisor.CgroupInfo {
		return &cadvisor.CgroupInfo{Spec: cadvisor.Spec{CPUShares: shares, CPUQuota: quota, CPUPeriod: 100000},
			Samples: []*cadvisor.Sample{{Memory: cadvisor.MemoryStats{Limit: memory}}}}
	}
	q := resource.MustParse
	for _, tc := range []struct {
		name   string
		qos    corev1.PodQOSClass
		cri    *runtimeapi.LinuxContainerResources
		cgroup *cadvisor.CgroupInfo
		want   corev1.ResourceRequirements
	}{
		{name: "no request: 2 shares, no quota, no memory limit", qos: corev1.PodQOSBurstable, cgroup: cgroup(2, -1, 1<<63-4096)},
		{name: "requests and limits", qos: corev1.PodQOSBurstable, cgroup: cgroup(102, 150000, 64<<20),
			want: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("100m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1500m"), corev1.ResourceMemory: q("64Mi")}}},
		{name: "guaranteed requests its limits", qos: corev1.PodQOSGuaranteed, cgroup: cgroup(1024, 100000, 1<<30),
			want: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("1"), corev1.ResourceMemory: q("1Gi")}}},
		{name: "best effort has none", qos: corev1.PodQOSBestEffort, cgroup: cgroup(1024, 100000, 1<<30)},
		{name: "the runtime's answer wins", qos: corev1.PodQOSBurstable, cgroup: cgroup(2, -1, 0),
			cri: &runtimeapi.LinuxContainerResources{CpuShares: 512, CpuQuota: 20000, CpuPeriod: 100000, MemoryLimitInBytes: 10 << 20},
			want: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("500m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("200m"), corev1.ResourceMemory: q("10Mi")}}},
		{name: "unknown container", qos: corev1.PodQOSBurstable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := containerResources(tc.qos, tc.cri, tc.cgroup)
			if !equalResources(got, tc.want) {
				t.Errorf("resources = %+v, want %+v", got, tc.want)
			}
		})
	}
}

// equalResources compares quantities by value: a parsed "1Gi" and one made
// from bytes print alike but differ in their cached string.
func equalResources(a, b corev1.ResourceRequirements) bool {
	equal := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for name, qx := range x {
			qy, found := y[name]
			if !found || qx.Cmp(qy) != 0 || qx.String() != qy.String() {
				return false
			}
		}
		return true
	}
	return equal(a.Requests, b.Requests) && equal(a.Limits, b.Limits)
}

// TestSharesToMilliCPU inverts the kubelet's MilliCPUToShares for its own
// test table (pkg/kubelet/kuberuntime/helpers_linux_test.go).
func TestSharesToMilliCPU(t *testing.T) {
	for milli, shares := range map[int64]int64{3: 3, 4: 4, 32: 32, 64: 65, 100: 102, 250: 256, 500: 512, 1000: 1024, 1500: 1536, 2000: 2048} {
		if got := sharesToMilliCPU(shares); got != milli {
			t.Errorf("sharesToMilliCPU(%d) = %d, want %d", shares, got, milli)
		}
	}
}

func TestPodQOSClass(t *testing.T) {
	for name, want := range map[string]corev1.PodQOSClass{
		"/kubepods/besteffort/podx": corev1.PodQOSBestEffort,
		"/kubepods/burstable/podx":  corev1.PodQOSBurstable,
		"/kubepods/podx":            corev1.PodQOSGuaranteed,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podx.slice": corev1.PodQOSBurstable,
	} {
		if got := podQOSClass(&cadvisor.CgroupInfo{Name: name}); got != want {
			t.Errorf("podQOSClass(%s) = %s, want %s", name, got, want)
		}
	}
	if got := podQOSClass(nil); got != "" {
		t.Errorf("podQOSClass(nil) = %q, want unknown", got)
	}
}

func TestPodPhase(t *testing.T) {
	running := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	exited := func(code int32) corev1.ContainerStatus {
		return corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
	}
	waiting := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{}}}
	for _, tc := range []struct {
		name     string
		ready    bool
		statuses []corev1.ContainerStatus
		want     corev1.PodPhase
	}{
		{"no containers yet", true, nil, corev1.PodPending},
		{"one container not started", true, []corev1.ContainerStatus{running, waiting}, corev1.PodPending},
		{"running", true, []corev1.ContainerStatus{running, exited(1)}, corev1.PodRunning},
		{"all stopped in a ready sandbox: restarting", true, []corev1.ContainerStatus{exited(1)}, corev1.PodRunning},
		{"stopped sandbox, all exit 0", false, []corev1.ContainerStatus{exited(0), exited(0)}, corev1.PodSucceeded},
		{"stopped sandbox, one failed", false, []corev1.ContainerStatus{exited(0), exited(3)}, corev1.PodFailed},
	} {
		if got := podPhase(tc.ready, tc.statuses); got != tc.want {
			t.Errorf("%s: phase = %s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestPodListInitContainers: a container whose instance finished before the
// next container was first created is an init container, as the kubelet
// starts init containers one after the other and the others together; it
// is listed apart and does not make the pod unready.
func TestPodListInitContainers(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	setupCreated, setupFinished := sandboxCreated.Add(100*time.Millisecond), sandboxCreated.Add(500*time.Millisecond)
	rt.identity.containers = append(rt.identity.containers, &runtimeapi.Container{Id: "setup0", PodSandboxId: "s1",
		State: runtimeapi.ContainerState_CONTAINER_EXITED, CreatedAt: setupCreated.UnixNano(),
		Metadata: &runtimeapi.ContainerMetadata{Name: "setup"}, Labels: map[string]string{containerPodUIDLabel: webUID},
		Annotations: map[string]string{restartCountAnnotation: "0"}})
	rt.containerStatuses["setup0"] = &runtimeapi.ContainerStatus{Id: "setup0", State: runtimeapi.ContainerState_CONTAINER_EXITED,
		Reason: "Completed", StartedAt: setupCreated.UnixNano(), FinishedAt: setupFinished.UnixNano(),
		Image: &runtimeapi.ImageSpec{Image: "registry.example/setup:1"}}
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	pod := podItems(t, p.Current())[0]
	names := func(statuses []corev1.ContainerStatus) (out []string) {
		for _, s := range statuses {
			out = append(out, s.Name)
		}
		return out
	}
	if got := names(pod.Status.InitContainerStatuses); len(got) != 1 || got[0] != "setup" ||
		len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Image != "registry.example/setup:1" {
		t.Errorf("init containers = %v (spec %+v), want setup", got, pod.Spec.InitContainers)
	}
	if got := names(pod.Status.ContainerStatuses); len(got) != 2 || len(pod.Spec.Containers) != 2 {
		t.Errorf("containers = %v, want app and sidecar only", got)
	}
	if pod.Status.Phase != corev1.PodRunning || pod.Status.Conditions[2].Type != corev1.PodReady || pod.Status.Conditions[2].Status != corev1.ConditionTrue {
		t.Errorf("phase %s, conditions %+v: want Running and Ready", pod.Status.Phase, pod.Status.Conditions)
	}
}

// TestPodListContainerRemovedSinceTheList: a container the runtime no
// longer knows (removed between ListContainers and ContainerStatus, as the
// kubelet's garbage collector does) is not a runtime failure: the other
// statuses are still asked for.
func TestPodListContainerRemovedSinceTheList(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	delete(rt.containerStatuses, "app0")
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	pod := podItems(t, p.Current())[0]
	side := pod.Status.ContainerStatuses[1]
	if side.Name != "sidecar" || side.Image != "registry.example/side:3" {
		t.Errorf("sidecar status = %+v, want its status although app0 is gone", side)
	}
	if got := testutil.ToFloat64(p.metrics.runtimeErrors); got != 0 {
		t.Errorf("runtime errors = %v, want 0 for a container removed since the list", got)
	}
}

// podItems decodes the pods of snap's /pods body.
func podItems(t testing.TB, snap *snapshot.Snapshot) []corev1.Pod {
	t.Helper()
	list, err := snap.PodList()
	if err != nil {
		t.Fatal(err)
	}
	if list == nil {
		return nil
	}
	return list.Items
}

// TestTickEncodesTheSummary: the tick publishes the summary's body with
// it, the kubelet's encoding of exactly that summary.
func TestTickEncodesTheSummary(t *testing.T) {
	rootDir := t.TempDir()
	rt, view := webPod(t, rootDir)
	p := podListProvider(rootDir, rt, view)
	p.Tick(context.Background())
	snap := p.Current()
	want, err := snapshot.EncodeSummary(snap.Summary)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.Summary.Pods) == 0 || string(snap.SummaryBody) != string(want) {
		t.Errorf("summary body = %.200s\nwant the encoded summary %.200s", snap.SummaryBody, want)
	}
}
