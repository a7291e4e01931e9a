package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// The events API is cAdvisor's (cmd/internal/api of cAdvisor v0.56,
// handleEventRequest): /api/<version>/events[/<cgroup>] with its query
// parameters, a JSON array of info/v1 Events, or with stream=true one
// Event after another as they happen. docs/events.md describes it.
const eventsAPIPath = "/api"

// eventAPIVersions are cAdvisor's API versions that serve events: v1.3
// added them (its Go client's version), v2.0 and v2.1 kept the handler.
func eventAPIVersions() []string { return []string{"v1.3", "v2.0", "v2.1"} }

// EventSource is what the events API reads: provider.EventFeed.
type EventSource interface {
	Query(snapshot.EventQuery) []snapshot.Event
	Watch(snapshot.EventQuery) (*snapshot.EventWatch, error)
}

const (
	// defaultMaxEvents is cAdvisor's max_events default.
	defaultMaxEvents = 10
	// streamWriteTimeout bounds each write of a stream, which replaces the
	// server's 4 h WriteTimeout for it: a watch may last longer, but a
	// client that stops reading is cut off.
	streamWriteTimeout = 10 * time.Second
	// maxStreamBatch is how many events already waiting a stream writes
	// before it flushes.
	maxStreamBatch = 64
)

// eventsHandler answers the events API from source.
type eventsHandler struct {
	responder
	source EventSource
}

// installEvents adds /api/{v1.3,v2.0,v2.1}/events[/<cgroup>] on GET when
// cfg has an event source. The secure port authorizes them as nodes/stats
// (auth.go).
func installEvents(c filteringContainer, cfg Config) {
	if cfg.Events == nil {
		return
	}
	h := &eventsHandler{responder: responder{logger: cfg.Logger}, source: cfg.Events}
	ws := new(restful.WebService)
	ws.Path(eventsAPIPath).Produces(restful.MIME_JSON)
	for _, version := range eventAPIVersions() {
		ws.Route(ws.GET("/" + version + "/events").To(h.handle).Operation("getEvents"))
		ws.Route(ws.GET("/" + version + "/events/{cgroup:*}").To(h.handle).Operation("getEvents"))
	}
	c.Add(ws)
}

func (h *eventsHandler) handle(req *restful.Request, resp *restful.Response) {
	query, stream, err := parseEventRequest(req.Request.URL.Query(), req.PathParameter("cgroup"))
	if err != nil {
		h.writeError(req, resp, http.StatusBadRequest, err.Error())
		return
	}
	if stream {
		h.stream(req, resp, query)
		return
	}
	events := h.source.Query(query)
	out := make([]eventJSON, len(events))
	for i := range events {
		out[i] = toEventJSON(&events[i])
	}
	body, err := json.Marshal(out)
	if err != nil {
		h.internalError(req, resp, fmt.Errorf("encode events: %w", err))
		return
	}
	h.writeJSON(req, resp, body)
}

// eventJSON is cAdvisor's info/v1 Event (container_name is the cgroup)
// plus the pod and container it belongs to, named like the labels of
// /metrics/cadvisor. cAdvisor's clients ignore the extra fields.
type eventJSON struct {
	cadvisorapi.Event
	Namespace string `json:"namespace,omitempty"`
	Pod       string `json:"pod,omitempty"`
	PodUID    string `json:"pod_uid,omitempty"`
	Container string `json:"container,omitempty"`
}

func toEventJSON(e *snapshot.Event) eventJSON {
	out := eventJSON{
		Event: cadvisorapi.Event{
			ContainerName: e.Cgroup,
			Timestamp:     e.Time,
			EventType:     cadvisorapi.EventType(e.Type),
		},
		Namespace: e.Pod.Namespace,
		Pod:       e.Pod.Name,
		PodUID:    e.Pod.UID,
		Container: e.Pod.Container,
	}
	switch e.Type {
	case snapshot.EventOOMKill:
		out.EventData.OomKill = &cadvisorapi.OomKillEventData{Pid: e.PID, ProcessName: e.ProcessName}
	case snapshot.EventContainerDeletion:
		out.EventData.ContainerDeletion = &cadvisorapi.ContainerDeletionEventData{ExitCode: e.ExitCode}
	}
	return out
}

// eventTypeParams are cAdvisor's parameters selecting event types.
func eventTypeParams() []struct {
	name string
	typ  snapshot.EventType
} {
	return []struct {
		name string
		typ  snapshot.EventType
	}{
		{"oom_events", snapshot.EventOOM},
		{"oom_kill_events", snapshot.EventOOMKill},
		{"creation_events", snapshot.EventContainerCreation},
		{"deletion_events", snapshot.EventContainerDeletion},
	}
}

// parseEventRequest reads cAdvisor's parameters (getEventRequest) and the
// cgroup of the path ("/" when empty). Where cAdvisor ignores a value it
// cannot parse, it is an error here: a typo must not silently select
// nothing or stream nothing.
func parseEventRequest(values url.Values, cgroup string) (snapshot.EventQuery, bool, error) {
	q := snapshot.EventQuery{Max: defaultMaxEvents, Cgroup: path.Join("/", cgroup)}
	stream, err := boolParam(values, "stream")
	if err != nil {
		return q, false, err
	}
	if q.Subcontainers, err = boolParam(values, "subcontainers"); err != nil {
		return q, false, err
	}
	all, err := boolParam(values, "all_events")
	if err != nil {
		return q, false, err
	}
	for _, p := range eventTypeParams() {
		on, err := boolParam(values, p.name)
		if err != nil {
			return q, false, err
		}
		if all || on {
			q.Types = append(q.Types, p.typ)
		}
	}
	if v, ok := firstValue(values, "max_events"); ok {
		if q.Max, err = strconv.Atoi(v); err != nil || q.Max < -1 {
			return q, false, fmt.Errorf("max_events %q: want a count, or -1 for all", v)
		}
	}
	if q.Start, err = timeParam(values, "start_time"); err != nil {
		return q, false, err
	}
	if q.End, err = timeParam(values, "end_time"); err != nil {
		return q, false, err
	}
	if stream && (!q.Start.IsZero() || !q.End.IsZero()) {
		return q, false, errors.New("start_time and end_time select past events; a stream (stream=true) takes neither")
	}
	return q, stream, nil
}

// firstValue is the first value of a parameter, as cAdvisor reads them.
func firstValue(values url.Values, name string) (string, bool) {
	v, ok := values[name]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

func boolParam(values url.Values, name string) (bool, error) {
	v, ok := firstValue(values, name)
	if !ok {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s %q: want true or false", name, v)
	}
	return b, nil
}

func timeParam(values url.Values, name string) (time.Time, error) {
	v, ok := firstValue(values, name)
	if !ok {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: want an RFC 3339 time such as 2006-01-02T15:04:05Z", name, v)
	}
	return t, nil
}
