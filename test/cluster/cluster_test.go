package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	nodeName  = "kss-node"
	namespace = "kss-cluster"
	// mirrorAnnotation is the kubelet's kubernetes.io/config.mirror.
	mirrorAnnotation = "kubernetes.io/config.mirror"
)

// Limits of the waits on the server: it syncs the node and the mirror pods
// every 10 s and renews the lease every 10 s.
const (
	registerLimit = time.Minute
	syncLimit     = 45 * time.Second
)

// node is the stats server registered as a node over the harness's pods.
type node struct {
	srv  *serverproc.Server
	port int
	// pods are the harness's pods by name.
	pods map[string]*framework.Pod
	rt   *framework.Runtime
}

func TestCluster(t *testing.T) {
	cp := startControlPlane(t)
	t.Run("deploy/ is accepted by the API server", func(t *testing.T) { testDeployDryRun(t, cp) })

	cp.kubectl(t, "create", "namespace", namespace)
	n := startNode(t, cp)
	t.Run("the node registers Ready", func(t *testing.T) { testNodeReady(t, cp, n) })
	t.Run("the lease is renewed", func(t *testing.T) { testLeaseRenewed(t, cp) })
	t.Run("the pods are mirrored", func(t *testing.T) { testMirrorPods(t, cp, n) })
	t.Run("the node proxy reaches the server", func(t *testing.T) { testNodeProxy(t, cp, n) })
	t.Run("authorization goes through the API server", func(t *testing.T) { testAuthorization(t, cp, n) })
	t.Run("metrics-server and kubectl top", func(t *testing.T) { testMetricsServer(t, cp, n) })
	t.Run("Prometheus scrapes with deploy/overlays/prometheus", func(t *testing.T) { testPrometheus(t, cp, n) })
	t.Run("an OOM kill in a pod is an event", func(t *testing.T) { testOOMEvent(t, cp, n) })
	t.Run("mirror pods come and go with the pods", func(t *testing.T) { testMirrorsFollowPods(t, cp, n) })
	t.Run("stopping the server marks the node NotReady", func(t *testing.T) { testNotReadyOnStop(t, cp, n) })
}

// startNode runs the harness's pods on containerd and the server with
// --register-node over them, as node kss-node at 192.0.2.10:<port>.
func startNode(t *testing.T, cp *controlPlane) *node {
	t.Helper()
	c := framework.StartCluster(t, "kss-cluster")
	n := &node{pods: map[string]*framework.Pod{}, rt: c.Runtime}
	for _, spec := range []framework.PodSpec{
		{Name: "busy", Namespace: namespace, Containers: []framework.ContainerSpec{
			{Name: "app", Args: []string{"-cpu", "0.2", "-mem", "40"}, MemoryLimitBytes: 128 << 20, CPURequestMilli: 100},
			{Name: "side", Args: []string{"-mem", "20"}},
		}},
		{Name: "hostnet", Namespace: namespace, HostNetwork: true, Containers: []framework.ContainerSpec{
			{Name: "agent", Args: []string{"-mem", "10"}},
		}},
		{Name: "victim", Namespace: namespace, Containers: []framework.ContainerSpec{
			{Name: "app", Args: []string{"-mem", "8"}, MemoryLimitBytes: 64 << 20},
		}},
	} {
		pod, err := c.Runtime.RunPod(context.Background(), spec)
		if err != nil {
			t.Fatalf("run pod %s: %v", spec.Name, err)
		}
		n.pods[spec.Name] = pod
	}

	dir := t.TempDir()
	servingCert, servingKey := cp.ca.serving(t, "node-serving", nodeName, nodeIP, "127.0.0.1", "localhost")
	clientCert, clientKey := cp.ca.client(t, "node-client", "system:node:"+nodeName, "system:nodes")
	kubeconfig := cp.kubeconfig(t, "node", clientCert, clientKey)
	n.port = serverproc.FreePort(t)
	cp.egress.route(nodeIP+":"+strconv.Itoa(n.port), "127.0.0.1:"+strconv.Itoa(n.port))
	n.srv = serverproc.Start(t, serverBinary, c.ServerArgs(
		"--register-node", "--kubeconfig="+kubeconfig, "--node-name="+nodeName,
		"--node-ip="+nodeIP, "--node-external-ip=127.0.0.1",
		"--port="+strconv.Itoa(n.port), "--tls-cert-file="+servingCert, "--tls-private-key-file="+servingKey,
		"--client-ca-file="+cp.ca.file, "--cert-dir="+dir,
	)...)
	return n
}

func testDeployDryRun(t *testing.T, cp *controlPlane) {
	// A server-side dry run persists nothing, so the objects of a namespace
	// the same apply creates would not find it: the namespaces exist first,
	// and their Namespace objects are dry-run updates. monitoring is the
	// user's Prometheus's, which the overlay expects. They stay: without a
	// controller manager a deleted namespace never goes.
	cp.kubectl(t, "create", "namespace", "kubelet-stats-server")
	cp.kubectl(t, "create", "namespace", "monitoring")
	for _, dir := range []string{"deploy", "deploy/overlays/metrics-server", "deploy/overlays/prometheus"} {
		out := cp.kubectl(t, "apply", "--dry-run=server", "-k", filepath.Join("..", "..", dir))
		if !strings.Contains(out, "daemonset.apps/kubelet-stats-server") || !strings.Contains(out, "(server dry run)") {
			t.Errorf("kubectl apply --dry-run=server -k %s:\n%s", dir, out)
		}
	}
}

func getNode(t *testing.T, cp *controlPlane) *corev1.Node {
	t.Helper()
	node, err := cp.client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node: %v", err)
	}
	return node
}

func readyCondition(node *corev1.Node) corev1.NodeCondition {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c
		}
	}
	return corev1.NodeCondition{}
}

func testNodeReady(t *testing.T, cp *controlPlane, n *node) {
	framework.Eventually(t, registerLimit, "node kss-node Ready", func() bool {
		node, err := cp.client.CoreV1().Nodes().Get(context.Background(), nodeName, metav1.GetOptions{})
		return err == nil && readyCondition(node).Status == corev1.ConditionTrue
	})
	node := getNode(t, cp)
	if got := node.Status.DaemonEndpoints.KubeletEndpoint.Port; got != int32(n.port) {
		t.Errorf("kubeletEndpoint.Port = %d, want the secure port %d", got, n.port)
	}
	if got := fmt.Sprint(node.Status.Addresses); got != "[{InternalIP 192.0.2.10} {ExternalIP 127.0.0.1} {Hostname kss-node}]" {
		t.Errorf("addresses %s", got)
	}
	if cpu := node.Status.Capacity[corev1.ResourceCPU]; cpu.Value() != int64(runtime.NumCPU()) {
		t.Errorf("cpu capacity %s, want %d", cpu.String(), runtime.NumCPU())
	}
	bootID, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	info := node.Status.NodeInfo
	if info.BootID != strings.TrimSpace(string(bootID)) || !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://1.") ||
		info.KubeletVersion == "" || info.OSImage == "" || info.KernelVersion == "" {
		t.Errorf("nodeInfo %+v", info)
	}
	out := cp.kubectl(t, "get", "nodes", "-o", "wide")
	if !strings.Contains(out, nodeName+"   Ready") {
		t.Errorf("kubectl get nodes:\n%s", out)
	}
	t.Logf("kubectl get nodes -o wide:\n%s", out)
}

func testLeaseRenewed(t *testing.T, cp *controlPlane) {
	leases := cp.client.CoordinationV1().Leases("kube-node-lease")
	var first time.Time
	framework.Eventually(t, registerLimit, "the node's lease", func() bool {
		lease, err := leases.Get(context.Background(), nodeName, metav1.GetOptions{})
		if err != nil || lease.Spec.RenewTime == nil {
			return false
		}
		first = lease.Spec.RenewTime.Time
		return true
	})
	framework.Eventually(t, syncLimit, "a renewal of the node's lease", func() bool {
		lease, err := leases.Get(context.Background(), nodeName, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime.After(first)
	})
	lease, err := leases.Get(context.Background(), nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node := getNode(t, cp)
	if *lease.Spec.HolderIdentity != nodeName || *lease.Spec.LeaseDurationSeconds != 40 ||
		len(lease.OwnerReferences) != 1 || lease.OwnerReferences[0].UID != node.UID {
		t.Errorf("lease %+v owners %+v", lease.Spec, lease.OwnerReferences)
	}
}

// mirrorPods lists the mirror pods of the harness's namespace by name.
func mirrorPods(t *testing.T, cp *controlPlane) map[string]corev1.Pod {
	t.Helper()
	pods, err := cp.client.CoreV1().Pods(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if _, ok := p.Annotations[mirrorAnnotation]; ok {
			out[p.Name] = p
		}
	}
	return out
}

func testMirrorPods(t *testing.T, cp *controlPlane, n *node) {
	framework.Eventually(t, syncLimit, "three Running mirror pods", func() bool {
		running := 0
		for _, p := range mirrorPods(t, cp) {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == len(n.pods)
	})
	mirrors := mirrorPods(t, cp)
	for name, pod := range n.pods {
		mirror := mirrors[name]
		if mirror.Annotations[mirrorAnnotation] != pod.UID || mirror.Spec.NodeName != nodeName {
			t.Errorf("%s: mirror annotation %q, nodeName %q; want the pod's UID %s and %s", name, mirror.Annotations[mirrorAnnotation], mirror.Spec.NodeName, pod.UID, nodeName)
		}
		wantIP := pod.IP
		if pod.HostNetwork {
			wantIP = nodeIP
		}
		if mirror.Status.PodIP != wantIP || mirror.Status.HostIP != nodeIP {
			t.Errorf("%s: podIP %q hostIP %q, want %q and %q", name, mirror.Status.PodIP, mirror.Status.HostIP, wantIP, nodeIP)
		}
		ids := map[string]string{}
		for _, s := range mirror.Status.ContainerStatuses {
			ids[s.Name] = s.ContainerID
			if s.State.Running == nil || !s.Ready {
				t.Errorf("%s/%s: state %+v ready %v", name, s.Name, s.State, s.Ready)
			}
		}
		for _, c := range pod.Containers {
			if ids[c.Name] != "containerd://"+c.ID {
				t.Errorf("%s/%s: containerID %q, want containerd://%s", name, c.Name, ids[c.Name], c.ID)
			}
		}
	}
	out := cp.kubectl(t, "get", "pods", "-A", "-o", "wide")
	if !strings.Contains(out, "busy") || !strings.Contains(out, "2/2     Running") {
		t.Errorf("kubectl get pods -A:\n%s", out)
	}
	t.Logf("kubectl get pods -A -o wide:\n%s", out)
}

// proxyGet is kubectl get --raw through the API server's node proxy.
func proxyGet(t *testing.T, cp *controlPlane, path string) []byte {
	t.Helper()
	return []byte(cp.kubectl(t, "get", "--raw", "/api/v1/nodes/"+nodeName+"/proxy"+path))
}

func decodeJSON(t *testing.T, what string, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v\n%.500s", what, err, data)
	}
}

func testNodeProxy(t *testing.T, cp *controlPlane, n *node) {
	busy := n.pods["busy"]
	t.Run("/stats/summary", func(t *testing.T) {
		var full statsapi.Summary
		decodeJSON(t, "summary", proxyGet(t, cp, "/stats/summary"), &full)
		pod := findPodStats(full, busy)
		if full.Node.NodeName != nodeName || pod == nil || pod.Network == nil || len(pod.Containers) != 2 {
			t.Fatalf("summary node %q, busy pod %+v", full.Node.NodeName, pod)
		}
		var cpuMem statsapi.Summary
		decodeJSON(t, "summary", proxyGet(t, cp, "/stats/summary?only_cpu_and_memory=true"), &cpuMem)
		pod = findPodStats(cpuMem, busy)
		if pod == nil || pod.Network != nil || pod.Memory == nil || pod.Memory.WorkingSetBytes == nil || *pod.Memory.WorkingSetBytes < 40<<20 {
			t.Errorf("only_cpu_and_memory busy pod %+v", pod)
		}
	})
	t.Run("/metrics/resource", func(t *testing.T) {
		families := parseMetrics(t, proxyGet(t, cp, "/metrics/resource"))
		if v, ok := sample(families, "container_memory_working_set_bytes", namespace, "busy", "app"); !ok || v < 40<<20 {
			t.Errorf("busy/app working set %v (found %v)", v, ok)
		}
	})
	t.Run("/metrics/cadvisor", func(t *testing.T) {
		families := parseMetrics(t, proxyGet(t, cp, "/metrics/cadvisor"))
		if v, ok := sample(families, "container_memory_working_set_bytes", namespace, "busy", "app"); !ok || v < 40<<20 {
			t.Errorf("busy/app working set %v (found %v)", v, ok)
		}
	})
	t.Run("/stats/ and /spec/", func(t *testing.T) {
		var root cadvisorapi.ContainerInfo
		decodeJSON(t, "/stats/", proxyGet(t, cp, "/stats/"), &root)
		if root.Name != "/" || len(root.Stats) == 0 {
			t.Errorf("/stats/: %q with %d samples", root.Name, len(root.Stats))
		}
		app := busy.Container("app")
		var info cadvisorapi.ContainerInfo
		decodeJSON(t, "container", proxyGet(t, cp, "/stats/"+namespace+"/busy/"+busy.UID+"/app"), &info)
		if info.Id != app.ID || len(info.Stats) == 0 || info.Stats[len(info.Stats)-1].Memory.WorkingSet < 40<<20 {
			t.Errorf("/stats/%s/busy/%s/app: id %q, %d samples", namespace, busy.UID, info.Id, len(info.Stats))
		}
		var machine cadvisorapi.MachineInfo
		decodeJSON(t, "/spec/", proxyGet(t, cp, "/spec/"), &machine)
		if machine.NumCores != runtime.NumCPU() || machine.MemoryCapacity == 0 {
			t.Errorf("/spec/: %d cores, memory %d", machine.NumCores, machine.MemoryCapacity)
		}
	})
}

func findPodStats(s statsapi.Summary, pod *framework.Pod) *statsapi.PodStats {
	for i := range s.Pods {
		if s.Pods[i].PodRef.UID == pod.UID {
			return &s.Pods[i]
		}
	}
	return nil
}

func testNotReadyOnStop(t *testing.T, cp *controlPlane, n *node) {
	if err := n.srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := n.srv.Wait(); err != nil {
		t.Fatalf("server exit: %v\n%s", err, n.srv.Log())
	}
	ready := readyCondition(getNode(t, cp))
	if ready.Status != corev1.ConditionFalse || ready.Reason != "KubeletNotReady" || ready.Message != "kubelet-stats-server is shutting down" {
		t.Errorf("after the server exited, Ready = %+v", ready)
	}
	if out := cp.kubectl(t, "get", "nodes"); !strings.Contains(out, "NotReady") {
		t.Errorf("kubectl get nodes:\n%s", out)
	}
}
