package server

import (
	"bytes"
	"encoding/json"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// podsPath is the kubelet's pod list route.
const podsPath = "/pods"

// installPods adds the kubelet's /pods web service: GET only, producing
// JSON (pkg/kubelet/server/server.go InstallDefaultHandlers), encoded once
// per snapshot. The secure port authorizes it as nodes/pods, then
// nodes/proxy (auth.go).
func installPods(c filteringContainer, cfg Config, src SnapshotSource) {
	newSnapshotJSON(cfg, src, encodePods, false).install(c, podsPath, "getPods")
}

// encodePods encodes snap's pod list.
func encodePods(snap *provider.Snapshot) ([]byte, error) {
	return encodePodList(snap.Pods)
}

// encodePodList encodes like the kubelet's encodePods, whose legacy codec
// writes compact JSON with kind and apiVersion on the list (not on its
// items) and a trailing newline (json.Encoder). A snapshot without a pod
// list answers an empty one.
func encodePodList(pods *corev1.PodList) ([]byte, error) {
	if pods == nil {
		pods = &corev1.PodList{TypeMeta: metav1.TypeMeta{Kind: "PodList", APIVersion: "v1"}}
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(pods); err != nil {
		return nil, fmt.Errorf("encode pod list: %w", err)
	}
	return buf.Bytes(), nil
}
