package register

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	goruntime "runtime"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// errShuttingDown is the NotReady message once Run's context ended.
var errShuttingDown = errors.New("kubelet-stats-server is shutting down")

// The kubelet's Ready condition reasons (pkg/kubelet/nodestatus).
const (
	readyReason    = "KubeletReady"
	notReadyReason = "KubeletNotReady"
	readyMessage   = "kubelet-stats-server is posting ready status"
)

// nodeStatus is what the status loop remembers between syncs.
type nodeStatus struct {
	lastReport time.Time
	// bootChecked is set once the boot ID was compared with the node's.
	bootChecked bool
}

// tryRegister is the kubelet's tryRegisterWithAPIServer: create the node,
// or reconcile the default labels and capacity of an existing one.
func (r *Registrar) tryRegister(ctx context.Context) (*corev1.Node, error) {
	nodes := r.cfg.Client.Nodes()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: r.cfg.NodeName}}
	r.setNode(node, r.cfg.Source.Healthy())
	created, err := nodes.Create(ctx, node, metav1.CreateOptions{})
	if err == nil {
		r.status.lastReport = r.now()
		return created, nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return nil, fmt.Errorf("create node %s: %w", r.cfg.NodeName, err)
	}
	existing, err := nodes.Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("get the existing node %s: %w", r.cfg.NodeName, err)
	}
	r.logger.Info("Node was previously registered", "node", r.cfg.NodeName)
	return existing, nil
}

// syncStatus is one turn of the status loop.
func (r *Registrar) syncStatus(ctx context.Context) {
	if err := r.patchStatus(ctx, r.cfg.Source.Healthy()); err != nil {
		r.logger.Error(err, "Unable to update the node status", "node", r.cfg.NodeName)
	}
}

// patchStatus reads the node, sets what this server reports (NotReady with
// notReady as message when it is not nil) and patches the status when it
// changed or was last reported statusReportInterval ago.
func (r *Registrar) patchStatus(ctx context.Context, notReady error) error {
	nodes := r.cfg.Client.Nodes()
	original, err := nodes.Get(ctx, r.cfg.NodeName, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("get node %s: %w", r.cfg.NodeName, err)
	}
	r.checkBootID(original.Status.NodeInfo.BootID)
	node := original.DeepCopy()
	r.setNode(node, notReady)
	if !nodeChanged(original, node) && r.now().Sub(r.status.lastReport) < statusReportInterval {
		return nil
	}
	patch, err := nodeStatusPatch(original, node)
	if err != nil {
		return fmt.Errorf("node %s: %w", r.cfg.NodeName, err)
	}
	if _, err := nodes.Patch(ctx, r.cfg.NodeName, types.StrategicMergePatchType, patch, metav1.PatchOptions{}, "status"); err != nil {
		return fmt.Errorf("patch the status of node %s: %w", r.cfg.NodeName, err)
	}
	r.status.lastReport = r.now()
	return nil
}

// setNode sets the default labels and the status this server reports on
// node, as the kubelet's initialNode and setNodeStatus do.
func (r *Registrar) setNode(node *corev1.Node, notReady error) {
	if node.Labels == nil {
		node.Labels = map[string]string{}
	}
	for k, v := range r.defaultLabels() {
		node.Labels[k] = v
	}
	status := &node.Status
	status.Addresses = append([]corev1.NodeAddress(nil), r.cfg.Addresses...)
	status.DaemonEndpoints.KubeletEndpoint.Port = r.cfg.KubeletPort
	status.NodeInfo = r.nodeInfo()
	status.Capacity = r.capacity()
	status.Allocatable = allocatable(status.Capacity)
	if missing := missingCapacity(status.Capacity); missing != nil && notReady == nil {
		notReady = missing
	}
	r.setReady(node, notReady)
}

// defaultLabels are the kubelet's: hostname (the node name, which is the
// hostname unless --node-name overrides it, as --hostname-override does),
// OS and architecture, stable and beta.
func (r *Registrar) defaultLabels() map[string]string {
	return map[string]string{
		corev1.LabelHostname:      strings.ToLower(r.cfg.NodeName),
		corev1.LabelOSStable:      goruntime.GOOS,
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
}

// checkBootID posts the kubelet's Rebooted event when the node last
// reported another boot ID: the machine restarted since.
func (r *Registrar) checkBootID(reported string) {
	if r.status.bootChecked {
		return
	}
	r.status.bootChecked = true
	if bootID := r.cfg.Machine.BootID; reported != "" && reported != bootID {
		r.recorder.Eventf(r.nodeRef, corev1.EventTypeWarning, "Rebooted", "Node %s has been rebooted, boot id: %s", r.cfg.NodeName, bootID)
	}
}

func (r *Registrar) nodeInfo() corev1.NodeSystemInfo {
	m := r.cfg.Machine
	return corev1.NodeSystemInfo{
		MachineID:               m.MachineID,
		SystemUUID:              m.SystemUUID,
		BootID:                  m.BootID,
		KernelVersion:           m.KernelVersion,
		OSImage:                 m.OSVersion,
		ContainerRuntimeVersion: r.cfg.RuntimeVersion,
		KubeletVersion:          r.cfg.Version,
		OperatingSystem:         goruntime.GOOS,
		Architecture:            goruntime.GOARCH,
	}
}

// capacity is the kubelet's CapacityFromMachineInfo plus pods (its default
// maxPods) and ephemeral-storage (the root directory's filesystem).
func (r *Registrar) capacity() corev1.ResourceList {
	m := r.cfg.Machine
	list := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(m.NumCores)*1000, resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(m.MemoryCapacity), resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(maxPods, resource.DecimalSI),
	}
	for _, pool := range m.HugePages {
		size := resource.NewQuantity(int64(pool.PageSizeKB*1024), resource.BinarySI)
		list[corev1.ResourceName(corev1.ResourceHugePagesPrefix+size.String())] =
			*resource.NewQuantity(int64(pool.PageSizeKB*1024*pool.NumPages), resource.BinarySI)
	}
	if r.cfg.RootFsCapacity != nil {
		bytes, err := r.cfg.RootFsCapacity()
		if err != nil {
			r.logger.Error(err, "No ephemeral-storage capacity")
		} else {
			list[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(bytes), resource.BinarySI)
		}
	}
	return list
}

// allocatable is capacity less the huge pages' memory: nothing is reserved
// (no --kube-reserved, --system-reserved) and there is no eviction
// threshold to hold back, since nothing here evicts.
func allocatable(capacity corev1.ResourceList) corev1.ResourceList {
	out := capacity.DeepCopy()
	memory := out[corev1.ResourceMemory]
	for name, quantity := range capacity {
		if strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) {
			memory.Sub(quantity)
		}
	}
	if memory.Sign() < 0 {
		memory.Set(0)
	}
	out[corev1.ResourceMemory] = memory
	return out
}

// missingCapacity is the kubelet's NotReady reason for a node without the
// capacities the scheduler needs.
func missingCapacity(capacity corev1.ResourceList) error {
	var missing []string
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage} {
		if _, found := capacity[name]; !found {
			missing = append(missing, string(name))
		}
	}
	if missing == nil {
		return nil
	}
	return fmt.Errorf("missing node capacity for resources: %s", strings.Join(missing, ", "))
}

// setReady is the kubelet's ReadyCondition setter: the transition time moves
// only when the status does, which is also when NodeReady or NodeNotReady
// is posted.
func (r *Registrar) setReady(node *corev1.Node, notReady error) {
	now := metav1.NewTime(r.now())
	ready := corev1.NodeCondition{
		Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: readyReason, Message: readyMessage,
		LastHeartbeatTime: now, LastTransitionTime: now,
	}
	event := "NodeReady"
	if notReady != nil {
		ready.Status, ready.Reason, ready.Message = corev1.ConditionFalse, notReadyReason, notReady.Error()
		event = "NodeNotReady"
	}
	for i := range node.Status.Conditions {
		old := &node.Status.Conditions[i]
		if old.Type != corev1.NodeReady {
			continue
		}
		if old.Status == ready.Status {
			ready.LastTransitionTime = old.LastTransitionTime
		} else {
			r.recorder.Eventf(r.nodeRef, corev1.EventTypeNormal, event, "Node %s status is now: %s", r.cfg.NodeName, event)
		}
		*old = ready
		return
	}
	node.Status.Conditions = append(node.Status.Conditions, ready)
}

// nodeChanged is the kubelet's nodeStatusHasChanged plus the labels:
// heartbeat times alone are no change.
func nodeChanged(original, node *corev1.Node) bool {
	if !equality.Semantic.DeepEqual(original.Labels, node.Labels) {
		return true
	}
	a, b := original.Status.DeepCopy(), node.Status.DeepCopy()
	for _, status := range []*corev1.NodeStatus{a, b} {
		for i := range status.Conditions {
			status.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
	}
	return !equality.Semantic.DeepEqual(a, b)
}

// nodeStatusPatch is component-helpers' PatchNodeStatus patch: a strategic
// merge patch from original to node, spec excluded; addresses are replaced
// as a whole, since their merge key (type) is not unique.
func nodeStatusPatch(original, node *corev1.Node) ([]byte, error) {
	oldData, err := json.Marshal(original)
	if err != nil {
		return nil, fmt.Errorf("encode the node: %w", err)
	}
	replaceAddresses := len(original.Status.Addresses) > 0 && !equality.Semantic.DeepEqual(original.Status.Addresses, node.Status.Addresses)
	diff := node.DeepCopy()
	diff.Spec = original.Spec
	if replaceAddresses {
		diff.Status.Addresses = original.Status.Addresses
	}
	newData, err := json.Marshal(diff)
	if err != nil {
		return nil, fmt.Errorf("encode the node: %w", err)
	}
	patch, err := strategicpatch.CreateTwoWayMergePatch(oldData, newData, corev1.Node{})
	if err != nil {
		return nil, fmt.Errorf("status patch: %w", err)
	}
	if !replaceAddresses {
		return patch, nil
	}
	return withAddresses(patch, node.Status.Addresses)
}

// withAddresses sets status.addresses in patch to addresses with the
// $patch: replace directive.
func withAddresses(patch []byte, addresses []corev1.NodeAddress) ([]byte, error) {
	var doc map[string]any
	if err := json.Unmarshal(patch, &doc); err != nil {
		return nil, fmt.Errorf("status patch: %w", err)
	}
	list := make([]any, 0, len(addresses)+1)
	for _, a := range addresses {
		list = append(list, map[string]any{"type": string(a.Type), "address": a.Address})
	}
	list = append(list, map[string]any{"$patch": "replace"})
	status, _ := doc["status"].(map[string]any)
	if status == nil {
		status = map[string]any{}
		doc["status"] = status
	}
	status["addresses"] = list
	out, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("status patch: %w", err)
	}
	return out, nil
}
