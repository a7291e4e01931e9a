// Package reviewclient posts TokenReviews and SubjectAccessReviews to the
// API server, for the secure port's token authentication and webhook
// authorization (server.TokenReviewer, server.AccessReviewer).
//
// It is what client-go's typed authentication/v1 and authorization/v1
// clients do for these two calls, over the same k8s.io/client-go/rest
// machinery (rate limiter, timeouts, Retry-After handling, Status errors),
// with a scheme that holds only those two groups. The typed clients import
// k8s.io/client-go/kubernetes/scheme, which registers every API group of
// Kubernetes at start; this package registers two.
package reviewclient

import (
	"context"
	"fmt"
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
)

// Client posts reviews to one API server. It is safe for concurrent use.
type Client struct {
	tokenReviews  *rest.RESTClient
	accessReviews *rest.RESTClient
}

// New builds a client from config (host, credentials, QPS, Burst,
// Timeout, UserAgent, ContentType as the caller set them). As with the typed
// clients, each group has its own rate limiter and both share one HTTP
// client, so one connection pool.
func New(config *rest.Config) (*Client, error) {
	codecs, err := reviewCodecs()
	if err != nil {
		return nil, err
	}
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("HTTP client: %w", err)
	}
	tokenReviews, err := groupClient(config, httpClient, codecs, authenticationv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("TokenReview client: %w", err)
	}
	accessReviews, err := groupClient(config, httpClient, codecs, authorizationv1.SchemeGroupVersion)
	if err != nil {
		return nil, fmt.Errorf("SubjectAccessReview client: %w", err)
	}
	return &Client{tokenReviews: tokenReviews, accessReviews: accessReviews}, nil
}

// reviewCodecs encode and decode the two review groups and the API
// server's Status answers (errors), as client-go's scheme does for them.
func reviewCodecs() (serializer.CodecFactory, error) {
	scheme := runtime.NewScheme()
	metav1.AddToGroupVersion(scheme, schema.GroupVersion{Version: "v1"})
	for _, add := range []func(*runtime.Scheme) error{authenticationv1.AddToScheme, authorizationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return serializer.CodecFactory{}, fmt.Errorf("review scheme: %w", err)
		}
	}
	return serializer.NewCodecFactory(scheme), nil
}

// groupClient is the typed clients' setConfigDefaults plus
// RESTClientForConfigAndClient for group version gv.
func groupClient(config *rest.Config, httpClient *http.Client, codecs serializer.CodecFactory, gv schema.GroupVersion) (*rest.RESTClient, error) {
	c := rest.CopyConfig(config)
	c.GroupVersion = &gv
	c.APIPath = "/apis"
	c.NegotiatedSerializer = codecs.WithoutConversion()
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	return rest.RESTClientForConfigAndClient(c, httpClient)
}

// CreateTokenReview posts review to /apis/authentication.k8s.io/v1/tokenreviews
// and returns the API server's answer. Errors wrap client-go's: a
// *k8s.io/apimachinery/pkg/api/errors.StatusError for an answer other than
// success, a transport error otherwise, so that the caller can tell
// transient ones (errors.As) and retry them.
func (c *Client) CreateTokenReview(ctx context.Context, review *authenticationv1.TokenReview) (*authenticationv1.TokenReview, error) {
	result := &authenticationv1.TokenReview{}
	if err := c.tokenReviews.Post().Resource("tokenreviews").Body(review).Do(ctx).Into(result); err != nil {
		return nil, fmt.Errorf("create TokenReview: %w", err)
	}
	return result, nil
}

// CreateSubjectAccessReview posts review to
// /apis/authorization.k8s.io/v1/subjectaccessreviews and returns the API
// server's answer; errors as for CreateTokenReview.
func (c *Client) CreateSubjectAccessReview(ctx context.Context, review *authorizationv1.SubjectAccessReview) (*authorizationv1.SubjectAccessReview, error) {
	result := &authorizationv1.SubjectAccessReview{}
	if err := c.accessReviews.Post().Resource("subjectaccessreviews").Body(review).Do(ctx).Into(result); err != nil {
		return nil, fmt.Errorf("create SubjectAccessReview: %w", err)
	}
	return result, nil
}
