package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// The node's addresses: the API server reaches the node at nodeIP (through
// the egress proxy), metrics-server at its ExternalIP, loopback.
const (
	nodeIP      = "192.0.2.10"
	advertiseIP = "192.0.2.1"
)

// Limits of the control plane's waits, measured on the 2-core test
// machine with a build beside it: etcd is healthy within 1.2 s, the API
// server ready within 6.3 s.
const (
	etcdStartLimit      = 30 * time.Second
	apiserverStartLimit = 2 * time.Minute
)

// controlPlane is etcd and kube-apiserver on loopback with their PKI.
type controlPlane struct {
	dir string
	ca  *ca
	// server is the API server's URL; admin the kubeconfig of a
	// system:masters user.
	server    string
	admin     string
	client    kubernetes.Interface
	egress    *egressProxy
	apiserver *process
	// kubeletClient is the API server's kubelet client certificate.
	kubeletClient [2]string
}

func startControlPlane(t *testing.T) *controlPlane {
	t.Helper()
	etcdBinary := ensurePackage(t, "etcd", "etcd-server")
	dir := t.TempDir()
	cp := &controlPlane{dir: dir, ca: newCA(t, dir, "ca")}
	etcdURL := startEtcd(t, etcdBinary, dir)
	cp.egress = startEgressProxy(t, "unix", filepath.Join(dir, "egress.sock"))
	port := serverproc.FreePort(t)
	cp.server = "https://127.0.0.1:" + strconv.Itoa(port)
	cp.apiserver = startProcess(t, "kube-apiserver", filepath.Join(toolsDir, "kube-apiserver"), cp.apiserverArgs(t, port, etcdURL)...)
	cert, key := cp.ca.client(t, "admin", "kss-admin", "system:masters")
	cp.admin = cp.kubeconfig(t, "admin", cert, key)
	cp.waitReady(t, cert, key)
	config, err := clientcmd.BuildConfigFromFlags("", cp.admin)
	if err != nil {
		t.Fatal(err)
	}
	if cp.client, err = kubernetes.NewForConfig(config); err != nil {
		t.Fatal(err)
	}
	return cp
}

// ensurePackage installs Debian's package pkg when binary is missing and
// returns the binary's path.
func ensurePackage(t *testing.T, binary, pkg string) string {
	t.Helper()
	if path, err := exec.LookPath(binary); err == nil {
		return path
	}
	t.Logf("installing %s", pkg)
	install := func() error {
		cmd := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=120", "install", "-y", pkg)
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install %s: %w\n%s", pkg, err, out)
		}
		return nil
	}
	if err := install(); err != nil {
		if out, err := exec.Command("apt-get", "-o", "DPkg::Lock::Timeout=120", "update").CombinedOutput(); err != nil {
			t.Fatalf("apt-get update: %v\n%s", err, out)
		}
		if err := install(); err != nil {
			t.Fatal(err)
		}
	}
	path, err := exec.LookPath(binary)
	if err != nil {
		t.Fatalf("%s installed, but: %v", pkg, err)
	}
	return path
}

// startEtcd runs etcd on free loopback ports and waits until it is healthy.
func startEtcd(t *testing.T, binary, dir string) string {
	t.Helper()
	client := "http://127.0.0.1:" + strconv.Itoa(serverproc.FreePort(t))
	peer := "http://127.0.0.1:" + strconv.Itoa(serverproc.FreePort(t))
	etcd := startProcess(t, "etcd", binary, "--name=kss", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+client, "--advertise-client-urls="+client,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer, "--initial-cluster=kss="+peer,
		"--listen-metrics-urls=http://127.0.0.1:"+strconv.Itoa(serverproc.FreePort(t)),
		"--quota-backend-bytes=2147483648")
	framework.Eventually(t, etcdStartLimit, "etcd healthy", func() bool {
		if err := etcd.running(); err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(client + "/health")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return client
}

func (cp *controlPlane) apiserverArgs(t *testing.T, port int, etcdURL string) []string {
	dir := cp.dir
	servingCert, servingKey := cp.ca.serving(t, "apiserver", "127.0.0.1", "localhost", "10.96.0.1", advertiseIP,
		"kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local")
	cp.kubeletClient[0], cp.kubeletClient[1] = cp.ca.client(t, "apiserver-kubelet-client", "kube-apiserver-kubelet-client", "system:masters")
	frontProxy := newCA(t, dir, "front-proxy-ca")
	proxyCert, proxyKey := frontProxy.client(t, "front-proxy-client", "front-proxy-client")
	saKey, saPub := keyPair(t, dir)
	egressConfig := filepath.Join(dir, "egress-selector.yaml")
	writeFile(t, egressConfig, []byte(`apiVersion: apiserver.k8s.io/v1beta1
kind: EgressSelectorConfiguration
egressSelections:
- name: cluster
  connection:
    proxyProtocol: HTTPConnect
    transport:
      uds:
        udsName: `+filepath.Join(dir, "egress.sock")+"\n"))
	return []string{
		"--bind-address=127.0.0.1", "--secure-port=" + strconv.Itoa(port), "--advertise-address=" + advertiseIP,
		"--etcd-servers=" + etcdURL,
		"--tls-cert-file=" + servingCert, "--tls-private-key-file=" + servingKey, "--client-ca-file=" + cp.ca.file,
		"--kubelet-client-certificate=" + cp.kubeletClient[0], "--kubelet-client-key=" + cp.kubeletClient[1],
		"--kubelet-certificate-authority=" + cp.ca.file, "--kubelet-preferred-address-types=InternalIP",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + saPub, "--service-account-signing-key-file=" + saKey,
		"--service-cluster-ip-range=10.96.0.0/12",
		"--requestheader-client-ca-file=" + frontProxy.file, "--requestheader-allowed-names=front-proxy-client",
		"--requestheader-username-headers=X-Remote-User", "--requestheader-group-headers=X-Remote-Group",
		"--requestheader-extra-headers-prefix=X-Remote-Extra-",
		"--proxy-client-cert-file=" + proxyCert, "--proxy-client-key-file=" + proxyKey,
		"--egress-selector-config-file=" + egressConfig,
		"--cert-dir=" + filepath.Join(dir, "apiserver-certs"), "--profiling=false", "--v=2",
	}
}

// waitReady polls /readyz with the admin's certificate.
func (cp *controlPlane) waitReady(t *testing.T, certFile, keyFile string) {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: cp.ca.pool(), Certificates: []tls.Certificate{cert}},
	}}
	defer client.CloseIdleConnections()
	framework.Eventually(t, apiserverStartLimit, "kube-apiserver /readyz", func() bool {
		if err := cp.apiserver.running(); err != nil {
			t.Fatal(err)
		}
		resp, err := client.Get(cp.server + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// kubeconfig writes a kubeconfig for the client certificate certFile.
func (cp *controlPlane) kubeconfig(t *testing.T, name, certFile, keyFile string) string {
	t.Helper()
	path := filepath.Join(cp.dir, name+".kubeconfig")
	writeFile(t, path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: %s
    certificate-authority: %s
users:
- name: %s
  user:
    client-certificate: %s
    client-key: %s
contexts:
- name: lab
  context: {cluster: lab, user: %s}
current-context: lab
`, cp.server, cp.ca.file, name, certFile, keyFile, name)))
	return path
}

// kubectlLimit bounds one kubectl call.
const kubectlLimit = time.Minute

// kubectl runs kubectl as the admin and returns its stdout, failing the
// test when it fails.
func (cp *controlPlane) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := cp.tryKubectl(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tryKubectl runs kubectl as the admin; the error carries its stderr.
func (cp *controlPlane) tryKubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), kubectlLimit)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(toolsDir, "kubectl"), append([]string{"--kubeconfig=" + cp.admin}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// apply creates the objects of a YAML document with kubectl.
func (cp *controlPlane) apply(t *testing.T, name, yaml string) {
	t.Helper()
	path := filepath.Join(cp.dir, name+".yaml")
	writeFile(t, path, []byte(yaml))
	cp.kubectl(t, "apply", "-f", path)
}
