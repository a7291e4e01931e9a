package register

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

const waitLimit = 10 * time.Second

func getNode(client *fake.Clientset) (*corev1.Node, error) {
	return client.CoreV1().Nodes().Get(context.Background(), testNode, metav1.GetOptions{})
}

func readyCondition(node *corev1.Node) *corev1.NodeCondition {
	for i := range node.Status.Conditions {
		if node.Status.Conditions[i].Type == corev1.NodeReady {
			return &node.Status.Conditions[i]
		}
	}
	return nil
}

func waitReady(t *testing.T, client *fake.Clientset, want corev1.ConditionStatus) *corev1.Node {
	t.Helper()
	var node *corev1.Node
	eventually(t, waitLimit, "node Ready="+string(want), func() error {
		var err error
		if node, err = getNode(client); err != nil {
			return err
		}
		if c := readyCondition(node); c == nil || c.Status != want {
			return fmt.Errorf("ready condition %+v", c)
		}
		return nil
	})
	return node
}

// findEvent waits for an event with reason and returns it.
func findEvent(t *testing.T, client *fake.Clientset, reason string) corev1.Event {
	t.Helper()
	var found corev1.Event
	eventually(t, waitLimit, "event "+reason, func() error {
		events, err := client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
		if err != nil {
			return err
		}
		var reasons []string
		for _, e := range events.Items {
			if e.Reason == reason {
				found = e
				return nil
			}
			reasons = append(reasons, e.Reason)
		}
		return fmt.Errorf("events so far: %v", reasons)
	})
	return found
}

// runRegistrar runs a Registrar until the returned stop is called, which
// waits for Run to return.
func runRegistrar(t *testing.T, cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	r := New(cfg)
	go func() {
		defer close(done)
		r.Run(ctx)
	}()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case <-done:
		case <-time.After(waitLimit):
			t.Fatal("Run did not return after its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

func TestRunRegistersTheNodeLikeTheKubelet(t *testing.T) {
	client := newClient()
	stop := runRegistrar(t, testConfig(t, client, &fakeSource{}))
	node := waitReady(t, client, corev1.ConditionTrue)

	for k, v := range map[string]string{
		"kubernetes.io/hostname": testNode, "kubernetes.io/os": "linux", "beta.kubernetes.io/os": "linux",
	} {
		if node.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, node.Labels[k], v)
		}
	}
	if node.Labels["kubernetes.io/arch"] == "" {
		t.Error("no kubernetes.io/arch label")
	}
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != 20250 {
		t.Errorf("kubeletEndpoint.Port = %d, want the secure port 20250", got)
	}
	if got := fmt.Sprint(node.Status.Addresses); !strings.Contains(got, "{InternalIP 192.0.2.10} {ExternalIP 127.0.0.1} {Hostname node-a}") {
		t.Errorf("addresses = %s", got)
	}
	wantCapacity := map[corev1.ResourceName]string{
		"cpu": "2", "memory": "4Gi", "pods": "110", "ephemeral-storage": "100Gi", "hugepages-2Mi": "8Mi",
	}
	for name, want := range wantCapacity {
		if got := node.Status.Capacity[name]; got.Cmp(resource.MustParse(want)) != 0 {
			t.Errorf("capacity %s = %s, want %s", name, got.String(), want)
		}
	}
	// Huge pages come out of allocatable memory, as in the kubelet.
	if got := node.Status.Allocatable[corev1.ResourceMemory]; got.Cmp(resource.MustParse("4088Mi")) != 0 {
		t.Errorf("allocatable memory = %s, want 4Gi - 8Mi", got.String())
	}
	info := node.Status.NodeInfo
	if info.MachineID != "machine-id" || info.SystemUUID != "system-uuid" || info.BootID != "boot-2" ||
		info.KernelVersion != "6.1.0-test" || info.OSImage != "Debian GNU/Linux 12 (bookworm)" ||
		info.ContainerRuntimeVersion != "containerd://1.6.20" || info.KubeletVersion != "v0.1.0" ||
		info.OperatingSystem != "linux" || info.Architecture == "" {
		t.Errorf("nodeInfo = %+v", info)
	}
	ready := readyCondition(node)
	if ready.Reason != "KubeletReady" || ready.Message != readyMessage {
		t.Errorf("ready condition = %+v", ready)
	}
	if e := findEvent(t, client, "Starting"); e.Source.Component != eventComponent || e.InvolvedObject.Kind != "Node" ||
		e.InvolvedObject.Name != testNode || string(e.InvolvedObject.UID) != testNode || e.Namespace != "default" {
		t.Errorf("Starting event = %+v", e)
	}

	stop()
	node, err := getNode(client)
	if err != nil {
		t.Fatal(err)
	}
	if c := readyCondition(node); c.Status != corev1.ConditionFalse || c.Reason != "KubeletNotReady" || c.Message != errShuttingDown.Error() {
		t.Errorf("after Run returned, ready condition = %+v, want NotReady: %s", c, errShuttingDown)
	}
	// Posted before Run returned: the queue is drained on shutdown.
	if e := findEvent(t, client, "NodeNotReady"); e.Message != "Node node-a status is now: NodeNotReady" {
		t.Errorf("NodeNotReady event message %q", e.Message)
	}
}

func TestRunRenewsTheLease(t *testing.T) {
	client := newClient()
	runRegistrar(t, testConfig(t, client, &fakeSource{}))
	node := waitReady(t, client, corev1.ConditionTrue)
	eventually(t, waitLimit, "lease", func() error {
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(context.Background(), testNode, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if *lease.Spec.HolderIdentity != testNode || *lease.Spec.LeaseDurationSeconds != 40 || lease.Spec.RenewTime == nil {
			return fmt.Errorf("lease spec %+v", lease.Spec)
		}
		if len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID || lease.OwnerReferences[0].Kind != "Node" {
			return fmt.Errorf("lease owners %+v, want the node (uid %s)", lease.OwnerReferences, node.UID)
		}
		return nil
	})
}

func TestLeaseRenewalUpdatesRenewTime(t *testing.T) {
	client := newClient()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var l leaseRenewer
	l.init(typedClient{client}, testNode, "node-uid", func() time.Time { return now }, testConfig(t, client, nil).Logger)
	ctx := context.Background()
	l.renew(ctx)
	now = now.Add(10 * time.Second)
	l.renew(ctx)
	lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, testNode, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !lease.Spec.RenewTime.Time.Equal(now) {
		t.Errorf("renewTime = %v, want %v", lease.Spec.RenewTime.Time, now)
	}
	if creates, updates := countActions(client, "create", "leases", ""), countActions(client, "update", "leases", ""); creates != 1 || updates != 1 {
		t.Errorf("%d creates and %d updates, want the lease created once, then updated", creates, updates)
	}
	// Deleted behind its back (a node lifecycle reset): made again.
	if err := client.CoordinationV1().Leases("kube-node-lease").Delete(ctx, testNode, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	l.renew(ctx)
	if _, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, testNode, metav1.GetOptions{}); err != nil {
		t.Errorf("lease not made again after deletion: %v", err)
	}
}

func TestRunReconcilesAPreviouslyRegisteredNode(t *testing.T) {
	old := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: testNode, UID: "old-uid", Labels: map[string]string{"team": "x"}},
		Status: corev1.NodeStatus{
			NodeInfo:   corev1.NodeSystemInfo{BootID: "boot-1"},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.0.0.9"}},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady"}},
		},
	}
	client := newClient(old)
	runRegistrar(t, testConfig(t, client, &fakeSource{}))
	node := waitReady(t, client, corev1.ConditionTrue)
	if node.UID != "old-uid" || node.Labels["team"] != "x" || node.Labels["kubernetes.io/os"] != "linux" {
		t.Errorf("node %s labels %v: want the same node, its own labels kept and the defaults added", node.UID, node.Labels)
	}
	if got := fmt.Sprint(node.Status.Addresses); got != "[{InternalIP 192.0.2.10} {ExternalIP 127.0.0.1} {Hostname node-a}]" {
		t.Errorf("addresses = %s, want exactly ours (the old ones replaced)", got)
	}
	if e := findEvent(t, client, "NodeReady"); e.Message != "Node node-a status is now: NodeReady" {
		t.Errorf("NodeReady event message %q", e.Message)
	}
	if e := findEvent(t, client, "Rebooted"); e.Message != "Node node-a has been rebooted, boot id: boot-2" || e.Type != corev1.EventTypeWarning {
		t.Errorf("Rebooted event %+v", e)
	}
}

func TestStatusFollowsHealth(t *testing.T) {
	client := newClient()
	src := &fakeSource{health: errors.New("housekeeping has not completed for 31s")}
	runRegistrar(t, testConfig(t, client, src))
	node := waitReady(t, client, corev1.ConditionFalse)
	notReady := readyCondition(node)
	if notReady.Message != "housekeeping has not completed for 31s" {
		t.Errorf("NotReady message %q", notReady.Message)
	}
	src.setHealth(nil)
	waitReady(t, client, corev1.ConditionTrue)
	findEvent(t, client, "NodeReady")
}

func TestReadyTransitionTimeMovesOnlyWithTheStatus(t *testing.T) {
	r := New(testConfig(t, newClient(), &fakeSource{}))
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := start
	r.now = func() time.Time { return now }
	node := &corev1.Node{}
	r.setReady(node, nil)
	now = now.Add(10 * time.Second)
	r.setReady(node, nil)
	c := readyCondition(node)
	if !c.LastTransitionTime.Time.Equal(start) || !c.LastHeartbeatTime.Time.Equal(now) {
		t.Errorf("still ready: transition %v (want %v), heartbeat %v (want %v)", c.LastTransitionTime, start, c.LastHeartbeatTime, now)
	}
	now = now.Add(10 * time.Second)
	r.setReady(node, errors.New("stalled"))
	if c := readyCondition(node); !c.LastTransitionTime.Time.Equal(now) || len(node.Status.Conditions) != 1 {
		t.Errorf("after NotReady: transition %v (want %v), %d conditions", c.LastTransitionTime, now, len(node.Status.Conditions))
	}
}

func TestStatusPatchedOnlyOnChangeOrReportPeriod(t *testing.T) {
	client := newClient()
	cfg := testConfig(t, client, &fakeSource{})
	r := New(cfg)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	ctx := context.Background()
	if _, err := r.tryRegister(ctx); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		now = now.Add(10 * time.Second)
		if err := r.patchStatus(ctx, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := countActions(client, "patch", "nodes", "status"); n != 0 {
		t.Errorf("%d status patches of an unchanged node within the report period, want 0", n)
	}
	now = now.Add(statusReportInterval)
	if err := r.patchStatus(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if n := countActions(client, "patch", "nodes", "status"); n != 1 {
		t.Errorf("%d status patches after the report period, want 1 (the heartbeat)", n)
	}
	if err := r.patchStatus(ctx, errors.New("down")); err != nil {
		t.Fatal(err)
	}
	if n := countActions(client, "patch", "nodes", "status"); n != 2 {
		t.Errorf("%d status patches after Ready changed, want 2", n)
	}
}

func TestNodeWithoutEphemeralStorageIsNotReady(t *testing.T) {
	client := newClient()
	cfg := testConfig(t, client, &fakeSource{})
	cfg.RootFsCapacity = func() (uint64, error) { return 0, errors.New("statfs: no such file") }
	r := New(cfg)
	node := &corev1.Node{}
	r.setNode(node, nil)
	if c := readyCondition(node); c.Status != corev1.ConditionFalse || c.Message != "missing node capacity for resources: ephemeral-storage" {
		t.Errorf("ready condition %+v, want the kubelet's NotReady for missing capacity", c)
	}
}
