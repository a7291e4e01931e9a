package server

import (
	"net/http"
)

// NewHealthzPortHandler is the kubelet's separate healthz port
// (--healthz-port): /healthz with the ping check only, no authentication,
// so that it says ok exactly while the process serves.
func NewHealthzPortHandler() http.Handler {
	mux := http.NewServeMux()
	installHealthChecks(mux, []healthCheck{pingCheck()})
	return mux
}
