package secure

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const nodeName = "test-node"

// secureServer is the binary with its secure and healthz ports on free
// loopback ports.
type secureServer struct {
	*serverproc.Server
	// URL is https://127.0.0.1:<secure port>.
	URL string
	// HealthzURL is http://127.0.0.1:<healthz port>/healthz.
	HealthzURL string
	// CertDir is --cert-dir, a fresh directory.
	CertDir string
}

// startSecure runs the binary with the secure port on and args, and waits
// until the secure port completes TLS handshakes.
func startSecure(t *testing.T, args ...string) *secureServer {
	t.Helper()
	return startSecureBinary(t, serverBinary, args...)
}

// startSecureBinary is startSecure running binary.
func startSecureBinary(t *testing.T, binary string, args ...string) *secureServer {
	t.Helper()
	port, healthzPort := serverproc.FreePort(t), serverproc.FreePort(t)
	s := &secureServer{
		URL:        fmt.Sprintf("https://127.0.0.1:%d", port),
		HealthzURL: fmt.Sprintf("http://127.0.0.1:%d/healthz", healthzPort),
		CertDir:    t.TempDir(),
	}
	all := append([]string{"--port=" + strconv.Itoa(port), "--healthz-port=" + strconv.Itoa(healthzPort),
		"--cert-dir=" + s.CertDir, "--node-name=" + nodeName}, args...)
	s.Server = serverproc.Start(t, binary, all...)
	exited := make(chan struct{})
	go func() { _ = s.Wait(); close(exited) }()
	for {
		conn, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("server exited before its secure port served TLS: %v\n%s", s.Wait(), s.Log())
		case <-time.After(20 * time.Millisecond): // poll interval
		}
	}
}

// trust is a pool holding the self-signed certificate kept in CertDir.
func (s *secureServer) trust(t *testing.T) *x509.CertPool {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.CertDir, "kubelet-stats-server.crt"))
	if err != nil {
		t.Fatalf("self-signed certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		t.Fatal("no certificate in the self-signed certificate file")
	}
	return pool
}

// client trusts roots (nil: anything) and presents cert (nil: none)
// whatever the server asks for.
func client(roots *x509.CertPool, cert *tls.Certificate) *http.Client {
	conf := &tls.Config{RootCAs: roots, InsecureSkipVerify: roots == nil}
	if cert != nil {
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
}

func get(t *testing.T, c *http.Client, url string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

// TestBehindTheAPIServer runs the binary as a cluster would: client CA,
// kubeconfig, the kubelet's default token webhook and Webhook authorization.
func TestBehindTheAPIServer(t *testing.T) {
	clusterCA, otherCA := authtest.NewCA(t, "kubernetes"), authtest.NewCA(t, "not-kubernetes")
	api := authtest.NewAPIServer(t)
	api.SetToken("metrics-server-token", authenticationv1.UserInfo{
		Username: "system:serviceaccount:kube-system:metrics-server",
		Groups:   []string{"system:serviceaccounts", "system:authenticated"},
	})
	api.SetPolicy(func(spec authorizationv1.SubjectAccessReviewSpec) bool {
		if spec.User == "resource-scraper" { // metrics-server 0.6+'s RBAC: get nodes/metrics
			return spec.ResourceAttributes.Subresource == "metrics"
		}
		return spec.User != "bob"
	})
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	authtest.WriteFile(t, caFile, clusterCA.CertPEM)
	s := startSecure(t, "--client-ca-file="+caFile, "--kubeconfig="+api.WriteKubeconfig(t, dir))
	roots := s.trust(t)

	apiserver := clusterCA.ClientCert(t, "kube-apiserver-kubelet-client", "kubeadm:cluster-admins")
	t.Run("the API server's client certificate", func(t *testing.T) {
		status, body := get(t, client(roots, &apiserver), s.URL+"/stats/summary")
		if status != http.StatusOK {
			t.Fatalf("%d %q", status, body)
		}
		var summary statsapi.Summary
		if err := json.Unmarshal([]byte(body), &summary); err != nil || summary.Node.NodeName != nodeName {
			t.Errorf("summary node %q (%v)", summary.Node.NodeName, err)
		}
		reviews := api.TakeReviews()
		want := authorizationv1.ResourceAttributes{Verb: "get", Version: "v1", Resource: "nodes", Subresource: "stats", Name: nodeName}
		if len(reviews) != 1 || reviews[0].User != "kube-apiserver-kubelet-client" || reviews[0].ResourceAttributes == nil || *reviews[0].ResourceAttributes != want {
			t.Errorf("reviews %+v, want one for %+v", reviews, want)
		}
	})
	t.Run("a certificate from another CA", func(t *testing.T) {
		stranger := otherCA.ClientCert(t, "kube-apiserver-kubelet-client")
		if status, body := get(t, client(roots, &stranger), s.URL+"/stats/summary"); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%d %q, want 401 Unauthorized", status, body)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		if status, body := get(t, client(roots, nil), s.URL+"/healthz"); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%d %q, want 401 Unauthorized", status, body)
		}
	})
	t.Run("a service account token", func(t *testing.T) {
		before := api.TokenReviews()
		for _, path := range []string{"/stats/summary?only_cpu_and_memory=true", "/healthz"} {
			if status, body := get(t, client(roots, nil), s.URL+path, "Authorization", "Bearer metrics-server-token"); status != http.StatusOK {
				t.Errorf("%s: %d %q", path, status, body)
			}
		}
		if n := api.TokenReviews() - before; n != 1 {
			t.Errorf("%d TokenReviews for two requests with one token, want 1 (cached for 2m)", n)
		}
		var subresources []string
		for _, r := range api.TakeReviews() {
			subresources = append(subresources, r.ResourceAttributes.Subresource)
		}
		if !slices.Equal(subresources, []string{"stats", "healthz"}) {
			t.Errorf("reviewed subresources %v, want [stats healthz]", subresources)
		}
	})
	t.Run("nodes/metrics alone reaches the resource metrics", func(t *testing.T) {
		scraper := clusterCA.ClientCert(t, "resource-scraper")
		status, body := get(t, client(roots, &scraper), s.URL+"/metrics/resource")
		if status != http.StatusOK || !strings.Contains(body, "node_cpu_usage_seconds_total") {
			t.Errorf("/metrics/resource: %d %q", status, body)
		}
		status, body = get(t, client(roots, &scraper), s.URL+"/stats/summary")
		want := "Forbidden (user=resource-scraper, verb=get, resource=nodes, subresource(s)=[stats])\n"
		if status != http.StatusForbidden || body != want {
			t.Errorf("/stats/summary: %d %q, want 403 %q", status, body, want)
		}
		api.TakeReviews()
	})
	t.Run("denied", func(t *testing.T) {
		bob := clusterCA.ClientCert(t, "bob")
		status, body := get(t, client(roots, &bob), s.URL+"/healthz")
		want := "Forbidden (user=bob, verb=get, resource=nodes, subresource(s)=[healthz proxy])\n"
		if status != http.StatusForbidden || body != want {
			t.Errorf("%d %q, want 403 %q", status, body, want)
		}
	})
	t.Run("authorization webhook down", func(t *testing.T) {
		carol := clusterCA.ClientCert(t, "carol")
		api.Down()
		status, body := get(t, client(roots, &carol), s.URL+"/stats/summary")
		want := "Authorization error (user=carol, verb=get, resource=nodes, subresource=stats)"
		if status != http.StatusInternalServerError || body != want {
			t.Errorf("%d %q, want 500 %q", status, body, want)
		}
		if status, body := get(t, http.DefaultClient, s.HealthzURL); status != http.StatusOK || body != "ok" {
			t.Errorf("healthz port while the API server is down: %d %q", status, body)
		}
		api.Up(t)
		if status, body := get(t, client(roots, &carol), s.URL+"/stats/summary"); status != http.StatusOK {
			t.Errorf("after the API server is back: %d %q, want 200", status, body)
		}
	})
	t.Run("self-signed certificate", func(t *testing.T) {
		state, err := tls.Dial("tcp", strings.TrimPrefix(s.URL, "https://"), &tls.Config{RootCAs: roots, ServerName: nodeName})
		if err != nil {
			t.Fatalf("verify the serving certificate for %s: %v", nodeName, err)
		}
		leaf := state.ConnectionState().PeerCertificates[0]
		state.Close()
		if !slices.Contains(leaf.DNSNames, nodeName) || !slices.ContainsFunc(leaf.IPAddresses, func(ip net.IP) bool { return ip.String() == "127.0.0.1" }) {
			t.Errorf("certificate names %v %v, want %s and 127.0.0.1", leaf.DNSNames, leaf.IPAddresses, nodeName)
		}
	})
	t.Run("read-only and healthz ports have no auth", func(t *testing.T) {
		if status, _ := get(t, http.DefaultClient, s.Base+"/stats/summary"); status != http.StatusOK {
			t.Errorf("read-only /stats/summary: %d", status)
		}
		if status, body := get(t, http.DefaultClient, s.HealthzURL); status != http.StatusOK || body != "ok" {
			t.Errorf("healthz port: %d %q", status, body)
		}
	})
}

func TestServingCertificateRotation(t *testing.T) {
	ca := authtest.NewCA(t, "serving-ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	certPEM, keyPEM := ca.ServingPair(t, nodeName, "127.0.0.1")
	authtest.WriteFile(t, certFile, certPEM)
	authtest.WriteFile(t, keyFile, keyPEM)
	s := startSecure(t, "--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile)
	addr := strings.TrimPrefix(s.URL, "https://")
	presented := func() *x509.Certificate {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: ca.Pool()})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0]
	}
	if got := presented(); !got.Equal(authtest.ParseCertificate(t, certPEM)) {
		t.Fatalf("presented serial %v, want the file's", got.SerialNumber)
	}
	if entries, _ := os.ReadDir(s.CertDir); len(entries) != 0 {
		t.Errorf("a self-signed certificate was written although files were given: %v", entries)
	}

	newCert, newKey := ca.ServingPair(t, nodeName, "127.0.0.1")
	want := authtest.ParseCertificate(t, newCert)
	authtest.ReplaceFile(t, keyFile, newKey)
	authtest.ReplaceFile(t, certFile, newCert)
	for !presented().Equal(want) {
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

// TestWithoutAnAPIServer is what make run does: no kubeconfig. The secure
// port still starts, with a self-signed certificate, and lets in only
// holders of a certificate from --client-ca-file.
func TestWithoutAnAPIServer(t *testing.T) {
	t.Run("no client CA: nobody", func(t *testing.T) {
		s := startSecure(t)
		roots := s.trust(t)
		if status, body := get(t, client(roots, nil), s.URL+"/healthz", "Authorization", "Bearer anything"); status != http.StatusUnauthorized || body != "Unauthorized" {
			t.Errorf("%d %q, want 401 Unauthorized", status, body)
		}
		if !strings.Contains(s.Log(), "authenticates nobody") {
			t.Error("the log does not say that nobody can get in")
		}
	})
	t.Run("client CA: its certificates, AlwaysAllow", func(t *testing.T) {
		ca := authtest.NewCA(t, "ca")
		caFile := filepath.Join(t.TempDir(), "ca.crt")
		authtest.WriteFile(t, caFile, ca.CertPEM)
		s := startSecure(t, "--client-ca-file="+caFile)
		cert := ca.ClientCert(t, "anyone")
		if status, body := get(t, client(s.trust(t), &cert), s.URL+"/stats/summary"); status != http.StatusOK {
			t.Errorf("%d %q, want 200", status, body)
		}
		if status, _ := get(t, client(s.trust(t), nil), s.URL+"/stats/summary"); status != http.StatusUnauthorized {
			t.Errorf("no certificate: %d, want 401", status)
		}
	})
	t.Run("anonymous everything, when insisted on", func(t *testing.T) {
		s := startSecure(t, "--anonymous-auth", "--insecure-allow-anonymous-all")
		if status, _ := get(t, client(nil, nil), s.URL+"/stats/summary"); status != http.StatusOK {
			t.Errorf("anonymous: %d, want 200", status)
		}
	})
}

func TestUnsafeOrImpossibleFlagsAreRefused(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow"}, "--insecure-allow-anonymous-all"},
		{[]string{"--anonymous-auth"}, "--insecure-allow-anonymous-all"},
		{[]string{"--authorization-mode=Webhook"}, "needs --kubeconfig"},
		{[]string{"--authentication-token-webhook=true"}, "needs --kubeconfig"},
		{[]string{"--tls-cert-file=/etc/x.crt"}, "--tls-private-key-file"},
		{[]string{"--client-ca-file=/nonexistent/ca.crt", "--port=" + strconv.Itoa(serverproc.FreePort(t))}, "/nonexistent/ca.crt"},
		{[]string{"--kubeconfig=/nonexistent/kubeconfig", "--port=" + strconv.Itoa(serverproc.FreePort(t))}, "--kubeconfig"},
	} {
		args := append([]string{"--healthz-port=0", "--cert-dir=" + t.TempDir(), "--housekeeping-interval=1s", "--stats-retention=10s"}, tt.args...)
		out, err := exec.Command(serverBinary, args...).CombinedOutput()
		if err == nil {
			t.Errorf("%v: exited 0, want a refusal", tt.args)
			continue
		}
		if !bytes.Contains(out, []byte(tt.want)) {
			t.Errorf("%v: output does not mention %s:\n%s", tt.args, tt.want, lastLines(out, 5))
		}
	}
}

func lastLines(out []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// TestCacheTTLFlags checks that the TTL flags reach the caches: within the
// TTL the webhook is asked once, after it again.
func TestCacheTTLFlags(t *testing.T) {
	const ttl = 500 * time.Millisecond
	api := authtest.NewAPIServer(t)
	api.SetToken("t", authenticationv1.UserInfo{Username: "alice"})
	s := startSecure(t, "--kubeconfig="+api.WriteKubeconfig(t, t.TempDir()),
		"--authentication-token-webhook-cache-ttl="+ttl.String(),
		"--authorization-webhook-cache-authorized-ttl="+ttl.String())
	c := client(s.trust(t), nil)
	start := time.Now()
	if status, _ := get(t, c, s.URL+"/stats/summary", "Authorization", "Bearer t"); status != http.StatusOK {
		t.Fatalf("status %d", status)
	}
	for {
		if status, _ := get(t, c, s.URL+"/stats/summary", "Authorization", "Bearer t"); status != http.StatusOK {
			t.Fatalf("status %d", status)
		}
		elapsed := time.Since(start)
		tokens, reviews := api.TokenReviews(), api.AccessReviews()
		if tokens == 1 && reviews == 1 {
			if elapsed > 50*ttl {
				t.Fatalf("still cached after %v", elapsed)
			}
			time.Sleep(ttl / 10) // poll interval
			continue
		}
		if elapsed < ttl {
			t.Fatalf("webhooks asked again (%d TokenReviews, %d SubjectAccessReviews) after %v, within the TTL %v", tokens, reviews, elapsed, ttl)
		}
		return
	}
}

// TestLoad sends 2,000 authenticated requests from 32 keep-alive
// connections, twice, and reads the server's own go_goroutines and heap
// from its metrics afterwards.
func TestLoad(t *testing.T) {
	const connections, requests = 32, 2000
	ca := authtest.NewCA(t, "ca")
	api := authtest.NewAPIServer(t)
	dir := t.TempDir()
	caFile := filepath.Join(dir, "ca.crt")
	authtest.WriteFile(t, caFile, ca.CertPEM)
	s := startSecure(t, "--client-ca-file="+caFile, "--kubeconfig="+api.WriteKubeconfig(t, dir), "-v=0")
	roots := s.trust(t)
	clients := make([]*http.Client, connections)
	for i := range clients {
		cert := ca.ClientCert(t, fmt.Sprintf("scraper-%d", i))
		clients[i] = client(roots, &cert)
		clients[i].Transport.(*http.Transport).MaxConnsPerHost = 1
	}
	round := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		var failures atomic.Int64
		for i, c := range clients {
			wg.Go(func() {
				for n := i; n < requests; n += connections {
					resp, err := c.Get(s.URL + "/stats/summary")
					if err == nil {
						_, err = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if err == nil && resp.StatusCode != http.StatusOK {
							err = fmt.Errorf("status %d", resp.StatusCode)
						}
					}
					if err != nil && failures.Add(1) <= 5 {
						t.Errorf("request %d: %v", n, err)
					}
				}
			})
		}
		wg.Wait()
		if failures.Load() > 0 {
			t.Fatalf("%d of %d requests failed", failures.Load(), requests)
		}
		return time.Since(start)
	}
	closeAll := func() {
		for _, c := range clients {
			c.CloseIdleConnections()
		}
	}
	round()
	closeAll()
	baseline := settledMetric(t, s.Base, "go_goroutines", 0)
	heapBefore := metric(t, s.Base, "go_memstats_heap_inuse_bytes")
	elapsed := round() + round()
	closeAll()
	after := settledMetric(t, s.Base, "go_goroutines", baseline)
	if after > baseline {
		t.Errorf("server goroutines %v after the load, %v before", after, baseline)
	}
	t.Logf("%d requests over %d connections in %v (%.0f req/s); server goroutines %v -> %v; heap in use %.1f MiB -> %.1f MiB, RSS %.1f MiB; reviews: %d SubjectAccessReviews",
		2*requests, connections, elapsed, 2*requests/elapsed.Seconds(), baseline, after,
		heapBefore/(1<<20), metric(t, s.Base, "go_memstats_heap_inuse_bytes")/(1<<20),
		metric(t, s.Base, "process_resident_memory_bytes")/(1<<20), api.AccessReviews())
	if n := api.AccessReviews(); n != connections {
		t.Errorf("%d SubjectAccessReviews for %d users, want one each (cached)", n, connections)
	}
}

// metric reads one unlabelled sample from the read-only port's /metrics.
func metric(t *testing.T, base, name string) float64 {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	scanner := bufio.NewScanner(resp.Body)
	for scanner.Scan() {
		if value, ok := strings.CutPrefix(scanner.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

// settledMetric polls name until it is at most target (or, with target 0,
// the same twice in a row): connection goroutines end only once the
// server reads the client's close.
func settledMetric(t *testing.T, base, name string, target float64) float64 {
	t.Helper()
	last := -1.0
	for polls := 0; polls < 200; polls++ {
		v := metric(t, base, name)
		if (target > 0 && v <= target) || (target == 0 && v == last) {
			return v
		}
		last = v
		time.Sleep(20 * time.Millisecond) // poll interval
	}
	return metric(t, base, name)
}
