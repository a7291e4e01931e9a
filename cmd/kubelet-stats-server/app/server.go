package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
	"github.com/kubelet-stats-server/kubelet-stats-server/internal/version"
	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
	"github.com/kubelet-stats-server/kubelet-stats-server/server"
)

// NewCommand builds the root command.
func NewCommand() *cobra.Command {
	opts := NewOptions()
	cmd := &cobra.Command{
		Use:   "kubelet-stats-server",
		Short: "Serve the kubelet's stats API (/stats/summary) from this node's cgroups",
		Long: `kubelet-stats-server serves the kubelet's stats surface on one node: /stats/summary
(k8s.io/kubelet/pkg/apis/stats/v1alpha1) and /healthz, so that metrics-server, kubectl and
Prometheus work against it unchanged. It samples the node's cgroups itself every
--housekeeping-interval and answers every request from the latest immutable snapshot.`,
		SilenceUsage: true,
		Args:         cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Validate(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return Run(ctx, opts)
		},
	}
	opts.AddFlags(cmd.Flags())
	addVersionFlag(cmd)
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	cmd.Flags().AddGoFlagSet(klogFlags)
	return cmd
}

// Run wires collector, provider and server and serves until ctx ends.
func Run(ctx context.Context, opts *Options) error {
	started := time.Now()
	logger := klog.Background()
	logger.Info("Starting kubelet-stats-server", "version", version.Get().String())
	machine, err := collector.ReadMachine(opts.ProcRoot, "/sys")
	if err != nil {
		return fmt.Errorf("read machine facts: %w", err)
	}
	systemCgroups := resolveSystemCgroups(logger, opts)
	events := newEventFeed(ctx, logger, opts)
	sampler, err := collector.New(collector.Config{
		CgroupMount: opts.CgroupMount,
		ProcRoot:    opts.ProcRoot,
		SysRoot:     "/sys",
		Tracked:     trackedCgroups(systemCgroups),
		Retention:   opts.StatsRetention,
		Interval:    opts.HousekeepingInterval,
		// Container creation and deletion events.
		OnCgroupEvent: events.CgroupChanged,
		Logger:        logger.WithName("collector"),
	})
	if err != nil {
		return fmt.Errorf("create cgroup collector: %w", err)
	}
	if err := sampler.Start(ctx); err != nil {
		return fmt.Errorf("start cgroup collector: %w", err)
	}
	logger.Info("Cgroup collector started", "hierarchy", sampler.Hierarchy(), "systemCgroups", systemCgroups)

	runtime, err := dialRuntime(ctx, logger, opts)
	if err != nil {
		return err
	}
	if runtime != nil {
		defer runtime.Close()
	}
	registry := prometheus.NewRegistry()
	registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	volumes := analyzer.NewFsResourceAnalyzer(filepath.Join(opts.RootDir, "pods"), opts.VolumeStatsAggPeriod, logger.WithName("volumes"))
	go volumes.Run(ctx)
	stats := provider.New(provider.Config{
		NodeName:           opts.NodeName,
		BootTime:           machine.BootTime,
		RootDir:            opts.RootDir,
		SystemCgroups:      systemCgroups,
		Interval:           opts.HousekeepingInterval,
		Sampler:            sampler,
		FsStats:            collector.DirFsStats,
		Rlimit:             func() cadvisor.Rlimit { return collector.ReadRlimit(opts.ProcRoot) },
		PodRoot:            podRoot(systemCgroups),
		Runtime:            runtimeService(runtime),
		Machine:            machine,
		StatsSource:        opts.StatsSource,
		RuntimeStatsPeriod: opts.RuntimeStatsPeriod,
		PodLogsDir:         opts.PodLogsDir,
		Volumes:            volumes,
		// The kubelet keeps its container log symlinks next to the pod logs.
		ContainerLogsDir: filepath.Join(filepath.Dir(opts.PodLogsDir), "containers"),
		Events:           events,
		Registerer:       registry,
		Logger:           logger.WithName("provider"),
	})
	go stats.Run(ctx)
	registration, err := startRegistration(ctx, logger, opts, machine, stats, runtime)
	if err != nil {
		return err
	}
	// After the ports: the node is marked NotReady on the way out.
	defer registration.stop()
	go func() {
		if err := collector.WatchOOMKills(ctx, registration.recordOOMKill(recordOOMKills(stats.RecordOOMKill, events.RecordOOMKill))); err != nil {
			// Without /dev/kmsg (an unprivileged container) only the OOM
			// kill log and counter are missing; the cgroups' own OOM
			// counters still feed the stats.
			logger.Error(err, "OOM watcher not started")
		}
	}()

	serverConfig := server.Config{
		Logger:           logger.WithName("server"),
		Metrics:          promhttp.HandlerFor(registry, promhttp.HandlerOpts{}),
		ProcessStartTime: started,
		// The kubelet's IsPsiEnabled: cpu.pressure at the unified mount.
		PressureMetrics: fileExists(filepath.Join(opts.CgroupMount, "cpu.pressure")),
		Events:          events,
	}
	ports, err := securePorts(logger, opts, serverConfig, stats)
	if err != nil {
		return err
	}
	if opts.ReadOnlyPort > 0 {
		readOnly := server.NewHTTPServer(net.JoinHostPort(opts.Address, strconv.Itoa(opts.ReadOnlyPort)), server.NewReadOnlyHandler(serverConfig, stats, stats))
		ports = append(ports, func(ctx context.Context, limits *server.Listeners) error {
			return servePort(ctx, logger, "read-only", "/stats/summary", readOnly, opts.ShutdownGracePeriod, servingLimits(limits, "read-only"))
		})
	}
	return runPorts(ctx, logger, ports)
}

// resolveSystemCgroups maps the kubelet's cgroup flags to system containers,
// looking up a running kubelet when --kubelet-cgroups is empty.
func resolveSystemCgroups(logger klog.Logger, opts *Options) []provider.SystemCgroup {
	driver := opts.CgroupDriver
	if driver == "" {
		driver = detectCgroupDriver(opts.CgroupMount, opts.CgroupRoot)
	}
	kubelet := provider.SystemCgroup{Name: statsapi.SystemContainerKubelet, Cgroup: opts.KubeletCgroups}
	if kubelet.Cgroup == "" {
		proc, found, err := provider.DiscoverKubelet(opts.ProcRoot)
		switch {
		case err != nil:
			logger.Error(err, "Failed to look for a running kubelet; system container \"kubelet\" is omitted")
		case !found:
			logger.Info("No kubelet process found; system container \"kubelet\" is omitted")
		default:
			kubelet.Cgroup, kubelet.StartTime = proc.Cgroup, proc.StartTime
			logger.Info("Found the kubelet", "pid", proc.PID, "cgroup", proc.Cgroup)
		}
	}
	return []provider.SystemCgroup{
		kubelet,
		{Name: statsapi.SystemContainerRuntime, Cgroup: opts.RuntimeCgroups},
		{Name: statsapi.SystemContainerMisc, Cgroup: opts.SystemCgroups},
		{Name: statsapi.SystemContainerPods, Cgroup: podCgroupRoot(driver, opts.CgroupRoot)},
	}
}

// trackedCgroups are the recursive roots the collector follows. "/" is
// always sampled by the collector but never tracked recursively, or every
// cgroup on the machine would be.
func trackedCgroups(systemCgroups []provider.SystemCgroup) []string {
	var tracked []string
	for _, sys := range systemCgroups {
		if sys.Cgroup != "" && sys.Cgroup != "/" {
			tracked = append(tracked, sys.Cgroup)
		}
	}
	return tracked
}

// dialRuntime connects to the CRI runtime. Without an explicit endpoint a
// machine without a runtime is fine: pods then come from the cgroup tree.
func dialRuntime(ctx context.Context, logger klog.Logger, opts *Options) (*cri.Client, error) {
	client, err := cri.Dial(ctx, cri.Config{
		Endpoint:       opts.ContainerRuntimeEndpoint,
		RequestTimeout: opts.RuntimeRequestTimeout,
		Logger:         logger.WithName("cri"),
	})
	switch {
	case errors.Is(err, cri.ErrNoRuntime):
		logger.Info("No container runtime answered on the default sockets; serving pods from the cgroup tree")
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("connect to the container runtime: %w", err)
	}
	logger.Info("Using container runtime", "endpoint", client.Endpoint())
	return client, nil
}

// runtimeService keeps a nil *cri.Client from becoming a non-nil interface.
func runtimeService(client *cri.Client) provider.RuntimeService {
	if client == nil {
		return nil
	}
	return client
}

// podRoot is the cgroup of the "pods" system container.
func podRoot(systemCgroups []provider.SystemCgroup) string {
	for _, sys := range systemCgroups {
		if sys.Name == statsapi.SystemContainerPods {
			return sys.Cgroup
		}
	}
	return ""
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
