package server

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

// TestClientCASwappedThroughAbsence removes the client CA file, keeps
// authenticating with the old bundle while it is gone, and must accept
// certificates of a new CA written afterwards within a few seconds, and
// after every later rotation too. (k8s.io/apiserver's watch of the file
// itself is set up again only once a minute after the file went away.)
func TestClientCASwappedThroughAbsence(t *testing.T) {
	oldCA := authtest.NewCA(t, "old-client-ca")
	caFile := writeCA(t, t.TempDir(), oldCA)
	ts := startSecurePort(t, AuthConfig{AuthorizationMode: AuthorizationModeAlwaysAllow, ClientCAFile: caFile}, TLSConfig{})
	status := func(ca *authtest.CA) int {
		t.Helper()
		cert := ca.ClientCert(t, "user-of-"+ca.Cert.Subject.CommonName)
		s, _ := ts.get(t, ts.client(&cert), "GET", "/healthz")
		return s
	}
	if s := status(oldCA); s != http.StatusOK {
		t.Fatalf("old CA before the swap: %d", s)
	}

	if err := os.Remove(caFile); err != nil {
		t.Fatal(err)
	}
	// The file stays away for a while (the scenario, not a wait for
	// anything): the old bundle is used meanwhile.
	for absent := time.Now(); time.Since(absent) < 300*time.Millisecond; time.Sleep(20 * time.Millisecond) {
		if s := status(oldCA); s != http.StatusOK {
			t.Fatalf("old CA while the file is absent: %d, want 200", s)
		}
	}
	for _, step := range []struct {
		name  string
		write func(t testing.TB, path string, data []byte)
	}{
		{"new CA after the absence", authtest.WriteFile},
		{"in-place rotation after that", authtest.WriteFile},
		{"rename over the file after that", authtest.ReplaceFile},
	} {
		ca := authtest.NewCA(t, strings.ReplaceAll(step.name, " ", "-"))
		step.write(t, caFile, ca.CertPEM)
		start := time.Now()
		for status(ca) != http.StatusOK {
			if time.Since(start) > 3*time.Second {
				t.Fatalf("%s: certificates of the new CA still refused 3s after it was written", step.name)
			}
			time.Sleep(10 * time.Millisecond) // poll interval
		}
		t.Logf("%s: accepted after %v", step.name, time.Since(start))
		if s := status(oldCA); s != http.StatusUnauthorized {
			t.Errorf("%s: the old CA still accepted (%d)", step.name, s)
		}
	}
}

// TestClientCAFileKeepsTheLastGoodBundle: an empty or broken file (one
// being written) is not loaded; the listener hears of each new bundle once.
func TestClientCAFileKeepsTheLastGoodBundle(t *testing.T) {
	dir := t.TempDir()
	first, second := authtest.NewCA(t, "first"), authtest.NewCA(t, "second")
	file := writeCA(t, dir, first)
	c, err := newClientCAFile(discardLogger(), file)
	if err != nil {
		t.Fatal(err)
	}
	var heard countingListener
	c.AddListener(&heard)
	for _, content := range [][]byte{nil, []byte("-----BEGIN CERTIFICATE-----\ngarbage"), first.CertPEM} {
		authtest.WriteFile(t, file, content)
		c.reload()
		if !bytes.Equal(c.bundle().pem, first.CertPEM) {
			t.Fatalf("after writing %q the bundle is %q", content, c.bundle().pem)
		}
	}
	authtest.WriteFile(t, file, append(append([]byte{}, first.CertPEM...), second.CertPEM...))
	c.reload()
	c.reload()
	if n := heard.n.Load(); n != 1 {
		t.Errorf("listener told %d times, want once", n)
	}
	for _, ca := range []*authtest.CA{first, second} {
		cert := ca.ClientCert(t, "u")
		if _, err := cert.Leaf.Verify(c.verifyOptions()); err != nil {
			t.Errorf("certificate of %s against the bundle of both: %v", ca.Cert.Subject.CommonName, err)
		}
	}

	for name, content := range map[string][]byte{"empty": nil, "garbage": []byte("not PEM"), "missing": nil} {
		path := filepath.Join(dir, name+".crt")
		if name != "missing" {
			authtest.WriteFile(t, path, content)
		}
		if _, err := newClientCAFile(discardLogger(), path); err == nil {
			t.Errorf("%s client CA file: no error", name)
		}
	}
}

// TestClientCAFileFollowsTheFile runs the follower alone: a rename over
// the file is picked up without a request to trigger it.
func TestClientCAFileFollowsTheFile(t *testing.T) {
	first, second := authtest.NewCA(t, "first"), authtest.NewCA(t, "second")
	file := writeCA(t, t.TempDir(), first)
	c, err := newClientCAFile(discardLogger(), file)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	authtest.ReplaceFile(t, file, second.CertPEM)
	deadline := time.Now().Add(5 * time.Second)
	for !bytes.Equal(c.bundle().pem, second.CertPEM) {
		if time.Now().After(deadline) {
			t.Fatal("the replaced file was not loaded within 5s")
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
}
