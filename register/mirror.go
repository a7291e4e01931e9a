package register

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"
)

// mirrorAnnotation is the kubelet's kubernetes.io/config.mirror; on our
// mirror pods it holds the runtime's pod UID (the sandbox's metadata), as
// a static pod's holds its hash, which is its UID.
const mirrorAnnotation = "kubernetes.io/config.mirror"

// mirrors keeps one mirror pod per pod of the runtime, keyed by the
// runtime's pod UID.
type mirrors struct {
	client   Client
	nodeName string
	source   Source
	logger   klog.Logger
	hostIPs  []string

	// The fields below are only touched by the sync goroutine, except pods,
	// which podRef reads under mu.
	nodeUID types.UID
	adopted bool
	// failures holds the last error per pod, so that a pod that cannot be
	// mirrored (its namespace does not exist) is logged once, not every sync.
	failures map[types.UID]string
	mu       sync.Mutex
	pods     map[types.UID]*mirror
}

// mirror is one mirror pod in the API server.
type mirror struct {
	namespace, name string
	uid             types.UID
	// spec names the containers and images the mirror was made with: when
	// the runtime's pod no longer matches, the mirror is made again.
	spec string
	qos  corev1.PodQOSClass
	// server is the status as the API server last returned it, the base of
	// the next patch; posted is what was last sent, nil before the first
	// patch.
	server corev1.PodStatus
	posted *corev1.PodStatus
}

func newMirrors(cfg Config, logger klog.Logger) *mirrors {
	return &mirrors{
		client:   cfg.Client,
		nodeName: cfg.NodeName,
		source:   cfg.Source,
		logger:   logger,
		hostIPs:  hostIPs(cfg.Addresses),
		failures: map[types.UID]string{},
		pods:     map[types.UID]*mirror{},
	}
}

// hostIPs are the node's internal addresses (else external), the pods'
// hostIP and the IPs of host-network pods, as the kubelet reports them.
func hostIPs(addresses []corev1.NodeAddress) []string {
	for _, kind := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		var ips []string
		for _, a := range addresses {
			if a.Type == kind {
				ips = append(ips, a.Address)
			}
		}
		if ips != nil {
			return ips
		}
	}
	return nil
}

// setNode gives the UID the mirror pods' owner reference needs.
func (m *mirrors) setNode(node *corev1.Node) { m.nodeUID = node.UID }

// sync makes the API server's mirror pods match the runtime's pods of the
// newest snapshot: creates the missing, patches changed statuses, deletes
// those whose sandbox is gone.
func (m *mirrors) sync(ctx context.Context) {
	list := m.source.Pods()
	if list == nil {
		return // no snapshot yet: nothing is known to be gone
	}
	if !m.adopted {
		if err := m.adopt(ctx); err != nil {
			m.logger.Error(err, "Unable to list this node's mirror pods; retrying")
			return
		}
		m.adopted = true
	}
	running := make(map[types.UID]bool, len(list.Items))
	for i := range list.Items {
		pod := &list.Items[i]
		running[pod.UID] = true
		if err := m.ensure(ctx, pod); err != nil {
			m.failed(pod, err)
			continue
		}
		delete(m.failures, pod.UID)
	}
	for uid, mp := range m.snapshot() {
		if !running[uid] {
			m.remove(ctx, uid, mp)
		}
	}
	for uid := range m.failures {
		if !running[uid] {
			delete(m.failures, uid)
		}
	}
}

// adopt takes over the mirror pods on this node that an earlier run left,
// so that those whose sandbox went while it was down are deleted.
func (m *mirrors) adopt(ctx context.Context) error {
	pods, err := m.client.Pods("").List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.nodeName", m.nodeName).String(),
	})
	if err != nil {
		return fmt.Errorf("list the pods of node %s: %w", m.nodeName, err)
	}
	for i := range pods.Items {
		pod := &pods.Items[i]
		if runtimeUID, ok := pod.Annotations[mirrorAnnotation]; ok {
			m.put(types.UID(runtimeUID), newMirror(pod, ""))
		}
	}
	return nil
}

func newMirror(pod *corev1.Pod, spec string) *mirror {
	return &mirror{namespace: pod.Namespace, name: pod.Name, uid: pod.UID, spec: spec, qos: pod.Status.QOSClass, server: pod.Status}
}

// ensure creates pod's mirror when it has none (or one made from another
// spec) and patches its status when it changed.
func (m *mirrors) ensure(ctx context.Context, pod *corev1.Pod) error {
	if len(pod.Spec.Containers) == 0 {
		return nil // a sandbox whose containers are not created yet
	}
	spec := specKey(pod)
	mp := m.get(pod.UID)
	if mp != nil && mp.spec != "" && mp.spec != spec {
		m.logger.V(2).Info("Pod's containers changed; making its mirror pod again", "pod", klog.KObj(pod))
		if !m.remove(ctx, pod.UID, mp) {
			return nil
		}
		mp = nil
	}
	if mp == nil {
		created, err := m.create(ctx, pod, spec)
		if err != nil {
			return err
		}
		mp = created
		m.put(pod.UID, mp)
	}
	return m.patchStatus(ctx, pod, mp)
}

// create makes pod's mirror. An existing mirror of the same runtime pod is
// adopted; one of an earlier pod of that name is deleted first; a pod that
// is no mirror pod is left alone.
func (m *mirrors) create(ctx context.Context, pod *corev1.Pod, spec string) (*mirror, error) {
	pods := m.client.Pods(pod.Namespace)
	created, err := pods.Create(ctx, mirrorPod(pod, m.nodeName, m.nodeUID), metav1.CreateOptions{})
	if err == nil {
		m.logger.V(2).Info("Created mirror pod", "pod", klog.KObj(created), "uid", created.UID, "runtimeUID", pod.UID)
		return newMirror(created, spec), nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create mirror pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	existing, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get the existing pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	owner, isMirror := existing.Annotations[mirrorAnnotation]
	switch {
	case !isMirror || existing.Spec.NodeName != m.nodeName:
		return nil, fmt.Errorf("pod %s/%s exists and is not this node's mirror pod; not mirrored", pod.Namespace, pod.Name)
	case owner == string(pod.UID):
		return newMirror(existing, spec), nil
	}
	if err := m.delete(ctx, newMirror(existing, "")); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("deleted the mirror pod %s/%s of an earlier pod (runtime UID %s); creating it again next sync", pod.Namespace, pod.Name, owner)
}

// patchStatus sends pod's status to its mirror when it differs from what
// was sent last, with the mirror's UID as precondition (the kubelet's
// status manager patch).
func (m *mirrors) patchStatus(ctx context.Context, pod *corev1.Pod, mp *mirror) error {
	status := m.mirrorStatus(pod, mp)
	if mp.posted != nil && equality.Semantic.DeepEqual(*mp.posted, status) {
		return nil
	}
	patch, err := podStatusPatch(mp.uid, mp.server, status)
	if err != nil {
		return fmt.Errorf("mirror pod %s/%s: %w", mp.namespace, mp.name, err)
	}
	updated, err := m.client.Pods(mp.namespace).Patch(ctx, mp.name, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status")
	if err != nil {
		if apierrors.IsNotFound(err) || apierrors.IsConflict(err) || uidMismatch(err) {
			// Deleted or replaced behind our back: make it again.
			m.forget(pod.UID)
		}
		return fmt.Errorf("patch the status of mirror pod %s/%s: %w", mp.namespace, mp.name, err)
	}
	mp.server, mp.posted = updated.Status, &status
	return nil
}

// uidMismatch reports the API server's refusal of a patch whose UID
// precondition does not hold: metadata.uid is immutable.
func uidMismatch(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) || !apierrors.IsInvalid(err) || status.Status().Details == nil {
		return false
	}
	for _, cause := range status.Status().Details.Causes {
		if cause.Field == "metadata.uid" {
			return true
		}
	}
	return false
}

// remove deletes a mirror whose pod is gone and reports whether it is gone.
func (m *mirrors) remove(ctx context.Context, runtimeUID types.UID, mp *mirror) bool {
	if err := m.delete(ctx, mp); err != nil {
		m.logger.Error(err, "Unable to delete a mirror pod; retrying", "pod", klog.KRef(mp.namespace, mp.name))
		return false
	}
	m.forget(runtimeUID)
	m.logger.V(2).Info("Deleted mirror pod", "pod", klog.KRef(mp.namespace, mp.name), "runtimeUID", runtimeUID)
	return true
}

// delete is the kubelet's DeleteMirrorPod: no grace period, the mirror's
// UID as precondition; gone or replaced already is no error.
func (m *mirrors) delete(ctx context.Context, mp *mirror) error {
	err := m.client.Pods(mp.namespace).Delete(ctx, mp.name, metav1.DeleteOptions{
		GracePeriodSeconds: ptr.To[int64](0),
		Preconditions:      &metav1.Preconditions{UID: &mp.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		return fmt.Errorf("delete mirror pod %s/%s: %w", mp.namespace, mp.name, err)
	}
	return nil
}

// failed logs why pod is not mirrored, once per distinct reason.
func (m *mirrors) failed(pod *corev1.Pod, err error) {
	if m.failures[pod.UID] == err.Error() {
		m.logger.V(4).Info("Pod still not mirrored", "pod", klog.KObj(pod), "err", err)
		return
	}
	m.failures[pod.UID] = err.Error()
	m.logger.Error(err, "Unable to mirror a pod; retrying every sync", "pod", klog.KObj(pod))
}

func (m *mirrors) get(uid types.UID) *mirror {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pods[uid]
}

func (m *mirrors) put(uid types.UID, mp *mirror) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.pods[uid] = mp
}

func (m *mirrors) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.pods, uid)
}

func (m *mirrors) snapshot() map[types.UID]*mirror {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[types.UID]*mirror, len(m.pods))
	for uid, mp := range m.pods {
		out[uid] = mp
	}
	return out
}

// podRef is the reference of an event about a container of a pod: the
// mirror pod's UID when there is one, so that kubectl describe shows it.
func (m *mirrors) podRef(namespace, name, container string) *corev1.ObjectReference {
	ref := &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: name,
		FieldPath: fmt.Sprintf("spec.containers{%s}", container)}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, mp := range m.pods {
		if mp.namespace == namespace && mp.name == name {
			ref.UID = mp.uid
		}
	}
	return ref
}

// specKey names a pod's containers and images in order: what a mirror pod's
// spec is made of that its status must agree with.
func specKey(pod *corev1.Pod) string {
	var b strings.Builder
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			fmt.Fprintf(&b, "%s=%s,", c.Name, c.Image)
		}
		b.WriteString(";")
	}
	return b.String()
}

// mirrorPod is what the API server gets of a runtime pod: its name,
// namespace, labels and annotations, the mirror annotation, the Node as
// controlling owner (which the NodeRestriction admission plugin requires),
// and of its spec what the API server validates without the node's files:
// containers with names, images, resources and ports, the host namespaces.
// Volumes stay out: a mirror pod may not reference secrets, config maps or
// claims, and the runtime's view of the rest is partial.
func mirrorPod(pod *corev1.Pod, nodeName string, nodeUID types.UID) *corev1.Pod {
	annotations := make(map[string]string, len(pod.Annotations)+1)
	for k, v := range pod.Annotations {
		annotations[k] = v
	}
	annotations[mirrorAnnotation] = string(pod.UID)
	labels := make(map[string]string, len(pod.Labels))
	for k, v := range pod.Labels {
		labels[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: pod.Name, Namespace: pod.Namespace, Labels: labels, Annotations: annotations,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: nodeName, UID: nodeUID, Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			HostNetwork:                   pod.Spec.HostNetwork,
			HostPID:                       pod.Spec.HostPID,
			HostIPC:                       pod.Spec.HostIPC,
			TerminationGracePeriodSeconds: pod.Spec.TerminationGracePeriodSeconds,
			InitContainers:                mirrorContainers(pod.Spec.InitContainers),
			Containers:                    mirrorContainers(pod.Spec.Containers),
		},
	}
}

func mirrorContainers(in []corev1.Container) []corev1.Container {
	var out []corev1.Container
	for _, c := range in {
		out = append(out, corev1.Container{
			Name:                     c.Name,
			Image:                    c.Image,
			Ports:                    c.Ports,
			Resources:                mirrorResources(c.Resources),
			TerminationMessagePath:   c.TerminationMessagePath,
			TerminationMessagePolicy: c.TerminationMessagePolicy,
		})
	}
	return out
}

// mirrorResources keeps cpu, memory and ephemeral-storage, with requests no
// larger than limits: the runtime's numbers are read back from cgroups and
// rounded, and the API server refuses a request above its limit.
func mirrorResources(in corev1.ResourceRequirements) corev1.ResourceRequirements {
	keep := []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourceEphemeralStorage}
	var out corev1.ResourceRequirements
	for _, name := range keep {
		if limit, ok := in.Limits[name]; ok {
			if out.Limits == nil {
				out.Limits = corev1.ResourceList{}
			}
			out.Limits[name] = limit
		}
		if request, ok := in.Requests[name]; ok {
			if limit, limited := out.Limits[name]; limited && request.Cmp(limit) > 0 {
				request = limit
			}
			if out.Requests == nil {
				out.Requests = corev1.ResourceList{}
			}
			out.Requests[name] = request
		}
	}
	return out
}

// mirrorStatus is the runtime pod's status as the kubelet would post it for
// a pod with the mirror's spec: the node's IPs as hostIP (and as podIP of a
// host-network pod), the API server's QoS class and no volume mounts. Its
// containers are the spec's: a mirror whose containers differ is made
// again (specKey).
func (m *mirrors) mirrorStatus(pod *corev1.Pod, mp *mirror) corev1.PodStatus {
	status := *pod.Status.DeepCopy()
	status.QOSClass = mp.qos
	if len(m.hostIPs) > 0 {
		status.HostIP = m.hostIPs[0]
		status.HostIPs = nil
		for _, ip := range m.hostIPs {
			status.HostIPs = append(status.HostIPs, corev1.HostIP{IP: ip})
		}
		if pod.Spec.HostNetwork && status.PodIP == "" {
			status.PodIP = m.hostIPs[0]
			status.PodIPs = nil
			for _, ip := range m.hostIPs {
				status.PodIPs = append(status.PodIPs, corev1.PodIP{IP: ip})
			}
		}
	}
	for _, list := range [][]corev1.ContainerStatus{status.InitContainerStatuses, status.ContainerStatuses} {
		for i := range list {
			list[i].VolumeMounts = nil
		}
	}
	return status
}

// podStatusPatch is the kubelet's status manager patch: a strategic merge
// patch from the server's status to status, carrying the mirror's UID so
// that it cannot land on a pod made again under the same name.
func podStatusPatch(uid types.UID, server, status corev1.PodStatus) ([]byte, error) {
	oldData, err := json.Marshal(corev1.Pod{Status: server})
	if err != nil {
		return nil, fmt.Errorf("encode the pod status: %w", err)
	}
	newData, err := json.Marshal(corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: uid}, Status: status})
	if err != nil {
		return nil, fmt.Errorf("encode the pod status: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("status patch: %w", err)
	}
	return patch, nil
}
