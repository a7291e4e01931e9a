// Package server serves the kubelet's stats surface over HTTP with the same
// go-restful routing as the kubelet, so that router edge cases (trailing
// slashes, 404/405/406 bodies, the Allow header) are byte-for-byte those of
// kubelet v1.36.
//
// Exported surface:
//   - SnapshotSource, HealthChecker: what the server needs from the provider,
//     defined here so that the server depends on two methods, not a package.
//   - EventSource: what cAdvisor's events API (/api/v1.3/events, v2.0,
//     v2.1; Config.Events) reads, queries and streams that a slow client
//     cannot hold up and that end at shutdown (provider.EventFeed).
//   - Config: logger and request limits.
//   - NewReadOnlyHandler: the unauthenticated routes (/stats/summary, the
//     kubelet v1.20 cAdvisor JSON routes /stats/, /stats/container,
//     /stats/{pod}/{container}, /stats/{ns}/{pod}/{uid}/{container} and
//     /spec/, /metrics/resource, /metrics/cadvisor, /pods, /healthz, the disabled
//     debugging paths, and ours: the page on / and its data on /history,
//     docs/page.md)
//     behind an access log, a panic guard and a request body limit.
//   - NewHTTPServer: an *http.Server with the kubelet's settings plus
//     slow-client hardening (header and body deadlines).
//   - AuthConfig, NewAuth, Auth: the kubelet's authentication (x509 client
//     certificates, TokenReview, anonymous) and authorization
//     (SubjectAccessReview or AlwaysAllow): what k8s.io/apiserver's
//     delegating authenticator and authorizer do as the kubelet configures
//     them, implemented here so that the binary does not link that library
//     (docs/secure-port.md); AuthorizationModeWebhook and
//     AuthorizationModeAlwaysAllow name the modes.
//   - TokenReviewer, AccessReviewer: what the webhooks need from an API
//     server client (internal/reviewclient).
//   - TLSConfig, NewSecurePort, SecurePort: the secure port, the same routes
//     behind the kubelet's auth filter (every route, healthz included) over
//     TLS whose serving certificate (given or self-signed in a cert dir) and
//     client CA follow their files.
//   - NewHealthzPortHandler: the kubelet's separate healthz port (ping only).
//   - NewListeners, Listeners: connection limits for every port (per port,
//     per client address, and a reserve of file descriptors left to the
//     collector), derived from RLIMIT_NOFILE.
//
// Requests do no I/O besides writing the response: they read the provider's
// current immutable snapshot and answer from a JSON encoding shared by every
// request for that snapshot. Where this differs from the kubelet (a 503 before
// the first housekeeping tick, a Content-Length instead of a chunked body, a
// 1 MiB limit on form bodies, a 500 instead of a dropped connection when a
// handler panics) docs/compatibility.md says so.
package server
