package register

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// leaseRenewer is the kubelet's node lease controller
// (component-helpers/apimachinery/lease): the Lease named after the node in
// kube-node-lease, held by the node, owned by the Node object.
type leaseRenewer struct {
	leases  LeaseClient
	name    string
	nodeUID types.UID
	now     func() time.Time
	logger  klog.Logger
	// latest is the lease as last written, so that a renewal is one update.
	latest *coordinationv1.Lease
}

func (l *leaseRenewer) init(client Client, nodeName string, nodeUID types.UID, now func() time.Time, logger klog.Logger) {
	*l = leaseRenewer{
		leases:  client.Leases(corev1.NamespaceNodeLease),
		name:    nodeName,
		nodeUID: nodeUID,
		now:     now,
		logger:  logger,
	}
}

// renew updates the lease's renewTime, creating the lease when it is
// missing. A failure is logged; the next turn tries again, three times
// within one lease duration.
func (l *leaseRenewer) renew(ctx context.Context) {
	if err := l.tryRenew(ctx); err != nil {
		l.logger.Error(err, "Unable to renew the node lease", "lease", klog.KRef(corev1.NamespaceNodeLease, l.name), "retryIn", leaseRenewInterval)
	}
}

func (l *leaseRenewer) tryRenew(ctx context.Context) error {
	if l.latest != nil {
		if err := l.update(ctx, l.latest); err == nil {
			return nil
		}
		// Someone else wrote it (or deleted it): start again from the
		// server's copy.
		l.latest = nil
	}
	current, err := l.leases.Get(ctx, l.name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		created, err := l.leases.Create(ctx, l.newLease(nil), metav1.CreateOptions{})
		if err != nil {
			return fmt.Errorf("create lease: %w", err)
		}
		l.latest = created
		return nil
	case err != nil:
		return fmt.Errorf("get lease: %w", err)
	}
	return l.update(ctx, current)
}

func (l *leaseRenewer) update(ctx context.Context, base *coordinationv1.Lease) error {
	updated, err := l.leases.Update(ctx, l.newLease(base), metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update lease: %w", err)
	}
	l.latest = updated
	return nil
}

// newLease is base (or a new lease) renewed now, with the Node as owner so
// that the lease goes with the node.
func (l *leaseRenewer) newLease(base *coordinationv1.Lease) *coordinationv1.Lease {
	lease := &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: l.name, Namespace: corev1.NamespaceNodeLease},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: ptr.To(l.name)},
	}
	if base != nil {
		lease = base.DeepCopy()
	}
	lease.Spec.LeaseDurationSeconds = ptr.To[int32](leaseDurationSeconds)
	lease.Spec.RenewTime = &metav1.MicroTime{Time: l.now()}
	if len(lease.OwnerReferences) == 0 {
		lease.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: l.name, UID: l.nodeUID}}
	}
	return lease
}
