package server

import (
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// podsPath is the kubelet's pod list route.
const podsPath = "/pods"

// emptyPodList is /pods of a snapshot without a pod list, as the kubelet
// encodes an empty one.
const emptyPodList = `{"kind":"PodList","apiVersion":"v1","metadata":{},"items":null}` + "\n"

// installPods adds the kubelet's /pods web service: GET only, producing
// JSON (pkg/kubelet/server/server.go InstallDefaultHandlers), the body the
// tick encoded (snapshot.Snapshot.Pods). The secure port authorizes it as
// nodes/pods, then nodes/proxy (auth.go).
func installPods(c filteringContainer, cfg Config, src SnapshotSource) {
	newSnapshotJSON(cfg, src, podsBody, false).install(c, podsPath, "getPods")
}

// podsBody is snap's /pods body.
func podsBody(snap *snapshot.Snapshot) ([]byte, error) {
	if snap.Pods == nil {
		return []byte(emptyPodList), nil
	}
	return snap.Pods, nil
}
