package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/internal/reviewclient"
	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// The kubelet's client settings for its API server (--kube-api-qps,
// --kube-api-burst defaults), so that a burst of new tokens is not
// throttled by client-go's default of 5 QPS.
const (
	apiServerQPS   = 50
	apiServerBurst = 100
	// apiServerTimeout bounds one TokenReview or SubjectAccessReview, so that
	// a hung API server costs a request seconds, not the 4 h write timeout.
	apiServerTimeout = 10 * time.Second
)

// healthzRetryInterval is how often a healthz port that failed to listen is
// tried again. Like the kubelet, a busy healthz port is logged, not fatal.
const healthzRetryInterval = 5 * time.Second

// portServer serves one port until ctx ends (nil) or it fails, within
// limits shared by every port of the process.
type portServer func(ctx context.Context, limits *server.Listeners) error

// limitListener puts a port's connection limits on its listener.
type limitListener func(net.Listener) net.Listener

// servingLimits are the limits of the secure or read-only port called name.
func servingLimits(limits *server.Listeners, name string) limitListener {
	return func(ln net.Listener) net.Listener { return limits.Serving(ln, name) }
}

// securePorts builds the secure port and the healthz port, those of them
// that are on.
func securePorts(logger klog.Logger, opts *Options, cfg server.Config, src statsSource) ([]portServer, error) {
	var ports []portServer
	grace := opts.ShutdownGracePeriod
	if sec := opts.Secure; sec.Port > 0 {
		port, err := newSecurePort(logger, opts, cfg, src)
		if err != nil {
			return nil, err
		}
		srv := port.HTTPServer(net.JoinHostPort(opts.Address, strconv.Itoa(sec.Port)))
		ports = append(ports, func(ctx context.Context, limits *server.Listeners) error {
			port.Run(ctx)
			return servePort(ctx, logger, "secure", "/stats/summary", srv, grace, servingLimits(limits, "secure"))
		})
	}
	if sec := opts.Secure; sec.HealthzPort > 0 {
		srv := server.NewHTTPServer(net.JoinHostPort(sec.HealthzBindAddress, strconv.Itoa(sec.HealthzPort)), server.NewHealthzPortHandler())
		ports = append(ports, func(ctx context.Context, limits *server.Listeners) error {
			wait.UntilWithContext(ctx, func(ctx context.Context) {
				if err := servePort(ctx, logger, "healthz", "/healthz", srv, grace, limits.Healthz); err != nil {
					logger.Error(err, "Failed to serve the healthz port; trying again", "retryIn", healthzRetryInterval)
				}
			}, healthzRetryInterval)
			return nil
		})
	}
	return ports, nil
}

// statsSource is what the routes read: the provider.
type statsSource interface {
	server.SnapshotSource
	server.HealthChecker
}

// newSecurePort builds the secure port's authentication, authorization and
// TLS from the flags.
func newSecurePort(logger klog.Logger, opts *Options, cfg server.Config, src statsSource) (*server.SecurePort, error) {
	sec := opts.Secure
	authCfg := server.AuthConfig{
		Logger:               logger,
		NodeName:             opts.NodeName,
		ClientCAFile:         sec.ClientCAFile,
		TokenCacheTTL:        sec.TokenWebhookTTL,
		Anonymous:            sec.AnonymousAuth,
		AuthorizationMode:    sec.AuthorizationMode,
		AuthorizedCacheTTL:   sec.AuthorizedTTL,
		UnauthorizedCacheTTL: sec.UnauthorizedTTL,
	}
	if sec.Kubeconfig != "" {
		reviews, err := apiServerClient(sec.Kubeconfig)
		if err != nil {
			return nil, err
		}
		if sec.TokenWebhook {
			authCfg.TokenReviewClient = reviews
		}
		if sec.AuthorizationMode == server.AuthorizationModeWebhook {
			authCfg.SubjectAccessReviewClient = reviews
		}
	}
	auth, err := server.NewAuth(authCfg)
	if err != nil {
		return nil, fmt.Errorf("secure port authentication and authorization: %w", err)
	}
	logAuthSetup(logger, opts)

	port, err := server.NewSecurePort(cfg, server.TLSConfig{
		CertFile:        sec.TLSCertFile,
		KeyFile:         sec.TLSPrivateKeyFile,
		CertDir:         sec.CertDir,
		SelfSignedHosts: selfSignedHosts(opts.NodeName, hostname(), opts.Address, interfaceIPs(logger)),
		MinVersion:      sec.TLSMinVersion,
		CipherSuites:    sec.TLSCipherSuites,
	}, auth, src, src)
	if err != nil {
		return nil, fmt.Errorf("secure port: %w", err)
	}
	return port, nil
}

// logAuthSetup says who can get in, most of all when nobody can.
func logAuthSetup(logger klog.Logger, opts *Options) {
	sec := opts.Secure
	logger.Info("Secure port authentication and authorization",
		"clientCAFile", sec.ClientCAFile, "tokenWebhook", sec.TokenWebhook, "anonymous", sec.AnonymousAuth,
		"authorizationMode", sec.AuthorizationMode, "kubeconfig", sec.Kubeconfig)
	if sec.Standalone {
		logger.Info("No --kubeconfig: the secure port runs without an API server (no token authentication, AlwaysAllow authorization)")
	}
	if sec.ClientCAFile == "" && !sec.TokenWebhook && !sec.AnonymousAuth {
		logger.Info("Warning: the secure port authenticates nobody and answers every request 401; give --client-ca-file, --kubeconfig, or --anonymous-auth")
	}
}

// apiServerClient posts the TokenReviews and SubjectAccessReviews to the
// API server named by a kubeconfig file.
func apiServerClient(kubeconfig string) (*reviewclient.Client, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	config = rest.CopyConfig(config)
	config.QPS, config.Burst = apiServerQPS, apiServerBurst
	if config.Timeout == 0 {
		config.Timeout = apiServerTimeout
	}
	config.UserAgent = rest.DefaultKubernetesUserAgent()
	// The webhooks post JSON whatever the client prefers; say so for every
	// call, so that the wire format is one thing.
	config.ContentType = "application/json"
	client, err := reviewclient.New(config)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	return client, nil
}

// selfSignedHosts are the names and addresses a generated serving
// certificate is valid for: the node name first (the kubelet uses its
// hostname alone), then the hostname, and the address served on, or every
// address of the machine when that is a wildcard.
func selfSignedHosts(nodeName, hostname, address string, machineIPs []net.IP) []string {
	hosts := []string{nodeName}
	add := func(h string) {
		for _, seen := range hosts {
			if seen == h {
				return
			}
		}
		hosts = append(hosts, h)
	}
	if hostname != "" {
		add(hostname)
	}
	add("localhost")
	if ip := net.ParseIP(address); ip != nil && !ip.IsUnspecified() {
		add(ip.String())
		return hosts
	}
	for _, ip := range machineIPs {
		if ip.IsGlobalUnicast() || ip.IsLoopback() {
			add(ip.String())
		}
	}
	return hosts
}

func hostname() string {
	name, _ := os.Hostname()
	return name
}

// interfaceIPs are the machine's addresses; none when they cannot be read,
// which only narrows the self-signed certificate.
func interfaceIPs(logger klog.Logger) []net.IP {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		logger.Error(err, "Cannot list the machine's addresses for the self-signed certificate")
		return nil
	}
	var ips []net.IP
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			ips = append(ips, n.IP)
		}
	}
	return ips
}

// runPorts serves every port until ctx ends or one fails, then stops them
// all and returns the first failure. The ports share one set of connection
// limits, derived from the process's open-file limit.
func runPorts(ctx context.Context, logger klog.Logger, ports []portServer) error {
	if len(ports) == 0 {
		logger.Info("No port to serve on (--read-only-port, --port and --healthz-port are 0); collecting only")
		<-ctx.Done()
		return nil
	}
	limits, err := server.NewListeners(logger)
	if err != nil {
		return fmt.Errorf("connection limits: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(ports))
	for _, serve := range ports {
		go func() { errs <- serve(ctx, limits) }()
	}
	var first error
	for range ports {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	return first
}

// servePort listens before logging the URL of path, so that the line is
// only printed once a client can connect, takes connections within limit,
// serves TLS when srv has a TLS configuration, and shuts down gracefully
// when ctx ends.
func servePort(ctx context.Context, logger klog.Logger, name, path string, srv *http.Server, grace time.Duration, limit limitListener) error {
	listener, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			// The usual cause: a kubelet on this node holds the kubelet's ports.
			return fmt.Errorf("listen on %s (%s port): %w; is a kubelet or another instance serving it? Choose another port, or 0 to disable it", srv.Addr, name, err)
		}
		return fmt.Errorf("listen on %s (%s port): %w", srv.Addr, name, err)
	}
	listener = limit(listener)
	scheme := "http"
	if srv.TLSConfig != nil {
		scheme = "https"
	}
	logger.Info("Serving", "port", name, "url", scheme+"://"+listener.Addr().String()+path)
	served := make(chan error, 1)
	go func() {
		if srv.TLSConfig != nil {
			served <- srv.ServeTLS(listener, "", "")
		} else {
			served <- srv.Serve(listener)
		}
	}()
	select {
	case err := <-served:
		return fmt.Errorf("serve on %s (%s port): %w", srv.Addr, name, err)
	case <-ctx.Done():
	}
	return shutdown(logger, name, srv, grace)
}

// shutdown stops srv gracefully: no new connections, in-flight requests get
// grace to finish. A client that is still sending (a trickled body) or
// reading after that is cut off, because it must not decide how the process
// exits: the port stopped as asked, so this is not an error.
func shutdown(logger klog.Logger, name string, srv *http.Server, grace time.Duration) error {
	logger.Info("Shutting down", "port", name, "gracePeriod", grace)
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	err := srv.Shutdown(ctx)
	switch {
	case err == nil, errors.Is(err, http.ErrServerClosed):
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		logger.Info("Grace period over; closing the connections still open", "port", name, "gracePeriod", grace)
		if err := srv.Close(); err != nil {
			return fmt.Errorf("close the %s port on %s after the grace period: %w", name, srv.Addr, err)
		}
		return nil
	default:
		return fmt.Errorf("shut down the %s port on %s: %w", name, srv.Addr, err)
	}
}
