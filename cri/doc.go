// Package cri is a small, read-only client of the Container Runtime
// Interface (k8s.io/cri-api v1) over gRPC on a unix socket.
//
// It gives the provider what the kubelet's CRI stats provider asks the
// runtime for, and nothing else: sandboxes and containers (ListPodSandbox,
// ListContainers), the runtime's own stats (ListPodSandboxStats,
// ListContainerStats) and image filesystem usage (ImageFsInfo), and for
// /pods what the kubelet's pod status is made of: one sandbox's or
// container's status (PodSandboxStatus, ContainerStatus) and the runtime's
// name (RuntimeName); Dial asks for the Version when it probes, and
// RuntimeVersion gives it to --register-node's nodeInfo. It does no
// stats math and keeps no state besides the connection.
//
// Dial never blocks on the runtime: gRPC reconnects on its own, with the
// kubelet's short backoff, so one Client survives runtime restarts. Calls
// against a runtime that is down fail at once with codes.Unavailable.
// Every call is bounded by Config.RequestTimeout (the kubelet's
// --runtime-request-timeout, default 2m), as every one of these calls is in
// the kubelet. Messages may be up to 16 MiB, as in the kubelet.
//
// Every error names the call and the endpoint and wraps the gRPC status, so
// callers can branch on it; IsUnimplemented detects runtimes that lack a call
// (the kubelet falls back from ListPodSandboxStats in that case).
//
// With an empty Config.Endpoint, Dial probes DefaultEndpoints (containerd,
// CRI-O, cri-dockerd) with Version and fails with ErrNoRuntime if none answers.
package cri
