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
// re-read when they change (followFiles), in place of k8s.io/apiserver's
// DynamicCertKeyPairContent.
type certKeyFiles struct {
	name              string
	certFile, keyFile string
	logger            klog.Logger
	current           atomic.Pointer[certKeyPair]
	// listeners are added before Run and only read after.
	listeners []listener
}

// listener is told that content it depends on changed (the serving TLS
// configuration, of a new serving pair or client CA).
type listener interface {
	Enqueue()
}

type certKeyPair struct{ cert, key []byte }

// newCertKeyFiles reads the pair; it fails when the files do not hold a
// matching certificate and key.
func newCertKeyFiles(logger klog.Logger, name, certFile, keyFile string) (*certKeyFiles, error) {
	c := &certKeyFiles{name: name, certFile: certFile, keyFile: keyFile, logger: logger}
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// CurrentCertKeyContent is the last complete pair read.
func (c *certKeyFiles) CurrentCertKeyContent() ([]byte, []byte) {
	p := c.current.Load()
	return p.cert, p.key
}

// AddListener is told about every new pair. Call it before Run.
func (c *certKeyFiles) AddListener(l listener) {
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
	c.logger.Info("Loaded the serving certificate", "name", c.name, "certFile", c.certFile, "keyFile", c.keyFile)
	for _, l := range c.listeners {
		l.Enqueue()
	}
	return nil
}

// Run follows the files until ctx ends.
func (c *certKeyFiles) Run(ctx context.Context) {
	followFiles(ctx, c.logger, "serving certificate files", c.reload, c.certFile, c.keyFile)
}

// followFiles calls reload on every event in the directories of files and
// every certResyncInterval until ctx ends, setting the watch up again
// certWatchRetryInterval after it fails (a directory was removed). It
// stands in for k8s.io/apiserver's file watches, which watch the files
// themselves: when a file is removed (swapped through absence) such a watch
// cannot be set up again until the file is back, and it is retried once a
// minute, so a new file waited up to a minute, and later rotations too.
// Watching the directories sees a file come back at once; it also sees the
// Kubernetes secret and configmap volumes' swap of their ..data symlink.
func followFiles(ctx context.Context, logger klog.Logger, what string, reload func(), files ...string) {
	var lastErr string
	for {
		err := watchFiles(ctx, reload, files)
		if ctx.Err() != nil {
			return
		}
		// Logged once per kind of failure, not every retry.
		if err.Error() != lastErr {
			logger.Error(err, "Cannot watch the "+what+"; retrying", "retryIn", certWatchRetryInterval)
			lastErr = err.Error()
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(certWatchRetryInterval):
		}
	}
}

// watchFiles calls reload on every event in the files' directories and
// every certResyncInterval, until ctx ends (nil) or a directory goes away.
func watchFiles(ctx context.Context, reload func(), files []string) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("create file watcher: %w", err)
	}
	defer w.Close()
	dirs := fileDirs(files)
	for _, dir := range dirs {
		if err := w.Add(dir); err != nil {
			return fmt.Errorf("watch %s: %w", dir, err)
		}
	}
	// The files may have changed before the watch was set up.
	reload()
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
			reload()
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file watcher closed")
			}
			return fmt.Errorf("file watcher: %w", err)
		case <-resync.C:
			reload()
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

// fileDirs are the directories holding files, each once.
func fileDirs(files []string) []string {
	var dirs []string
	for _, f := range files {
		if dir := filepath.Dir(filepath.Clean(f)); !slices.Contains(dirs, dir) {
			dirs = append(dirs, dir)
		}
	}
	return dirs
}
