// Package deploy holds no code: this directory is the kustomize base
// (kustomization.yaml → base/) and overlays (overlays/metrics-server,
// overlays/prometheus) that install kubelet-stats-server as a DaemonSet.
// The Go package exists for deploy_test.go, which renders every
// kustomization with kustomize's own API (what `kubectl apply -k` runs),
// decodes every object strictly into its typed Kubernetes API struct, and
// checks that the DaemonSet's arguments are flags of the binary and agree
// with its ports, mounts and probes, and with the overlays. docs/deploy.md
// explains the manifests.
package deploy
