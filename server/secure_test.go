package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// handshake connects to ts with conf and returns the connection state.
func (ts *secureTestServer) handshake(conf *tls.Config) (tls.ConnectionState, error) {
	conn, err := tls.Dial("tcp", strings.TrimPrefix(ts.URL, "https://"), conf)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer conn.Close()
	return conn.ConnectionState(), nil
}

// presented is the leaf certificate ts presents now.
func (ts *secureTestServer) presented(t *testing.T) *x509.Certificate {
	t.Helper()
	state, err := ts.handshake(&tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	return state.PeerCertificates[0]
}

func TestSelfSignedCertificateIsGeneratedAndKept(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	hosts := []string{testNodeName, "node.example", "localhost", "127.0.0.1", "::1"}
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{CertDir: dir, SelfSignedHosts: hosts})

	certPEM, err := os.ReadFile(filepath.Join(dir, selfSignedCertName))
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, selfSignedKeyName))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	leaf := authtest.ParseCertificate(t, certPEM)
	if !slices.Equal(leaf.DNSNames, []string{testNodeName, "node.example", "localhost"}) {
		t.Errorf("DNS names %v", leaf.DNSNames)
	}
	var ips []string
	for _, ip := range leaf.IPAddresses {
		ips = append(ips, ip.String())
	}
	if !slices.Equal(ips, []string{"127.0.0.1", "::1"}) {
		t.Errorf("IP addresses %v", ips)
	}
	if !slices.Equal(leaf.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}) {
		t.Errorf("extended key usage %v, want server auth", leaf.ExtKeyUsage)
	}
	if got := ts.presented(t); !got.Equal(leaf) {
		t.Errorf("presented %s, want the certificate in %s", got.Subject, dir)
	}
	// The file is a usable CA bundle for clients: the verifying client works.
	if status, _ := ts.get(t, ts.client(nil), "GET", "/healthz"); status != http.StatusUnauthorized {
		t.Errorf("verified request: %d, want 401", status)
	}

	restarted := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{CertDir: dir, SelfSignedHosts: []string{"renamed-node"}})
	if got := restarted.presented(t); !got.Equal(leaf) {
		t.Errorf("after a restart presented %s, want the kept certificate %s", got.Subject, leaf.Subject)
	}
}

func TestSelfSignedCertificateFromMemoryWhenCertDirIsUnwritable(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	authtest.WriteFile(t, file, []byte("not a directory"))
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{CertDir: filepath.Join(file, "pki")})
	if got := ts.presented(t); !slices.Contains(got.DNSNames, testNodeName) {
		t.Errorf("presented %v, want a self-signed certificate for %s", got.DNSNames, testNodeName)
	}
	if len(ts.log.matching("Cannot keep the self-signed serving certificate")) != 1 {
		t.Error("the fallback is not logged")
	}
}

func TestServingCertificateRotation(t *testing.T) {
	ca := authtest.NewCA(t, "serving-ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert1, key1 := ca.ServingPair(t, "127.0.0.1")
	authtest.WriteFile(t, certFile, cert1)
	authtest.WriteFile(t, keyFile, key1)
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{CertFile: certFile, KeyFile: keyFile})
	verify := &tls.Config{RootCAs: ca.Pool()}

	state, err := ts.handshake(verify)
	if err != nil {
		t.Fatalf("handshake with the first certificate: %v", err)
	}
	if !state.PeerCertificates[0].Equal(authtest.ParseCertificate(t, cert1)) {
		t.Fatal("first handshake does not present the certificate file")
	}

	for _, step := range []struct {
		name    string
		replace func(t testing.TB, path string, data []byte)
	}{
		{"rename over the files", authtest.ReplaceFile},
		{"rewrite the files in place", authtest.WriteFile},
	} {
		certPEM, keyPEM := ca.ServingPair(t, "127.0.0.1")
		want := authtest.ParseCertificate(t, certPEM)
		step.replace(t, keyFile, keyPEM)
		step.replace(t, certFile, certPEM)
		// Poll handshakes: every one must succeed (the old pair is served
		// until the new one is complete), and one must present the new one.
		for handshakes := 1; ; handshakes++ {
			state, err := ts.handshake(verify)
			if err != nil {
				t.Fatalf("%s: handshake %d failed during rotation: %v", step.name, handshakes, err)
			}
			if state.PeerCertificates[0].Equal(want) {
				t.Logf("%s: new certificate presented at handshake %d", step.name, handshakes)
				break
			}
			time.Sleep(10 * time.Millisecond) // poll interval
		}
	}
}

// TestServingCertificateSwappedThroughAbsence removes the pair, serves on
// from memory while the files are gone, and must pick up a new pair written
// afterwards at once, and every later rotation too: the files' directory is
// what is watched, so their absence loses no watch.
func TestServingCertificateSwappedThroughAbsence(t *testing.T) {
	ca := authtest.NewCA(t, "serving-ca")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	cert1, key1 := ca.ServingPair(t, "127.0.0.1")
	authtest.WriteFile(t, certFile, cert1)
	authtest.WriteFile(t, keyFile, key1)
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, TLSConfig{CertFile: certFile, KeyFile: keyFile})
	verify := &tls.Config{RootCAs: ca.Pool()}
	presents := func(want *x509.Certificate) bool {
		t.Helper()
		state, err := ts.handshake(verify)
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		return state.PeerCertificates[0].Equal(want)
	}

	for _, f := range []string{certFile, keyFile} {
		if err := os.Remove(f); err != nil {
			t.Fatal(err)
		}
	}
	// The files stay away for a while (the scenario, not a wait for
	// anything): the old pair is served meanwhile.
	for absent := time.Now(); time.Since(absent) < 300*time.Millisecond; time.Sleep(10 * time.Millisecond) {
		if !presents(authtest.ParseCertificate(t, cert1)) {
			t.Fatal("the certificate changed while the files were absent")
		}
	}
	for _, step := range []struct {
		name  string
		write func(t testing.TB, path string, data []byte)
	}{
		{"new pair after the absence", authtest.WriteFile},
		{"in-place rotation after that", authtest.WriteFile},
		{"rename over the files after that", authtest.ReplaceFile},
	} {
		certPEM, keyPEM := ca.ServingPair(t, "127.0.0.1")
		want := authtest.ParseCertificate(t, certPEM)
		step.write(t, keyFile, keyPEM)
		step.write(t, certFile, certPEM)
		start := time.Now()
		for !presents(want) {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: still the old certificate 3s after the new files were written", step.name)
			}
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		t.Logf("%s: presented after %v", step.name, time.Since(start))
	}
}

func TestClientCARotation(t *testing.T) {
	oldCA, newCA := authtest.NewCA(t, "old-client-ca"), authtest.NewCA(t, "new-client-ca")
	caFile := writeCA(t, t.TempDir(), oldCA)
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: caFile}, TLSConfig{})
	oldCert, newCert := oldCA.ClientCert(t, "old-user"), newCA.ClientCert(t, "new-user")

	if status, _ := ts.get(t, ts.client(&oldCert), "GET", "/healthz"); status != http.StatusOK {
		t.Fatalf("old CA before rotation: %d, want 200", status)
	}
	if status, _ := ts.get(t, ts.client(&newCert), "GET", "/healthz"); status != http.StatusUnauthorized {
		t.Fatalf("new CA before rotation: %d, want 401", status)
	}

	authtest.ReplaceFile(t, caFile, newCA.CertPEM)
	for polls := 1; ; polls++ {
		// A fresh client per poll, so that each request is a new handshake.
		status, _ := ts.get(t, ts.client(&newCert), "GET", "/healthz")
		if status == http.StatusOK {
			t.Logf("new client CA accepted after %d polls", polls)
			break
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if status, _ := ts.get(t, ts.client(&oldCert), "GET", "/healthz"); status != http.StatusUnauthorized {
		t.Errorf("old CA after rotation: %d, want 401", status)
	}
	// The handshake's certificate request names the new CA too, so that
	// clients holding several certificates pick the right one.
	for {
		var acceptable [][]byte
		_, err := ts.handshake(&tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(req *tls.CertificateRequestInfo) (*tls.Certificate, error) {
			acceptable = req.AcceptableCAs
			return &newCert, nil
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(acceptable) == 1 && bytes.Equal(acceptable[0], newCA.Cert.RawSubject) {
			break
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}

func TestClientCertificateIsRequestedOnlyWithAClientCA(t *testing.T) {
	for _, withCA := range []bool{false, true} {
		cfg := AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, Anonymous: true}
		if withCA {
			cfg.ClientCAFile = writeCA(t, t.TempDir(), authtest.NewCA(t, "ca"))
		}
		ts := startSecurePort(t, cfg, TLSConfig{})
		asked := false
		if _, err := ts.handshake(&tls.Config{InsecureSkipVerify: true, GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			asked = true
			return &tls.Certificate{}, nil
		}}); err != nil {
			t.Fatal(err)
		}
		if asked != withCA {
			t.Errorf("client CA %v: client certificate requested = %v", withCA, asked)
		}
	}
}

func TestTLSVersionsCipherSuitesAndProtocols(t *testing.T) {
	tests := []struct {
		name   string
		server TLSConfig
		client *tls.Config
		ok     bool
	}{
		{"default accepts TLS 1.2", TLSConfig{}, &tls.Config{MaxVersion: tls.VersionTLS12}, true},
		{"default refuses TLS 1.1", TLSConfig{}, &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, false},
		{"VersionTLS13 refuses TLS 1.2", TLSConfig{MinVersion: "VersionTLS13"}, &tls.Config{MaxVersion: tls.VersionTLS12}, false},
		{"VersionTLS13 accepts TLS 1.3", TLSConfig{MinVersion: "VersionTLS13"}, &tls.Config{MinVersion: tls.VersionTLS13}, true},
		{"cipher suite offered",
			TLSConfig{CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}},
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}}, true},
		{"cipher suite not offered",
			TLSConfig{CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}},
			&tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow}, tt.server)
			tt.client.InsecureSkipVerify = true
			tt.client.NextProtos = []string{"h2", "http/1.1"}
			state, err := ts.handshake(tt.client)
			if (err == nil) != tt.ok {
				t.Fatalf("handshake error = %v, want success %v", err, tt.ok)
			}
			if err != nil {
				return
			}
			if state.NegotiatedProtocol != "h2" {
				t.Errorf("negotiated protocol %q, want h2", state.NegotiatedProtocol)
			}
			if len(tt.server.CipherSuites) > 0 && tls.CipherSuiteName(state.CipherSuite) != tt.server.CipherSuites[0] {
				t.Errorf("cipher suite %s", tls.CipherSuiteName(state.CipherSuite))
			}
		})
	}
}

// TestSecurePortProtocols: HTTP/2 and HTTP/1.1 are both negotiated and
// served, and a client whose ALPN list shares nothing with ours still
// completes the handshake and is served HTTP/1.x, as by a kubelet.
func TestSecurePortProtocols(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: writeCA(t, t.TempDir(), ca)}, TLSConfig{})
	cert := ca.ClientCert(t, "scraper")
	for _, tt := range []struct {
		offer     []string
		wantALPN  string
		wantProto string
	}{
		{[]string{"h2", "http/1.1"}, "h2", "HTTP/2.0"},
		{[]string{"http/1.1"}, "http/1.1", "HTTP/1.1"},
		{nil, "", "HTTP/1.1"},
		{[]string{"http/1.0"}, "", "HTTP/1.1"},
		{[]string{"spdy/3", "acme-tls/1"}, "", "HTTP/1.1"},
	} {
		client := ts.client(&cert)
		transport := client.Transport.(*http.Transport)
		transport.TLSClientConfig.NextProtos = tt.offer
		// Without this a Transport with its own TLS config never speaks h2.
		transport.ForceAttemptHTTP2 = slices.Contains(tt.offer, "h2")
		var negotiated string
		transport.DialTLSContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := (&tls.Dialer{Config: transport.TLSClientConfig}).DialContext(ctx, network, addr)
			if err == nil {
				negotiated = conn.(*tls.Conn).ConnectionState().NegotiatedProtocol
			}
			return conn, err
		}
		resp, err := client.Get(ts.URL + "/healthz")
		if err != nil {
			t.Errorf("ALPN %q: %v", tt.offer, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(body) != "ok" || resp.Proto != tt.wantProto || negotiated != tt.wantALPN {
			t.Errorf("ALPN %q: %d %q over %s (negotiated %q), want 200 ok over %s (%q)", tt.offer, resp.StatusCode, body, resp.Proto, negotiated, tt.wantProto, tt.wantALPN)
		}
	}
}

// TestSecurePortHTTP2Settings reads the server's first SETTINGS frame: the
// streams a client may open at once on one connection are bounded.
func TestSecurePortHTTP2Settings(t *testing.T) {
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, Anonymous: true}, TLSConfig{})
	conn, err := tls.Dial("tcp", strings.TrimPrefix(ts.URL, "https://"), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	framer := http2.NewFramer(conn, conn)
	if err := framer.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for {
		frame, err := framer.ReadFrame()
		if err != nil {
			t.Fatalf("no SETTINGS frame from the server: %v", err)
		}
		settings, ok := frame.(*http2.SettingsFrame)
		if !ok || settings.IsAck() {
			continue
		}
		if v, ok := settings.Value(http2.SettingMaxConcurrentStreams); !ok || v != http2MaxConcurrentStreams {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d (sent %v), want %d", v, ok, http2MaxConcurrentStreams)
		}
		return
	}
}

// TestHTTP2OffWithoutAnHTTP2Cipher: a --tls-cipher-suites list that HTTP/2
// forbids entirely (RFC 7540 appendix A) turns h2 off instead of failing
// every h2 client with INADEQUATE_SECURITY after the handshake.
func TestHTTP2OffWithoutAnHTTP2Cipher(t *testing.T) {
	for _, tt := range []struct {
		cfg  TLSConfig
		want []string
	}{
		{TLSConfig{}, []string{"h2", "http/1.1"}},
		{TLSConfig{CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}}, []string{"h2", "http/1.1"}},
		{TLSConfig{CipherSuites: []string{"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA"}}, []string{"h2", "http/1.1"}},
		{TLSConfig{CipherSuites: []string{"TLS_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}, []string{"http/1.1"}},
		{TLSConfig{MinVersion: "VersionTLS13", CipherSuites: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}}, []string{"h2", "http/1.1"}},
	} {
		conf, err := baseTLSConfig(discardLogger(), tt.cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(conf.NextProtos, tt.want) {
			t.Errorf("%+v: NextProtos %q, want %q", tt.cfg, conf.NextProtos, tt.want)
		}
	}
}

func TestNewSecurePortErrors(t *testing.T) {
	auth, err := NewAuth(AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	authtest.WriteFile(t, filepath.Join(dir, "garbage.crt"), []byte("not a certificate"))
	authtest.WriteFile(t, filepath.Join(dir, "lonely.crt"), []byte("a certificate without its key"))
	tests := []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{"certificate without key", TLSConfig{CertFile: "/etc/tls.crt"}, "give both or neither"},
		{"missing files", TLSConfig{CertFile: filepath.Join(dir, "no.crt"), KeyFile: filepath.Join(dir, "no.key")}, "no.crt"},
		{"garbage", TLSConfig{CertFile: filepath.Join(dir, "garbage.crt"), KeyFile: filepath.Join(dir, "garbage.crt")}, "garbage.crt"},
		{"bad version", TLSConfig{CertDir: dir, SelfSignedHosts: []string{"n"}, MinVersion: "TLS1.2"}, "TLS minimum version"},
		{"bad cipher", TLSConfig{CertDir: dir, SelfSignedHosts: []string{"n"}, CipherSuites: []string{"TLS_NOPE"}}, "TLS cipher suites"},
		{"no host for the self-signed certificate", TLSConfig{CertDir: t.TempDir()}, "no host name"},
		{"half a pair in the cert dir", TLSConfig{CertDir: halfPairDir(t)}, "must be supplied as a pair"},
	}
	for _, tt := range tests {
		if _, err := NewSecurePort(Config{Logger: discardLogger()}, tt.cfg, auth, &fakeSource{}, nil); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: NewSecurePort() = %v, want an error containing %q", tt.name, err, tt.want)
		}
	}
}

// halfPairDir is a cert dir holding a self-signed certificate without its
// key.
func halfPairDir(t *testing.T) string {
	dir := t.TempDir()
	authtest.WriteFile(t, filepath.Join(dir, selfSignedCertName), []byte("lonely"))
	return dir
}

func TestSplitHosts(t *testing.T) {
	ips, names := splitHosts([]string{"node", "10.0.0.1", "", "fe80::1", "node.example"})
	if len(ips) != 2 || ips[0].String() != "10.0.0.1" || ips[1].String() != "fe80::1" {
		t.Errorf("ips = %v", ips)
	}
	if !slices.Equal(names, []string{"node", "node.example"}) {
		t.Errorf("names = %v", names)
	}
}

func TestSecurePortKeepsTheServerGuards(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: writeCA(t, t.TempDir(), ca)}, TLSConfig{})
	srv := ts.port.HTTPServer("127.0.0.1:10250")
	if srv.TLSConfig == nil || srv.ReadHeaderTimeout != readHeaderTimeout || srv.IdleTimeout != idleTimeout ||
		srv.MaxHeaderBytes != maxHeaderBytes || srv.WriteTimeout != writeTimeout {
		t.Errorf("secure server settings %+v, want NewHTTPServer's plus TLS", srv)
	}
	cert := ca.ClientCert(t, "scraper")
	req, err := http.NewRequest("POST", ts.URL+"/stats/summary", strings.NewReader("a="+strings.Repeat("x", 2<<20)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := ts.client(&cert).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("2 MiB form body: %d, want 413", resp.StatusCode)
	}
	if len(ts.log.matching(`"msg"="HTTP"`, `"status"=413`)) != 1 {
		t.Error("the request is not in the access log")
	}
}
