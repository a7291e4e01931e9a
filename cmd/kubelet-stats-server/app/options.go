package app

import (
	"fmt"
	"net"
	"os"
	"path"
	"time"

	"github.com/spf13/pflag"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// Options are the command-line flags. Where the kubelet has a flag for the
// same thing, the name and meaning are the kubelet's.
type Options struct {
	NodeName             string
	RootDir              string
	Address              string
	ReadOnlyPort         int
	CgroupDriver         string
	CgroupRoot           string
	KubeletCgroups       string
	RuntimeCgroups       string
	SystemCgroups        string
	HousekeepingInterval time.Duration
	StatsRetention       time.Duration
	CgroupMount          string
	ProcRoot             string
	ShutdownGracePeriod  time.Duration

	ContainerRuntimeEndpoint string
	RuntimeRequestTimeout    time.Duration
	StatsSource              string
	RuntimeStatsPeriod       time.Duration
	PodLogsDir               string
	VolumeStatsAggPeriod     time.Duration

	// Secure holds the secure port's and the healthz port's flags.
	Secure SecureOptions
	// Register holds the flags of --register-node.
	Register RegisterOptions
	// Events holds the event store's flags (events.go).
	Events EventOptions
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		RootDir:              "/var/lib/kubelet",
		Address:              "0.0.0.0",
		ReadOnlyPort:         0, // off, as in the kubelet's configuration file: it has no auth
		CgroupRoot:           "/",
		HousekeepingInterval: 10 * time.Second,
		StatsRetention:       2 * time.Minute,
		CgroupMount:          "/sys/fs/cgroup",
		ProcRoot:             "/proc",
		ShutdownGracePeriod:  5 * time.Second,

		RuntimeRequestTimeout: 2 * time.Minute,
		StatsSource:           provider.StatsSourceCollector,
		RuntimeStatsPeriod:    time.Minute,
		PodLogsDir:            "/var/log/pods",
		VolumeStatsAggPeriod:  time.Minute,

		Secure: NewSecureOptions(),
		Events: NewEventOptions(),
	}
}

// AddFlags registers the flags on fs.
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.NodeName, "node-name", o.NodeName,
		"Name of the node in node.nodeName. Defaults to the machine's hostname, like the kubelet's --hostname-override.")
	fs.StringVar(&o.RootDir, "root-dir", o.RootDir,
		"The kubelet's root directory; node.fs is the filesystem holding it (\"/\" while it does not exist).")
	fs.StringVar(&o.Address, "address", o.Address,
		"IP address to serve on (0.0.0.0 for all IPv4 interfaces, :: for all IPv6 interfaces).")
	fs.IntVar(&o.ReadOnlyPort, "read-only-port", o.ReadOnlyPort,
		"Port of the read-only HTTP server, with no authentication (0 disables it).")
	fs.StringVar(&o.CgroupDriver, "cgroup-driver", o.CgroupDriver,
		"Cgroup layout of the node's pods: \"cgroupfs\" (/kubepods/...) or \"systemd\" (kubepods.slice/...). Empty detects it from the cgroup tree, preferring cgroupfs.")
	fs.StringVar(&o.CgroupRoot, "cgroup-root", o.CgroupRoot,
		"The kubelet's --cgroup-root: the parent of the kubepods cgroup.")
	fs.StringVar(&o.KubeletCgroups, "kubelet-cgroups", o.KubeletCgroups,
		"Cgroup of the kubelet, reported as system container \"kubelet\". Empty looks for a running kubelet process and uses its cgroup.")
	fs.StringVar(&o.RuntimeCgroups, "runtime-cgroups", o.RuntimeCgroups,
		"Cgroup of the container runtime, reported as system container \"runtime\" (e.g. /system.slice/containerd.service). Empty omits it.")
	fs.StringVar(&o.SystemCgroups, "system-cgroups", o.SystemCgroups,
		"Cgroup of non-kernel processes that are not in a container, reported as system container \"misc\". Empty omits it.")
	fs.DurationVar(&o.HousekeepingInterval, "housekeeping-interval", o.HousekeepingInterval,
		"How often every tracked cgroup is sampled and a new snapshot is published.")
	fs.DurationVar(&o.StatsRetention, "stats-retention", o.StatsRetention,
		"How long samples are kept per cgroup (the kubelet's cAdvisor keeps 2m).")
	fs.StringVar(&o.CgroupMount, "cgroup-mount", o.CgroupMount, "Where the cgroup filesystems are mounted.")
	fs.StringVar(&o.ProcRoot, "proc-root", o.ProcRoot, "Where the host's procfs is mounted (e.g. /host/proc in a container).")
	fs.DurationVar(&o.ShutdownGracePeriod, "shutdown-grace-period", o.ShutdownGracePeriod,
		"How long in-flight requests may take after SIGTERM or SIGINT before the server exits.")
	fs.StringVar(&o.ContainerRuntimeEndpoint, "container-runtime-endpoint", o.ContainerRuntimeEndpoint,
		"CRI socket of the container runtime (unix:///run/containerd/containerd.sock). Empty probes containerd's and CRI-O's default sockets and serves pods from the cgroup tree when none answers.")
	fs.DurationVar(&o.RuntimeRequestTimeout, "runtime-request-timeout", o.RuntimeRequestTimeout,
		"Timeout of every container runtime call (lists, stats, image filesystem, the probe's Version), as in the kubelet. They run beside the housekeeping tick, which waits for them at most a quarter of --housekeeping-interval (1s at most) and otherwise publishes with the last good answers: a slow runtime never delays snapshots.")
	fs.StringVar(&o.StatsSource, "stats-source", o.StatsSource,
		"Where pod and container cpu, memory, swap and io come from: \"collector\" (our cgroup collector, CRI for identity and filesystems; the kubelet's default) or \"cri\" (everything from ListPodSandboxStats, the kubelet's PodAndContainerStatsFromCRI; falls back to collector when the runtime lacks it).")
	fs.DurationVar(&o.RuntimeStatsPeriod, "runtime-stats-period", o.RuntimeStatsPeriod,
		"How often, with --stats-source=collector, the runtime is asked for its container stats (ListContainerStats), which then give only the writable layer's usage (rootfs) and the cpu and memory of containers without a cgroup: every tick while a running container is missing from them or has no cgroup, otherwise once per period. 0 asks every tick. With --stats-source=cri they are asked every tick.")
	fs.StringVar(&o.PodLogsDir, "pod-logs-dir", o.PodLogsDir,
		"The kubelet's pod log directory (<dir>/<namespace>_<pod>_<uid>/<container>/), measured for container logs and ephemeral storage.")
	fs.DurationVar(&o.VolumeStatsAggPeriod, "volume-stats-agg-period", o.VolumeStatsAggPeriod,
		"How often the pods' volumes under <root-dir>/pods/<uid>/volumes are measured (du and statfs) in the background; each pod's volumes every one to two periods. 0 disables volume stats.")
	o.Secure.AddFlags(fs)
	o.Register.AddFlags(fs)
	o.Events.AddFlags(fs)
}

// Validate checks flag values and fills derived defaults.
func (o *Options) Validate() error {
	if o.NodeName == "" {
		hostname, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-name is empty and the hostname is unknown: %w", err)
		}
		o.NodeName = hostname
	}
	if o.ReadOnlyPort < 0 || o.ReadOnlyPort > 65535 {
		return fmt.Errorf("--read-only-port %d: must be between 0 and 65535", o.ReadOnlyPort)
	}
	if net.ParseIP(o.Address) == nil {
		return fmt.Errorf("--address %q: not an IP address", o.Address)
	}
	switch o.CgroupDriver {
	case "", "cgroupfs", "systemd":
	default:
		return fmt.Errorf("--cgroup-driver %q: must be cgroupfs or systemd", o.CgroupDriver)
	}
	if !path.IsAbs(o.CgroupRoot) {
		return fmt.Errorf("--cgroup-root %q: must be an absolute cgroup path", o.CgroupRoot)
	}
	switch o.StatsSource {
	case provider.StatsSourceCollector, provider.StatsSourceCRI:
	default:
		return fmt.Errorf("--stats-source %q: must be %s or %s", o.StatsSource, provider.StatsSourceCollector, provider.StatsSourceCRI)
	}
	if o.HousekeepingInterval <= 0 {
		return fmt.Errorf("--housekeeping-interval %s: must be positive", o.HousekeepingInterval)
	}
	if o.RuntimeStatsPeriod < 0 {
		return fmt.Errorf("--runtime-stats-period %s: must not be negative", o.RuntimeStatsPeriod)
	}
	if o.StatsRetention < o.HousekeepingInterval {
		return fmt.Errorf("--stats-retention %s: must be at least --housekeeping-interval (%s) so that rates have two samples",
			o.StatsRetention, o.HousekeepingInterval)
	}
	if err := o.Secure.Validate(); err != nil {
		return err
	}
	if err := o.Events.Validate(); err != nil {
		return err
	}
	return o.Register.Validate(o.Secure.Kubeconfig, o.Secure.Port)
}
