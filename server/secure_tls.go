package server

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// certKeyContent is a serving certificate (with intermediates) and its key,
// PEM: read from files (certKeyFiles) or made in memory (staticCertKey).
type certKeyContent interface {
	CurrentCertKeyContent() (cert, key []byte)
}

// staticCertKey is a pair that never changes.
type staticCertKey struct{ cert, key []byte }

func (s staticCertKey) CurrentCertKeyContent() ([]byte, []byte) { return s.cert, s.key }

// servingTLS keeps the secure port's TLS configuration current: the static
// settings plus the serving pair and the client CA bundle read last, rebuilt
// whenever either is told to have changed (Enqueue). It stands in for
// k8s.io/apiserver's DynamicServingCertificateController, which the kubelet
// uses: every handshake gets the latest configuration, so that a rotated
// certificate is presented, and a rotated client CA is named in the
// certificate request, without a restart.
type servingTLS struct {
	base     *tls.Config
	cert     certKeyContent
	clientCA *clientCAFile // nil without --client-ca-file
	logger   klog.Logger

	mu sync.Mutex // serializes rebuilds
	// servedCert, servedKey and servedCA are what current was built from.
	servedCert, servedKey []byte
	servedCA              *caBundle
	current               atomic.Pointer[tls.Config]
}

// newServingTLS builds the first configuration; it fails when the serving
// pair is not usable.
func newServingTLS(logger klog.Logger, base *tls.Config, cert certKeyContent, clientCA *clientCAFile) (*servingTLS, error) {
	s := &servingTLS{base: base, cert: cert, clientCA: clientCA, logger: logger}
	if err := s.sync(); err != nil {
		return nil, err
	}
	return s, nil
}

// Enqueue rebuilds the configuration from the current content. The sources
// only announce content they checked, so a failure here is unexpected; the
// configuration built last stays in use.
func (s *servingTLS) Enqueue() {
	if err := s.sync(); err != nil {
		s.logger.Error(err, "Cannot use the new serving certificate or client CA; serving the previous ones")
	}
}

// sync rebuilds the configuration when its content changed.
func (s *servingTLS) sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	certPEM, keyPEM := s.cert.CurrentCertKeyContent()
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		return fmt.Errorf("empty serving certificate or key")
	}
	var ca *caBundle
	if s.clientCA != nil {
		ca = s.clientCA.bundle()
	}
	if s.current.Load() != nil && ca == s.servedCA && bytes.Equal(certPEM, s.servedCert) && bytes.Equal(keyPEM, s.servedKey) {
		return nil
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("invalid serving certificate and key: %w", err)
	}
	conf := s.base.Clone()
	conf.Certificates = []tls.Certificate{pair}
	if ca != nil {
		conf.ClientCAs = ca.pool
	}
	s.current.Store(conf)
	s.servedCert, s.servedKey, s.servedCA = certPEM, keyPEM, ca
	return nil
}

// configForClient is the configuration for one handshake: a copy of the
// current one, without ALPN when the client offers none of our protocols.
// Go's server would fail such a handshake (no_application_protocol), while
// the kubelet, whose per-client configuration has no ALPN protocols, serves
// it HTTP/1.1. So do we, to an "http/1.0" or unknown-protocol-only client.
func (s *servingTLS) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	conf := s.current.Load().Clone()
	if len(hello.SupportedProtos) > 0 && !slices.ContainsFunc(hello.SupportedProtos, func(p string) bool {
		return slices.Contains(conf.NextProtos, p)
	}) {
		conf.NextProtos = nil
	}
	return conf, nil
}
