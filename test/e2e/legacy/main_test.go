// Package legacy runs real pods under a real containerd and checks the
// kubelet's cAdvisor JSON endpoints of the real binary (/stats/,
// /stats/container, /stats/{pod}/{container},
// /stats/{namespace}/{pod}/{uid}/{container}, /spec/): the issue "The
// kubelet's cAdvisor JSON endpoints".
package legacy

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

var serverBinary string

func TestMain(m *testing.M) {
	os.Exit(framework.Main(func() int { return serverproc.RunTests(m, &serverBinary) }))
}

// request sends method path with body and returns status and body.
func request(t *testing.T, srv *serverproc.Server, method, path, body string) (int, []byte) {
	t.Helper()
	var reader io.Reader
	if body != "" {
		reader = strings.NewReader(body)
	}
	status, _, data := serverproc.Do(t, method, srv.Base+path, nil, reader)
	return status, data
}

// get does a request that must answer 200 and decodes the body into T, an
// upstream cAdvisor type, refusing fields the type does not have.
func get[T any](t *testing.T, srv *serverproc.Server, method, path, body string) T {
	t.Helper()
	status, data := request(t, srv, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s %s = %d: %s", method, path, body, status, data)
	}
	var out T
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s %s into %T: %v", method, path, out, err)
	}
	return out
}
