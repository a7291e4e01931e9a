package cri

import (
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
)

// DefaultEndpoints lists the sockets probed, in order, when Config.Endpoint is
// empty: containerd, CRI-O and cri-dockerd at their packaged locations. The
// kubelet itself has no default since 1.27; probing keeps the zero-config
// experience of crictl.
func DefaultEndpoints() []string {
	return []string{
		"unix:///run/containerd/containerd.sock",
		"unix:///run/crio/crio.sock",
		"unix:///var/run/cri-dockerd.sock",
	}
}

// parseEndpoint turns a --container-runtime-endpoint value into the absolute
// path of a unix socket. It accepts "unix:///path", "unix:/path" and a plain
// absolute path. Other schemes (tcp, npipe) are rejected: CRI runtimes on
// Linux listen on unix sockets, and the kubelet deprecated tcp long ago.
func parseEndpoint(endpoint string) (string, error) {
	if endpoint == "" {
		return "", fmt.Errorf("empty CRI endpoint")
	}
	if strings.HasPrefix(endpoint, "/") {
		return filepath.Clean(endpoint), nil
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("parse CRI endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "unix" {
		return "", fmt.Errorf("CRI endpoint %q: unsupported scheme %q, want unix", endpoint, u.Scheme)
	}
	// "unix://run/x.sock" parses with Host "run": a relative path, which
	// would depend on the working directory of the server.
	if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
		return "", fmt.Errorf("CRI endpoint %q: want an absolute socket path such as unix:///run/containerd/containerd.sock", endpoint)
	}
	return filepath.Clean(u.Path), nil
}

// endpointURL is the canonical form of a socket path, used in errors and
// as the gRPC target.
func endpointURL(socketPath string) string {
	return "unix://" + socketPath
}
