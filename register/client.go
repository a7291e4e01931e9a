package register

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kubelet-stats-server/kubelet-stats-server/internal/kubeclient"
)

// Client is the API server as registration uses it. Each method set is the
// subset of a client-go typed client's that registration calls, with the
// same signatures, so that the typed clients satisfy it as well as the
// small internal/kubeclient does (client-go's typed clients link every API
// group's scheme into the binary).
type Client interface {
	Nodes() NodeClient
	Leases(namespace string) LeaseClient
	Pods(namespace string) PodClient
	Events(namespace string) EventClient
}

// NodeClient reads, creates and patches (the status of) Nodes.
type NodeClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Node, error)
	Create(ctx context.Context, node *corev1.Node, opts metav1.CreateOptions) (*corev1.Node, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Node, error)
}

// LeaseClient keeps the node's Lease.
type LeaseClient interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*coordinationv1.Lease, error)
	Create(ctx context.Context, lease *coordinationv1.Lease, opts metav1.CreateOptions) (*coordinationv1.Lease, error)
	Update(ctx context.Context, lease *coordinationv1.Lease, opts metav1.UpdateOptions) (*coordinationv1.Lease, error)
}

// PodClient keeps the mirror pods.
type PodClient interface {
	List(ctx context.Context, opts metav1.ListOptions) (*corev1.PodList, error)
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Pod, error)
	Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Pod, error)
	Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error
}

// EventClient posts Events and counts their repeats.
type EventClient interface {
	Create(ctx context.Context, event *corev1.Event, opts metav1.CreateOptions) (*corev1.Event, error)
	Patch(ctx context.Context, name string, pt types.PatchType, data []byte, opts metav1.PatchOptions, subresources ...string) (*corev1.Event, error)
}

// RESTClient is the production Client: internal/kubeclient's.
func RESTClient(c *kubeclient.Client) Client { return restClient{c} }

type restClient struct{ c *kubeclient.Client }

func (c restClient) Nodes() NodeClient                   { return c.c.Nodes() }
func (c restClient) Leases(namespace string) LeaseClient { return c.c.Leases(namespace) }
func (c restClient) Pods(namespace string) PodClient     { return c.c.Pods(namespace) }
func (c restClient) Events(namespace string) EventClient { return c.c.Events(namespace) }
