package server

import (
	"net/http"

	"k8s.io/apiserver/pkg/server/healthz"
)

// NewHealthzPortHandler is the kubelet's separate healthz port
// (--healthz-port): /healthz with the ping check only, no authentication,
// so that it says ok exactly while the process serves.
func NewHealthzPortHandler() http.Handler {
	mux := http.NewServeMux()
	healthz.InstallHandler(mux)
	return mux
}
