package diff

import (
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

// podListPrefix is how the kubelet's legacy codec starts a pod list.
const podListPrefix = `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[`

// rawPodList fetches /pods and checks the kubelet's encoding: JSON with
// its Content-Type, kind and apiVersion first, a trailing newline.
func rawPodList(t *testing.T, who, base string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/pods")
	if err != nil {
		t.Fatalf("%s /pods: %v", who, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s /pods: %v", who, err)
	}
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("%s /pods = %d %q: %.300s", who, resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if !strings.HasPrefix(string(body), podListPrefix) || !strings.HasSuffix(string(body), "}\n") {
		t.Errorf("%s /pods is not the legacy codec's encoding: %.120s", who, body)
	}
	return body
}

// comparePodLists compares the kubelet's /pods with ours on the same pods:
// the same pods (namespace, name, uid), phases, pod IPs, QoS classes,
// labels and annotations, containers in the same order with the same
// images and memory limits, container statuses with the same container
// IDs, images, image IDs, restart counts, readiness and states, and the
// volumes we list among the kubelet's with the same type. Keys only we
// have fail; keys only the kubelet has are logged (docs/compatibility.md
// lists them).
func comparePodLists(t *testing.T, kubeletBase, ourBase string) {
	theirs, ours := rawPodList(t, "kubelet", kubeletBase), rawPodList(t, "ours", ourBase)
	var kubeletList, ourList corev1.PodList
	if err := json.Unmarshal(theirs, &kubeletList); err != nil {
		t.Fatalf("decode the kubelet's /pods: %v", err)
	}
	if err := json.Unmarshal(ours, &ourList); err != nil {
		t.Fatalf("decode our /pods: %v", err)
	}
	if len(kubeletList.Items) != len(ourList.Items) {
		t.Errorf("pods: the kubelet lists %d, we list %d", len(kubeletList.Items), len(ourList.Items))
	}
	for i := range kubeletList.Items {
		want := &kubeletList.Items[i]
		got := podWithUID(&ourList, string(want.UID))
		if got == nil {
			t.Errorf("the kubelet's pod %s/%s (uid %s) is not in ours", want.Namespace, want.Name, want.UID)
			continue
		}
		comparePod(t, want, got)
	}
	var kubeletJSON, ourJSON map[string]any
	_ = json.Unmarshal(theirs, &kubeletJSON)
	_ = json.Unmarshal(ours, &ourJSON)
	kubeletKeys, ourKeys := framework.KeyPaths(kubeletJSON), framework.KeyPaths(ourJSON)
	var lacking []string
	for path := range kubeletKeys {
		if !ourKeys[path] {
			lacking = append(lacking, path)
		}
	}
	slices.Sort(lacking)
	t.Logf("/pods keys the kubelet has and we do not (docs/compatibility.md): %v", lacking)
	for path := range ourKeys {
		if !kubeletKeys[path] {
			t.Errorf("/pods: we have %s, the kubelet does not", path)
		}
	}
	if t.Failed() {
		t.Logf("the kubelet's /pods:\n%s\nours:\n%s", theirs, ours)
	}
}

func podWithUID(list *corev1.PodList, uid string) *corev1.Pod {
	for i := range list.Items {
		if string(list.Items[i].UID) == uid {
			return &list.Items[i]
		}
	}
	return nil
}

func comparePod(t *testing.T, want, got *corev1.Pod) {
	t.Helper()
	pod := want.Namespace + "/" + want.Name
	for _, field := range []struct{ name, want, got string }{
		{"namespace/name", pod, got.Namespace + "/" + got.Name},
		{"phase", string(want.Status.Phase), string(got.Status.Phase)},
		{"podIP", want.Status.PodIP, got.Status.PodIP},
		{"qosClass", string(want.Status.QOSClass), string(got.Status.QOSClass)},
		// nodeName is not compared: the kubelet runs as kss-diff, we under
		// the machine's hostname (the summary's node.nodeName differs too).
	} {
		if field.want != field.got {
			t.Errorf("%s %s: the kubelet says %q, we say %q", pod, field.name, field.want, field.got)
		}
	}
	if want.Spec.HostNetwork != got.Spec.HostNetwork {
		t.Errorf("%s hostNetwork: the kubelet says %v, we say %v", pod, want.Spec.HostNetwork, got.Spec.HostNetwork)
	}
	if !maps.Equal(want.Labels, got.Labels) || !maps.Equal(want.Annotations, got.Annotations) {
		t.Errorf("%s labels %v annotations %v, the kubelet's %v %v", pod, got.Labels, got.Annotations, want.Labels, want.Annotations)
	}
	compareSpecContainers(t, pod, want.Spec.Containers, got.Spec.Containers)
	for _, status := range want.Status.ContainerStatuses {
		compareContainerStatus(t, pod, status, got.Status.ContainerStatuses)
	}
	for _, volume := range got.Spec.Volumes {
		i := slices.IndexFunc(want.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == volume.Name })
		if i < 0 || volumeType(want.Spec.Volumes[i]) != volumeType(volume) {
			t.Errorf("%s volume %s (%s) is not the kubelet's: %+v", pod, volume.Name, volumeType(volume), want.Spec.Volumes)
		}
	}
}

func compareSpecContainers(t *testing.T, pod string, want, got []corev1.Container) {
	t.Helper()
	names := func(cs []corev1.Container) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if !slices.Equal(names(want), names(got)) {
		t.Errorf("%s containers %v, the kubelet's %v", pod, names(got), names(want))
		return
	}
	for i := range want {
		w, g := want[i], got[i]
		if w.Image != g.Image {
			t.Errorf("%s/%s image %q, the kubelet's %q", pod, w.Name, g.Image, w.Image)
		}
		// Limits only: a Burstable pod's memory request is not in cgroup v1.
		for name, limit := range w.Resources.Limits {
			if ours, found := g.Resources.Limits[name]; !found || ours.Cmp(limit) != 0 {
				t.Errorf("%s/%s limits.%s = %v, the kubelet's %v", pod, w.Name, name, ours.String(), limit.String())
			}
		}
	}
}

func compareContainerStatus(t *testing.T, pod string, want corev1.ContainerStatus, ours []corev1.ContainerStatus) {
	t.Helper()
	i := slices.IndexFunc(ours, func(s corev1.ContainerStatus) bool { return s.Name == want.Name })
	if i < 0 {
		t.Errorf("%s: the kubelet's container status %s is not in ours", pod, want.Name)
		return
	}
	got := ours[i]
	for _, field := range []struct{ name, want, got string }{
		{"containerID", want.ContainerID, got.ContainerID},
		{"image", want.Image, got.Image},
		{"imageID", want.ImageID, got.ImageID},
		{"state", stateOf(want.State), stateOf(got.State)},
	} {
		if field.want != field.got {
			t.Errorf("%s/%s %s: the kubelet says %q, we say %q", pod, want.Name, field.name, field.want, field.got)
		}
	}
	if want.RestartCount != got.RestartCount || want.Ready != got.Ready {
		t.Errorf("%s/%s restartCount %d ready %v, the kubelet's %d %v", pod, want.Name, got.RestartCount, got.Ready, want.RestartCount, want.Ready)
	}
}

// stateOf names a container state with its start time, which both read
// from the runtime.
func stateOf(s corev1.ContainerState) string {
	switch {
	case s.Running != nil:
		return "running since " + s.Running.StartedAt.UTC().String()
	case s.Terminated != nil:
		return "terminated at " + s.Terminated.FinishedAt.UTC().String()
	}
	return "waiting"
}

func volumeType(v corev1.Volume) string {
	switch {
	case v.EmptyDir != nil:
		return "emptyDir"
	case v.ConfigMap != nil:
		return "configMap"
	case v.Secret != nil:
		return "secret"
	case v.Projected != nil:
		return "projected"
	case v.DownwardAPI != nil:
		return "downwardAPI"
	case v.CSI != nil:
		return "csi"
	}
	return "other"
}
