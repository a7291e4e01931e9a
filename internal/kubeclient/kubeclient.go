// Package kubeclient is a JSON client of the API server for the objects
// --register-node writes: Nodes, Pods and Events (core/v1) and Leases
// (coordination.k8s.io/v1).
//
// Each call is the request client-go's typed client makes for it (same
// paths, query parameters, bodies and Status errors), over the same
// k8s.io/client-go/rest machinery (rate limiter, timeouts, Retry-After),
// but with a scheme that registers only these two groups: client-go's
// typed clients import k8s.io/client-go/kubernetes/scheme, which registers
// every API group of Kubernetes when the binary starts, and that costs the
// server megabytes of resident memory whether or not it registers a node.
// It speaks JSON only; the typed clients prefer protobuf for these types.
package kubeclient

import (
	"context"
	"fmt"
	"net/http"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/flowcontrol"
)

// Client is a client of one API server. It is safe for concurrent use.
type Client struct {
	core, coordination *rest.RESTClient
	params             runtime.ParameterCodec
}

// New builds a client from config (host, credentials, QPS, Burst, Timeout,
// UserAgent as the caller set them). As in client-go's clientset, both
// groups share one HTTP client and one rate limiter.
func New(config *rest.Config) (*Client, error) {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, coordinationv1.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	codecs := serializer.NewCodecFactory(scheme).WithoutConversion()
	config = rest.CopyConfig(config)
	if config.RateLimiter == nil && config.QPS > 0 {
		if config.Burst <= 0 {
			return nil, fmt.Errorf("burst must be positive when QPS is set (QPS %v, burst %d)", config.QPS, config.Burst)
		}
		config.RateLimiter = flowcontrol.NewTokenBucketRateLimiter(config.QPS, config.Burst)
	}
	httpClient, err := rest.HTTPClientFor(config)
	if err != nil {
		return nil, fmt.Errorf("HTTP client: %w", err)
	}
	core, err := groupClient(config, httpClient, codecs, "/api", corev1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	coordination, err := groupClient(config, httpClient, codecs, "/apis", coordinationv1.SchemeGroupVersion)
	if err != nil {
		return nil, err
	}
	return &Client{core: core, coordination: coordination, params: runtime.NewParameterCodec(scheme)}, nil
}

// groupClient is the typed clients' setConfigDefaults, JSON only, for the
// group version gv served under apiPath.
func groupClient(config *rest.Config, httpClient *http.Client, codecs runtime.NegotiatedSerializer, apiPath string, gv schema.GroupVersion) (*rest.RESTClient, error) {
	c := rest.CopyConfig(config)
	c.GroupVersion = &gv
	c.APIPath = apiPath
	c.NegotiatedSerializer = codecs
	c.ContentType = runtime.ContentTypeJSON
	c.AcceptContentTypes = ""
	if c.UserAgent == "" {
		c.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientForConfigAndClient(c, httpClient)
	if err != nil {
		return nil, fmt.Errorf("%s client: %w", gv, err)
	}
	return client, nil
}

// The resources' clients.
type (
	Nodes  = Resource[corev1.Node, *corev1.Node]
	Leases = Resource[coordinationv1.Lease, *coordinationv1.Lease]
	Events = Resource[corev1.Event, *corev1.Event]
)

// Nodes is the client of the Nodes.
func (c *Client) Nodes() *Nodes {
	return &Nodes{client: c.core, params: c.params, resource: "nodes"}
}

// Leases is the client of the Leases of namespace.
func (c *Client) Leases(namespace string) *Leases {
	return &Leases{client: c.coordination, params: c.params, resource: "leases", namespace: namespace}
}

// Events is the client of the core/v1 Events of namespace.
func (c *Client) Events(namespace string) *Events {
	return &Events{client: c.core, params: c.params, resource: "events", namespace: namespace}
}

// Pods is the client of the Pods of namespace ("" lists every namespace's).
func (c *Client) Pods(namespace string) *Pods {
	return &Pods{Resource[corev1.Pod, *corev1.Pod]{client: c.core, params: c.params, resource: "pods", namespace: namespace}}
}

// object is a pointer to an API type.
type object[T any] interface {
	*T
	runtime.Object
	GetName() string
}

// Resource is the client of one resource (in one namespace when it is
// namespaced), with the typed clients' method signatures.
type Resource[T any, PT object[T]] struct {
	client    *rest.RESTClient
	params    runtime.ParameterCodec
	resource  string
	namespace string
}

func (r *Resource[T, PT]) request(verb string) *rest.Request {
	return r.client.Verb(verb).NamespaceIfScoped(r.namespace, r.namespace != "").Resource(r.resource)
}

// into decodes the answer of req into a new object. Errors are returned as
// the typed clients return them (*errors.StatusError for the API server's
// refusals), for apierrors.IsNotFound and the like; callers add context.
func into[T any, PT object[T]](ctx context.Context, req *rest.Request) (PT, error) {
	out := PT(new(T))
	if err := req.Do(ctx).Into(out); err != nil {
		return nil, err
	}
	return out, nil
}

// Get reads the object name.
func (r *Resource[T, PT]) Get(ctx context.Context, name string, opts metav1.GetOptions) (PT, error) {
	return into[T, PT](ctx, r.request(http.MethodGet).Name(name).VersionedParams(&opts, r.params))
}

// Create creates obj.
func (r *Resource[T, PT]) Create(ctx context.Context, obj PT, opts metav1.CreateOptions) (PT, error) {
	return into[T, PT](ctx, r.request(http.MethodPost).VersionedParams(&opts, r.params).Body(obj))
}

// Update replaces the object of obj's name with obj.
func (r *Resource[T, PT]) Update(ctx context.Context, obj PT, opts metav1.UpdateOptions) (PT, error) {
	return into[T, PT](ctx, r.request(http.MethodPut).Name(obj.GetName()).VersionedParams(&opts, r.params).Body(obj))
}

// Patch applies data, a patch of type pt, to the object name or to its
// subresource.
func (r *Resource[T, PT]) Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (PT, error) {
	req := r.client.Patch(pt).NamespaceIfScoped(r.namespace, r.namespace != "").Resource(r.resource).
		Name(name).SubResource(subresources...).VersionedParams(&opts, r.params).Body(data)
	return into[T, PT](ctx, req)
}

// Delete deletes the object name.
func (r *Resource[T, PT]) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	return r.request(http.MethodDelete).Name(name).Body(&opts).Do(ctx).Error()
}

// Pods is the client of Pods, which can also be listed.
type Pods struct {
	Resource[corev1.Pod, *corev1.Pod]
}

// List lists the pods that opts selects.
func (p *Pods) List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error) {
	list := &corev1.PodList{}
	if err := p.request(http.MethodGet).VersionedParams(&opts, p.params).Do(ctx).Into(list); err != nil {
		return nil, err
	}
	return list, nil
}
