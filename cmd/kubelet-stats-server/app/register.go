package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
	"github.com/kubelet-stats-server/kubelet-stats-server/internal/kubeclient"
	"github.com/kubelet-stats-server/kubelet-stats-server/internal/version"
	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
	"github.com/kubelet-stats-server/kubelet-stats-server/register"
)

// RegisterOptions are the flags of --register-node.
type RegisterOptions struct {
	RegisterNode bool
	NodeIPs      []string
	ExternalIPs  []string
}

// AddFlags registers the flags on fs.
func (o *RegisterOptions) AddFlags(fs *pflag.FlagSet) {
	fs.BoolVar(&o.RegisterNode, "register-node", o.RegisterNode,
		"Stand in for the kubelet towards the API server of --kubeconfig, on machines that run none (test clusters of an API server and this server): "+
			"create and keep the Node (addresses, capacity, nodeInfo, the secure port as its kubelet endpoint, Ready), renew its Lease, "+
			"mirror the runtime's pods as mirror Pods and post OOM events; on shutdown mark the node NotReady. Never beside a kubelet.")
	fs.StringSliceVar(&o.NodeIPs, "node-ip", o.NodeIPs,
		"With --register-node: the node's InternalIP addresses (comma-separated, one per IP family), as the kubelet's --node-ip. "+
			"Empty: the node name's address, else the default route's interface's.")
	fs.StringSliceVar(&o.ExternalIPs, "node-external-ip", o.ExternalIPs,
		"With --register-node: the node's ExternalIP addresses (comma-separated), which the kubelet takes from a cloud provider.")
}

// Validate checks the flags; kubeconfig is --kubeconfig and securePort
// --port.
func (o *RegisterOptions) Validate(kubeconfig string, securePort int) error {
	if !o.RegisterNode {
		if len(o.NodeIPs) > 0 || len(o.ExternalIPs) > 0 {
			return fmt.Errorf("--node-ip and --node-external-ip need --register-node")
		}
		return nil
	}
	if kubeconfig == "" {
		return fmt.Errorf("--register-node needs --kubeconfig: the node is registered with its API server")
	}
	if securePort == 0 {
		return fmt.Errorf("--register-node needs the secure port (--port): it is the node's kubelet endpoint, which the API server and metrics-server dial")
	}
	for _, list := range []struct {
		flag string
		ips  []string
	}{{"--node-ip", o.NodeIPs}, {"--node-external-ip", o.ExternalIPs}} {
		for _, ip := range list.ips {
			if net.ParseIP(ip) == nil {
				return fmt.Errorf("%s %q: not an IP address", list.flag, ip)
			}
		}
	}
	return nil
}

// registration runs --register-node beside the ports; with the flag off it
// does nothing.
type registration struct {
	registrar *register.Registrar
	cancel    context.CancelFunc
	done      chan struct{}
}

// startRegistration registers the node and keeps it until ctx ends or stop
// is called.
func startRegistration(ctx context.Context, logger klog.Logger, opts *Options, machine *cadvisor.Machine,
	stats *provider.Provider, runtime *cri.Client) (*registration, error) {
	if !opts.Register.RegisterNode {
		return &registration{}, nil
	}
	client, err := registrationClient(opts.Secure.Kubeconfig)
	if err != nil {
		return nil, err
	}
	addresses, err := nodeAddresses(opts.NodeName, opts.Register.NodeIPs, opts.Register.ExternalIPs, interfaceIPs(logger))
	if err != nil {
		return nil, err
	}
	rootDir := opts.RootDir
	registrar := register.New(register.Config{
		NodeName:    opts.NodeName,
		Client:      client,
		Addresses:   addresses,
		KubeletPort: int32(opts.Secure.Port),
		Machine:     machine,
		RootFsCapacity: func() (uint64, error) {
			fs, err := collector.DirFsStats(existingDir(rootDir))
			return fs.Capacity, err
		},
		RuntimeVersion: runtimeVersion(ctx, logger, runtime),
		Version:        version.Get().Version,
		Source:         snapshotSource{stats: stats, logger: logger.WithName("register")},
		StatusInterval: nodeStatusUpdateFrequency,
		Logger:         logger.WithName("register"),
	})
	logger.Info("Registering the node with the API server", "node", opts.NodeName, "addresses", addresses, "kubeletPort", opts.Secure.Port)
	ctx, cancel := context.WithCancel(ctx)
	r := &registration{registrar: registrar, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		registrar.Run(ctx)
	}()
	return r, nil
}

// nodeStatusUpdateFrequency is the kubelet's default: how often the node
// status and the mirror pods are synced.
const nodeStatusUpdateFrequency = 10 * time.Second

// recordOOMKill adds the registration's events to the OOM watcher's record.
func (r *registration) recordOOMKill(record func(cadvisor.OOMKill)) func(cadvisor.OOMKill) {
	if r.registrar == nil {
		return record
	}
	return func(kill cadvisor.OOMKill) {
		record(kill)
		r.registrar.RecordOOMKill(kill)
	}
}

// stop ends the registration, also when Run fails before its context
// ends, and returns once the node was marked NotReady.
func (r *registration) stop() {
	if r.registrar == nil {
		return
	}
	r.cancel()
	<-r.done
}

// registrationClient is a client of the API server of kubeconfig with the
// kubelet's QPS and burst and a timeout per call.
func registrationClient(kubeconfig string) (register.Client, error) {
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
	client, err := kubeclient.New(config)
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", kubeconfig, err)
	}
	return register.RESTClient(client), nil
}

// nodeAddresses are the kubelet's without a cloud provider (InternalIP,
// Hostname = the node name) plus the ExternalIPs given. Without --node-ip
// the InternalIP is, as in the kubelet, an address the node name resolves
// to that this machine has, else the default route's interface's. Unlike
// the kubelet, a given --node-ip need not be this machine's: a test
// cluster may reach the server through a proxy.
func nodeAddresses(nodeName string, internal, external []string, local []net.IP) ([]corev1.NodeAddress, error) {
	if len(internal) == 0 {
		ip, err := defaultNodeIP(nodeName, local)
		if err != nil {
			return nil, err
		}
		internal = []string{ip.String()}
	}
	var addresses []corev1.NodeAddress
	for _, ip := range internal {
		addresses = append(addresses, corev1.NodeAddress{Type: corev1.NodeInternalIP, Address: ip})
	}
	for _, ip := range external {
		addresses = append(addresses, corev1.NodeAddress{Type: corev1.NodeExternalIP, Address: ip})
	}
	return append(addresses, corev1.NodeAddress{Type: corev1.NodeHostName, Address: nodeName}), nil
}

func defaultNodeIP(nodeName string, local []net.IP) (net.IP, error) {
	resolved, _ := net.LookupIP(nodeName)
	for _, ip := range resolved {
		if ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast() && containsIP(local, ip) {
			return ip, nil
		}
	}
	ip, err := utilnet.ChooseHostInterface()
	if err != nil {
		return nil, fmt.Errorf("no node IP: %s resolves to none of this machine's addresses and no default route was found (give --node-ip): %w", nodeName, err)
	}
	return ip, nil
}

func containsIP(ips []net.IP, ip net.IP) bool {
	for _, candidate := range ips {
		if candidate.Equal(ip) {
			return true
		}
	}
	return false
}

// runtimeVersion is the kubelet's containerRuntimeVersion; empty without a
// runtime.
func runtimeVersion(ctx context.Context, logger klog.Logger, runtime *cri.Client) string {
	if runtime == nil {
		return ""
	}
	name, ver, err := runtime.RuntimeVersion(ctx)
	if err != nil {
		logger.Error(err, "The node's containerRuntimeVersion is unknown")
		return ""
	}
	return name + "://" + ver
}

// existingDir is dir, or "/" while it does not exist, as node.fs measures it.
func existingDir(dir string) string {
	if _, err := os.Stat(dir); err != nil {
		return "/"
	}
	return dir
}

// snapshotSource reads what registration needs from the provider's newest
// snapshot.
type snapshotSource struct {
	stats  *provider.Provider
	logger klog.Logger
}

// Pods decodes the newest snapshot's /pods body; nil before the first tick
// (and on an error, which a body the provider encoded itself cannot give).
func (s snapshotSource) Pods() *corev1.PodList {
	if snap := s.stats.Current(); snap != nil {
		list, err := snap.PodList()
		if err != nil {
			s.logger.Error(err, "Mirror pods skip this tick")
			return nil
		}
		return list
	}
	return nil
}

func (s snapshotSource) Owner(cgroup string) (namespace, pod, container string, ok bool) {
	if snap := s.stats.Current(); snap != nil && snap.Cgroups != nil {
		return snap.Cgroups.Owner(cgroup)
	}
	return "", "", "", false
}

func (s snapshotSource) Healthy() error { return s.stats.Healthy() }
