package server

import (
	"fmt"
	"net/http"

	restful "github.com/emicklei/go-restful/v3"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// snapshotJSON answers GET with a JSON document of the current snapshot,
// encoded once per snapshot and shared by every request for it (/pods,
// /history): 503 with Retry-After before the first snapshot, like
// /stats/summary.
type snapshotJSON struct {
	responder
	source     SnapshotSource
	retryAfter string
	bodies     snapshotBody
	// etag names each snapshot in an ETag and answers a matching
	// If-None-Match with 304.
	etag bool
}

func newSnapshotJSON(cfg Config, src SnapshotSource, encode func(*snapshot.Snapshot) ([]byte, error), etag bool) *snapshotJSON {
	return &snapshotJSON{responder: responder{logger: cfg.Logger}, source: src, retryAfter: retryAfterSeconds(cfg.RetryAfter),
		bodies: snapshotBody{encode: encode}, etag: etag}
}

// install adds a GET-only web service at path producing JSON.
func (h *snapshotJSON) install(c filteringContainer, path, operation string) {
	ws := new(restful.WebService)
	ws.Path(path).Produces(restful.MIME_JSON)
	ws.Route(ws.GET("").To(h.handle).Operation(operation))
	c.Add(ws)
}

func (h *snapshotJSON) handle(req *restful.Request, resp *restful.Response) {
	snap := h.source.Current()
	if snap == nil {
		resp.Header().Set("Retry-After", h.retryAfter)
		h.writeError(req, resp, http.StatusServiceUnavailable, notReadyMessage)
		return
	}
	if h.etag {
		etag := snapshotETag(snap)
		resp.Header().Set("ETag", etag)
		resp.Header().Set("Cache-Control", "no-cache")
		if req.Request.Header.Get("If-None-Match") == etag {
			resp.WriteHeader(http.StatusNotModified)
			return
		}
	}
	body, err := h.bodies.get(snap)
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("snapshot %d: %w", snap.Generation, err))
		return
	}
	h.writeJSON(req, resp, body)
}

// snapshotBody keeps the encoded body of the newest snapshot asked for,
// built on first use and shared by every request for that snapshot.
type snapshotBody struct {
	encode func(*snapshot.Snapshot) ([]byte, error)
	cache  newestCache[lazyBody]
}

// get returns snap's body, encoding it on first use.
func (c *snapshotBody) get(snap *snapshot.Snapshot) ([]byte, error) {
	return c.cache.entry(snap.Generation).get(func() ([]byte, error) { return c.encode(snap) })
}
