package server

import (
	"net/http"
	"strconv"

	"github.com/emicklei/go-restful/v3"
	"k8s.io/klog/v2"
)

// responder writes the bodies every stats handler answers with, the way the
// kubelet's handlers write them.
type responder struct {
	logger klog.Logger
}

// writeJSON answers 200 with body, a complete JSON document, and its
// length, so that clients need no chunked decoding.
func (r responder) writeJSON(req *restful.Request, resp *restful.Response, body []byte) {
	header := resp.Header()
	header.Set("Content-Type", restful.MIME_JSON)
	header.Set("Content-Length", strconv.Itoa(len(body)))
	resp.WriteHeader(http.StatusOK)
	if _, err := resp.Write(body); err != nil {
		r.logger.Error(err, "Error writing response", "request", req.Request.URL.Path)
	}
}

// internalError logs err and answers 500 with it, as the kubelet's
// handleError does.
func (r responder) internalError(req *restful.Request, resp *restful.Response, err error) {
	r.logger.Error(err, "HTTP InternalServerError serving", "request", req.Request.URL.Path)
	r.writeError(req, resp, http.StatusInternalServerError, "Internal Error: "+err.Error())
}

// writeError writes a plain-text body without setting Content-Type, as the
// kubelet's WriteErrorString does, so net/http sniffs text/plain and the
// headers come out in the kubelet's order.
func (r responder) writeError(req *restful.Request, resp *restful.Response, status int, msg string) {
	if err := resp.WriteErrorString(status, msg); err != nil {
		r.logger.Error(err, "Error writing response", "request", req.Request.URL.Path)
	}
}
