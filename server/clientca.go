package server

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"
)

// clientCAFile is the --client-ca-file bundle, re-read when it changes
// (followFiles), in place of k8s.io/apiserver's DynamicFileCAContent: the
// x509 authenticator verifies client certificates against the bundle read
// last, and the serving TLS configuration names its CAs to clients.
type clientCAFile struct {
	file    string
	logger  klog.Logger
	current atomic.Pointer[caBundle]
	// listeners are added before Run and only read after.
	listeners []listener
}

// caBundle is one complete read of the file.
type caBundle struct {
	pem  []byte
	pool *x509.CertPool
}

// newClientCAFile reads the bundle; it fails when the file holds no
// certificate or anything that is not one.
func newClientCAFile(logger klog.Logger, file string) (*clientCAFile, error) {
	c := &clientCAFile{file: file, logger: logger}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// AddListener is told about every new bundle. Call it before Run.
func (c *clientCAFile) AddListener(l listener) {
	c.listeners = append(c.listeners, l)
}

// bundle is the last bundle read.
func (c *clientCAFile) bundle() *caBundle {
	return c.current.Load()
}

// verifyOptions verify a client certificate as k8s.io/apiserver's x509
// authenticator does: chained to the bundle, valid for client auth.
func (c *clientCAFile) verifyOptions() x509.VerifyOptions {
	return x509.VerifyOptions{
		Roots:     c.current.Load().pool,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
}

// load makes the file's bundle current when it is valid and new. An empty
// or half-written file fails here and the current bundle stays.
func (c *clientCAFile) load() error {
	data, err := os.ReadFile(c.file)
	if err != nil {
		return fmt.Errorf("read client CA file: %w", err)
	}
	if len(data) == 0 {
		return fmt.Errorf("client CA file %s is empty", c.file)
	}
	if b := c.current.Load(); b != nil && bytes.Equal(b.pem, data) {
		return nil
	}
	pool, err := certutil.NewPoolFromBytes(data)
	if err != nil {
		return fmt.Errorf("client CA file %s: %w", c.file, err)
	}
	c.current.Store(&caBundle{pem: data, pool: pool})
	c.logger.Info("Loaded the client CA bundle", "file", c.file)
	for _, l := range c.listeners {
		l.Enqueue()
	}
	return nil
}

// reload is load for the watch: a file that cannot be read or is
// incomplete now is not an error, the current bundle is used until it is
// whole.
func (c *clientCAFile) reload() {
	if err := c.load(); err != nil {
		c.logger.V(2).Info("Client CA file not loadable now; using the current bundle", "err", err)
	}
}

// Run follows the file until ctx ends.
func (c *clientCAFile) Run(ctx context.Context) {
	followFiles(ctx, c.logger, "client CA file", c.reload, c.file)
}
