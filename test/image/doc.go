// Package image proves the OCI image that `make image` builds and the
// DaemonSet of deploy/base: it builds the image for this machine's platform
// with `make image`, imports its OCI archive and its docker archive into the
// e2e containerd with `ctr`, and runs the binary in it through CRI with the
// DaemonSet's own arguments, mounts, capabilities and limits translated the
// way the kubelet translates them (host paths mapped to the harness's
// directories). The server in the container must answer healthz and a
// summary with a real pod's network, logs and volume usage, which needs
// every privilege the DaemonSet keeps; --version in the image must print
// the version `make image` stamped. Root only, like every e2e package.
package image
