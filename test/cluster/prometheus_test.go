package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// prometheusLimit bounds the wait for both jobs' first good scrapes: the
// test scrapes every 2 s; discovery takes a few seconds.
const prometheusLimit = time.Minute

// The jobs of deploy/overlays/prometheus/scrape-config.yaml.
var prometheusJobs = []string{"kubelet-stats-server-cadvisor", "kubelet-stats-server-resource"}

// testPrometheus runs Debian's Prometheus with the overlay's scrape jobs,
// as the overlay's service account monitoring/prometheus with the overlay's
// RBAC, and expects both jobs to rewrite the node's address to port 10350
// and scrape the server. Debian's Prometheus (2.42) has neither
// scrape_config_files (2.43) nor kubernetes_sd_configs (Debian builds it
// without Kubernetes discovery), so the jobs go into its configuration
// file, and their discovery is replaced by the target it would find: the
// Node's first address and kubelet port with its meta labels, read from the
// API server. The jobs' relabeling, authorization and TLS settings are the
// overlay's; the rig adds the token's path and a proxy_url that takes
// 192.0.2.10:10350 to the server's loopback port.
func testPrometheus(t *testing.T, cp *controlPlane, n *node) {
	binary := ensurePackage(t, "prometheus", "prometheus")
	cp.kubectl(t, "create", "serviceaccount", "prometheus", "-n", "monitoring")
	cp.kubectl(t, "apply", "-f", filepath.Join("..", "..", "deploy", "overlays", "prometheus", "rbac.yaml"))
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, []byte(strings.TrimSpace(cp.kubectl(t, "create", "token", "prometheus", "-n", "monitoring", "--duration=1h"))))

	proxy := startEgressProxy(t, "tcp", "127.0.0.1:0")
	proxy.route(nodeIP+":10350", "127.0.0.1:"+strconv.Itoa(n.port))
	config := filepath.Join(dir, "prometheus.yml")
	writeFile(t, config, prometheusConfig(t, discoveredNode(t, cp), tokenFile, "http://"+proxy.listener.Addr().String()))
	base := "http://127.0.0.1:" + strconv.Itoa(serverproc.FreePort(t))
	prom := startProcess(t, "prometheus", binary, "--config.file="+config, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+strings.TrimPrefix(base, "http://"))

	var last error
	defer func() {
		if t.Failed() {
			t.Logf("targets: %v", last)
		}
	}()
	framework.Eventually(t, prometheusLimit, "both jobs' targets up", func() bool {
		if err := prom.running(); err != nil {
			t.Fatal(err)
		}
		last = targetsUp(base)
		return last == nil
	})
	for job, series := range map[string]string{
		"kubelet-stats-server-cadvisor": "container_memory_working_set_bytes",
		"kubelet-stats-server-resource": "container_memory_working_set_bytes",
	} {
		query := fmt.Sprintf(`%s{job=%q,node=%q,namespace=%q,pod="busy",container="app"}`, series, job, nodeName, namespace)
		value := promQuery(t, base, query)
		if value < 40<<20 {
			t.Errorf("%s = %v, want busy/app's 40 MiB and more", query, value)
		}
	}
}

// prometheusConfig is the overlay's scrape jobs with the rig's additions,
// discovery replaced by target.
func prometheusConfig(t *testing.T, target map[string]any, tokenFile, proxyURL string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "overlays", "prometheus", "scrape-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		ScrapeConfigs []map[string]any `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, job := range doc.ScrapeConfigs {
		sd, _ := job["kubernetes_sd_configs"].([]any)
		if len(sd) != 1 || sd[0].(map[string]any)["role"] != "node" {
			t.Fatalf("job %v: kubernetes_sd_configs %v, want one of role node", job["job_name"], sd)
		}
		delete(job, "kubernetes_sd_configs")
		job["static_configs"] = []any{target}
		job["authorization"] = map[string]any{"credentials_file": tokenFile}
		job["proxy_url"] = proxyURL
	}
	out, err := yaml.Marshal(map[string]any{
		"global":         map[string]any{"scrape_interval": "2s", "scrape_timeout": "2s"},
		"scrape_configs": doc.ScrapeConfigs,
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// discoveredNode is the target Prometheus's Kubernetes discovery (role
// node) makes of the Node: the first of its InternalIP, ExternalIP and
// Hostname addresses with the kubelet port, and its meta labels.
func discoveredNode(t *testing.T, cp *controlPlane) map[string]any {
	t.Helper()
	node := getNode(t, cp)
	labels := map[string]any{"__meta_kubernetes_node_name": node.Name}
	for k, v := range node.Labels {
		labels["__meta_kubernetes_node_label_"+promLabelName(k)] = v
		labels["__meta_kubernetes_node_labelpresent_"+promLabelName(k)] = "true"
	}
	address := ""
	for _, kind := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type != kind {
				continue
			}
			labels["__meta_kubernetes_node_address_"+string(a.Type)] = a.Address
			if address == "" {
				address = a.Address
			}
		}
	}
	port := strconv.Itoa(int(node.Status.DaemonEndpoints.KubeletEndpoint.Port))
	return map[string]any{"targets": []any{net.JoinHostPort(address, port)}, "labels": labels}
}

// promLabelName is Prometheus's strutil.SanitizeLabelName.
func promLabelName(name string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' {
			return r
		}
		return '_'
	}, name)
}

// targetsUp fails unless every job has one target, up, for the node at
// 192.0.2.10:10350.
func targetsUp(base string) error {
	var resp struct {
		Data struct {
			ActiveTargets []struct {
				Labels    map[string]string `json:"labels"`
				Health    string            `json:"health"`
				LastError string            `json:"lastError"`
			} `json:"activeTargets"`
		} `json:"data"`
	}
	if err := promGet(base+"/api/v1/targets", &resp); err != nil {
		return err
	}
	for _, job := range prometheusJobs {
		found := false
		for _, target := range resp.Data.ActiveTargets {
			if target.Labels["job"] != job {
				continue
			}
			found = true
			if target.Health != "up" || target.Labels["instance"] != nodeIP+":10350" || target.Labels["node"] != nodeName {
				return fmt.Errorf("job %s: target %v %s %s", job, target.Labels, target.Health, target.LastError)
			}
		}
		if !found {
			return fmt.Errorf("job %s: no target yet", job)
		}
	}
	return nil
}

// promQuery is the value of an instant query with one series.
func promQuery(t *testing.T, base, query string) float64 {
	t.Helper()
	var resp struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := promGet(base+"/api/v1/query?query="+url.QueryEscape(query), &resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Data.Result) != 1 {
		t.Fatalf("%s: %d series, want 1", query, len(resp.Data.Result))
	}
	text, _ := resp.Data.Result[0].Value[1].(string)
	value, err := strconv.ParseFloat(text, 64)
	if err != nil {
		t.Fatalf("%s: value %v: %v", query, resp.Data.Result[0].Value, err)
	}
	return value
}

func promGet(url string, v any) error {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
