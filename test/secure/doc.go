// Package secure tests the real kubelet-stats-server binary's secure port
// the way a cluster uses it: TLS with a self-signed or given certificate that
// is rotated on disk, x509 client certificates from --client-ca-file, bearer
// tokens and SubjectAccessReviews through a fake API server named by a
// --kubeconfig file, the kubelet's 401/403/500 answers, the healthz port, the
// refusal of unsafe flag combinations, and a bounded load run. The fake API
// server and test CA are in the authtest subpackage, shared with the server
// package's tests.
package secure
