package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	restful "github.com/emicklei/go-restful/v3"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// historyPath is the page's data: the summary's CPU and memory of the node,
// its pods and their containers, plus the recent samples the collector
// retains for each, in one compact document per snapshot. It is ours, not
// the kubelet's; the secure port authorizes it as nodes/stats (auth.go).
const historyPath = "/history"

// historyHandler answers /history from the current snapshot, built and
// encoded once per snapshot and shared by every request for it.
type historyHandler struct {
	responder
	source     SnapshotSource
	retryAfter string
	bodies     newestBody
}

// installHistory adds /history: GET only, producing JSON.
func installHistory(c filteringContainer, cfg Config, src SnapshotSource) {
	h := &historyHandler{responder: responder{logger: cfg.Logger}, source: src, retryAfter: retryAfterSeconds(cfg.RetryAfter),
		bodies: newestBody{encode: encodeHistory}}
	ws := new(restful.WebService)
	ws.Path(historyPath).Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(h.handleHistory).Operation("getHistory"))
	c.Add(ws)
}

func (h *historyHandler) handleHistory(req *restful.Request, resp *restful.Response) {
	snap := h.source.Current()
	if snap == nil {
		resp.Header().Set("Retry-After", h.retryAfter)
		h.writeError(req, resp, http.StatusServiceUnavailable, notReadyMessage)
		return
	}
	// The page polls faster than snapshots change; the ETag names the
	// snapshot, so that a poll between ticks costs a 304.
	etag := snapshotETag(snap)
	resp.Header().Set("ETag", etag)
	resp.Header().Set("Cache-Control", "no-cache")
	if req.Request.Header.Get("If-None-Match") == etag {
		resp.WriteHeader(http.StatusNotModified)
		return
	}
	body, err := h.bodies.get(snap)
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("snapshot %d: %w", snap.Generation, err))
		return
	}
	h.writeJSON(req, resp, body)
}

// snapshotETag names a snapshot across restarts too: generations start
// again at 1, publication times do not repeat.
func snapshotETag(snap *provider.Snapshot) string {
	return `"` + strconv.FormatUint(snap.Generation, 10) + "-" + strconv.FormatInt(snap.Time.UnixNano(), 36) + `"`
}

func encodeHistory(snap *provider.Snapshot) ([]byte, error) {
	doc, err := historyDocument(snap)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode history: %w", err)
	}
	return body, nil
}
