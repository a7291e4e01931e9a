package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"

	restful "github.com/emicklei/go-restful/v3"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// podsPath is the kubelet's pod list route.
const podsPath = "/pods"

// podsHandler answers /pods from the current snapshot's pod list, encoded
// once per snapshot and shared by every request for it.
type podsHandler struct {
	responder
	source     SnapshotSource
	retryAfter string
	bodies     newestBody
}

// installPods adds the kubelet's /pods web service: GET only, producing
// JSON (pkg/kubelet/server/server.go InstallDefaultHandlers). The secure
// port authorizes it as nodes/pods, then nodes/proxy (auth.go).
func installPods(c filteringContainer, cfg Config, src SnapshotSource) {
	h := &podsHandler{responder: responder{logger: cfg.Logger}, source: src, retryAfter: retryAfterSeconds(cfg.RetryAfter),
		bodies: newestBody{encode: encodePods}}
	ws := new(restful.WebService)
	ws.Path(podsPath).Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(h.handlePods).Operation("getPods"))
	c.Add(ws)
}

func (h *podsHandler) handlePods(req *restful.Request, resp *restful.Response) {
	snap := h.source.Current()
	if snap == nil {
		resp.Header().Set("Retry-After", h.retryAfter)
		h.writeError(req, resp, http.StatusServiceUnavailable, notReadyMessage)
		return
	}
	body, err := h.bodies.get(snap)
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("snapshot %d: %w", snap.Generation, err))
		return
	}
	h.writeJSON(req, resp, body)
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
