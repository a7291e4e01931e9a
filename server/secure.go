package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/klog/v2"
)

// Names of the self-signed pair in TLSConfig.CertDir. The kubelet calls its
// own kubelet.crt and kubelet.key; ours differ so that the two never share a
// key when they share a directory on one node.
const (
	selfSignedCertName = "kubelet-stats-server.crt"
	selfSignedKeyName  = "kubelet-stats-server.key"
)

// TLSConfig is the secure port's TLS configuration (the kubelet's --tls-*
// and --cert-dir flags).
type TLSConfig struct {
	// CertFile and KeyFile are the serving certificate (with intermediates)
	// and its key, re-read when either changes. Empty means a self-signed
	// pair in CertDir.
	CertFile, KeyFile string
	// CertDir keeps the self-signed pair, generated at the first start when
	// it is missing, so that clients that pinned it keep working across
	// restarts.
	CertDir string
	// SelfSignedHosts are the names and IP addresses the self-signed
	// certificate is valid for; the first is its subject.
	SelfSignedHosts []string
	// MinVersion is a crypto/tls version name (VersionTLS12, VersionTLS13);
	// empty means TLS 1.2.
	MinVersion string
	// CipherSuites are IANA cipher suite names for TLS 1.2 and below; empty
	// means Go's defaults.
	CipherSuites []string
}

// SecurePort is the kubelet's port 10250: every route behind the
// authentication and authorization filter, over TLS whose serving
// certificate and client CA follow their files.
type SecurePort struct {
	handler   http.Handler
	tlsConfig *tls.Config
	runners   []func(context.Context)
}

// NewSecurePort builds the secure port's handler and TLS configuration
// (auth from NewAuth, src as for NewReadOnlyHandler). Call Run to follow
// certificate changes, and serve HTTPServer with ServeTLS(listener, "", "").
func NewSecurePort(cfg Config, tlsCfg TLSConfig, auth *Auth, src SnapshotSource, health HealthChecker) (*SecurePort, error) {
	cfg = cfg.withDefaults()
	base, err := baseTLSConfig(cfg.Logger, tlsCfg)
	if err != nil {
		return nil, err
	}
	cert, err := servingCertificate(cfg.Logger, tlsCfg)
	if err != nil {
		return nil, err
	}
	if auth.clientCA != nil {
		// Ask for a client certificate without verifying it in the
		// handshake: the x509 authenticator verifies it, and a request
		// without one may still carry a token (kubelet.go).
		base.ClientAuth = tls.RequestClientCert
	}
	serving, err := newServingTLS(cfg.Logger, base, cert, auth.clientCA)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate and client CA: %w", err)
	}
	p := &SecurePort{
		handler: newSecureHandler(cfg, auth, src, health, encodeSummary),
		// GetConfigForClient hands every handshake the latest config; the
		// fields here only satisfy net/http's checks.
		tlsConfig: &tls.Config{MinVersion: base.MinVersion, GetConfigForClient: serving.configForClient},
		runners:   []func(context.Context){auth.Run},
	}
	if auth.clientCA != nil {
		auth.clientCA.AddListener(serving)
	}
	if files, ok := cert.(*certKeyFiles); ok {
		files.AddListener(serving)
		p.runners = append(p.runners, func(ctx context.Context) { go files.Run(ctx) })
	}
	return p, nil
}

// Run follows the serving certificate and client CA files until ctx ends.
func (p *SecurePort) Run(ctx context.Context) {
	for _, run := range p.runners {
		run(ctx)
	}
}

// http2MaxConcurrentStreams is how many requests one HTTP/2 connection may
// have in flight: k8s.io/apiserver's default for its own secure port (the
// clients' initial assumption too), below Go's 250, since every stream may
// hold a handler goroutine and a body buffer.
const http2MaxConcurrentStreams = 100

// HTTPServer is NewHTTPServer for the secure port, with its TLS
// configuration and HTTP/2.
func (p *SecurePort) HTTPServer(addr string) *http.Server {
	srv := NewHTTPServer(addr, p.handler)
	srv.TLSConfig = p.tlsConfig
	srv.HTTP2 = &http.HTTP2Config{MaxConcurrentStreams: http2MaxConcurrentStreams}
	return srv
}

// newSecureHandler is the read-only routes with the auth filter in front of
// every one of them.
func newSecureHandler(cfg Config, auth *Auth, src SnapshotSource, health HealthChecker, encode summaryEncoder) http.Handler {
	return newHandler(cfg, src, health, encode, authFilter(cfg.Logger, auth))
}

// baseTLSConfig is the static part of the serving configuration, checked
// as the kubelet's InitializeTLS checks it.
func baseTLSConfig(logger klog.Logger, cfg TLSConfig) (*tls.Config, error) {
	minVersion, err := cliflag.TLSVersion(cfg.MinVersion)
	if err != nil {
		return nil, fmt.Errorf("TLS minimum version: %w", err)
	}
	suites, err := cliflag.TLSCipherSuites(cfg.CipherSuites)
	if err != nil {
		return nil, fmt.Errorf("TLS cipher suites: %w", err)
	}
	insecure := cliflag.InsecureTLSCiphers()
	for _, name := range cfg.CipherSuites {
		if _, ok := insecure[name]; ok {
			logger.Info("Use of insecure cipher detected.", "cipher", name)
		}
	}
	if minVersion == tls.VersionTLS13 && len(suites) > 0 {
		logger.Info("Warning: TLS 1.3 cipher suites are not configurable, ignoring the TLS cipher suites")
	}
	protos := []string{"h2", "http/1.1"}
	if minVersion < tls.VersionTLS13 && len(cfg.CipherSuites) > 0 && !slices.ContainsFunc(cfg.CipherSuites, http2Cipher) {
		logger.Info("Warning: HTTP/2 is off on the secure port: RFC 7540 forbids every one of the TLS cipher suites", "cipherSuites", cfg.CipherSuites)
		protos = []string{"http/1.1"}
	}
	return &tls.Config{
		MinVersion:   minVersion,
		CipherSuites: suites,
		// HTTP/2 first, as the API server offers it: its node proxy and
		// metrics-server then multiplex their requests over one connection.
		NextProtos: protos,
	}, nil
}

// http2Cipher reports whether HTTP/2 allows a TLS 1.2 cipher suite: RFC 7540
// appendix A forbids all but the ephemeral-key AEAD ones.
func http2Cipher(name string) bool {
	return strings.HasPrefix(name, "TLS_ECDHE_") && (strings.Contains(name, "_GCM_") || strings.Contains(name, "_CHACHA20_POLY1305"))
}

// servingCertificate returns the serving certificate's content: the given
// files, else the self-signed pair kept in cfg.CertDir, generated when it
// cannot be read (the kubelet's InitializeTLS); files are a *certKeyFiles
// to follow. When cfg.CertDir cannot be written the new pair is served from
// memory, so that a non-root trial run still starts; it is then new at
// every start.
func servingCertificate(logger klog.Logger, cfg TLSConfig) (certKeyContent, error) {
	certFile, keyFile := cfg.CertFile, cfg.KeyFile
	switch {
	case certFile != "" && keyFile != "":
	case certFile != "" || keyFile != "":
		return nil, fmt.Errorf("TLS certificate file %q and key file %q: give both or neither", certFile, keyFile)
	default:
		certFile = filepath.Join(cfg.CertDir, selfSignedCertName)
		keyFile = filepath.Join(cfg.CertDir, selfSignedKeyName)
		readable, err := certutil.CanReadCertAndKey(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("check self-signed certificate in %s: %w", cfg.CertDir, err)
		}
		if !readable {
			cert, key, err := generateSelfSigned(cfg.SelfSignedHosts)
			if err != nil {
				return nil, err
			}
			if err := writePair(certFile, keyFile, cert, key); err != nil {
				logger.Error(err, "Cannot keep the self-signed serving certificate; serving it from memory, a new one at every start", "certDir", cfg.CertDir)
				return staticCertKey{cert: cert, key: key}, nil
			}
			logger.Info("Generated a self-signed serving certificate", "certFile", certFile, "hosts", cfg.SelfSignedHosts)
		}
	}
	content, err := newCertKeyFiles(logger, "serving-cert", certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load serving certificate %s and key %s: %w", certFile, keyFile, err)
	}
	return content, nil
}

// writePair stores a key (0600) and its certificate (0644), creating their
// directory. It leaves neither behind when it fails, because a lone file
// makes the next start fail ("must be supplied as a pair").
func writePair(certFile, keyFile string, cert, key []byte) error {
	if err := keyutil.WriteKey(keyFile, key); err != nil {
		return fmt.Errorf("write %s: %w", keyFile, err)
	}
	if err := certutil.WriteCert(certFile, cert); err != nil {
		_ = os.Remove(keyFile)
		return fmt.Errorf("write %s: %w", certFile, err)
	}
	return nil
}

// generateSelfSigned makes a certificate signed by a throwaway CA (both in
// the returned PEM, as client-go's generator does), valid for a year.
func generateSelfSigned(hosts []string) (cert, key []byte, err error) {
	if len(hosts) == 0 {
		return nil, nil, fmt.Errorf("self-signed certificate: no host name")
	}
	ips, names := splitHosts(hosts[1:])
	cert, key, err = certutil.GenerateSelfSignedCertKey(hosts[0], ips, names)
	if err != nil {
		return nil, nil, fmt.Errorf("generate self-signed certificate: %w", err)
	}
	return cert, key, nil
}

// splitHosts separates IP addresses from DNS names.
func splitHosts(hosts []string) (ips []net.IP, names []string) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			ips = append(ips, ip)
		} else if h != "" {
			names = append(names, h)
		}
	}
	return ips, names
}
