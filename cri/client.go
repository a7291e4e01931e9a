package cri

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/klog/v2"
)

const (
	// DefaultRequestTimeout is the kubelet's --runtime-request-timeout default.
	DefaultRequestTimeout = 2 * time.Minute

	// maxMsgSize is the kubelet's CRI message size limit (cri-client
	// remote_runtime.go); list responses on dense nodes exceed gRPC's 4 MiB
	// default.
	maxMsgSize = 16 * 1024 * 1024

	// Reconnect backoff as in the kubelet's cri-client: after a runtime
	// restart the connection comes back within seconds, not gRPC's default
	// two minutes.
	reconnectBaseDelay  = 100 * time.Millisecond
	reconnectMaxDelay   = 3 * time.Second
	minConnectTimeout   = 5 * time.Second
	versionRequestValue = "v1"
)

// ErrNoRuntime is returned by Dial when Config.Endpoint is empty and no
// default endpoint answers Version.
var ErrNoRuntime = errors.New("no CRI runtime found")

// Config says which runtime to talk to and how long to wait for it.
type Config struct {
	// Endpoint is "unix:///run/containerd/containerd.sock" or a plain
	// socket path. Empty means probe DefaultEndpoints.
	Endpoint string
	// RequestTimeout bounds every call, the probe's Version included
	// (--runtime-request-timeout), as r.timeout does in the kubelet's
	// cri-client: a runtime under load answers late rather than never, and
	// a shorter bound turns its slow answers into a stale pod view. Zero
	// means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// Logger receives connection and probing messages. The zero value
	// discards them.
	Logger klog.Logger
}

// Client is a read-only CRI client. It is safe for concurrent use. The
// underlying connection reconnects by itself after the runtime restarts.
type Client struct {
	endpoint string
	conn     *grpc.ClientConn
	runtime  runtimeapi.RuntimeServiceClient
	image    runtimeapi.ImageServiceClient
	timeout  time.Duration
}

// Dial returns a client for cfg.Endpoint without waiting for the runtime to
// be up: calls fail with codes.Unavailable until it is, and succeed again
// after a restart without re-dialing. With an empty Endpoint it probes
// DefaultEndpoints by calling Version and returns an error wrapping
// ErrNoRuntime if none answers.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	cfg = withDefaults(cfg)
	if cfg.Endpoint != "" {
		socketPath, err := parseEndpoint(cfg.Endpoint)
		if err != nil {
			return nil, err
		}
		return newClient(socketPath, cfg)
	}
	return probe(ctx, cfg, DefaultEndpoints())
}

func withDefaults(cfg Config) Config {
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	return cfg
}

// probe returns a client for the first candidate that answers Version.
// Candidates whose socket file does not exist are skipped without dialing.
func probe(ctx context.Context, cfg Config, candidates []string) (*Client, error) {
	var reasons []string
	for _, candidate := range candidates {
		socketPath, err := parseEndpoint(candidate)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		if _, err := os.Stat(socketPath); err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		c, err := newClient(socketPath, cfg)
		if err != nil {
			reasons = append(reasons, err.Error())
			continue
		}
		v, err := c.version(ctx)
		if err != nil {
			cfg.Logger.V(2).Info("CRI endpoint does not answer", "endpoint", c.endpoint, "err", err)
			reasons = append(reasons, err.Error())
			_ = c.Close()
			continue
		}
		cfg.Logger.V(1).Info("Found CRI runtime", "endpoint", c.endpoint, "runtime", v.RuntimeName, "version", v.RuntimeVersion)
		return c, nil
	}
	return nil, fmt.Errorf("%w (tried %s): %s", ErrNoRuntime, strings.Join(candidates, ", "), strings.Join(reasons, "; "))
}

func newClient(socketPath string, cfg Config) (*Client, error) {
	endpoint := endpointURL(socketPath)
	conn, err := grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxMsgSize), grpc.MaxCallSendMsgSize(maxMsgSize)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff: backoff.Config{
				BaseDelay:  reconnectBaseDelay,
				Multiplier: backoff.DefaultConfig.Multiplier,
				Jitter:     backoff.DefaultConfig.Jitter,
				MaxDelay:   reconnectMaxDelay,
			},
			MinConnectTimeout: minConnectTimeout,
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("create gRPC client for %s: %w", endpoint, err)
	}
	return &Client{
		endpoint: endpoint,
		conn:     conn,
		runtime:  runtimeapi.NewRuntimeServiceClient(conn),
		image:    runtimeapi.NewImageServiceClient(conn),
		timeout:  cfg.RequestTimeout,
	}, nil
}

// Endpoint is the runtime's socket as a unix:// URL.
func (c *Client) Endpoint() string { return c.endpoint }

// Close releases the connection.
func (c *Client) Close() error { return c.conn.Close() }

// version asks the runtime for its name and version: the probe's question.
func (c *Client) version(ctx context.Context) (*runtimeapi.VersionResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.Version(ctx, &runtimeapi.VersionRequest{Version: versionRequestValue})
	if err != nil {
		return nil, c.wrap("Version", err)
	}
	return resp, nil
}

// ListPodSandbox returns every sandbox the runtime knows, in any state.
func (c *Client) ListPodSandbox(ctx context.Context) ([]*runtimeapi.PodSandbox, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return nil, c.wrap("ListPodSandbox", err)
	}
	return resp.GetItems(), nil
}

// ListContainers returns every container the runtime knows, in any state.
func (c *Client) ListContainers(ctx context.Context) ([]*runtimeapi.Container, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.ListContainers(ctx, &runtimeapi.ListContainersRequest{})
	if err != nil {
		return nil, c.wrap("ListContainers", err)
	}
	return resp.GetContainers(), nil
}

// ListPodSandboxStats returns the runtime's stats of every sandbox.
// Runtimes that lack it answer codes.Unimplemented (see IsUnimplemented).
func (c *Client) ListPodSandboxStats(ctx context.Context) ([]*runtimeapi.PodSandboxStats, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.ListPodSandboxStats(ctx, &runtimeapi.ListPodSandboxStatsRequest{})
	if err != nil {
		return nil, c.wrap("ListPodSandboxStats", err)
	}
	return resp.GetStats(), nil
}

// ListContainerStats returns the runtime's stats of every container.
func (c *Client) ListContainerStats(ctx context.Context) ([]*runtimeapi.ContainerStats, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.runtime.ListContainerStats(ctx, &runtimeapi.ListContainerStatsRequest{})
	if err != nil {
		return nil, c.wrap("ListContainerStats", err)
	}
	return resp.GetStats(), nil
}

// ImageFsInfo returns the usage of the filesystems holding images and
// container writable layers.
func (c *Client) ImageFsInfo(ctx context.Context) (*runtimeapi.ImageFsInfoResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	resp, err := c.image.ImageFsInfo(ctx, &runtimeapi.ImageFsInfoRequest{})
	if err != nil {
		return nil, c.wrap("ImageFsInfo", err)
	}
	return resp, nil
}

// wrap names the call and the endpoint. The gRPC status stays reachable
// through errors.As, so status.Code and IsUnimplemented work on the result.
func (c *Client) wrap(call string, err error) error {
	return fmt.Errorf("%s on %s: %w", call, c.endpoint, err)
}

// IsUnimplemented reports whether err, possibly wrapped, carries the gRPC
// code Unimplemented: the runtime does not offer that call.
func IsUnimplemented(err error) bool {
	return err != nil && status.Code(err) == codes.Unimplemented
}
