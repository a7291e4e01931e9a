package framework

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	goruntime "runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

const (
	// DefaultCgroupParent is where pod cgroups go unless Options or PodSpec
	// say otherwise: the kubelet's cgroupfs layout for Burstable pods.
	DefaultCgroupParent = "/kubepods/burstable"
	// DefaultPodLogDir is the kubelet's pod log root.
	DefaultPodLogDir = "/var/log/pods"

	// criNamespace is the containerd namespace of the CRI plugin.
	criNamespace = "k8s.io"

	pollInterval = 50 * time.Millisecond
	// readyLimit bounds the waits for containerd's CRI and for an imported
	// image to become visible, which take a second or two on these machines.
	readyLimit = time.Minute
)

// Options configure one containerd. The zero value is usable.
type Options struct {
	// Logf receives progress messages (typically t.Logf). Nil discards them.
	Logf func(format string, args ...any)
	// CgroupParent is the cgroupfs parent of pod cgroups (pods get
	// <CgroupParent>/pod<uid>). Default DefaultCgroupParent. Use another
	// parent on a machine where a kubelet runs: it kills unknown pods under
	// /kubepods.
	CgroupParent string
	// PodLogDir is the root of pod log directories. Default DefaultPodLogDir.
	PodLogDir string
	// RootDir plays the kubelet's --root-dir: emptyDir volumes are created
	// under <RootDir>/pods/<uid>/volumes. Default <work dir>/kubelet.
	RootDir string
	// TempDir is where the work dir is created. Default os.TempDir().
	TempDir string
	// StatsCollectPeriod is containerd's CRI stats_collect_period (writable
	// layer and image fs usage refresh), whole seconds. Zero keeps
	// containerd's default of 10 s.
	StatsCollectPeriod time.Duration
	// CgroupDriver is DriverCgroupfs (the default) or DriverSystemd, as the
	// kubelet's cgroupDriver and containerd's SystemdCgroup. With systemd
	// (PID 1 must be systemd) CgroupParent is a slice path such as
	// /kubepods.slice/kubepods-burstable.slice, pod cgroups are slices made
	// through systemd and containers cri-containerd-<id>.scope.
	CgroupDriver string
}

// Runtime is one running containerd with the CRI plugin, owned by one
// test. Its methods are safe for concurrent use.
type Runtime struct {
	opts      Options
	logf      func(string, ...any)
	dir       string
	unlockDir func() // releases the work dir's owner lock
	paths     containerdPaths
	config    string // path of config.toml
	slot      *netSlot
	conn      *grpc.ClientConn
	runtime   runtimeapi.RuntimeServiceClient
	images    runtimeapi.ImageServiceClient

	importMu sync.Mutex // serialises ImportTestImages
	imported bool       // guarded by importMu

	mu             sync.Mutex
	proc           *process
	pods           map[string]*Pod // by UID, until RemovePod
	createdParents []string        // cgroup dirs of CgroupParent absent before start, deepest last
	stopped        bool
}

type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has been waited for
}

// StartContainerd starts a containerd of its own as a child process, with
// its root, state, socket, config and CNI network in a new work dir, and
// returns once CRI answers Status with the runtime and network ready. It
// needs root and the packages EnsureInstalled provides. Call Stop when
// done, also when a test fails.
func StartContainerd(ctx context.Context, opts Options) (_ *Runtime, err error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("StartContainerd needs root")
	}
	if missing := missingPackages(); len(missing) > 0 {
		return nil, fmt.Errorf("missing %s: call EnsureInstalled first", strings.Join(missing, " "))
	}
	opts = withDefaults(opts)
	if !path.IsAbs(opts.CgroupParent) {
		return nil, fmt.Errorf("cgroup parent %q is not absolute", opts.CgroupParent)
	}
	if err := checkDriver(opts.CgroupDriver, opts.CgroupParent); err != nil {
		return nil, err
	}
	logf := orDiscard(opts.Logf)
	reapStaleWorkDirs(opts.TempDir, logf)
	dir, err := os.MkdirTemp(opts.TempDir, workDirPrefix)
	if err != nil {
		return nil, err
	}
	unlockDir, err := lockWorkDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	r := &Runtime{
		opts:      opts,
		logf:      logf,
		dir:       dir,
		unlockDir: unlockDir,
		paths: containerdPaths{
			root:       filepath.Join(dir, "root"),
			state:      filepath.Join(dir, "state"),
			socket:     filepath.Join(dir, "containerd.sock"),
			runcRoot:   filepath.Join(dir, "runc"),
			opt:        filepath.Join(dir, "opt"),
			cniConfDir: filepath.Join(dir, "cni", "net.d"),
		},
		config: filepath.Join(dir, "config.toml"),
		pods:   map[string]*Pod{},
	}
	if r.opts.RootDir == "" {
		r.opts.RootDir = filepath.Join(dir, "kubelet")
	}
	defer func() {
		if err != nil {
			if stopErr := r.Stop(); stopErr != nil {
				r.logf("cleanup after failed start: %v", stopErr)
			}
		}
	}()

	if r.slot, err = acquireSlot(r.logf); err != nil {
		return nil, err
	}
	if err := journal(dir, journalSlot, strconv.Itoa(r.slot.id)); err != nil {
		return nil, err
	}
	if err := r.writeConfig(); err != nil {
		return nil, err
	}
	if err := r.noteCgroupParents(opts.CgroupParent); err != nil {
		return nil, err
	}

	r.conn, err = grpc.NewClient("unix://"+r.paths.socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{
			BaseDelay: 50 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: time.Second,
		}}),
	)
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", r.paths.socket, err)
	}
	r.runtime = runtimeapi.NewRuntimeServiceClient(r.conn)
	r.images = runtimeapi.NewImageServiceClient(r.conn)

	start := time.Now()
	if err := r.start(ctx); err != nil {
		return nil, err
	}
	r.logf("containerd ready in %v: socket %s, bridge %s, pod subnet %s",
		time.Since(start).Round(time.Millisecond), r.paths.socket, r.slot.bridge, r.slot.subnet)
	return r, nil
}

func withDefaults(opts Options) Options {
	if opts.CgroupParent == "" {
		opts.CgroupParent = DefaultCgroupParent
	}
	opts.CgroupParent = path.Clean(opts.CgroupParent)
	if opts.PodLogDir == "" {
		opts.PodLogDir = DefaultPodLogDir
	}
	if opts.TempDir == "" {
		opts.TempDir = os.TempDir()
	}
	if opts.CgroupDriver == "" {
		opts.CgroupDriver = DriverCgroupfs
	}
	return opts
}

func (r *Runtime) writeConfig() error {
	for _, d := range []string{r.paths.root, r.paths.state, r.paths.runcRoot, r.paths.opt, r.paths.cniConfDir, r.opts.RootDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	conflist, err := cniConflist(r.slot, filepath.Join(r.dir, "cni", "ipam"))
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(r.paths.cniConfDir, "10-kss-e2e.conflist"), conflist, 0o644); err != nil {
		return err
	}
	return os.WriteFile(r.config, []byte(containerdConfig(r.paths, PauseImage, r.opts.StatsCollectPeriod, r.opts.CgroupDriver == DriverSystemd)), 0o644)
}

// noteCgroupParents records the cgroup dirs of parent and its ancestors
// that do not exist yet, so that Stop removes them once they are empty.
func (r *Runtime) noteCgroupParents(parent string) error {
	if r.opts.CgroupDriver == DriverSystemd {
		return nil // systemd owns the QoS slices: removing them is its business
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range missingCgroupDirs(cgroupMountpoints(), parent) {
		if slices.Contains(r.createdParents, d) {
			continue
		}
		if err := journal(r.dir, journalParent, d); err != nil {
			return err
		}
		r.createdParents = append(r.createdParents, d)
	}
	return nil
}

// Socket is the path of containerd's unix socket, which serves CRI.
func (r *Runtime) Socket() string { return r.paths.socket }

// Endpoint is Socket as a CRI endpoint URL (unix://...).
func (r *Runtime) Endpoint() string { return "unix://" + r.paths.socket }

// Dir is the work dir holding everything of this containerd. Stop removes
// it unless teardown failed.
func (r *Runtime) Dir() string { return r.dir }

// RootDir is the kubelet-style root dir under which pod volumes live.
func (r *Runtime) RootDir() string { return r.opts.RootDir }

// PodLogDir is the root of the pod log directories.
func (r *Runtime) PodLogDir() string { return r.opts.PodLogDir }

// CgroupParent is the default parent of pod cgroups.
func (r *Runtime) CgroupParent() string { return r.opts.CgroupParent }

// CgroupDriver is DriverCgroupfs or DriverSystemd.
func (r *Runtime) CgroupDriver() string { return r.opts.CgroupDriver }

// PodSubnet is the address range of pods with their own network.
func (r *Runtime) PodSubnet() string { return r.slot.subnet.String() }

// Bridge is the host bridge the pods' veths are attached to.
func (r *Runtime) Bridge() string { return r.slot.bridge }

// CRI is the harness's own CRI client, for calls it does not wrap
// (ListContainers, ContainerStatus, ...).
func (r *Runtime) CRI() runtimeapi.RuntimeServiceClient { return r.runtime }

// LogTail returns the last n bytes of containerd's log, for failure
// messages.
func (r *Runtime) LogTail(n int) string {
	b, err := os.ReadFile(filepath.Join(r.dir, "containerd.log"))
	if err != nil {
		return err.Error()
	}
	return tail(b, n)
}

// start runs containerd and waits until CRI is ready.
func (r *Runtime) start(ctx context.Context) error {
	r.mu.Lock()
	if r.proc != nil {
		r.mu.Unlock()
		return errors.New("containerd is already running")
	}
	logFile, err := os.OpenFile(filepath.Join(r.dir, "containerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		r.mu.Unlock()
		return err
	}
	cmd := exec.Command("containerd", "--config", r.config)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// containerd must not outlive a test binary that dies without Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &process{cmd: cmd, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the forking thread ends, not the process:
		// fork from a locked thread that lives until containerd is waited
		// for, so that Go cannot retire it earlier (it retires threads of
		// goroutines that exit while locked, as InterfaceAddrs may).
		goruntime.LockOSThread()
		defer logFile.Close()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		r.mu.Unlock()
		return fmt.Errorf("start containerd: %w", err)
	}
	r.proc = p
	r.mu.Unlock()
	return r.waitReady(ctx, p)
}

// waitReady polls CRI Status until the runtime and its network are ready,
// for at most readyLimit.
func (r *Runtime) waitReady(ctx context.Context, p *process) error {
	ctx, cancel := context.WithTimeout(ctx, readyLimit)
	defer cancel()
	var lastErr error
	for {
		select {
		case <-p.done:
			return fmt.Errorf("containerd exited (%v) before CRI was ready; log:\n%s", p.cmd.ProcessState, r.LogTail(3000))
		case <-ctx.Done():
			return fmt.Errorf("containerd not ready (last: %v): %w; log:\n%s", lastErr, ctx.Err(), r.LogTail(3000))
		default:
		}
		callCtx, cancel := context.WithTimeout(ctx, time.Second)
		resp, err := r.runtime.Status(callCtx, &runtimeapi.StatusRequest{})
		cancel()
		lastErr = err
		if err == nil {
			lastErr = notReady(resp.GetStatus())
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-time.After(pollInterval):
		case <-ctx.Done():
		case <-p.done:
		}
	}
}

// notReady returns an error naming the first required condition that is
// not true.
func notReady(s *runtimeapi.RuntimeStatus) error {
	for _, want := range []string{runtimeapi.RuntimeReady, runtimeapi.NetworkReady} {
		found := false
		for _, c := range s.GetConditions() {
			if c.Type == want {
				found = true
				if !c.Status {
					return fmt.Errorf("%s: %s: %s", want, c.Reason, c.Message)
				}
			}
		}
		if !found {
			return fmt.Errorf("%s condition missing", want)
		}
	}
	return nil
}

// Kill sends SIGKILL to containerd and waits for it to exit, leaving its
// shims, pods and state behind, as a crashed runtime does. Restart brings
// it back on the same state.
func (r *Runtime) Kill() error {
	r.mu.Lock()
	p := r.proc
	r.proc = nil
	r.mu.Unlock()
	if p == nil {
		return errors.New("containerd is not running")
	}
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return fmt.Errorf("kill containerd: %w", err)
	}
	<-p.done
	r.logf("containerd killed")
	return nil
}

// Restart starts containerd again on the same dirs and socket after Kill,
// and waits until CRI is ready. Running pods survive (their shims kept
// running).
func (r *Runtime) Restart(ctx context.Context) error {
	start := time.Now()
	if err := r.start(ctx); err != nil {
		return err
	}
	r.logf("containerd restarted in %v", time.Since(start).Round(time.Millisecond))
	return nil
}

// Running reports whether the containerd process is up.
func (r *Runtime) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.proc != nil
}
