package cluster

import (
	"bytes"
	"encoding/base64"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// Limits of the metrics-server waits: the APIService is Available 1-2 s
// after it starts, kubectl top works after its second scrape (10 s).
const (
	apiServiceLimit = time.Minute
	topLimit        = 90 * time.Second
)

// startMetricsServer runs metrics-server v0.9.0 as user
// system:metrics-server with the upstream RBAC, behind an ExternalName
// Service "localhost" that the API server reaches through the egress proxy.
// It reads the node's kubelet port from the Node and dials its ExternalIP.
func startMetricsServer(t *testing.T, cp *controlPlane) {
	t.Helper()
	port := strconv.Itoa(serverproc.FreePort(t))
	servingCert, servingKey := cp.ca.serving(t, "metrics-server", "localhost", "127.0.0.1", "metrics-server.kube-system.svc")
	clientCert, clientKey := cp.ca.client(t, "metrics-server-client", "system:metrics-server")
	kubeconfig := cp.kubeconfig(t, "metrics-server", clientCert, clientKey)
	caPEM, err := os.ReadFile(cp.ca.file)
	if err != nil {
		t.Fatal(err)
	}
	cp.apply(t, "metrics-server", metricsServerObjects(port, base64.StdEncoding.EncodeToString(caPEM)))
	cp.egress.route("localhost:"+port, "127.0.0.1:"+port)
	startProcess(t, "metrics-server", filepath.Join(toolsDir, "metrics-server"),
		"--kubeconfig="+kubeconfig, "--authentication-kubeconfig="+kubeconfig, "--authorization-kubeconfig="+kubeconfig,
		"--bind-address=127.0.0.1", "--secure-port="+port,
		"--tls-cert-file="+servingCert, "--tls-private-key-file="+servingKey,
		"--kubelet-certificate-authority="+cp.ca.file, "--kubelet-preferred-address-types=ExternalIP",
		"--kubelet-use-node-status-port", "--metric-resolution=10s", "--kubelet-request-timeout=5s", "--v=2")
	framework.Eventually(t, apiServiceLimit, "APIService v1beta1.metrics.k8s.io Available", func() bool {
		out, err := cp.tryKubectl("get", "apiservice", "v1beta1.metrics.k8s.io",
			"-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		return err == nil && out == "True"
	})
}

// metricsServerObjects are metrics-server's RBAC from its release
// manifests, bound to user system:metrics-server, and its APIService.
func metricsServerObjects(port, caBundle string) string {
	return `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:metrics-server"}
rules:
- apiGroups: [""]
  resources: [nodes/metrics]
  verbs: [get]
- apiGroups: [""]
  resources: [pods, nodes]
  verbs: [get, list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:metrics-server"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:metrics-server"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "metrics-server:system:auth-delegator"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:auth-delegator"}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: metrics-server-auth-reader, namespace: kube-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: extension-apiserver-authentication-reader}
subjects: [{apiGroup: rbac.authorization.k8s.io, kind: User, name: "system:metrics-server"}]
---
apiVersion: v1
kind: Service
metadata: {name: metrics-server, namespace: kube-system}
spec:
  type: ExternalName
  externalName: localhost
  ports: [{name: https, port: ` + port + `}]
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1beta1.metrics.k8s.io}
spec:
  group: metrics.k8s.io
  version: v1beta1
  groupPriorityMinimum: 100
  versionPriority: 100
  service: {name: metrics-server, namespace: kube-system, port: ` + port + `}
  caBundle: ` + caBundle + "\n"
}

// podMetrics is metrics.k8s.io/v1beta1 PodMetrics (k8s.io/metrics, which
// this module does not require).
type podMetrics struct {
	metav1.ObjectMeta `json:"metadata"`
	Timestamp         metav1.Time `json:"timestamp"`
	Containers        []struct {
		Name  string              `json:"name"`
		Usage corev1.ResourceList `json:"usage"`
	} `json:"containers"`
}

func testMetricsServer(t *testing.T, cp *controlPlane, n *node) {
	startMetricsServer(t, cp)
	var top string
	framework.Eventually(t, topLimit, "kubectl top node", func() bool {
		out, err := cp.tryKubectl("top", "node")
		top = out
		return err == nil && strings.Contains(out, nodeName)
	})
	framework.Eventually(t, topLimit, "kubectl top pod -A --containers listing every container", func() bool {
		out, err := cp.tryKubectl("top", "pod", "-A", "--containers")
		top = out
		if err != nil {
			return false
		}
		for name, pod := range n.pods {
			for _, c := range pod.Containers {
				if !topHas(out, namespace, name, c.Name) {
					return false
				}
			}
		}
		return true
	})
	t.Logf("kubectl top pod -A --containers:\n%s", top)

	// metrics-server serves the working set of its last scrape of
	// /metrics/resource: the harness's containers hold their memory still,
	// so it is ours within the allocator's noise.
	var metrics podMetrics
	decodeJSON(t, "PodMetrics", []byte(cp.kubectl(t, "get", "--raw", "/apis/metrics.k8s.io/v1beta1/namespaces/"+namespace+"/pods/busy")), &metrics)
	ours := parseMetrics(t, proxyGet(t, cp, "/metrics/resource"))
	for _, c := range metrics.Containers {
		want, ok := sample(ours, "container_memory_working_set_bytes", namespace, "busy", c.Name)
		memory := c.Usage[corev1.ResourceMemory]
		if !ok || math.Abs(float64(memory.Value())-want) > 2<<20 {
			t.Errorf("busy/%s: metrics-server memory %s, our /metrics/resource %v", c.Name, memory.String(), want)
		}
		if c.Name == "app" {
			// 0.2 cores of a duty cycle, measured over different 10 s
			// windows on a loaded machine: the order of magnitude.
			if cpu := c.Usage[corev1.ResourceCPU]; cpu.MilliValue() < 50 || cpu.MilliValue() > 400 {
				t.Errorf("busy/app: metrics-server cpu %s, want about 200m", cpu.String())
			}
		}
	}
	if len(metrics.Containers) != 2 {
		t.Errorf("PodMetrics of busy: %+v", metrics)
	}
}

// topHas reports whether kubectl top pod -A --containers lists the
// container with a CPU and memory value.
func topHas(out, namespace, pod, container string) bool {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 5 && f[0] == namespace && f[1] == pod && f[2] == container &&
			strings.HasSuffix(f[3], "m") && strings.HasSuffix(f[4], "Mi") {
			return true
		}
	}
	return false
}

func parseMetrics(t *testing.T, data []byte) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%.500s", err, data)
	}
	return families
}

// sample is the value of family's series for one container.
func sample(families map[string]*dto.MetricFamily, family, namespace, pod, container string) (float64, bool) {
	f := families[family]
	if f == nil {
		return 0, false
	}
	for _, m := range f.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["namespace"] == namespace && labels["pod"] == pod && labels["container"] == container {
			switch {
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			}
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}
