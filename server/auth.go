package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	restful "github.com/emicklei/go-restful/v3"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
	"k8s.io/utils/clock"
)

// The kubelet's --authorization-mode values.
const (
	AuthorizationModeWebhook     = "Webhook"
	AuthorizationModeAlwaysAllow = "AlwaysAllow"
)

// AuthConfig is the kubelet's authentication and authorization configuration
// (KubeletConfiguration.Authentication and .Authorization).
type AuthConfig struct {
	// Logger receives the webhooks' errors and the client CA's reloads;
	// the zero value means klog's global logger.
	Logger klog.Logger
	// NodeName is the name authorized requests are checked against
	// (resource nodes, name NodeName).
	NodeName string
	// ClientCAFile verifies x509 client certificates (user = CN, groups =
	// O). It is re-read when it changes. Empty turns x509 authentication off.
	ClientCAFile string
	// TokenReviewClient authenticates bearer tokens with TokenReviews; nil
	// turns token authentication off.
	TokenReviewClient TokenReviewer
	// TokenCacheTTL is how long a TokenReview answer is reused.
	TokenCacheTTL time.Duration
	// Anonymous lets requests nobody authenticated through as
	// system:anonymous in group system:unauthenticated.
	Anonymous bool
	// AuthorizationMode is AuthorizationModeWebhook (SubjectAccessReviews
	// through SubjectAccessReviewClient) or AuthorizationModeAlwaysAllow.
	AuthorizationMode         string
	SubjectAccessReviewClient AccessReviewer
	// AuthorizedCacheTTL and UnauthorizedCacheTTL are how long allow and
	// deny answers of the webhook are reused.
	AuthorizedCacheTTL   time.Duration
	UnauthorizedCacheTTL time.Duration
	// WebhookRetryBackoff is how both webhooks retry transient errors; nil
	// means the kubelet's (5 tries, from 500 ms, factor 1.5).
	WebhookRetryBackoff *wait.Backoff
}

// Auth decides who a request comes from and whether they may make it, as
// the kubelet's KubeletAuth does with k8s.io/apiserver's delegating
// authenticator and authorizer, which this package implements in their
// kubelet configuration (auth_authn.go, auth_token.go, auth_authz.go)
// rather than link the apiserver library.
type Auth struct {
	nodeName      string
	authenticator requestAuthenticator
	authorizer    requestAuthorizer
	// clientCA is nil without a client CA file.
	clientCA *clientCAFile
}

// NewAuth builds the authenticator and authorizer of cfg, like the
// kubelet's BuildAuth (cmd/kubelet/app/auth.go). Call Run to keep the client
// CA current. With no authentication method at all (no client CA, no token
// client, anonymous off) every request is answered 401: that is the only
// safe answer, and it lets the secure port start on a machine that has not
// been told about an API server yet.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	logger := cfg.Logger
	if logger.GetSink() == nil {
		logger = klog.Background()
	}
	a := &Auth{nodeName: cfg.NodeName}
	if cfg.ClientCAFile != "" {
		ca, err := newClientCAFile(logger, cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("load client CA file %s: %w", cfg.ClientCAFile, err)
		}
		a.clientCA = ca
	}
	backoff := cfg.WebhookRetryBackoff
	if backoff == nil {
		backoff = defaultWebhookRetryBackoff()
	}
	var tokens tokenAuthenticator
	if cfg.TokenReviewClient != nil {
		cached, err := newCachedTokens(logger, &tokenWebhook{reviewer: cfg.TokenReviewClient, backoff: *backoff, logger: logger},
			cfg.TokenCacheTTL, clock.RealClock{})
		if err != nil {
			return nil, err
		}
		tokens = cached
	}
	a.authenticator = newRequestAuthenticator(a.clientCA, tokens, cfg.Anonymous)
	if a.authenticator == nil {
		a.authenticator = nobody
	}
	authz, err := newAuthorizer(logger, cfg, *backoff)
	if err != nil {
		return nil, err
	}
	a.authorizer = authz
	return a, nil
}

// newAuthorizer is the kubelet's BuildAuthz.
func newAuthorizer(logger klog.Logger, cfg AuthConfig, backoff wait.Backoff) (requestAuthorizer, error) {
	switch cfg.AuthorizationMode {
	case AuthorizationModeAlwaysAllow:
		return alwaysAllow{}, nil
	case AuthorizationModeWebhook:
		if cfg.SubjectAccessReviewClient == nil {
			return nil, errors.New("authorization mode Webhook needs a SubjectAccessReview client (an API server)")
		}
		return newWebhookAuthorizer(logger, cfg.SubjectAccessReviewClient, cfg.AuthorizedCacheTTL, cfg.UnauthorizedCacheTTL,
			backoff, clock.RealClock{}), nil
	case "":
		return nil, errors.New("no authorization mode specified")
	default:
		return nil, fmt.Errorf("unknown authorization mode %q", cfg.AuthorizationMode)
	}
}

// Run re-reads the client CA file when it changes, until ctx ends.
func (a *Auth) Run(ctx context.Context) {
	if a.clientCA != nil {
		go a.clientCA.Run(ctx)
	}
}

// nobody authenticates no request.
func nobody(*http.Request) (*userInfo, bool, error) {
	return nil, false, nil
}

// authFilter is the kubelet's InstallAuthFilter: authenticate, then try the
// request's attribute sets in turn until one is allowed. Status codes and
// bodies are the kubelet's.
func authFilter(logger klog.Logger, a *Auth) restful.FilterFunction {
	return func(req *restful.Request, resp *restful.Response, chain *restful.FilterChain) {
		u, ok, err := a.authenticator(req.Request)
		if err != nil {
			logger.Error(err, "Unable to authenticate the request due to an error")
			refuse(resp, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !ok {
			refuse(resp, http.StatusUnauthorized, "Unauthorized")
			return
		}

		attrs := nodeRequestAttributes(a.nodeName, u, req.Request)
		subresources := make([]string, 0, len(attrs))
		allowed := false
		for _, attr := range attrs {
			subresources = append(subresources, attr.Subresource)
			d, err := a.authorizer.authorize(req.Request.Context(), attr)
			if err != nil {
				logger.Error(err, "Authorization error", "user", attr.User.Name, "verb", attr.Verb,
					"resource", attr.Resource, "subresource", attr.Subresource)
				_ = resp.WriteErrorString(http.StatusInternalServerError, fmt.Sprintf(
					"Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
					attr.User.Name, attr.Verb, attr.Resource, attr.Subresource))
				return
			}
			if d == decisionAllow {
				allowed = true
				break
			}
		}
		if !allowed {
			// The attribute sets differ only by subresource.
			first := attrs[0]
			logger.V(2).Info("Forbidden", "user", first.User.Name, "verb", first.Verb,
				"resource", first.Resource, "subresource(s)", subresources)
			refuse(resp, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n",
				first.User.Name, first.Verb, first.Resource, subresources))
			return
		}
		chain.ProcessFilter(req, resp)
	}
}

// refuse answers 401 or 403 with the kubelet's body and closes the
// connection (HTTP/2: sends GOAWAY), so that a client without access cannot
// hold a connection by asking again and again: it pays a new handshake for
// every try.
func refuse(resp *restful.Response, status int, body string) {
	resp.Header().Set("Connection", "close")
	_ = resp.WriteErrorString(status, body)
}

// nodeRequestAttributes is the kubelet's nodeAuthorizerAttributesGetter
// (pkg/kubelet/server/auth.go) with KubeletFineGrainedAuthz on, as it is
// locked in 1.36: one attribute set per subresource to try, in order. It
// always returns at least one.
func nodeRequestAttributes(nodeName string, u *userInfo, r *http.Request) []requestAttributes {
	verb := requestVerb(r.Method)
	subresources := requestSubresources(r.URL.Path)
	attrs := make([]requestAttributes, 0, len(subresources))
	for _, subresource := range subresources {
		attrs = append(attrs, requestAttributes{
			User:        u,
			Verb:        verb,
			APIVersion:  "v1",
			Resource:    "nodes",
			Subresource: subresource,
			Name:        nodeName,
			Path:        r.URL.Path,
		})
	}
	return attrs
}

// requestVerb maps an HTTP method to an API verb. Other methods (HEAD,
// OPTIONS) get the empty verb, as in the kubelet, which no RBAC rule grants.
func requestVerb(method string) string {
	switch method {
	case http.MethodPost:
		return "create"
	case http.MethodGet:
		return "get"
	case http.MethodPut:
		return "update"
	case http.MethodPatch:
		return "patch"
	case http.MethodDelete:
		return "delete"
	}
	return ""
}

// fineGrainedSubresources are tried before the path's general subresource.
var fineGrainedSubresources = []struct{ path, subresource string }{
	{"/pods", "pods"},
	{"/healthz", "healthz"},
	{"/configz", "configz"},
	{"/runningpods/", "pods"},
	// Kubelet v1.20 authorized its machine spec as nodes/spec alone, which
	// system:kubelet-api-admin granted then but no longer does; trying
	// proxy next keeps kubectl's node proxy working on current clusters.
	{"/spec/", "spec"},
}

// pathSubresources map a path to its subresource; the rest are "proxy".
var pathSubresources = []struct{ path, subresource string }{
	{"/stats/", "stats"},
	{"/metrics", "metrics"},
	{"/logs/", "log"},
	{"/checkpoint/", "checkpoint"},
	{"/statusz", "statusz"},
	{"/flagz", "configz"},
	// Ours: cAdvisor's events API, container events of the node like the
	// cAdvisor JSON routes under /stats/.
	{eventsAPIPath + "/", "stats"},
	{historyPath, "stats"},
}

// requestSubresources are the subresources of nodes a request to path needs
// one of, in the order they are tried.
func requestSubresources(path string) []string {
	if path == "/" { // the page (page.go), which shows the node's stats
		return []string{"stats"}
	}
	var subresources []string
	for _, p := range fineGrainedSubresources {
		if isSubpath(path, p.path) {
			subresources = append(subresources, p.subresource)
			break
		}
	}
	for _, p := range pathSubresources {
		if isSubpath(path, p.path) {
			return append(subresources, p.subresource)
		}
	}
	return append(subresources, "proxy")
}

// isSubpath reports whether subpath is path or below it, ignoring a
// trailing slash of path: /stats, /stats/ and /stats/summary are all under
// /stats/, /statsfoo is not.
func isSubpath(subpath, path string) bool {
	path = strings.TrimSuffix(path, "/")
	return subpath == path || (strings.HasPrefix(subpath, path) && subpath[len(path)] == '/')
}
