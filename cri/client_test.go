package cri

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestParseEndpoint(t *testing.T) {
	tests := []struct {
		in      string
		want    string
		wantErr bool
	}{
		{in: "unix:///run/containerd/containerd.sock", want: "/run/containerd/containerd.sock"},
		{in: "unix:/run/crio/crio.sock", want: "/run/crio/crio.sock"},
		{in: "/var/run/cri-dockerd.sock", want: "/var/run/cri-dockerd.sock"},
		{in: "/run//containerd/../containerd/containerd.sock", want: "/run/containerd/containerd.sock"},
		{in: "", wantErr: true},
		{in: "unix://run/containerd.sock", wantErr: true},
		{in: "run/containerd.sock", wantErr: true},
		{in: "tcp://127.0.0.1:1234", wantErr: true},
		{in: "npipe:////./pipe/containerd-containerd", wantErr: true},
		{in: "unix://", wantErr: true},
		{in: "unix:///%zz", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseEndpoint(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseEndpoint(%q) = %q, want an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseEndpoint(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("parseEndpoint(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestDefaultEndpointsParse(t *testing.T) {
	eps := DefaultEndpoints()
	if len(eps) == 0 {
		t.Fatal("no default endpoints")
	}
	for _, ep := range eps {
		if _, err := parseEndpoint(ep); err != nil {
			t.Errorf("default endpoint %q: %v", ep, err)
		}
	}
	eps[0] = "changed"
	if DefaultEndpoints()[0] == "changed" {
		t.Error("DefaultEndpoints returns shared state")
	}
}

func TestIsUnimplemented(t *testing.T) {
	unimpl := status.Error(codes.Unimplemented, "nope")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", errors.New("boom"), false},
		{"unimplemented", unimpl, true},
		{"wrapped unimplemented", fmt.Errorf("ListPodSandboxStats on unix:///x: %w", unimpl), true},
		{"twice wrapped", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", unimpl)), true},
		{"unavailable", status.Error(codes.Unavailable, "down"), false},
		{"wrapped unavailable", fmt.Errorf("x: %w", status.Error(codes.Unavailable, "down")), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsUnimplemented(tt.err); got != tt.want {
				t.Errorf("IsUnimplemented(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// fakeRuntime answers Version and the list calls with canned data and
// leaves the rest Unimplemented, like an old runtime.
type fakeRuntime struct {
	runtimeapi.UnimplementedRuntimeServiceServer
	name       string
	containers int
}

func (f *fakeRuntime) Version(context.Context, *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	return &runtimeapi.VersionResponse{RuntimeName: f.name, RuntimeVersion: "1.0", RuntimeApiVersion: "v1"}, nil
}

func (f *fakeRuntime) ListPodSandbox(context.Context, *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	return &runtimeapi.ListPodSandboxResponse{Items: []*runtimeapi.PodSandbox{{Id: "sandbox-1"}}}, nil
}

func (f *fakeRuntime) ListContainers(context.Context, *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	resp := &runtimeapi.ListContainersResponse{}
	for i := range f.containers {
		// Long IDs make the response large enough to test the size limit.
		resp.Containers = append(resp.Containers, &runtimeapi.Container{Id: fmt.Sprintf("%064d", i), PodSandboxId: strings.Repeat("s", 1000)})
	}
	return resp, nil
}

type fakeImages struct {
	runtimeapi.UnimplementedImageServiceServer
}

func (fakeImages) ImageFsInfo(context.Context, *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	return &runtimeapi.ImageFsInfoResponse{ImageFilesystems: []*runtimeapi.FilesystemUsage{{
		Timestamp: 1, FsId: &runtimeapi.FilesystemIdentifier{Mountpoint: "/var/lib/fake"}, UsedBytes: &runtimeapi.UInt64Value{Value: 42},
	}}}, nil
}

// serveFake starts a fake runtime on a unix socket in a temp dir and returns
// the socket path.
func serveFake(t *testing.T, rt *fakeRuntime) string {
	t.Helper()
	return serveRuntime(t, rt.name, rt, fakeImages{})
}

// serveRuntime serves rt and images on name.sock in a new temp dir.
func serveRuntime(t *testing.T, name string, rt runtimeapi.RuntimeServiceServer, images runtimeapi.ImageServiceServer) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cri-fake-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, name+".sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer(grpc.MaxSendMsgSize(64 << 20))
	runtimeapi.RegisterRuntimeServiceServer(srv, rt)
	runtimeapi.RegisterImageServiceServer(srv, images)
	go func() { _ = srv.Serve(lis) }() // ends with ErrServerStopped at Stop
	t.Cleanup(srv.Stop)
	return sock
}

// deadSocket returns the path of a unix socket nobody listens on.
func deadSocket(t *testing.T) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "dead.sock")
	lis, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the file, stop listening: connects get ECONNREFUSED.
	lis.(*net.UnixListener).SetUnlinkOnClose(false)
	lis.Close()
	return sock
}

func TestProbe(t *testing.T) {
	live := serveFake(t, &fakeRuntime{name: "live"})
	dead := deadSocket(t)
	missing := filepath.Join(t.TempDir(), "missing.sock")
	cfg := withDefaults(Config{})

	t.Run("first answering wins", func(t *testing.T) {
		second := serveFake(t, &fakeRuntime{name: "second"})
		c, err := probe(t.Context(), cfg, []string{missing, "tcp://127.0.0.1:1", dead, "unix://" + live, second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if c.Endpoint() != "unix://"+live {
			t.Errorf("Endpoint() = %q, want unix://%s", c.Endpoint(), live)
		}
		v, err := c.version(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if v.RuntimeName != "live" {
			t.Errorf("RuntimeName = %q, want live", v.RuntimeName)
		}
	})

	t.Run("none answers", func(t *testing.T) {
		c, err := probe(t.Context(), cfg, []string{missing, dead})
		if err == nil {
			c.Close()
			t.Fatal("probe found a runtime among a missing and a dead socket")
		}
		if !errors.Is(err, ErrNoRuntime) {
			t.Errorf("error %v does not wrap ErrNoRuntime", err)
		}
		if !strings.Contains(err.Error(), dead) || !strings.Contains(err.Error(), missing) {
			t.Errorf("error %q does not name the endpoints tried", err)
		}
	})
}

func TestDialRejectsBadEndpoint(t *testing.T) {
	if c, err := Dial(t.Context(), Config{Endpoint: "tcp://127.0.0.1:1"}); err == nil {
		c.Close()
		t.Fatal("Dial accepted a tcp endpoint")
	}
}

func TestCallsAgainstFake(t *testing.T) {
	sock := serveFake(t, &fakeRuntime{name: "fake", containers: 3})
	c, err := Dial(t.Context(), Config{Endpoint: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := t.Context()

	sandboxes, err := c.ListPodSandbox(ctx)
	if err != nil || len(sandboxes) != 1 || sandboxes[0].Id != "sandbox-1" {
		t.Errorf("ListPodSandbox = %v, %v", sandboxes, err)
	}
	containers, err := c.ListContainers(ctx)
	if err != nil || len(containers) != 3 {
		t.Errorf("ListContainers = %d containers, %v", len(containers), err)
	}
	fs, err := c.ImageFsInfo(ctx)
	if err != nil || len(fs.GetImageFilesystems()) != 1 || fs.ImageFilesystems[0].UsedBytes.GetValue() != 42 {
		t.Errorf("ImageFsInfo = %v, %v", fs, err)
	}

	_, err = c.ListPodSandboxStats(ctx)
	if !IsUnimplemented(err) {
		t.Errorf("ListPodSandboxStats against a runtime without it: %v, want Unimplemented", err)
	}
	want := "ListPodSandboxStats on unix://" + sock
	if err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

func TestMessageSizeLimit(t *testing.T) {
	tests := []struct {
		containers int
		wantOK     bool
	}{
		{containers: 5000, wantOK: true},   // ~5.3 MB: above gRPC's 4 MiB default
		{containers: 20000, wantOK: false}, // ~21 MB: above the kubelet's 16 MiB
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.containers), func(t *testing.T) {
			sock := serveFake(t, &fakeRuntime{name: "big", containers: tt.containers})
			c, err := Dial(t.Context(), Config{Endpoint: sock})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got, err := c.ListContainers(t.Context())
			if tt.wantOK && (err != nil || len(got) != tt.containers) {
				t.Errorf("ListContainers = %d, %v; want %d", len(got), err, tt.containers)
			}
			if !tt.wantOK && status.Code(err) != codes.ResourceExhausted {
				t.Errorf("ListContainers error = %v, want ResourceExhausted", err)
			}
		})
	}
}

func TestDeadSocketFailsFast(t *testing.T) {
	for _, name := range []string{"refused", "missing"} {
		t.Run(name, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "missing.sock")
			if name == "refused" {
				sock = deadSocket(t)
			}
			// A request timeout far beyond the test run: the call must end
			// because the runtime is down, not because a deadline passed.
			c, err := Dial(t.Context(), Config{Endpoint: sock, RequestTimeout: time.Hour})
			if err != nil {
				t.Fatalf("Dial must not need the runtime up: %v", err)
			}
			defer c.Close()
			_, err = c.version(t.Context())
			if status.Code(err) != codes.Unavailable {
				t.Fatalf("Version on a dead socket: %v, want Unavailable", err)
			}
			if !strings.Contains(err.Error(), "Version on unix://"+sock) {
				t.Errorf("error %q lacks call and endpoint", err)
			}
			if _, err := c.ListContainerStats(t.Context()); status.Code(err) != codes.Unavailable {
				t.Errorf("ListContainerStats on a dead socket: %v, want Unavailable", err)
			}
		})
	}
}

func TestCallerCancellationIsHonoured(t *testing.T) {
	sock := serveFake(t, &fakeRuntime{name: "cancel"})
	c, err := Dial(t.Context(), Config{Endpoint: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := c.ListPodSandbox(ctx); status.Code(err) != codes.Canceled {
		t.Errorf("ListPodSandbox with a cancelled context: %v, want Canceled", err)
	}
}

// deadlines records how far away the deadline of each call a fake runtime
// receives was, as gRPC propagates it to the server.
type deadlines struct {
	mu        sync.Mutex
	remaining map[string]time.Duration
}

func (d *deadlines) record(ctx context.Context, call string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		d.remaining[call] = -1
		return
	}
	d.remaining[call] = time.Until(deadline)
}

// deadlineRuntime answers every call the Client makes and records its
// deadline.
type deadlineRuntime struct {
	fakeRuntime
	*deadlines
}

func (d deadlineRuntime) Version(ctx context.Context, r *runtimeapi.VersionRequest) (*runtimeapi.VersionResponse, error) {
	d.record(ctx, "Version")
	return d.fakeRuntime.Version(ctx, r)
}

func (d deadlineRuntime) ListPodSandbox(ctx context.Context, r *runtimeapi.ListPodSandboxRequest) (*runtimeapi.ListPodSandboxResponse, error) {
	d.record(ctx, "ListPodSandbox")
	return d.fakeRuntime.ListPodSandbox(ctx, r)
}

func (d deadlineRuntime) ListContainers(ctx context.Context, r *runtimeapi.ListContainersRequest) (*runtimeapi.ListContainersResponse, error) {
	d.record(ctx, "ListContainers")
	return d.fakeRuntime.ListContainers(ctx, r)
}

func (d deadlineRuntime) ListContainerStats(ctx context.Context, _ *runtimeapi.ListContainerStatsRequest) (*runtimeapi.ListContainerStatsResponse, error) {
	d.record(ctx, "ListContainerStats")
	return &runtimeapi.ListContainerStatsResponse{}, nil
}

func (d deadlineRuntime) ListPodSandboxStats(ctx context.Context, _ *runtimeapi.ListPodSandboxStatsRequest) (*runtimeapi.ListPodSandboxStatsResponse, error) {
	d.record(ctx, "ListPodSandboxStats")
	return &runtimeapi.ListPodSandboxStatsResponse{}, nil
}

type deadlineImages struct {
	fakeImages
	*deadlines
}

func (d deadlineImages) ImageFsInfo(ctx context.Context, r *runtimeapi.ImageFsInfoRequest) (*runtimeapi.ImageFsInfoResponse, error) {
	d.record(ctx, "ImageFsInfo")
	return d.fakeImages.ImageFsInfo(ctx, r)
}

// TestRequestTimeoutBoundsEveryCall checks that --runtime-request-timeout
// (Config.RequestTimeout) is the deadline of every call the server makes,
// as r.timeout is in the kubelet's cri-client (remote_runtime.go,
// remote_image.go), defaulting to the kubelet's 2m. The fake runtime reads
// the deadline gRPC sends along, so no call has to time out.
func TestRequestTimeoutBoundsEveryCall(t *testing.T) {
	tests := []struct {
		name     string
		timeout  time.Duration
		min, max time.Duration
	}{
		{name: "flag value", timeout: time.Hour, min: 59 * time.Minute, max: time.Hour},
		{name: "kubelet default", timeout: 0, min: time.Minute, max: 2 * time.Minute},
		{name: "short", timeout: 3 * time.Second, min: time.Second, max: 3 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := &deadlines{remaining: map[string]time.Duration{}}
			sock := serveRuntime(t, "deadline", deadlineRuntime{fakeRuntime{name: "deadline"}, seen}, deadlineImages{fakeImages{}, seen})
			// Probing asks the candidate for its Version.
			c, err := probe(t.Context(), withDefaults(Config{RequestTimeout: tt.timeout}), []string{sock})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			callEveryMethod(t, c)
			seen.mu.Lock()
			defer seen.mu.Unlock()
			for _, call := range []string{"Version", "ListPodSandbox", "ListContainers", "ListContainerStats", "ListPodSandboxStats", "ImageFsInfo"} {
				got, ok := seen.remaining[call]
				switch {
				case !ok:
					t.Errorf("%s never reached the runtime", call)
				case got < tt.min || got > tt.max:
					t.Errorf("%s had %v left of its deadline, want between %v and %v (RequestTimeout %v)",
						call, got.Round(time.Millisecond), tt.min, tt.max, tt.timeout)
				}
			}
		})
	}
}

// callEveryMethod makes each call the provider makes once.
func callEveryMethod(t *testing.T, c *Client) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.ListPodSandbox(ctx); err != nil {
		t.Error(err)
	}
	if _, err := c.ListContainers(ctx); err != nil {
		t.Error(err)
	}
	if _, err := c.ListContainerStats(ctx); err != nil {
		t.Error(err)
	}
	if _, err := c.ListPodSandboxStats(ctx); err != nil {
		t.Error(err)
	}
	if _, err := c.ImageFsInfo(ctx); err != nil {
		t.Error(err)
	}
}
