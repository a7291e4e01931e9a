package app

import (
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"

	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// SecureOptions are the flags of the secure port and the healthz port, with
// the kubelet's names. Defaults are the kubelet's configuration-file
// defaults (anonymous off, token webhook on, authorization Webhook), which
// need an API server. Without --kubeconfig there is none to ask, so unless
// those flags were given explicitly the secure port runs standalone: no
// token authentication and AlwaysAllow for authenticated users, which with
// anonymous off means the holders of a client certificate from
// --client-ca-file, and nobody when that is not given either.
type SecureOptions struct {
	Port               int
	TLSCertFile        string
	TLSPrivateKeyFile  string
	CertDir            string
	TLSMinVersion      string
	TLSCipherSuites    []string
	ClientCAFile       string
	Kubeconfig         string
	AnonymousAuth      bool
	TokenWebhook       bool
	TokenWebhookTTL    time.Duration
	AuthorizationMode  string
	AuthorizedTTL      time.Duration
	UnauthorizedTTL    time.Duration
	AllowAnonymousAll  bool
	HealthzPort        int
	HealthzBindAddress string

	// Standalone is set by Validate when the webhook defaults were turned
	// off for want of --kubeconfig.
	Standalone bool
	// authzDefaulted is set by Validate when AlwaysAllow replaced the
	// Webhook default for want of --kubeconfig (not given on the command
	// line), so that refusals name the right reason.
	authzDefaulted bool

	// flagChanged reports whether a flag was given on the command line;
	// nil (no AddFlags) means none was.
	flagChanged func(name string) bool
}

// NewSecureOptions returns the kubelet's defaults.
func NewSecureOptions() SecureOptions {
	return SecureOptions{
		Port:               10250,
		CertDir:            "/var/lib/kubelet/pki",
		TokenWebhook:       true,
		TokenWebhookTTL:    2 * time.Minute,
		AuthorizationMode:  server.AuthorizationModeWebhook,
		AuthorizedTTL:      5 * time.Minute,
		UnauthorizedTTL:    30 * time.Second,
		HealthzPort:        10248,
		HealthzBindAddress: "127.0.0.1",
	}
}

// AddFlags registers the flags on fs.
func (o *SecureOptions) AddFlags(fs *pflag.FlagSet) {
	o.flagChanged = fs.Changed
	fs.IntVar(&o.Port, "port", o.Port,
		"Port of the secure HTTPS server, where every request is authenticated and authorized like on the kubelet's port (0 disables it).")
	fs.StringVar(&o.TLSCertFile, "tls-cert-file", o.TLSCertFile,
		"Serving certificate of the secure port (with intermediates after it), re-read when it changes. Without it and --tls-private-key-file, a self-signed certificate for the node's name and addresses is generated once and kept in --cert-dir.")
	fs.StringVar(&o.TLSPrivateKeyFile, "tls-private-key-file", o.TLSPrivateKeyFile,
		"Private key of --tls-cert-file.")
	fs.StringVar(&o.CertDir, "cert-dir", o.CertDir,
		"Directory keeping the self-signed certificate (kubelet-stats-server.crt and .key). Ignored with --tls-cert-file and --tls-private-key-file.")
	fs.StringVar(&o.TLSMinVersion, "tls-min-version", o.TLSMinVersion,
		"Minimum TLS version of the secure port. Possible values: "+strings.Join(cliflag.TLSPossibleVersions(), ", ")+". Empty means VersionTLS12.")
	fs.StringSliceVar(&o.TLSCipherSuites, "tls-cipher-suites", o.TLSCipherSuites,
		"Comma-separated list of cipher suites of the secure port. If omitted, the default Go cipher suites will be used.\n"+
			"Preferred values: "+strings.Join(cliflag.PreferredTLSCipherNames(), ", ")+".\n"+
			"Insecure values: "+strings.Join(cliflag.InsecureTLSCipherNames(), ", ")+".")
	fs.StringVar(&o.ClientCAFile, "client-ca-file", o.ClientCAFile,
		"CA bundle that client certificates are verified against; the certificate's CommonName is the user and its Organizations the groups. Re-read when it changes.")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig,
		"Kubeconfig of the API server that answers TokenReviews (--authentication-token-webhook) and SubjectAccessReviews (--authorization-mode=Webhook).")
	fs.BoolVar(&o.AnonymousAuth, "anonymous-auth", o.AnonymousAuth,
		"Let requests that no other method authenticated through as user system:anonymous in group system:unauthenticated, to be authorized like any other.")
	fs.BoolVar(&o.TokenWebhook, "authentication-token-webhook", o.TokenWebhook,
		"Authenticate bearer tokens with TokenReviews sent to the API server of --kubeconfig. Turned off when --kubeconfig is empty, unless given explicitly.")
	fs.DurationVar(&o.TokenWebhookTTL, "authentication-token-webhook-cache-ttl", o.TokenWebhookTTL,
		"How long TokenReview answers are reused.")
	fs.StringVar(&o.AuthorizationMode, "authorization-mode", o.AuthorizationMode,
		"Authorization of the secure port: Webhook (SubjectAccessReviews sent to the API server of --kubeconfig) or AlwaysAllow. Without --kubeconfig, AlwaysAllow unless given explicitly.")
	fs.DurationVar(&o.AuthorizedTTL, "authorization-webhook-cache-authorized-ttl", o.AuthorizedTTL,
		"How long 'authorized' SubjectAccessReview answers are reused.")
	fs.DurationVar(&o.UnauthorizedTTL, "authorization-webhook-cache-unauthorized-ttl", o.UnauthorizedTTL,
		"How long 'unauthorized' SubjectAccessReview answers are reused.")
	fs.BoolVar(&o.AllowAnonymousAll, "insecure-allow-anonymous-all", o.AllowAnonymousAll,
		"Allow --anonymous-auth=true together with AlwaysAllow authorization, which gives everyone who reaches the secure port everything it serves.")
	fs.IntVar(&o.HealthzPort, "healthz-port", o.HealthzPort,
		"Port of the plain-HTTP healthz server, which answers ok without authentication while the process serves (0 disables it).")
	fs.StringVar(&o.HealthzBindAddress, "healthz-bind-address", o.HealthzBindAddress,
		"IP address of the healthz server.")
}

// Validate checks the values and resolves the standalone defaults.
func (o *SecureOptions) Validate() error {
	for _, p := range []struct {
		flag string
		port int
	}{{"--port", o.Port}, {"--healthz-port", o.HealthzPort}} {
		if p.port < 0 || p.port > 65535 {
			return fmt.Errorf("%s %d: must be between 0 and 65535", p.flag, p.port)
		}
	}
	if net.ParseIP(o.HealthzBindAddress) == nil {
		return fmt.Errorf("--healthz-bind-address %q: not an IP address", o.HealthzBindAddress)
	}
	if (o.TLSCertFile == "") != (o.TLSPrivateKeyFile == "") {
		return fmt.Errorf("--tls-cert-file %q and --tls-private-key-file %q: give both or neither", o.TLSCertFile, o.TLSPrivateKeyFile)
	}
	if _, err := cliflag.TLSVersion(o.TLSMinVersion); err != nil {
		return fmt.Errorf("--tls-min-version: %w", err)
	}
	if _, err := cliflag.TLSCipherSuites(o.TLSCipherSuites); err != nil {
		return fmt.Errorf("--tls-cipher-suites: %w", err)
	}
	switch o.AuthorizationMode {
	case server.AuthorizationModeWebhook, server.AuthorizationModeAlwaysAllow:
	default:
		return fmt.Errorf("--authorization-mode %q: must be %s or %s", o.AuthorizationMode,
			server.AuthorizationModeWebhook, server.AuthorizationModeAlwaysAllow)
	}
	for _, ttl := range []struct {
		flag string
		d    time.Duration
	}{
		{"--authentication-token-webhook-cache-ttl", o.TokenWebhookTTL},
		{"--authorization-webhook-cache-authorized-ttl", o.AuthorizedTTL},
		{"--authorization-webhook-cache-unauthorized-ttl", o.UnauthorizedTTL},
	} {
		if ttl.d < 0 {
			return fmt.Errorf("%s %s: must not be negative", ttl.flag, ttl.d)
		}
	}
	if o.Kubeconfig == "" {
		if err := o.resolveStandalone(); err != nil {
			return err
		}
	}
	if o.Port > 0 && o.AnonymousAuth && o.AuthorizationMode == server.AuthorizationModeAlwaysAllow && !o.AllowAnonymousAll {
		mode := "--authorization-mode=AlwaysAllow"
		if o.authzDefaulted {
			mode = "AlwaysAllow authorization (the default without --kubeconfig)"
		}
		return fmt.Errorf("--anonymous-auth=true with %s lets anyone who reaches port %d read everything it serves; "+
			"turn --anonymous-auth off, use --authorization-mode=Webhook with --kubeconfig, or accept it with --insecure-allow-anonymous-all",
			mode, o.Port)
	}
	return nil
}

// resolveStandalone turns off the webhooks that have no API server to ask,
// unless they were asked for explicitly: then, like the kubelet, it is an
// error.
func (o *SecureOptions) resolveStandalone() error {
	changed := o.flagChanged
	if changed == nil {
		changed = func(string) bool { return false }
	}
	if o.TokenWebhook {
		if changed("authentication-token-webhook") {
			return fmt.Errorf("--authentication-token-webhook needs --kubeconfig: TokenReviews go to its API server")
		}
		o.TokenWebhook = false
		o.Standalone = true
	}
	if o.AuthorizationMode == server.AuthorizationModeWebhook {
		if changed("authorization-mode") {
			return fmt.Errorf("--authorization-mode=Webhook needs --kubeconfig: SubjectAccessReviews go to its API server")
		}
		o.AuthorizationMode = server.AuthorizationModeAlwaysAllow
		o.authzDefaulted = true
		o.Standalone = true
	}
	return nil
}
