package authtest

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// The paths client-go posts reviews to.
const (
	tokenReviewPath         = "/apis/authentication.k8s.io/v1/tokenreviews"
	subjectAccessReviewPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
)

// Policy decides a SubjectAccessReview.
type Policy func(authorizationv1.SubjectAccessReviewSpec) bool

// AllowAll and DenyAll are the trivial policies.
var (
	AllowAll Policy = func(authorizationv1.SubjectAccessReviewSpec) bool { return true }
	DenyAll  Policy = func(authorizationv1.SubjectAccessReviewSpec) bool { return false }
)

// APIServer is a fake kube-apiserver on loopback that answers TokenReviews
// and SubjectAccessReviews over HTTPS in authentication.k8s.io/v1 and
// authorization.k8s.io/v1 JSON, decoded and encoded with the upstream
// types. It only answers callers presenting ClientToken, as an API server
// only answers an authenticated kubelet. Down and Up stop and restart it on
// the same address.
type APIServer struct {
	// CA signed the server's certificate.
	CA *CA
	// ClientToken is the bearer token callers must present.
	ClientToken string
	// URL is https://127.0.0.1:<port>.
	URL string

	addr    string
	tlsConf *tls.Config
	handler http.Handler

	mu      sync.Mutex
	srv     *http.Server
	tokens  map[string]authenticationv1.UserInfo
	policy  Policy
	reviews []authorizationv1.SubjectAccessReviewSpec

	tokenReviews  atomic.Int64
	accessReviews atomic.Int64
}

// NewAPIServer starts a fake API server that authenticates no token and
// allows everything; it is stopped at test cleanup.
func NewAPIServer(t testing.TB) *APIServer {
	t.Helper()
	ca := NewCA(t, "fake-apiserver-ca")
	certPEM, keyPEM := ca.ServingPair(t, "127.0.0.1")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	s := &APIServer{
		CA:          ca,
		ClientToken: "kubelet-stats-server-token",
		tlsConf:     &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12},
		tokens:      map[string]authenticationv1.UserInfo{},
		policy:      AllowAll,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+tokenReviewPath, s.serveTokenReview)
	mux.HandleFunc("POST "+subjectAccessReviewPath, s.serveSubjectAccessReview)
	s.handler = s.requireClientToken(mux)
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = listener.Addr().String()
	s.URL = "https://" + s.addr
	s.serve(listener)
	t.Cleanup(s.Down)
	return s
}

// SetToken makes token authenticate as user.
func (s *APIServer) SetToken(token string, user authenticationv1.UserInfo) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens[token] = user
}

// SetPolicy replaces the authorization policy.
func (s *APIServer) SetPolicy(p Policy) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.policy = p
}

// TokenReviews and AccessReviews count the reviews answered so far.
func (s *APIServer) TokenReviews() int64  { return s.tokenReviews.Load() }
func (s *APIServer) AccessReviews() int64 { return s.accessReviews.Load() }

// TakeReviews returns the SubjectAccessReview specs received since the
// last call, in order.
func (s *APIServer) TakeReviews() []authorizationv1.SubjectAccessReviewSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reviews
	s.reviews = nil
	return r
}

// Down stops the server and drops its connections: callers then get
// "connection refused", as from an API server that is down.
func (s *APIServer) Down() {
	s.mu.Lock()
	srv := s.srv
	s.srv = nil
	s.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Up restarts a stopped server on its address.
func (s *APIServer) Up(t testing.TB) {
	t.Helper()
	listener, err := net.Listen("tcp", s.addr)
	if err != nil {
		t.Fatalf("restart fake API server on %s: %v", s.addr, err)
	}
	s.serve(listener)
}

func (s *APIServer) serve(listener net.Listener) {
	srv := &http.Server{Handler: s.handler, TLSConfig: s.tlsConf}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() { _ = srv.ServeTLS(listener, "", "") }()
}

// RESTConfig is a client configuration for the server, as a kubeconfig
// file would give.
func (s *APIServer) RESTConfig() *rest.Config {
	return &rest.Config{
		Host:            s.URL,
		BearerToken:     s.ClientToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: s.CA.CertPEM},
	}
}

// WriteKubeconfig writes a kubeconfig file for the server into dir, as a
// user would write one: the CA in a file next to it, a bearer token.
func (s *APIServer) WriteKubeconfig(t testing.TB, dir string) string {
	t.Helper()
	caFile := filepath.Join(dir, "apiserver-ca.crt")
	WriteFile(t, caFile, s.CA.CertPEM)
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: kubelet-stats-server
  user:
    token: %s
contexts:
- name: fake
  context:
    cluster: fake
    user: kubelet-stats-server
current-context: fake
`, s.URL, caFile, s.ClientToken)
	path := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(path, []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func (s *APIServer) requireClientToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+s.ClientToken {
			http.Error(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"Unauthorized","code":401}`, http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *APIServer) serveTokenReview(w http.ResponseWriter, r *http.Request) {
	var review authenticationv1.TokenReview
	if !decode(w, r, &review, authenticationv1.SchemeGroupVersion.WithKind("TokenReview")) {
		return
	}
	s.tokenReviews.Add(1)
	s.mu.Lock()
	user, ok := s.tokens[review.Spec.Token]
	s.mu.Unlock()
	review.Status = authenticationv1.TokenReviewStatus{Authenticated: ok, User: user}
	if !ok {
		review.Status.Error = "token not recognized"
	}
	encode(w, &review)
}

func (s *APIServer) serveSubjectAccessReview(w http.ResponseWriter, r *http.Request) {
	var review authorizationv1.SubjectAccessReview
	if !decode(w, r, &review, authorizationv1.SchemeGroupVersion.WithKind("SubjectAccessReview")) {
		return
	}
	s.accessReviews.Add(1)
	s.mu.Lock()
	s.reviews = append(s.reviews, review.Spec)
	policy := s.policy
	s.mu.Unlock()
	allowed := policy(review.Spec)
	review.Status = authorizationv1.SubjectAccessReviewStatus{Allowed: allowed}
	if !allowed {
		review.Status.Reason = "denied by the test policy"
	}
	encode(w, &review)
}

// decode reads a review strictly as JSON of the group and version in the
// request path (as the API server would), answering 400 otherwise.
func decode(w http.ResponseWriter, r *http.Request, review runtime.Object, want schema.GroupVersionKind) bool {
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		http.Error(w, "content type "+ct+", want application/json", http.StatusUnsupportedMediaType)
		return false
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(review); err != nil {
		http.Error(w, "decode review: "+err.Error(), http.StatusBadRequest)
		return false
	}
	if got := review.GetObjectKind().GroupVersionKind(); got != want {
		http.Error(w, fmt.Sprintf("review is %v, want %v", got, want), http.StatusBadRequest)
		return false
	}
	return true
}

func encode(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
