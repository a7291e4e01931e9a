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
	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	authenticationclient "k8s.io/client-go/kubernetes/typed/authentication/v1"
	authorizationclient "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/klog/v2"
)

// The kubelet's --authorization-mode values.
const (
	AuthorizationModeWebhook     = "Webhook"
	AuthorizationModeAlwaysAllow = "AlwaysAllow"
)

// AuthConfig is the kubelet's authentication and authorization configuration
// (KubeletConfiguration.Authentication and .Authorization).
type AuthConfig struct {
	// NodeName is the name authorized requests are checked against
	// (resource nodes, name NodeName).
	NodeName string
	// ClientCAFile verifies x509 client certificates (user = CN, groups =
	// O). It is re-read when it changes. Empty turns x509 authentication off.
	ClientCAFile string
	// TokenReviewClient authenticates bearer tokens with TokenReviews; nil
	// turns token authentication off.
	TokenReviewClient authenticationclient.AuthenticationV1Interface
	// TokenCacheTTL is how long a TokenReview answer is reused.
	TokenCacheTTL time.Duration
	// Anonymous lets requests nobody authenticated through as
	// system:anonymous in group system:unauthenticated.
	Anonymous bool
	// AuthorizationMode is AuthorizationModeWebhook (SubjectAccessReviews
	// through SubjectAccessReviewClient) or AuthorizationModeAlwaysAllow.
	AuthorizationMode         string
	SubjectAccessReviewClient authorizationclient.AuthorizationV1Interface
	// AuthorizedCacheTTL and UnauthorizedCacheTTL are how long allow and
	// deny answers of the webhook are reused.
	AuthorizedCacheTTL   time.Duration
	UnauthorizedCacheTTL time.Duration
	// WebhookRetryBackoff is how both webhooks retry transient errors; nil
	// means the kubelet's (5 tries, from 500 ms, factor 1.5).
	WebhookRetryBackoff *wait.Backoff
}

// defaultWebhookRetryBackoff is k8s.io/apiserver/pkg/server/options
// DefaultAuthWebhookRetryBackoff, which the kubelet uses. That package pulls
// in the apiserver's etcd storage, so the values are copied.
func defaultWebhookRetryBackoff() *wait.Backoff {
	return &wait.Backoff{Duration: 500 * time.Millisecond, Factor: 1.5, Jitter: 0.2, Steps: 5}
}

// Auth decides who a request comes from and whether they may make it, as
// the kubelet's KubeletAuth does, with k8s.io/apiserver's delegating
// authenticator and authorizer.
type Auth struct {
	nodeName      string
	authenticator authenticator.Request
	authorizer    authorizer.Authorizer
	// clientCA is nil without a client CA file.
	clientCA *dynamiccertificates.DynamicFileCAContent
}

// NewAuth builds the authenticator and authorizer of cfg, like the
// kubelet's BuildAuth (cmd/kubelet/app/auth.go). Call Run to keep the client
// CA current. With no authentication method at all (no client CA, no token
// client, anonymous off) every request is answered 401: that is the only
// safe answer, and it lets the secure port start on a machine that has not
// been told about an API server yet.
func NewAuth(cfg AuthConfig) (*Auth, error) {
	a := &Auth{nodeName: cfg.NodeName}
	authnConfig := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous: &apiserver.AnonymousAuthConfig{Enabled: cfg.Anonymous},
		CacheTTL:  cfg.TokenCacheTTL,
	}
	if cfg.ClientCAFile != "" {
		ca, err := dynamiccertificates.NewDynamicCAContentFromFile("client-ca-bundle", cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("load client CA file %s: %w", cfg.ClientCAFile, err)
		}
		a.clientCA = ca
		authnConfig.ClientCertificateCAContentProvider = ca
	}
	backoff := cfg.WebhookRetryBackoff
	if backoff == nil {
		backoff = defaultWebhookRetryBackoff()
	}
	if cfg.TokenReviewClient != nil {
		authnConfig.TokenAccessReviewClient = cfg.TokenReviewClient
		authnConfig.WebhookRetryBackoff = backoff
	}
	if authnConfig.ClientCertificateCAContentProvider == nil && authnConfig.TokenAccessReviewClient == nil && !cfg.Anonymous {
		a.authenticator = nobody{}
	} else {
		authn, _, err := authnConfig.New()
		if err != nil {
			return nil, fmt.Errorf("build authenticator: %w", err)
		}
		a.authenticator = authn
	}

	authz, err := newAuthorizer(cfg, backoff)
	if err != nil {
		return nil, err
	}
	a.authorizer = authz
	return a, nil
}

// newAuthorizer is the kubelet's BuildAuthz.
func newAuthorizer(cfg AuthConfig, backoff *wait.Backoff) (authorizer.Authorizer, error) {
	switch cfg.AuthorizationMode {
	case AuthorizationModeAlwaysAllow:
		return authorizerfactory.NewAlwaysAllowAuthorizer(), nil
	case AuthorizationModeWebhook:
		if cfg.SubjectAccessReviewClient == nil {
			return nil, errors.New("authorization mode Webhook needs a SubjectAccessReview client (an API server)")
		}
		authz, err := authorizerfactory.DelegatingAuthorizerConfig{
			SubjectAccessReviewClient: cfg.SubjectAccessReviewClient,
			AllowCacheTTL:             cfg.AuthorizedCacheTTL,
			DenyCacheTTL:              cfg.UnauthorizedCacheTTL,
			WebhookRetryBackoff:       backoff,
		}.New()
		if err != nil {
			return nil, fmt.Errorf("build webhook authorizer: %w", err)
		}
		return authz, nil
	case "":
		return nil, errors.New("no authorization mode specified")
	default:
		return nil, fmt.Errorf("unknown authorization mode %q", cfg.AuthorizationMode)
	}
}

// Run re-reads the client CA file when it changes, until ctx ends.
func (a *Auth) Run(ctx context.Context) {
	if a.clientCA != nil {
		go a.clientCA.Run(ctx, 1)
	}
}

// clientCAContent is what the TLS layer advertises as acceptable client
// certificate issuers; nil without a client CA file.
func (a *Auth) clientCAContent() dynamiccertificates.CAContentProvider {
	if a.clientCA == nil {
		return nil
	}
	return a.clientCA
}

// nobody authenticates no request.
type nobody struct{}

func (nobody) AuthenticateRequest(*http.Request) (*authenticator.Response, bool, error) {
	return nil, false, nil
}

// authFilter is the kubelet's InstallAuthFilter: authenticate, then try the
// request's attribute sets in turn until one is allowed. Status codes and
// bodies are the kubelet's.
func authFilter(logger klog.Logger, a *Auth) restful.FilterFunction {
	return func(req *restful.Request, resp *restful.Response, chain *restful.FilterChain) {
		info, ok, err := a.authenticator.AuthenticateRequest(req.Request)
		if err != nil {
			logger.Error(err, "Unable to authenticate the request due to an error")
			refuse(resp, http.StatusUnauthorized, "Unauthorized")
			return
		}
		if !ok {
			refuse(resp, http.StatusUnauthorized, "Unauthorized")
			return
		}

		attrs := nodeRequestAttributes(a.nodeName, info.User, req.Request)
		subresources := make([]string, 0, len(attrs))
		allowed := false
		for _, attr := range attrs {
			subresources = append(subresources, attr.GetSubresource())
			decision, _, err := a.authorizer.Authorize(req.Request.Context(), attr)
			if err != nil {
				logger.Error(err, "Authorization error", "user", attr.GetUser().GetName(), "verb", attr.GetVerb(),
					"resource", attr.GetResource(), "subresource", attr.GetSubresource())
				_ = resp.WriteErrorString(http.StatusInternalServerError, fmt.Sprintf(
					"Authorization error (user=%s, verb=%s, resource=%s, subresource=%s)",
					attr.GetUser().GetName(), attr.GetVerb(), attr.GetResource(), attr.GetSubresource()))
				return
			}
			if decision == authorizer.DecisionAllow {
				allowed = true
				break
			}
		}
		if !allowed {
			// The attribute sets differ only by subresource.
			first := attrs[0]
			logger.V(2).Info("Forbidden", "user", first.GetUser().GetName(), "verb", first.GetVerb(),
				"resource", first.GetResource(), "subresource(s)", subresources)
			refuse(resp, http.StatusForbidden, fmt.Sprintf("Forbidden (user=%s, verb=%s, resource=%s, subresource(s)=%v)\n",
				first.GetUser().GetName(), first.GetVerb(), first.GetResource(), subresources))
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
func nodeRequestAttributes(nodeName string, u user.Info, r *http.Request) []authorizer.Attributes {
	verb := requestVerb(r.Method)
	subresources := requestSubresources(r.URL.Path)
	attrs := make([]authorizer.Attributes, 0, len(subresources))
	for _, subresource := range subresources {
		attrs = append(attrs, authorizer.AttributesRecord{
			User:            u,
			Verb:            verb,
			APIVersion:      "v1",
			Resource:        "nodes",
			Subresource:     subresource,
			Name:            nodeName,
			ResourceRequest: true,
			Path:            r.URL.Path,
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
