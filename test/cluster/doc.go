// Package cluster is the cluster end-to-end tier (make e2e-cluster): a real
// control plane on loopback (etcd from Debian's etcd-server, kube-apiserver
// and kubectl v1.36.3 and metrics-server v0.9.0 built from the Go module
// proxy by tools.sh and cached under bin/cluster), the real
// kubelet-stats-server registered as a node with --register-node over real
// containerd pods (test/e2e/framework), and assertions through the API
// server: the node proxy, metrics-server and kubectl top, the secure port's
// authentication and authorization, the Node, Lease, mirror Pods and Events,
// a server-side dry run of deploy/, and Debian's Prometheus scraping with the
// jobs and RBAC of deploy/overlays/prometheus.
//
// The API server refuses loopback node addresses and Endpoints, so, as in
// reference/control-plane-on-loopback.md, the Node advertises InternalIP
// 192.0.2.10 (TEST-NET-1, never routed) and the API server reaches it, and
// metrics-server through an ExternalName Service "localhost", through an
// egress selector whose HTTP CONNECT proxy (on a unix socket, in the test
// process) maps exactly those targets to 127.0.0.1. Nothing leaves the
// machine; every port is picked free at start.
//
// It runs only with KSS_CLUSTER=1 (the build takes about 18 minutes cold).
package cluster
