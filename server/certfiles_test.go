package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// countingListener counts Enqueue calls, as the serving controller gets them.
type countingListener struct{ n atomic.Int64 }

func (l *countingListener) Enqueue() { l.n.Add(1) }

// TestCertKeyFilesDirectoryRecreated removes the files' whole directory and
// makes it again with a new pair, as a volume remount does: the watch is
// set up again and the pair is picked up within the retry interval.
func TestCertKeyFilesDirectoryRecreated(t *testing.T) {
	ca := authtest.NewCA(t, "ca")
	dir := filepath.Join(t.TempDir(), "pki")
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cert1, key1 := ca.ServingPair(t, "127.0.0.1")
	authtest.WriteFile(t, certFile, cert1)
	authtest.WriteFile(t, keyFile, key1)
	log := &logLines{}
	c, err := newCertKeyFiles(log.logger(), "test", certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var listener countingListener
	c.AddListener(&listener)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	// Wait until the watch noticed, so that the directory comes back to a
	// watcher that has to set itself up again.
	deadline := time.Now().Add(5 * time.Second)
	for len(log.matching("Cannot watch the serving certificate files")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the removed directory was not noticed")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if cert, _ := c.CurrentCertKeyContent(); !bytes.Equal(cert, cert1) {
		t.Fatal("the pair changed while the files were gone")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cert2, key2 := ca.ServingPair(t, "127.0.0.1")
	authtest.WriteFile(t, keyFile, key2)
	authtest.WriteFile(t, certFile, cert2)
	deadline = time.Now().Add(5 * certWatchRetryInterval)
	for {
		if cert, _ := c.CurrentCertKeyContent(); bytes.Equal(cert, cert2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("new pair not loaded %v after the directory came back", 5*certWatchRetryInterval)
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	if listener.n.Load() != 1 {
		t.Errorf("listener told %d times, want once for the one new pair", listener.n.Load())
	}
}
