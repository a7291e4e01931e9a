package app

import (
	"context"
	"errors"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/server"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

func TestSelfSignedHosts(t *testing.T) {
	machine := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.0.0.5"), net.ParseIP("fe80::1"), net.ParseIP("::1"), net.ParseIP("2001:db8::5")}
	tests := []struct {
		node, hostname, address string
		want                    []string
	}{
		{"node-1", "node-1", "0.0.0.0", []string{"node-1", "localhost", "127.0.0.1", "10.0.0.5", "::1", "2001:db8::5"}},
		{"node-1", "host-1", "::", []string{"node-1", "host-1", "localhost", "127.0.0.1", "10.0.0.5", "::1", "2001:db8::5"}},
		{"node-1", "", "10.0.0.5", []string{"node-1", "localhost", "10.0.0.5"}},
		{"127.0.0.1", "host", "127.0.0.1", []string{"127.0.0.1", "host", "localhost"}},
	}
	for _, tt := range tests {
		if got := selfSignedHosts(tt.node, tt.hostname, tt.address, machine); !slices.Equal(got, tt.want) {
			t.Errorf("selfSignedHosts(%q, %q, %q) = %v, want %v", tt.node, tt.hostname, tt.address, got, tt.want)
		}
	}
}

// TestAPIServerClientsFromKubeconfig sends a TokenReview and a
// SubjectAccessReview through the client built from a kubeconfig file, as
// the secure port's webhooks do.
func TestAPIServerClientsFromKubeconfig(t *testing.T) {
	api := authtest.NewAPIServer(t)
	api.SetToken("t", authenticationv1.UserInfo{Username: "alice"})
	kubeconfig := api.WriteKubeconfig(t, t.TempDir())
	reviews, err := apiServerClient(kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	review, err := reviews.CreateTokenReview(ctx, &authenticationv1.TokenReview{Spec: authenticationv1.TokenReviewSpec{Token: "t"}})
	if err != nil || !review.Status.Authenticated || review.Status.User.Username != "alice" {
		t.Errorf("TokenReview = %+v, %v", review, err)
	}
	sar, err := reviews.CreateSubjectAccessReview(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Subresource: "stats"},
	}})
	if err != nil || !sar.Status.Allowed {
		t.Errorf("SubjectAccessReview = %+v, %v", sar, err)
	}

	if _, err := apiServerClient(filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "--kubeconfig") {
		t.Errorf("missing kubeconfig: %v, want an error naming --kubeconfig", err)
	}
}

func TestRunPorts(t *testing.T) {
	logger := klog.Background()
	t.Run("all stop when one fails", func(t *testing.T) {
		stopped := make(chan struct{})
		failure := errors.New("listen: address in use")
		err := runPorts(context.Background(), logger, []portServer{
			func(ctx context.Context, _ *server.Listeners) error { <-ctx.Done(); close(stopped); return nil },
			func(context.Context, *server.Listeners) error { return failure },
		})
		if !errors.Is(err, failure) {
			t.Errorf("runPorts() = %v, want the failure", err)
		}
		select {
		case <-stopped:
		default:
			t.Error("the healthy port was not stopped before runPorts returned")
		}
	})
	t.Run("context end is a clean stop", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := runPorts(ctx, logger, []portServer{func(ctx context.Context, _ *server.Listeners) error { <-ctx.Done(); return nil }}); err != nil {
			t.Errorf("runPorts() = %v", err)
		}
		if err := runPorts(ctx, logger, nil); err != nil {
			t.Errorf("runPorts(no ports) = %v", err)
		}
	})
}

func TestServePortNamesABusyPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	srv := &http.Server{Addr: taken.Addr().String()}
	err = servePort(context.Background(), klog.Background(), "secure", "/stats/summary", srv, time.Second, func(ln net.Listener) net.Listener { return ln })
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "secure port") || !strings.Contains(err.Error(), "kubelet") {
		t.Errorf("servePort on a busy port = %v, want EADDRINUSE naming the port and the likely kubelet", err)
	}
}
