// Package version says which build of kubelet-stats-server is running:
// `--version` prints it, the startup log carries it, and the OCI image's
// org.opencontainers.image.version label holds the same string.
//
// The version comes from the linker (make build and make image set it from
// `git describe --tags --always --dirty`, see the Makefile's LDFLAGS);
// without it (`go install ...@v1.2.3`, a plain `go build`) it falls back to
// what the Go toolchain recorded in the binary: the main module's version,
// then the VCS revision. Commit and commit time always come from the
// toolchain's VCS stamp when present.
package version
