package server

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	restful "github.com/emicklei/go-restful/v3"
)

// statsPath is the kubelet's stats web service root; /summary is its only
// route since 1.21.
const statsPath = "/stats/"

// notReadyMessage answers /stats/summary before the first snapshot. The
// kubelet answers 500 then (its first cAdvisor sample is missing); 503 with
// Retry-After tells clients that waiting helps.
const notReadyMessage = "stats not ready: first housekeeping has not completed"

// summaryHandler answers /stats/summary from the current snapshot.
type summaryHandler struct {
	responder
	source     SnapshotSource
	bodies     *summaryBodies
	retryAfter string
}

func newSummaryHandler(cfg Config, src SnapshotSource, encode summaryEncoder) *summaryHandler {
	return &summaryHandler{
		responder:  responder{logger: cfg.Logger},
		source:     src,
		bodies:     newSummaryBodies(encode),
		retryAfter: retryAfterSeconds(cfg.RetryAfter),
	}
}

// installSummary adds the kubelet's stats web service: /stats/summary on GET
// and POST, producing JSON and consuming anything
// (pkg/kubelet/server/stats/handler.go CreateHandlers).
func installSummary(c filteringContainer, h *summaryHandler) {
	ws := new(restful.WebService)
	ws.Path(statsPath).Produces(restful.MIME_JSON)
	for _, method := range []string{http.MethodGet, http.MethodPost} {
		ws.Route(ws.Method(method).Path("/summary").To(h.handleSummary))
	}
	installLegacy(c, ws, h)
	c.Add(ws)
}

func (h *summaryHandler) handleSummary(req *restful.Request, resp *restful.Response) {
	// ParseForm, as the kubelet, so that urlencoded POST bodies count.
	if err := req.Request.ParseForm(); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.writeError(req, resp, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body too large: the limit is %d bytes", tooLarge.Limit))
			return
		}
		h.internalError(req, resp, fmt.Errorf("parse form failed: %w", err))
		return
	}
	snap := h.source.Current()
	if snap == nil {
		resp.Header().Set("Retry-After", h.retryAfter)
		h.writeError(req, resp, http.StatusServiceUnavailable, notReadyMessage)
		return
	}
	body, err := h.bodies.body(snap, onlyCPUAndMemory(req.Request.Form))
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("snapshot %d: %w", snap.Generation, err))
		return
	}
	h.writeJSON(req, resp, body)
}

// onlyCPUAndMemory reports whether the form asks for the CPU-and-memory
// summary: the kubelet turns it on only when only_cpu_and_memory appears
// exactly once with the value "true" (handler.go handleSummary).
func onlyCPUAndMemory(form url.Values) bool {
	values, found := form["only_cpu_and_memory"]
	return found && len(values) == 1 && values[0] == "true"
}

// retryAfterSeconds renders d as a Retry-After value: whole seconds, at
// least 1.
func retryAfterSeconds(d time.Duration) string {
	seconds := int64((d + time.Second - 1) / time.Second)
	return strconv.FormatInt(max(seconds, 1), 10)
}
