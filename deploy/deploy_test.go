package deploy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-stats-server/kubelet-stats-server/cmd/kubelet-stats-server/app"
)

const (
	namespace   = "kubelet-stats-server"
	name        = "kubelet-stats-server"
	kubeletPort = 10250
	// The kubelet's other ports on the host network: healthz, read-only.
	kubeletHealthzPort  = 10248
	kubeletReadOnlyPort = 10255
)

// rendered is one kustomization's output, decoded.
type rendered struct {
	objects []runtime.Object
	// apiServices are decoded strictly too, into a struct of the fields
	// they may have: kube-aggregator's types are not in this module.
	apiServices []apiService
}

// render builds dir like `kubectl apply -k dir` and decodes every object
// strictly: an unknown or misspelt field fails.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	resMap, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	decoder := serializer.NewCodecFactory(scheme.Scheme, serializer.EnableStrict).UniversalDeserializer()
	var out rendered
	for _, res := range resMap.Resources() {
		data, err := res.AsYAML()
		if err != nil {
			t.Fatal(err)
		}
		if res.GetKind() == "APIService" {
			var svc apiService
			if err := yaml.UnmarshalStrict(data, &svc); err != nil {
				t.Errorf("%s: APIService %s: %v", dir, res.GetName(), err)
			}
			out.apiServices = append(out.apiServices, svc)
			continue
		}
		obj, _, err := decoder.Decode(data, nil, nil)
		if err != nil {
			t.Errorf("%s: %s %s: %v", dir, res.GetKind(), res.GetName(), err)
			continue
		}
		out.objects = append(out.objects, obj)
	}
	return out
}

// apiService has the apiregistration.k8s.io/v1 fields metrics-server's
// manifest uses.
type apiService struct {
	APIVersion string         `json:"apiVersion"`
	Kind       string         `json:"kind"`
	Metadata   map[string]any `json:"metadata"`
	Spec       apiServiceSpec `json:"spec"`
}

type apiServiceSpec struct {
	Service struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
		Port      *int32 `json:"port,omitempty"`
	} `json:"service"`
	Group                 string `json:"group"`
	Version               string `json:"version"`
	InsecureSkipTLSVerify bool   `json:"insecureSkipTLSVerify"`
	GroupPriorityMinimum  int32  `json:"groupPriorityMinimum"`
	VersionPriority       int32  `json:"versionPriority"`
}

func find[T runtime.Object](t *testing.T, r rendered, name string, nameOf func(T) string) T {
	t.Helper()
	for _, obj := range r.objects {
		if typed, ok := obj.(T); ok && nameOf(typed) == name {
			return typed
		}
	}
	var zero T
	t.Fatalf("no %T named %s", zero, name)
	return zero
}

func daemonSet(t *testing.T, r rendered) *appsv1.DaemonSet {
	t.Helper()
	return find(t, r, name, func(d *appsv1.DaemonSet) string { return d.Name })
}

// The base, as kubectl apply -k deploy/ sees it.
func TestBase(t *testing.T) {
	r := render(t, ".")
	kinds := map[string]int{}
	for _, obj := range r.objects {
		kinds[fmt.Sprintf("%T", obj)]++
	}
	want := map[string]int{"*v1.Namespace": 1, "*v1.ServiceAccount": 1, "*v1.ClusterRoleBinding": 1, "*v1.ConfigMap": 1, "*v1.DaemonSet": 1}
	if fmt.Sprint(kinds) != fmt.Sprint(want) {
		t.Errorf("objects %v, want %v", kinds, want)
	}
	find(t, r, namespace, func(n *corev1.Namespace) string { return n.Name })
	binding := find(t, r, "kubelet-stats-server:system:auth-delegator", func(b *rbacv1.ClusterRoleBinding) string { return b.Name })
	if binding.RoleRef.Kind != "ClusterRole" || binding.RoleRef.Name != "system:auth-delegator" {
		t.Errorf("binding refers to %s %s, want ClusterRole system:auth-delegator", binding.RoleRef.Kind, binding.RoleRef.Name)
	}
	ds := daemonSet(t, r)
	if len(binding.Subjects) != 1 || binding.Subjects[0] != (rbacv1.Subject{Kind: "ServiceAccount", Name: ds.Spec.Template.Spec.ServiceAccountName, Namespace: ds.Namespace}) {
		t.Errorf("binding subjects %+v, want the DaemonSet's service account", binding.Subjects)
	}
	find(t, r, ds.Spec.Template.Spec.ServiceAccountName, func(s *corev1.ServiceAccount) string { return s.Name })
}

func TestDaemonSetPodSpec(t *testing.T) {
	ds := daemonSet(t, render(t, "."))
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork || !spec.HostPID || spec.HostIPC {
		t.Errorf("hostNetwork %v hostPID %v hostIPC %v, want true true false", spec.HostNetwork, spec.HostPID, spec.HostIPC)
	}
	if spec.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy %s: the kubeconfig's kubernetes.default.svc needs cluster DNS on the host network", spec.DNSPolicy)
	}
	if spec.PriorityClassName != "system-node-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if len(spec.Tolerations) != 1 || spec.Tolerations[0] != (corev1.Toleration{Operator: corev1.TolerationOpExists}) {
		t.Errorf("tolerations %+v, want one that tolerates every taint", spec.Tolerations)
	}
	if got := ds.Spec.Selector.MatchLabels; fmt.Sprint(got) != fmt.Sprint(ds.Spec.Template.Labels) {
		t.Errorf("selector %v does not match the template's labels %v", got, ds.Spec.Template.Labels)
	}
	ctr := spec.Containers[0]
	if ctr.Image != "localhost/kubelet-stats-server:latest" || ctr.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %s pull %s, want the kustomization's image, IfNotPresent (no registry needed)", ctr.Image, ctr.ImagePullPolicy)
	}
}

// Least privilege: root for the root-owned CRI socket, every capability
// dropped but DAC_READ_SEARCH (du of other users' volume directories),
// nothing writable but the certificate's emptyDir.
func TestDaemonSetSecurityContext(t *testing.T) {
	ds := daemonSet(t, render(t, "."))
	spec := ds.Spec.Template.Spec
	sc := spec.Containers[0].SecurityContext
	if sc == nil || sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.Privileged == nil || *sc.Privileged ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("securityContext %+v", sc)
	}
	if fmt.Sprint(sc.Capabilities.Drop) != "[ALL]" || fmt.Sprint(sc.Capabilities.Add) != "[DAC_READ_SEARCH]" {
		t.Errorf("capabilities drop %v add %v, want drop [ALL] add [DAC_READ_SEARCH]", sc.Capabilities.Drop, sc.Capabilities.Add)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range spec.Volumes {
		volumes[v.Name] = v
	}
	for _, m := range spec.Containers[0].VolumeMounts {
		v := volumes[m.Name]
		writable := v.EmptyDir != nil
		if m.ReadOnly == writable {
			t.Errorf("mount %s (%s): readOnly %v", m.Name, m.MountPath, m.ReadOnly)
		}
		if v.HostPath != nil && (v.HostPath.Type == nil || *v.HostPath.Type == corev1.HostPathDirectoryOrCreate || *v.HostPath.Type == corev1.HostPathFileOrCreate) {
			t.Errorf("hostPath %s: type %v; the pod must never create host paths", v.HostPath.Path, v.HostPath.Type)
		}
	}
}

// args are the container's --flag=value arguments.
func args(t *testing.T, ctr corev1.Container) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, a := range ctr.Args {
		flag, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !ok {
			t.Fatalf("argument %q: want --flag=value", a)
		}
		out[flag] = value
	}
	return out
}

// Every argument is a flag of the binary (what --help lists), with a value
// it accepts.
func TestDaemonSetArgsAreFlags(t *testing.T) {
	ctr := daemonSet(t, render(t, ".")).Spec.Template.Spec.Containers[0]
	cmd := app.NewCommand()
	for flag, value := range args(t, ctr) {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Errorf("--%s is not a flag of kubelet-stats-server", flag)
			continue
		}
		if err := f.Value.Set(strings.ReplaceAll(value, "$(NODE_NAME)", "node-a")); err != nil {
			t.Errorf("--%s=%s: %v", flag, value, err)
		}
	}
	for _, e := range ctr.Env {
		if e.Name == "NODE_NAME" && (e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != "spec.nodeName") {
			t.Errorf("NODE_NAME is not the pod's spec.nodeName: %+v", e)
		}
	}
}

// The ports: its own secure port, never one of the kubelet's, the
// read-only port off, and the liveness probe on the healthz port.
func TestDaemonSetPorts(t *testing.T) {
	ctr := daemonSet(t, render(t, ".")).Spec.Template.Spec.Containers[0]
	a := args(t, ctr)
	port := intArg(t, a, "port")
	healthz := intArg(t, a, "healthz-port")
	for _, p := range []int{port, healthz} {
		if p == kubeletPort || p == kubeletHealthzPort || p == kubeletReadOnlyPort || p == 0 {
			t.Errorf("port %d clashes with the kubelet's or is off", p)
		}
	}
	if a["read-only-port"] != "0" {
		t.Errorf("--read-only-port=%s, want 0", a["read-only-port"])
	}
	if len(ctr.Ports) != 1 || int(ctr.Ports[0].ContainerPort) != port || ctr.Ports[0].Name != "https" {
		t.Errorf("container ports %+v, want https %d", ctr.Ports, port)
	}
	probe := ctr.LivenessProbe
	if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Port.IntValue() != healthz || probe.HTTPGet.Path != "/healthz" ||
		probe.HTTPGet.Host != a["healthz-bind-address"] {
		t.Errorf("liveness probe %+v, want GET /healthz on %s:%d", probe, a["healthz-bind-address"], healthz)
	}
}

func intArg(t *testing.T, a map[string]string, flag string) int {
	t.Helper()
	v, err := strconv.Atoi(a[flag])
	if err != nil {
		t.Fatalf("--%s=%q: %v", flag, a[flag], err)
	}
	return v
}

// The path flags point at the mounts of the host paths they name.
func TestDaemonSetMounts(t *testing.T) {
	spec := daemonSet(t, render(t, ".")).Spec.Template.Spec
	ctr := spec.Containers[0]
	a := args(t, ctr)
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mountOf := map[string]corev1.VolumeMount{} // by host path
	for _, m := range ctr.VolumeMounts {
		if host, ok := hostPaths[m.Name]; ok {
			mountOf[host] = m
		}
	}
	for host, flag := range map[string]string{
		"/proc":            "proc-root",
		"/var/lib/kubelet": "root-dir",
		"/var/log/pods":    "pod-logs-dir",
		"/sys/fs/cgroup":   "",
		"/run/containerd":  "",
	} {
		m, ok := mountOf[host]
		if !ok {
			t.Errorf("%s is not mounted", host)
			continue
		}
		if flag != "" && a[flag] != m.MountPath {
			t.Errorf("--%s=%s, but %s is mounted at %s", flag, a[flag], host, m.MountPath)
		}
	}
	if m := mountOf["/var/lib/kubelet"]; m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
		t.Errorf("/var/lib/kubelet propagation %v, want HostToContainer: volumes mounted after the pod started must show", m.MountPropagation)
	}
	// ReadMachine reads <dir of --proc-root>/etc/machine-id and os-release.
	root := strings.TrimSuffix(a["proc-root"], "/proc")
	for _, host := range []string{"/etc/machine-id", "/etc/os-release"} {
		if m := mountOf[host]; m.MountPath != root+host {
			t.Errorf("%s mounted at %q, want %s", host, m.MountPath, root+host)
		}
	}
	if sock := strings.TrimPrefix(a["container-runtime-endpoint"], "unix://"); !strings.HasPrefix(sock, mountOf["/run/containerd"].MountPath+"/") {
		t.Errorf("--container-runtime-endpoint=%s is not under the containerd mount", a["container-runtime-endpoint"])
	}
	if m := mountPathOf(t, spec, "pki"); a["cert-dir"] != m {
		t.Errorf("--cert-dir=%s, but the writable emptyDir is at %s", a["cert-dir"], m)
	}
}

func mountPathOf(t *testing.T, spec corev1.PodSpec, volume string) string {
	t.Helper()
	for _, m := range spec.Containers[0].VolumeMounts {
		if m.Name == volume {
			return m.MountPath
		}
	}
	t.Fatalf("volume %s is not mounted", volume)
	return ""
}

// --kubeconfig is the ConfigMap's file and authenticates as the pod's
// service account.
func TestKubeconfig(t *testing.T) {
	r := render(t, ".")
	spec := daemonSet(t, r).Spec.Template.Spec
	a := args(t, spec.Containers[0])
	var cmName string
	for _, v := range spec.Volumes {
		if v.ConfigMap != nil && v.Name == "kubeconfig" {
			cmName = v.ConfigMap.Name
		}
	}
	cm := find(t, r, cmName, func(c *corev1.ConfigMap) string { return c.Name })
	dir := mountPathOf(t, spec, "kubeconfig")
	key, ok := strings.CutPrefix(a["kubeconfig"], dir+"/")
	if !ok {
		t.Fatalf("--kubeconfig=%s is not in the ConfigMap's mount %s", a["kubeconfig"], dir)
	}
	cfg, err := clientcmd.Load([]byte(cm.Data[key]))
	if err != nil {
		t.Fatalf("ConfigMap %s key %s: %v", cm.Name, key, err)
	}
	const saDir = "/var/run/secrets/kubernetes.io/serviceaccount/"
	ctx := cfg.Contexts[cfg.CurrentContext]
	if user := cfg.AuthInfos[ctx.AuthInfo]; user == nil || user.TokenFile != saDir+"token" {
		t.Errorf("kubeconfig user %+v, want the service account token file", user)
	}
	if cluster := cfg.Clusters[ctx.Cluster]; cluster == nil || cluster.CertificateAuthority != saDir+"ca.crt" || cluster.Server != "https://kubernetes.default.svc" {
		t.Errorf("kubeconfig cluster %+v, want the service account CA", cluster)
	}
	if a["client-ca-file"] != saDir+"ca.crt" {
		t.Errorf("--client-ca-file=%s", a["client-ca-file"])
	}
	if spec.AutomountServiceAccountToken != nil && !*spec.AutomountServiceAccountToken {
		t.Error("the service account token is not mounted")
	}
}

// Requests and limits are set, and the limit leaves room over the request.
func TestDaemonSetResources(t *testing.T) {
	res := daemonSet(t, render(t, ".")).Spec.Template.Spec.Containers[0].Resources
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := res.Requests[r]
		limit, okLimit := res.Limits[r]
		if !okReq || !okLimit || req.Cmp(limit) >= 0 {
			t.Errorf("%s request %v limit %v", r, req.String(), limit.String())
		}
	}
}

// metrics-server scrapes the server's port, not the kubelet's.
func TestMetricsServerOverlay(t *testing.T) {
	r := render(t, "overlays/metrics-server")
	port := args(t, daemonSet(t, r).Spec.Template.Spec.Containers[0])["port"]
	deploy := find(t, r, "metrics-server", func(d *appsv1.Deployment) string { return d.Name })
	msArgs := deploy.Spec.Template.Spec.Containers[0].Args
	if !slices.Contains(msArgs, "--kubelet-port="+port) {
		t.Errorf("metrics-server args %v lack --kubelet-port=%s", msArgs, port)
	}
	if slices.Contains(msArgs, "--kubelet-use-node-status-port") {
		t.Errorf("metrics-server args %v: --kubelet-use-node-status-port would win over --kubelet-port", msArgs)
	}
	if !slices.Contains(msArgs, "--kubelet-insecure-tls") {
		t.Errorf("metrics-server args %v: the servers' certificates are self-signed", msArgs)
	}
	if len(r.apiServices) != 1 || r.apiServices[0].Spec.Group != "metrics.k8s.io" {
		t.Errorf("APIServices %+v, want v1beta1.metrics.k8s.io", r.apiServices)
	}
	// metrics-server's role must grant what the server asks for.
	role := find(t, r, "system:metrics-server", func(c *rbacv1.ClusterRole) string { return c.Name })
	if !grants(role.Rules, "nodes/metrics", "get") {
		t.Errorf("metrics-server's ClusterRole does not grant get nodes/metrics: %+v", role.Rules)
	}
}

func grants(rules []rbacv1.PolicyRule, resource, verb string) bool {
	for _, rule := range rules {
		if slices.Contains(rule.APIGroups, "") && slices.Contains(rule.Resources, resource) && slices.Contains(rule.Verbs, verb) {
			return true
		}
	}
	return false
}

// scrapeConfig is the part of Prometheus's configuration the overlay uses.
type scrapeConfig struct {
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		Scheme        string `json:"scheme"`
		MetricsPath   string `json:"metrics_path"`
		Authorization struct {
			CredentialsFile string `json:"credentials_file"`
		} `json:"authorization"`
		TLSConfig struct {
			InsecureSkipVerify bool `json:"insecure_skip_verify"`
		} `json:"tls_config"`
		KubernetesSDConfigs []struct {
			Role string `json:"role"`
		} `json:"kubernetes_sd_configs"`
		RelabelConfigs []relabelConfig `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

type relabelConfig struct {
	Action       string   `json:"action"`
	SourceLabels []string `json:"source_labels"`
	Regex        string   `json:"regex"`
	Replacement  string   `json:"replacement"`
	TargetLabel  string   `json:"target_label"`
}

// Prometheus scrapes /metrics/cadvisor and /metrics/resource on the
// server's port of every node, and may.
func TestPrometheusOverlay(t *testing.T) {
	r := render(t, "overlays/prometheus")
	port := args(t, daemonSet(t, r).Spec.Template.Spec.Containers[0])["port"]
	cm := find(t, r, "kubelet-stats-server-scrape-config", func(c *corev1.ConfigMap) string { return c.Name })
	var cfg scrapeConfig
	if err := yaml.UnmarshalStrict([]byte(cm.Data["scrape-config.yaml"]), &cfg); err != nil {
		t.Fatalf("scrape-config.yaml: %v", err)
	}
	var paths []string
	for _, job := range cfg.ScrapeConfigs {
		paths = append(paths, job.MetricsPath)
		if job.Scheme != "https" || len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "node" ||
			job.Authorization.CredentialsFile == "" {
			t.Errorf("job %s: scheme %s, sd %+v, credentials %q", job.JobName, job.Scheme, job.KubernetesSDConfigs, job.Authorization.CredentialsFile)
		}
		checkAddressRelabel(t, job.JobName, job.RelabelConfigs, port)
	}
	slices.Sort(paths)
	if fmt.Sprint(paths) != "[/metrics/cadvisor /metrics/resource]" {
		t.Errorf("metrics paths %v", paths)
	}
	role := find(t, r, "kubelet-stats-server:scraper", func(c *rbacv1.ClusterRole) string { return c.Name })
	if !grants(role.Rules, "nodes/metrics", "get") || !grants(role.Rules, "nodes", "list") || !grants(role.Rules, "nodes", "watch") {
		t.Errorf("scraper role %+v", role.Rules)
	}
}

// checkAddressRelabel applies the job's __address__ rule as Prometheus
// does (the regex is anchored, $1 expands) to node role addresses.
func checkAddressRelabel(t *testing.T, job string, rules []relabelConfig, port string) {
	t.Helper()
	for _, rule := range rules {
		if rule.TargetLabel != "__address__" {
			continue
		}
		re := regexp.MustCompile("^(?:" + rule.Regex + ")$")
		for addr, want := range map[string]string{
			"10.0.0.7:10250":   "10.0.0.7:" + port,
			"[fd00::7]:10250":  "[fd00::7]:" + port,
			"node-a.example:1": "node-a.example:" + port,
		} {
			if got := re.ReplaceAllString(addr, rule.Replacement); got != want {
				t.Errorf("job %s: __address__ %s becomes %s, want %s", job, addr, got, want)
			}
		}
		return
	}
	t.Errorf("job %s does not rewrite __address__ to port %s", job, port)
}
