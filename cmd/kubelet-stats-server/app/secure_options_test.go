package app

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// parseSecure parses args into fresh secure options, as the command does.
func parseSecure(t *testing.T, args ...string) *SecureOptions {
	t.Helper()
	o := NewSecureOptions()
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	o.AddFlags(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return &o
}

func TestSecureOptionsValidate(t *testing.T) {
	tests := []struct {
		args    []string
		wantErr string
	}{
		{nil, ""},
		{[]string{"--kubeconfig=/etc/kubeconfig"}, ""},
		{[]string{"--port=0", "--healthz-port=0"}, ""},
		{[]string{"--port=65536"}, "--port"},
		{[]string{"--healthz-port=-1"}, "--healthz-port"},
		{[]string{"--healthz-bind-address=localhost"}, "--healthz-bind-address"},
		{[]string{"--tls-cert-file=/etc/tls.crt"}, "--tls-cert-file"},
		{[]string{"--tls-private-key-file=/etc/tls.key"}, "--tls-private-key-file"},
		{[]string{"--tls-min-version=TLS13"}, "--tls-min-version"},
		{[]string{"--tls-cipher-suites=TLS_RSA_WITH_NOTHING"}, "--tls-cipher-suites"},
		{[]string{"--authorization-mode=RBAC"}, "--authorization-mode"},
		{[]string{"--authorization-webhook-cache-authorized-ttl=-1s"}, "--authorization-webhook-cache-authorized-ttl"},
		{[]string{"--authentication-token-webhook-cache-ttl=-1s"}, "--authentication-token-webhook-cache-ttl"},
		// Asked for explicitly, the webhooks need an API server, as on the kubelet.
		{[]string{"--authorization-mode=Webhook"}, "--authorization-mode=Webhook needs --kubeconfig"},
		{[]string{"--authentication-token-webhook"}, "--authentication-token-webhook needs --kubeconfig"},
		// Anonymous and AlwaysAllow: everyone gets everything, only on request.
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow"}, "--insecure-allow-anonymous-all"},
		{[]string{"--anonymous-auth"}, "--insecure-allow-anonymous-all"},
		{[]string{"--anonymous-auth", "--kubeconfig=/k", "--authorization-mode=AlwaysAllow"}, "--insecure-allow-anonymous-all"},
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow", "--insecure-allow-anonymous-all"}, ""},
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow", "--port=0"}, ""},
		{[]string{"--anonymous-auth", "--kubeconfig=/k"}, ""},
	}
	for _, tt := range tests {
		o := parseSecure(t, tt.args...)
		err := o.Validate()
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("%v: Validate() = %v, want nil", tt.args, err)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("%v: Validate() = %v, want an error containing %q", tt.args, err, tt.wantErr)
		}
	}
}

func TestSecureOptionsStandalone(t *testing.T) {
	tests := []struct {
		args           []string
		wantMode       string
		wantWebhook    bool
		wantStandalone bool
	}{
		{nil, server.AuthorizationModeAlwaysAllow, false, true},
		{[]string{"--authentication-token-webhook=false"}, server.AuthorizationModeAlwaysAllow, false, true},
		{[]string{"--authorization-mode=AlwaysAllow"}, server.AuthorizationModeAlwaysAllow, false, true},
		{[]string{"--authorization-mode=AlwaysAllow", "--authentication-token-webhook=false"}, server.AuthorizationModeAlwaysAllow, false, false},
		{[]string{"--kubeconfig=/k"}, server.AuthorizationModeWebhook, true, false},
		{[]string{"--kubeconfig=/k", "--authorization-mode=AlwaysAllow"}, server.AuthorizationModeAlwaysAllow, true, false},
	}
	for _, tt := range tests {
		o := parseSecure(t, tt.args...)
		if err := o.Validate(); err != nil {
			t.Fatalf("%v: %v", tt.args, err)
		}
		if o.AuthorizationMode != tt.wantMode || o.TokenWebhook != tt.wantWebhook || o.Standalone != tt.wantStandalone {
			t.Errorf("%v: mode %s, token webhook %v, standalone %v; want %s, %v, %v", tt.args,
				o.AuthorizationMode, o.TokenWebhook, o.Standalone, tt.wantMode, tt.wantWebhook, tt.wantStandalone)
		}
	}
}

func TestReadOnlyPortIsOffByDefault(t *testing.T) {
	if port := NewOptions().ReadOnlyPort; port != 0 {
		t.Errorf("--read-only-port default %d, want 0", port)
	}
	o := NewOptions()
	if o.Secure.Port != 10250 || o.Secure.HealthzPort != 10248 || o.Secure.HealthzBindAddress != "127.0.0.1" {
		t.Errorf("secure defaults %+v, want the kubelet's ports", o.Secure)
	}
}

// TestAnonymousAlwaysAllowRefusalReason checks that the refusal of
// --anonymous-auth with AlwaysAllow says where AlwaysAllow came from: the
// flag, or the standalone default for want of --kubeconfig.
func TestAnonymousAlwaysAllowRefusalReason(t *testing.T) {
	const defaulted = "the default without --kubeconfig"
	tests := []struct {
		args    []string
		want    string
		notWant string
	}{
		{[]string{"--anonymous-auth"}, "AlwaysAllow authorization (" + defaulted, ""},
		{[]string{"--anonymous-auth", "--authentication-token-webhook=false"}, "AlwaysAllow authorization (" + defaulted, ""},
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow"}, "with --authorization-mode=AlwaysAllow lets", defaulted},
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow", "--authentication-token-webhook=false"}, "with --authorization-mode=AlwaysAllow lets", defaulted},
		{[]string{"--anonymous-auth", "--authorization-mode=AlwaysAllow", "--kubeconfig=/k"}, "with --authorization-mode=AlwaysAllow lets", defaulted},
	}
	for _, tt := range tests {
		err := parseSecure(t, tt.args...).Validate()
		if err == nil {
			t.Errorf("%v: Validate() = nil, want a refusal", tt.args)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) || (tt.notWant != "" && strings.Contains(err.Error(), tt.notWant)) {
			t.Errorf("%v: Validate() = %q, want it to contain %q and not %q", tt.args, err, tt.want, tt.notWant)
		}
	}
}
