package register

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// wireRequest is one request as the fake API server received it.
type wireRequest struct {
	Method, URL, ContentType, Accept, Body string
}

func (w wireRequest) String() string {
	return fmt.Sprintf("%s %s\ncontent-type: %s\naccept: %s\n%s\n", w.Method, w.URL, w.ContentType, w.Accept, w.Body)
}

// fakeAPIServer is an API server over HTTP that keeps objects as JSON by
// path, for the few resources registration writes: enough of the real
// one's semantics (201, 404 and 409 Status bodies, strategic merge
// patches, UIDs and resource versions) for a client to behave as it would
// against kube-apiserver, and a log of every request.
type fakeAPIServer struct {
	*httptest.Server
	t        *testing.T
	mu       sync.Mutex
	objects  map[string]map[string]any
	serial   int
	requests []wireRequest
}

// kinds are the resources served: kind, apiVersion and Go type (for
// strategic merge patches).
var fakeKinds = map[string]struct {
	kind, apiVersion string
	schema           any
}{
	"nodes":  {"Node", "v1", corev1.Node{}},
	"pods":   {"Pod", "v1", corev1.Pod{}},
	"events": {"Event", "v1", corev1.Event{}},
	"leases": {"Lease", "coordination.k8s.io/v1", coordinationv1.Lease{}},
}

func newFakeAPIServer(t *testing.T) *fakeAPIServer {
	s := &fakeAPIServer{t: t, objects: map[string]map[string]any{}}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// log returns the requests so far whose path contains substr (all for "")
// and, with exclude, those whose path does not.
func (s *fakeAPIServer) log(substr string, exclude bool) []wireRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []wireRequest
	for _, r := range s.requests {
		if strings.Contains(r.URL, substr) != exclude {
			out = append(out, r)
		}
	}
	return out
}

func (s *fakeAPIServer) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		s.t.Errorf("read the request body: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests = append(s.requests, wireRequest{
		Method: req.Method, URL: req.URL.RequestURI(), ContentType: req.Header.Get("Content-Type"),
		Accept: req.Header.Get("Accept"), Body: string(body),
	})
	path := strings.TrimSuffix(req.URL.Path, "/status")
	segments := strings.Split(path, "/")
	last := segments[len(segments)-1]
	if _, ok := fakeKinds[last]; ok {
		s.serveCollection(w, req, path, last, body)
		return
	}
	resource := segments[len(segments)-2]
	if _, ok := fakeKinds[resource]; !ok {
		s.status(w, http.StatusNotFound, "NotFound", "no such resource "+req.URL.Path)
		return
	}
	s.serveItem(w, req, path, resource, last, body)
}

func (s *fakeAPIServer) serveCollection(w http.ResponseWriter, req *http.Request, path, resource string, body []byte) {
	switch req.Method {
	case http.MethodGet:
		items := []any{}
		for key, obj := range s.objects {
			if inCollection(key, path, resource) {
				items = append(items, obj)
			}
		}
		k := fakeKinds[resource]
		s.reply(w, http.StatusOK, map[string]any{"kind": k.kind + "List", "apiVersion": k.apiVersion,
			"metadata": map[string]any{"resourceVersion": fmt.Sprint(s.serial)}, "items": items})
	case http.MethodPost:
		var obj map[string]any
		if err := json.Unmarshal(body, &obj); err != nil {
			s.status(w, http.StatusBadRequest, "BadRequest", err.Error())
			return
		}
		meta, _ := obj["metadata"].(map[string]any)
		name, _ := meta["name"].(string)
		key := path + "/" + name
		if _, exists := s.objects[key]; exists {
			s.status(w, http.StatusConflict, "AlreadyExists", fmt.Sprintf("%s %q already exists", resource, name))
			return
		}
		s.serial++
		if uid, _ := meta["uid"].(string); uid == "" {
			meta["uid"] = fmt.Sprintf("uid-%d", s.serial)
		}
		meta["resourceVersion"] = fmt.Sprint(s.serial)
		s.objects[key] = obj
		s.reply(w, http.StatusCreated, obj)
	default:
		s.status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method)
	}
}

// inCollection reports whether the object at key is listed by a GET of
// path: the collection itself or, for a namespaced resource listed without
// a namespace, that resource in every namespace.
func inCollection(key, path, resource string) bool {
	if strings.HasPrefix(key, path+"/") {
		return true
	}
	base := strings.TrimSuffix(path, "/"+resource)
	return strings.HasPrefix(key, base+"/namespaces/") && strings.Contains(key, "/"+resource+"/")
}

func (s *fakeAPIServer) serveItem(w http.ResponseWriter, req *http.Request, key, resource, name string, body []byte) {
	current, exists := s.objects[key]
	if !exists {
		s.status(w, http.StatusNotFound, "NotFound", fmt.Sprintf("%s %q not found", resource, name))
		return
	}
	switch req.Method {
	case http.MethodGet:
		s.reply(w, http.StatusOK, current)
	case http.MethodDelete:
		delete(s.objects, key)
		s.reply(w, http.StatusOK, map[string]any{"kind": "Status", "apiVersion": "v1", "status": "Success"})
	case http.MethodPut, http.MethodPatch:
		updated, err := s.write(req, resource, current, body)
		if err != nil {
			s.status(w, http.StatusUnprocessableEntity, "Invalid", err.Error())
			return
		}
		s.serial++
		updated["metadata"].(map[string]any)["resourceVersion"] = fmt.Sprint(s.serial)
		s.objects[key] = updated
		s.reply(w, http.StatusOK, updated)
	default:
		s.status(w, http.StatusMethodNotAllowed, "MethodNotAllowed", req.Method)
	}
}

// write is the object after a PUT (body) or a strategic merge PATCH.
func (s *fakeAPIServer) write(req *http.Request, resource string, current map[string]any, body []byte) (map[string]any, error) {
	data := body
	if req.Method == http.MethodPatch {
		if ct := req.Header.Get("Content-Type"); ct != "application/strategic-merge-patch+json" {
			return nil, fmt.Errorf("patch type %s", ct)
		}
		original, err := json.Marshal(current)
		if err != nil {
			return nil, err
		}
		if data, err = strategicpatch.StrategicMergePatch(original, body, fakeKinds[resource].schema); err != nil {
			return nil, err
		}
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func (s *fakeAPIServer) reply(w http.ResponseWriter, code int, obj any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(obj); err != nil {
		s.t.Errorf("encode the response: %v", err)
	}
}

func (s *fakeAPIServer) status(w http.ResponseWriter, code int, reason, message string) {
	s.reply(w, code, map[string]any{"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{},
		"status": "Failure", "message": message, "reason": reason, "code": code})
}
