package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// The kubelet's cAdvisor JSON endpoints (pkg/kubelet/server/stats/handler.go
// and server.go getSpec of v1.20, removed in 1.21), answered from the
// snapshot's legacy view. docs/legacy-endpoints.md describes them.
const (
	specPath = "/spec/"
	// defaultNumStats is the kubelet's num_stats when the body omits it.
	defaultNumStats = 60
	// notFoundMessage is the kubelet's kubecontainer.ErrContainerNotFound.
	notFoundMessage = "no matching container"
)

// statsRequest is the kubelet's request body, keys and all: containerName
// is camelCase, num_stats snake_case.
type statsRequest struct {
	// ContainerName is the cgroup of /stats/container; default "/".
	ContainerName string `json:"containerName,omitempty"`
	// NumStats caps the samples: default 60, 0 none, -1 all.
	NumStats int `json:"num_stats,omitempty"`
	// Start and End bound the samples' timestamps; zero is open.
	Start time.Time `json:"start,omitempty"`
	End   time.Time `json:"end,omitempty"`
	// Subcontainers adds every cgroup below ContainerName.
	Subcontainers bool `json:"subcontainers,omitempty"`
}

func (r statsRequest) containerInfoRequest() cadvisorapi.ContainerInfoRequest {
	return cadvisorapi.ContainerInfoRequest{NumStats: r.NumStats, Start: r.Start, End: r.End}
}

// errNumStats rejects what cAdvisor would have crashed on.
var errNumStats = errors.New("num_stats must be -1 (all samples) or at least 0")

// parseStatsRequest decodes a body like the kubelet: the first JSON value
// only, an empty body meaning the defaults.
func parseStatsRequest(body []byte) (statsRequest, error) {
	query := statsRequest{NumStats: defaultNumStats}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&query); err != nil && err != io.EOF {
		return statsRequest{}, err
	}
	if query.NumStats < -1 {
		return statsRequest{}, errNumStats
	}
	return query, nil
}

// legacyHandler answers the legacy routes from the current snapshot.
type legacyHandler struct {
	responder
	source     SnapshotSource
	retryAfter string
}

// installLegacy adds /stats/, /stats/container, /stats/{podName}/{containerName}
// and /stats/{namespace}/{podName}/{uid}/{containerName} on GET and POST to
// the stats web service, and /spec/ on GET as its own web service, as the
// v1.20 kubelet with --enable-cadvisor-json-endpoints did. It shares the
// summary handler's source and settings.
func installLegacy(c filteringContainer, stats *restful.WebService, summary *summaryHandler) {
	h := &legacyHandler{responder: summary.responder, source: summary.source, retryAfter: summary.retryAfter}
	routes := []struct {
		path    string
		handler restful.RouteFunction
	}{
		{"", h.handleRoot},
		{"/container", h.handleContainer},
		{"/{podName}/{containerName}", h.handlePodContainer},
		{"/{namespace}/{podName}/{uid}/{containerName}", h.handlePodContainer},
	}
	for _, route := range routes {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			stats.Route(stats.Method(method).Path(route.path).To(route.handler))
		}
	}
	spec := new(restful.WebService)
	spec.Path(specPath).Produces(restful.MIME_JSON)
	spec.Route(spec.GET("").To(h.handleSpec))
	c.Add(spec)
}

// handleRoot answers /stats/: the root cgroup.
func (h *legacyHandler) handleRoot(req *restful.Request, resp *restful.Response) {
	query, ok := h.readRequest(req, resp)
	if !ok {
		return
	}
	legacy, ok := h.legacyView(req, resp)
	if !ok {
		return
	}
	info, found := legacy.ContainerInfo("/", query.containerInfoRequest())
	if !found {
		h.notFound(req, resp)
		return
	}
	h.encodeJSON(req, resp, info)
}

// handleContainer answers /stats/container: a map of cgroup name to
// ContainerInfo, the named cgroup alone or with every cgroup below it.
func (h *legacyHandler) handleContainer(req *restful.Request, resp *restful.Response) {
	query, ok := h.readRequest(req, resp)
	if !ok {
		return
	}
	legacy, ok := h.legacyView(req, resp)
	if !ok {
		return
	}
	name := path.Join("/", query.ContainerName)
	// NumStats 0 converts the spec only: a cheap existence check.
	if _, found := legacy.ContainerInfo(name, cadvisorapi.ContainerInfoRequest{NumStats: 0}); !found {
		h.notFound(req, resp)
		return
	}
	names := []string{name}
	if query.Subcontainers {
		names, _ = legacy.Subcontainers(name)
	}
	h.streamContainerInfos(req, resp, legacy, names, query.containerInfoRequest())
}

// streamContainerInfos writes a JSON object of name to ContainerInfo,
// converting and encoding one cgroup at a time: all cgroups of a node with
// their samples are tens of megabytes, which a request must not hold at once.
func (h *legacyHandler) streamContainerInfos(req *restful.Request, resp *restful.Response, legacy *snapshot.Cgroups,
	names []string, infoRequest cadvisorapi.ContainerInfoRequest) {
	resp.Header().Set("Content-Type", restful.MIME_JSON)
	resp.WriteHeader(http.StatusOK)
	buf := []byte{'{'}
	for i, name := range names {
		// names come from the same immutable view, so every one is found.
		info, _ := legacy.ContainerInfo(name, infoRequest)
		if i > 0 {
			buf = append(buf, ',')
		}
		key, _ := json.Marshal(name) // a string always encodes
		buf = append(append(buf, key...), ':')
		value, err := json.Marshal(info)
		if err != nil {
			// The status is out; only aborting the connection tells the
			// client that the body is incomplete.
			h.logger.Error(err, "Error encoding response", "request", req.Request.URL.Path, "container", name)
			panic(http.ErrAbortHandler)
		}
		if _, err := resp.Write(append(buf, value...)); err != nil {
			h.logger.V(4).Info("Error writing response", "request", req.Request.URL.Path, "err", err)
			return
		}
		buf = buf[:0]
	}
	if _, err := resp.Write(append(buf, '}')); err != nil {
		h.logger.V(4).Info("Error writing response", "request", req.Request.URL.Path, "err", err)
	}
}

// handlePodContainer answers /stats/{podName}/{containerName} (namespace
// "default") and /stats/{namespace}/{podName}/{uid}/{containerName}.
func (h *legacyHandler) handlePodContainer(req *restful.Request, resp *restful.Response) {
	query, ok := h.readRequest(req, resp)
	if !ok {
		return
	}
	params := map[string]string{"namespace": "default", "uid": ""}
	for key, value := range req.PathParameters() {
		params[key] = value
	}
	if params["podName"] == "" || params["containerName"] == "" {
		// The kubelet's text, the map printed with %v.
		h.writeError(req, resp, http.StatusBadRequest, fmt.Sprintf("Invalid pod container request: %v", params))
		return
	}
	legacy, ok := h.legacyView(req, resp)
	if !ok {
		return
	}
	info, found := legacy.PodContainerInfo(params["namespace"], params["podName"], params["uid"], params["containerName"],
		query.containerInfoRequest())
	if !found {
		h.notFound(req, resp)
		return
	}
	h.encodeJSON(req, resp, info)
}

// handleSpec answers /spec/: the machine. Like the kubelet's getSpec it
// ignores the body.
func (h *legacyHandler) handleSpec(req *restful.Request, resp *restful.Response) {
	legacy, ok := h.legacyView(req, resp)
	if !ok {
		return
	}
	machine, found := legacy.MachineInfo()
	if !found {
		h.internalError(req, resp, errors.New("machine info unavailable"))
		return
	}
	h.encodeJSON(req, resp, machine)
}

// readRequest reads and decodes the body. It answers 413 past the body
// limit and 400 for a body that is not a valid request.
func (h *legacyHandler) readRequest(req *restful.Request, resp *restful.Response) (statsRequest, bool) {
	body, err := io.ReadAll(req.Request.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			h.writeError(req, resp, http.StatusRequestEntityTooLarge,
				fmt.Sprintf("request body too large: the limit is %d bytes", tooLarge.Limit))
			return statsRequest{}, false
		}
		h.writeError(req, resp, http.StatusBadRequest, "Invalid stats request: read body: "+err.Error())
		return statsRequest{}, false
	}
	query, err := parseStatsRequest(body)
	if err != nil {
		h.writeError(req, resp, http.StatusBadRequest, "Invalid stats request: "+err.Error())
		return statsRequest{}, false
	}
	return query, true
}

// legacyView is the current snapshot's legacy view; before the first tick
// it answers 503 with Retry-After, like /stats/summary.
func (h *legacyHandler) legacyView(req *restful.Request, resp *restful.Response) (*snapshot.Cgroups, bool) {
	snap := h.source.Current()
	if snap == nil {
		resp.Header().Set("Retry-After", h.retryAfter)
		h.writeError(req, resp, http.StatusServiceUnavailable, notReadyMessage)
		return nil, false
	}
	if snap.Cgroups == nil {
		h.internalError(req, resp, fmt.Errorf("snapshot %d has no legacy view", snap.Generation))
		return nil, false
	}
	return snap.Cgroups, true
}

// encodeJSON encodes compactly, where the kubelet's WriteAsJson indented:
// indenting costs four times the encoding and doubles the bytes of these
// sample-heavy bodies, and no JSON client sees the difference.
func (h *legacyHandler) encodeJSON(req *restful.Request, resp *restful.Response, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("encode response: %w", err))
		return
	}
	h.writeJSON(req, resp, body)
}

func (h *legacyHandler) notFound(req *restful.Request, resp *restful.Response) {
	h.logger.V(4).Info("Container not found", "request", req.Request.URL.Path, "params", req.PathParameters())
	h.writeError(req, resp, http.StatusNotFound, notFoundMessage)
}
