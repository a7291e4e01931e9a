package server

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/klog/v2"
)

const (
	// certResyncInterval re-reads the files even without an event, as a
	// safety net (a file behind a symlink into another directory changes
	// without an event in the watched one). It is upstream's interval.
	certResyncInterval = time.Minute
	// certWatchRetryInterval is how soon a watch that failed (its directory
	// was removed) is set up again.
	certWatchRetryInterval = time.Second
)

// certKeyFiles is the serving certificate and key read from two files,
// re-read when they change. It stands in for k8s.io/apiserver's
// DynamicCertKeyPairContent, which watches the two files themselves: when
// they are removed (a pair swapped through absence) that watch cannot be set
// up again until they are back, and it tries only once a minute, so a new
// pair waited up to a minute, and later rotations too. Watching the files'
// directories instead sees them come back at once; it also sees the
// Kubernetes secret volume's swap of its ..data symlink.
type certKeyFiles struct {
	name              string
	certFile, keyFile string
	logger            klog.Logger
	current           atomic.Pointer[certKeyPair]
	// listeners are added before Run and only read after.
	listeners []dynamiccertificates.Listener
}

type certKeyPair struct{ cert, key []byte }

var _ dynamiccertificates.CertKeyContentProvider = (*certKeyFiles)(nil)

// newCertKeyFiles reads the pair; it fails when the files do not hold a
// matching certificate and key.
func newCertKeyFiles(logger klog.Logger, name, certFile, keyFile string) (*certKeyFiles, error) {
	c := &certKeyFiles{name: name, certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// Name identifies the pair in the controller's logs.
func (c *certKeyFiles) Name() string {
	return fmt.Sprintf("%s::%s::%s", c.name, c.certFile, c.keyFile)
}

// CurrentCertKeyContent is the last complete pair read.
func (c *certKeyFiles) CurrentCertKeyContent() ([]byte, []byte) {
	p := c.current.Load()
	return p.cert, p.key
}

// AddListener is told about every new pair. Call it before Run.
func (c *certKeyFiles) AddListener(l dynamiccertificates.Listener) {
	c.listeners = append(c.listeners, l)
}

// load makes the files' pair current when it is complete, valid and new. A
// half-written pair (the certificate written, not yet its key) fails here
// and the current one stays.
func (c *certKeyFiles) load() error {
	cert, err := os.ReadFile(c.certFile)
	if err != nil {
		return fmt.Errorf("read serving certificate: %w", err)
	}
	key, err := os.ReadFile(c.keyFile)
	if err != nil {
		return fmt.Errorf("read serving key: %w", err)
	}
	if _, err := tls.X509KeyPair(cert, key); err != nil {
		return fmt.Errorf("serving certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if p := c.current.Load(); p != nil && bytes.Equal(p.cert, cert) && bytes.Equal(p.key, key) {
		return nil
	}
	c.current.Store(&certKeyPair{cert: cert, key: key})
	c.logger.Info("Loaded the serving certificate", "certFile", c.certFile, "keyFile", c.keyFile)
	for _, l := range c.listeners {
		l.Enqueue()
	}
	return nil
}

// Run follows the files until ctx ends.
func (c *certKeyFiles) Run(ctx context.Context) {
	var lastErr string
	for {
		err := c.watch(ctx)
		if ctx.Err() != nil {
			return
		}
		// Logged once per kind of failure, not every retry.
		if err.Error() != lastErr {
			c.logger.Error(err, "Cannot watch the serving certificate files; retrying", "retryIn", certWatchRetryInterval)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(certWatchRetryInterval):
		}
	}
}

// watch reloads the pair on every event in the files' directories and every
// certResyncInterval, until ctx ends (nil) or a directory goes away.
func (c *certKeyFiles) watch(ctx context.Context) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("create file watcher: %w", err)
	}
	defer w.Close()
	dirs := c.dirs()
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	// The files may have changed before the watch was set up.
	c.reload()
	resync := time.NewTicker(certResyncInterval)
	defer resync.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case e, ok := <-w.Events:
			if !ok {
				return errors.New("file watcher closed")
			}
			if slices.Contains(dirs, e.Name) && e.Has(fsnotify.Remove|fsnotify.Rename) {
				return fmt.Errorf("directory %s was removed or renamed", e.Name)
			}
			c.reload()
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			return fmt.Errorf("file watcher: %w", err)
		case <-resync.C:
			c.reload()
		}
	}
}

// reload is load for the watch: a pair that cannot be read or is incomplete
// now is not an error, the current one is served until the files are whole.
func (c *certKeyFiles) reload() {
	if err := c.load(); err != nil {
		c.logger.V(2).Info("Serving certificate files not loadable now; serving the current pair", "err", err)
	}
}

// dirs are the directories holding the two files, once each.
func (c *certKeyFiles) dirs() []string {
	certDir, keyDir := filepath.Dir(filepath.Clean(c.certFile)), filepath.Dir(filepath.Clean(c.keyFile))
	if certDir == keyDir {
		return []string{certDir}
	}
	return []string{certDir, keyDir}
}
