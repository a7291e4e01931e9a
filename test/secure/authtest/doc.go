// Package authtest gives the secure port's tests what a cluster would: a
// CA issuing client and serving certificates (CA, NewCA), and a fake API
// server (APIServer, NewAPIServer) answering TokenReviews and
// SubjectAccessReviews over HTTPS on loopback in the real
// authentication.k8s.io/v1 and authorization.k8s.io/v1 JSON, reached
// through a kubeconfig file (WriteKubeconfig) or a rest.Config
// (RESTConfig), with counters, a recorded review log, a replaceable policy,
// and Down/Up to take it away.
package authtest
