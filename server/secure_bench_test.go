package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"testing"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// BenchmarkSecureHandler is the secure port's share of a cached scrape, the
// handler chain alone as in BenchmarkSummaryCachedHandler, for each way in:
// what the auth filter adds per request once the webhook answers are cached.
func BenchmarkSecureHandler(b *testing.B) {
	src := &fakeSource{}
	full := syntheticSummary(benchPods, benchContainers)
	src.publish(1, full, full)
	ca := authtest.NewCA(b, "ca")
	api := authtest.NewAPIServer(b)
	api.SetToken("token", authenticationv1.UserInfo{Username: "metrics-server"})
	webhooks := webhookAuthConfig(b, api)
	webhooks.ClientCAFile = writeCA(b, b.TempDir(), ca)
	clientCert := ca.ClientCert(b, "kube-apiserver-kubelet-client")
	leaf, err := x509.ParseCertificate(clientCert.Certificate[0])
	if err != nil {
		b.Fatal(err)
	}
	alwaysAllow := AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: webhooks.ClientCAFile}

	for _, bench := range []struct {
		name    string
		cfg     AuthConfig
		request func() *http.Request
	}{
		{"x509 AlwaysAllow", alwaysAllow, func() *http.Request {
			r := httptest.NewRequest("GET", "/stats/summary", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
			return r
		}},
		{"x509 Webhook cached", webhooks, func() *http.Request {
			r := httptest.NewRequest("GET", "/stats/summary", nil)
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
			return r
		}},
		{"token Webhook cached", webhooks, func() *http.Request {
			r := httptest.NewRequest("GET", "/stats/summary", nil)
			r.Header.Set("Authorization", "Bearer token")
			return r
		}},
	} {
		b.Run(bench.name, func(b *testing.B) {
			bench.cfg.NodeName = testNodeName
			auth, err := NewAuth(bench.cfg)
			if err != nil {
				b.Fatal(err)
			}
			h := newSecureHandler(Config{Logger: discardLogger()}, auth, src, &fakeHealth{}, encodeSummary)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, bench.request())
			if rec.Code != http.StatusOK {
				b.Fatalf("status %d: %s", rec.Code, rec.Body)
			}
			b.ReportAllocs()
			for b.Loop() {
				h.ServeHTTP(discardWriter{header: http.Header{}}, bench.request())
			}
		})
	}
}
