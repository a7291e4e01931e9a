package register

import (
	"context"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// Source is what registration reads from the provider's newest snapshot.
type Source interface {
	// Pods lists the pods the runtime runs; nil before the first snapshot.
	Pods() *corev1.PodList
	// Owner names the pod and container a cgroup belongs to.
	Owner(cgroup string) (namespace, pod, container string, ok bool)
	// Healthy fails while housekeeping stalls; the node is NotReady then.
	Healthy() error
}

// Config wires a Registrar.
type Config struct {
	NodeName string
	Client   Client
	// Addresses are the Node's status.addresses.
	Addresses []corev1.NodeAddress
	// KubeletPort is the secure port: daemonEndpoints.kubeletEndpoint.Port.
	KubeletPort int32
	// Machine gives capacity and nodeInfo.
	Machine *cadvisor.Machine
	// RootFsCapacity is the size of the filesystem of the kubelet's root
	// directory, the node's ephemeral-storage capacity.
	RootFsCapacity func() (uint64, error)
	// RuntimeVersion is nodeInfo.containerRuntimeVersion
	// ("containerd://1.6.20"); Version is nodeInfo.kubeletVersion.
	RuntimeVersion string
	Version        string
	Source         Source
	// StatusInterval is how often the node status and the mirror pods are
	// synced (the kubelet's nodeStatusUpdateFrequency, 10 s).
	StatusInterval time.Duration
	Logger         klog.Logger
}

// The kubelet's defaults: nodeLeaseDurationSeconds, renewed at a quarter of
// it (nodeLeaseRenewIntervalFraction), nodeStatusReportFrequency, maxPods.
const (
	leaseDurationSeconds = 40
	leaseRenewInterval   = leaseDurationSeconds * time.Second / 4
	statusReportInterval = 5 * time.Minute
	maxPods              = 110
	// shutdownTimeout bounds the NotReady patch once Run's context ended.
	shutdownTimeout = 10 * time.Second
	// registerMaxBackoff is the kubelet's cap between registration tries.
	registerMaxBackoff = 7 * time.Second
)

// eventComponent is the source of the events posted: the kubelet's events,
// but said to come from this server.
const eventComponent = "kubelet-stats-server"

// Registrar keeps the Node, its Lease and the mirror pods of this node in
// the API server.
type Registrar struct {
	cfg      Config
	logger   klog.Logger
	recorder *recorder
	// nodeRef is the kubelet's reference for node events: UID = node name.
	nodeRef *corev1.ObjectReference
	now     func() time.Time

	// status is touched by Run's goroutines one after the other: the
	// status loop, then the shutdown patch once it ended.
	status nodeStatus
	lease  leaseRenewer
	// mirrors is shared with RecordOOMKill, which runs on the OOM watcher's
	// goroutine.
	mirrors *mirrors
}

// New returns a Registrar; Run registers the node and keeps it.
func New(cfg Config) *Registrar {
	r := &Registrar{
		cfg:     cfg,
		logger:  cfg.Logger,
		nodeRef: &corev1.ObjectReference{Kind: "Node", Name: cfg.NodeName, UID: types.UID(cfg.NodeName)},
		now:     time.Now,
	}
	// Events take the time from r.now too, which tests set.
	now := func() time.Time { return r.now() }
	r.recorder = newRecorder(cfg.Client, corev1.EventSource{Component: eventComponent, Host: cfg.NodeName}, now, r.logger.WithName("events"))
	r.mirrors = newMirrors(cfg, r.logger.WithName("mirror"))
	return r
}

// Run registers the node, then renews its lease, syncs its status and the
// mirror pods until ctx ends, and then patches the node NotReady and posts
// the events still queued. It returns once that is done (or failed).
func (r *Registrar) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { r.recorder.run(ctx) })
	node, registered := r.register(ctx)
	if registered {
		r.recorder.Eventf(r.nodeRef, corev1.EventTypeNormal, "Starting", "Starting kubelet-stats-server.")
		r.lease.init(r.cfg.Client, r.cfg.NodeName, node.UID, r.now, r.logger.WithName("lease"))
		r.mirrors.setNode(node)
		wg.Go(func() { wait.JitterUntilWithContext(ctx, r.lease.renew, leaseRenewInterval, 0.04, true) })
		wg.Go(func() { wait.UntilWithContext(ctx, r.syncStatus, r.cfg.StatusInterval) })
		wg.Go(func() { wait.UntilWithContext(ctx, r.mirrors.sync, r.cfg.StatusInterval) })
	}
	wg.Wait()
	if registered {
		r.shutdown()
	}
}

// register creates the Node or reconciles the existing one, retrying with
// the kubelet's backoff (100 ms doubling to 7 s) until it succeeds or ctx
// ends.
func (r *Registrar) register(ctx context.Context) (*corev1.Node, bool) {
	step := 100 * time.Millisecond
	for {
		node, err := r.tryRegister(ctx)
		if err == nil {
			r.logger.Info("Registered the node with the API server", "node", klog.KObj(node), "uid", node.UID)
			return node, true
		}
		r.logger.Error(err, "Unable to register the node with the API server; retrying", "node", r.cfg.NodeName, "retryIn", step)
		select {
		case <-ctx.Done():
			return nil, false
		case <-time.After(step):
		}
		step = min(2*step, registerMaxBackoff)
	}
}

// shutdown patches the node NotReady and posts the queued events with a
// context of its own: Run's has ended.
func (r *Registrar) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	defer r.recorder.drain(ctx)
	if err := r.patchStatus(ctx, errShuttingDown); err != nil {
		r.logger.Error(err, "Unable to mark the node NotReady on shutdown", "node", r.cfg.NodeName)
		return
	}
	r.logger.Info("Marked the node NotReady", "node", r.cfg.NodeName)
}

// RecordOOMKill posts the events of an OOM kill: the kubelet's SystemOOM on
// the node for a machine-wide OOM, and OOMKilling on the pod whose
// container was killed.
func (r *Registrar) RecordOOMKill(kill cadvisor.OOMKill) {
	if kill.System() {
		r.recorder.Eventf(r.nodeRef, corev1.EventTypeWarning, "SystemOOM", "%s", systemOOMMessage(kill))
	}
	namespace, pod, container, ok := r.cfg.Source.Owner(kill.Cgroup)
	if !ok || container == "" {
		return
	}
	ref := r.mirrors.podRef(namespace, pod, container)
	r.recorder.Eventf(ref, corev1.EventTypeWarning, "OOMKilling", "%s", podOOMMessage(kill, container))
}
