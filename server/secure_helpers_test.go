package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/internal/reviewclient"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// testNodeName is the node the secure test servers authorize requests for.
const testNodeName = "test-node"

// secureTestServer is a SecurePort on a real loopback TLS listener.
type secureTestServer struct {
	URL         string
	port        *SecurePort
	servingPool *x509.CertPool
	log         *logLines
}

// startSecurePort serves a SecurePort built from authCfg and tlsCfg (an
// empty CertDir means a fresh temporary one) until the test ends.
func startSecurePort(t testing.TB, authCfg AuthConfig, tlsCfg TLSConfig) *secureTestServer {
	t.Helper()
	return startSecurePortWith(t, Config{}, authCfg, tlsCfg)
}

// startSecurePortWith is startSecurePort with cfg; without a logger in cfg
// the server logs into the returned server's log.
func startSecurePortWith(t testing.TB, cfg Config, authCfg AuthConfig, tlsCfg TLSConfig) *secureTestServer {
	t.Helper()
	if authCfg.NodeName == "" {
		authCfg.NodeName = testNodeName
	}
	if tlsCfg.CertDir == "" && tlsCfg.CertFile == "" {
		tlsCfg.CertDir = t.TempDir()
	}
	if tlsCfg.SelfSignedHosts == nil {
		tlsCfg.SelfSignedHosts = []string{testNodeName, "localhost", "127.0.0.1"}
	}
	ts := &secureTestServer{log: &logLines{}}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = ts.log.logger()
	}
	if authCfg.Logger.GetSink() == nil {
		authCfg.Logger = cfg.Logger
	}
	auth, err := NewAuth(authCfg)
	if err != nil {
		t.Fatalf("NewAuth: %v", err)
	}
	src := &fakeSource{}
	src.publish(1, craftedSummary(), cpuAndMemorySummary())
	port, err := NewSecurePort(cfg, tlsCfg, auth, src, &fakeHealth{})
	if err != nil {
		t.Fatalf("NewSecurePort: %v", err)
	}
	ts.port = port
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	port.Run(ctx)

	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := port.HTTPServer(listener.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.ServeTLS(listener, "", "") }()
	t.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	ts.URL = "https://" + listener.Addr().String()

	ts.servingPool = x509.NewCertPool()
	certFile := tlsCfg.CertFile
	if certFile == "" {
		certFile = filepath.Join(tlsCfg.CertDir, selfSignedCertName)
	}
	if pemBytes, err := os.ReadFile(certFile); err == nil {
		ts.servingPool.AppendCertsFromPEM(pemBytes)
	}
	return ts
}

// client returns a client that trusts the server's certificate and, when
// cert is not nil, presents cert whatever CAs the server asks for.
func (ts *secureTestServer) client(cert *tls.Certificate) *http.Client {
	conf := &tls.Config{RootCAs: ts.servingPool}
	if cert != nil {
		conf.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: conf}}
}

// get sends one request and returns status and body.
func (ts *secureTestServer) get(t testing.TB, client *http.Client, method, path string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	return resp.StatusCode, string(body)
}

// webhookAuthConfig authenticates tokens and authorizes through api.
func webhookAuthConfig(t testing.TB, api *authtest.APIServer) AuthConfig {
	t.Helper()
	config := api.RESTConfig()
	config.QPS = -1 // no client-side rate limit: tests count the reviews, not the throttling
	reviews, err := reviewclient.New(config)
	if err != nil {
		t.Fatal(err)
	}
	return AuthConfig{
		TokenReviewClient:         reviews,
		TokenCacheTTL:             2 * time.Minute,
		AuthorizationMode:         AuthorizationModeWebhook,
		SubjectAccessReviewClient: reviews,
		AuthorizedCacheTTL:        5 * time.Minute,
		UnauthorizedCacheTTL:      30 * time.Second,
	}
}

// writeCA writes ca's certificate into dir as a client CA file.
func writeCA(t testing.TB, dir string, ca *authtest.CA) string {
	t.Helper()
	path := filepath.Join(dir, "client-ca.crt")
	authtest.WriteFile(t, path, ca.CertPEM)
	return path
}
