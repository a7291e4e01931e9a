package framework

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Labels and annotations the kubelet puts on sandboxes and containers
// (pkg/kubelet/types/labels.go, kuberuntime/labels.go). The stats server
// and cAdvisor identify pods by them.
const (
	LabelPodName           = "io.kubernetes.pod.name"
	LabelPodNamespace      = "io.kubernetes.pod.namespace"
	LabelPodUID            = "io.kubernetes.pod.uid"
	LabelContainerName     = "io.kubernetes.container.name"
	annotationRestartCount = "io.kubernetes.container.restartCount"

	cpuPeriodMicros = 100000
	minShares       = 2 // the kubelet's floor for cpu.shares
	stopGraceSecs   = 10
)

// PodSpec describes a pod to run. Zero values get kubelet-like defaults.
type PodSpec struct {
	Name      string
	Namespace string // default "default"
	UID       string // default a random UUID
	// HostNetwork runs the pod in the host's network namespace. Its
	// containers must not use work -net (it would send to the host's real
	// gateway).
	HostNetwork bool
	// CgroupParent overrides Options.CgroupParent for this pod.
	CgroupParent string
	// EmptyDirs are emptyDir volume names, created under
	// <RootDir>/pods/<uid>/volumes/kubernetes.io~empty-dir/<name>.
	EmptyDirs []string
	// Labels are added to the kubelet's pod labels.
	Labels     map[string]string
	Containers []ContainerSpec
}

// ContainerSpec describes one container of a pod.
type ContainerSpec struct {
	Name  string
	Image string // default WorkImage
	// Args are passed to the image's entrypoint, e.g. work's -cpu 0.2.
	Args []string
	// MemoryLimitBytes sets memory.limit_in_bytes (0: no limit).
	MemoryLimitBytes int64
	// CPULimitMilli sets the CFS quota in millicores (0: no limit).
	CPULimitMilli int64
	// CPURequestMilli sets cpu.shares as the kubelet does (0: 2 shares).
	CPURequestMilli int64
	Mounts          []VolumeMount
}

// VolumeMount mounts an emptyDir of the pod into a container.
type VolumeMount struct {
	Volume    string // a PodSpec.EmptyDirs name
	MountPath string // absolute path in the container
}

// Pod is a running pod. RestartContainer replaces entries of Containers;
// do not read a pod while restarting one of its containers.
type Pod struct {
	Name, Namespace, UID string
	SandboxID            string
	HostNetwork          bool
	// CgroupParent is the pod's cgroup, <parent>/pod<uid>; containers are
	// <CgroupParent>/<container id>.
	CgroupParent string
	// LogDir is <PodLogDir>/<namespace>_<name>_<uid>.
	LogDir string
	// IP is the pod's address on the harness subnet; empty with HostNetwork.
	IP string
	// Pid is the sandbox (pause) process on the host.
	Pid int
	// NetNSPath is where the pod's network namespace is mounted; empty with
	// HostNetwork.
	NetNSPath string
	// Volumes maps emptyDir names to their host directories.
	Volumes map[string]string
	// Containers are the current instances, in PodSpec order.
	Containers []*Container

	sandboxConfig *runtimeapi.PodSandboxConfig
	cgroupDriver  string
}

// Container is one instance (attempt) of a pod's container.
type Container struct {
	Name    string
	ID      string
	Attempt uint32
	// LogPath is the host path of its log, <LogDir>/<name>/<attempt>.log.
	LogPath string
	// Pid is its init process on the host, 0 if it had already exited
	// when RunPod or RestartContainer looked.
	Pid  int
	Spec ContainerSpec
}

// Container returns the current instance of the named container, or nil.
func (p *Pod) Container(name string) *Container {
	for _, c := range p.Containers {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// CgroupPath returns the container's cgroup path, relative to a hierarchy's
// mount point.
func (p *Pod) CgroupPath(c *Container) string {
	return containerCgroupName(p.CgroupParent, c.ID, p.cgroupDriver)
}

// SandboxCgroupPath returns the cgroup path of the pod's sandbox (pause)
// container, relative to a hierarchy's mount point.
func (p *Pod) SandboxCgroupPath() string {
	return containerCgroupName(p.CgroupParent, p.SandboxID, p.cgroupDriver)
}

// RunPod creates the sandbox and containers through CRI as the kubelet
// does, and waits until they run. On error, what was created is removed.
func (r *Runtime) RunPod(ctx context.Context, spec PodSpec) (_ *Pod, err error) {
	start := time.Now()
	spec, err = normalizePodSpec(spec, r.opts.CgroupParent)
	if err != nil {
		return nil, err
	}
	if err := r.ImportTestImages(ctx); err != nil {
		return nil, err
	}
	pod := &Pod{
		Name:         spec.Name,
		Namespace:    spec.Namespace,
		UID:          spec.UID,
		HostNetwork:  spec.HostNetwork,
		CgroupParent: podCgroupName(spec.CgroupParent, spec.UID, r.opts.CgroupDriver),
		LogDir:       filepath.Join(r.opts.PodLogDir, fmt.Sprintf("%s_%s_%s", spec.Namespace, spec.Name, spec.UID)),
		Volumes:      map[string]string{},
		cgroupDriver: r.opts.CgroupDriver,
	}
	r.mu.Lock()
	if r.stopped {
		r.mu.Unlock()
		return nil, errors.New("runtime is stopped")
	}
	if _, dup := r.pods[pod.UID]; dup {
		r.mu.Unlock()
		return nil, fmt.Errorf("pod UID %s already runs", pod.UID)
	}
	// Registered first, so that Stop cleans up even a half-made pod.
	r.pods[pod.UID] = pod
	r.mu.Unlock()
	defer func() {
		if err != nil {
			if cleanupErr := r.RemovePod(context.WithoutCancel(ctx), pod); cleanupErr != nil {
				r.logf("cleanup of failed pod %s: %v", pod.Name, cleanupErr)
			}
		}
	}()
	// Journalled for the reaper, in case this process dies before Stop.
	if err := errors.Join(
		r.noteCgroupParents(spec.CgroupParent),
		journal(r.dir, journalCgroup, pod.CgroupParent),
		journal(r.dir, journalDir, pod.LogDir),
		journal(r.dir, journalDir, r.podDir(pod)),
	); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(pod.LogDir, 0o755); err != nil {
		return nil, err
	}
	for _, v := range spec.EmptyDirs {
		dir := filepath.Join(r.podDir(pod), "volumes", "kubernetes.io~empty-dir", v)
		if err := os.MkdirAll(dir, 0o777); err != nil {
			return nil, err
		}
		pod.Volumes[v] = dir
	}

	create := createCgroup
	if r.opts.CgroupDriver == DriverSystemd {
		create = createSlice
	}
	if err := create(pod.CgroupParent, podMemoryLimit(spec)); err != nil {
		return nil, fmt.Errorf("pod %s: %w", pod.Name, err)
	}
	pod.sandboxConfig = sandboxConfig(spec, pod.CgroupParent, pod.LogDir)
	resp, err := r.runtime.RunPodSandbox(ctx, &runtimeapi.RunPodSandboxRequest{Config: pod.sandboxConfig})
	if err != nil {
		return nil, fmt.Errorf("RunPodSandbox %s: %w", pod.Name, err)
	}
	pod.SandboxID = resp.PodSandboxId
	if err := journal(r.dir, journalSandbox, pod.SandboxID); err != nil {
		return nil, err
	}
	status, err := r.runtime.PodSandboxStatus(ctx, &runtimeapi.PodSandboxStatusRequest{PodSandboxId: pod.SandboxID, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("PodSandboxStatus %s: %w", pod.Name, err)
	}
	pod.IP = status.GetStatus().GetNetwork().GetIp()
	if pod.Pid, pod.NetNSPath, err = parseVerboseInfo(status.GetInfo()); err != nil {
		return nil, fmt.Errorf("sandbox %s: %w", pod.Name, err)
	}
	if pod.Pid == 0 {
		return nil, fmt.Errorf("sandbox %s has no process", pod.Name)
	}

	for _, cs := range spec.Containers {
		c, err := r.startContainer(ctx, pod, cs, 0)
		if err != nil {
			return nil, err
		}
		pod.Containers = append(pod.Containers, c)
	}
	r.logf("pod %s/%s (%d containers) running in %v", pod.Namespace, pod.Name, len(pod.Containers), time.Since(start).Round(time.Millisecond))
	return pod, nil
}

// startContainer creates and starts one attempt of a container.
func (r *Runtime) startContainer(ctx context.Context, pod *Pod, spec ContainerSpec, attempt uint32) (*Container, error) {
	if err := os.MkdirAll(filepath.Join(pod.LogDir, spec.Name), 0o755); err != nil {
		return nil, err
	}
	cfg := containerConfig(pod, spec, attempt)
	created, err := r.runtime.CreateContainer(ctx, &runtimeapi.CreateContainerRequest{
		PodSandboxId: pod.SandboxID, Config: cfg, SandboxConfig: pod.sandboxConfig,
	})
	if err != nil {
		return nil, fmt.Errorf("CreateContainer %s/%s: %w", pod.Name, spec.Name, err)
	}
	if _, err := r.runtime.StartContainer(ctx, &runtimeapi.StartContainerRequest{ContainerId: created.ContainerId}); err != nil {
		return nil, fmt.Errorf("StartContainer %s/%s: %w", pod.Name, spec.Name, err)
	}
	status, err := r.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: created.ContainerId, Verbose: true})
	if err != nil {
		return nil, fmt.Errorf("ContainerStatus %s/%s: %w", pod.Name, spec.Name, err)
	}
	pid, _, err := parseVerboseInfo(status.GetInfo())
	if err != nil {
		return nil, fmt.Errorf("container %s/%s: %w", pod.Name, spec.Name, err)
	}
	return &Container{
		Name:    spec.Name,
		ID:      created.ContainerId,
		Attempt: attempt,
		LogPath: filepath.Join(pod.LogDir, cfg.LogPath),
		Pid:     pid,
		Spec:    spec,
	}, nil
}

// RemovePod stops and removes the pod's sandbox and containers, then its
// cgroups, log dir and volumes.
func (r *Runtime) RemovePod(ctx context.Context, pod *Pod) error {
	var errs []error
	if pod.SandboxID != "" {
		errs = append(errs, r.removeSandbox(ctx, pod.SandboxID))
	}
	errs = append(errs, removePodCgroup(pod), r.removePodDirs(pod))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove pod %s: %w", pod.Name, err)
	}
	r.mu.Lock()
	delete(r.pods, pod.UID)
	r.mu.Unlock()
	return nil
}

// podDir is the pod's directory under the kubelet-style root dir.
func (r *Runtime) podDir(pod *Pod) string {
	return filepath.Join(r.opts.RootDir, "pods", pod.UID)
}

// removePodDirs removes the pod's directories outside the work dir: its
// logs, its kubelet-style dir and CNI cache entries.
func (r *Runtime) removePodDirs(pod *Pod) error {
	errs := []error{os.RemoveAll(pod.LogDir), os.RemoveAll(r.podDir(pod))}
	if pod.SandboxID != "" {
		errs = append(errs, removeCNICache(pod.SandboxID))
	}
	return errors.Join(errs...)
}

// RestartContainer does what the kubelet does when a container exits or
// fails its liveness probe: it stops the current instance if it still runs
// (SIGTERM, SIGKILL after 10 s), keeps it as an exited container, and starts
// a new instance with the next attempt number and log file.
func (r *Runtime) RestartContainer(ctx context.Context, pod *Pod, name string) error {
	old := pod.Container(name)
	if old == nil {
		return fmt.Errorf("pod %s has no container %q", pod.Name, name)
	}
	status, err := r.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: old.ID})
	if err != nil {
		return fmt.Errorf("ContainerStatus %s/%s: %w", pod.Name, name, err)
	}
	if state := status.GetStatus().GetState(); state == runtimeapi.ContainerState_CONTAINER_RUNNING || state == runtimeapi.ContainerState_CONTAINER_CREATED {
		if _, err := r.runtime.StopContainer(ctx, &runtimeapi.StopContainerRequest{ContainerId: old.ID, Timeout: stopGraceSecs}); err != nil {
			return fmt.Errorf("StopContainer %s/%s: %w", pod.Name, name, err)
		}
	}
	c, err := r.startContainer(ctx, pod, old.Spec, old.Attempt+1)
	if err != nil {
		return err
	}
	r.mu.Lock()
	for i := range pod.Containers {
		if pod.Containers[i] == old {
			pod.Containers[i] = c
		}
	}
	r.mu.Unlock()
	r.logf("container %s/%s restarted as attempt %d", pod.Name, name, c.Attempt)
	return nil
}

// WaitContainerExited polls until the current instance of the named
// container has exited and returns its exit code.
func (r *Runtime) WaitContainerExited(ctx context.Context, pod *Pod, name string) (int32, error) {
	c := pod.Container(name)
	if c == nil {
		return 0, fmt.Errorf("pod %s has no container %q", pod.Name, name)
	}
	for {
		status, err := r.runtime.ContainerStatus(ctx, &runtimeapi.ContainerStatusRequest{ContainerId: c.ID})
		if err != nil {
			return 0, fmt.Errorf("ContainerStatus %s/%s: %w", pod.Name, name, err)
		}
		if status.GetStatus().GetState() == runtimeapi.ContainerState_CONTAINER_EXITED {
			return status.GetStatus().GetExitCode(), nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("container %s/%s still %v: %w", pod.Name, name, status.GetStatus().GetState(), ctx.Err())
		case <-time.After(pollInterval):
		}
	}
}

// normalizePodSpec applies defaults and rejects specs the harness cannot
// run. It is pure apart from generating a UID.
func normalizePodSpec(spec PodSpec, defaultParent string) (PodSpec, error) {
	if spec.Name == "" {
		return spec, errors.New("pod name is empty")
	}
	if spec.Namespace == "" {
		spec.Namespace = "default"
	}
	if spec.UID == "" {
		spec.UID = newUID()
	}
	if spec.CgroupParent == "" {
		spec.CgroupParent = defaultParent
	}
	spec.CgroupParent = path.Clean(spec.CgroupParent)
	if !path.IsAbs(spec.CgroupParent) {
		return spec, fmt.Errorf("pod %s: cgroup parent %q is not absolute", spec.Name, spec.CgroupParent)
	}
	for _, s := range []string{spec.Name, spec.Namespace, spec.UID} {
		if strings.ContainsAny(s, "/_ ") {
			return spec, fmt.Errorf("pod %s: %q may not contain '/', '_' or spaces", spec.Name, s)
		}
	}
	if len(spec.Containers) == 0 {
		return spec, fmt.Errorf("pod %s has no containers", spec.Name)
	}
	volumes := map[string]bool{}
	for _, v := range spec.EmptyDirs {
		if v == "" || strings.Contains(v, "/") || volumes[v] {
			return spec, fmt.Errorf("pod %s: bad or duplicate emptyDir name %q", spec.Name, v)
		}
		volumes[v] = true
	}
	names := map[string]bool{}
	containers := make([]ContainerSpec, len(spec.Containers))
	for i, c := range spec.Containers {
		if c.Name == "" || strings.Contains(c.Name, "/") || names[c.Name] {
			return spec, fmt.Errorf("pod %s: bad or duplicate container name %q", spec.Name, c.Name)
		}
		names[c.Name] = true
		if err := checkContainerSpec(spec, c, volumes); err != nil {
			return spec, err
		}
		if c.Image == "" {
			c.Image = WorkImage
		}
		containers[i] = c
	}
	spec.Containers = containers
	return spec, nil
}

// checkContainerSpec rejects a container whose mounts name undeclared
// volumes or relative paths, or that would send traffic off this machine.
func checkContainerSpec(spec PodSpec, c ContainerSpec, volumes map[string]bool) error {
	for _, m := range c.Mounts {
		if !volumes[m.Volume] {
			return fmt.Errorf("pod %s container %s: mount of undeclared volume %q", spec.Name, c.Name, m.Volume)
		}
		if !path.IsAbs(m.MountPath) {
			return fmt.Errorf("pod %s container %s: mount path %q is not absolute", spec.Name, c.Name, m.MountPath)
		}
	}
	if spec.HostNetwork && (slices.Contains(c.Args, "-net") || slices.Contains(c.Args, "--net")) {
		return fmt.Errorf("pod %s container %s: -net in a host-network pod would send traffic off this machine", spec.Name, c.Name)
	}
	return nil
}

func newUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

func namespaceOptions(hostNetwork bool) *runtimeapi.NamespaceOption {
	network := runtimeapi.NamespaceMode_POD
	if hostNetwork {
		network = runtimeapi.NamespaceMode_NODE
	}
	return &runtimeapi.NamespaceOption{
		Network: network,
		Pid:     runtimeapi.NamespaceMode_CONTAINER,
		Ipc:     runtimeapi.NamespaceMode_POD,
	}
}

// sandboxConfig is what the kubelet's generatePodSandboxConfig sends for
// spec. It is pure.
func sandboxConfig(spec PodSpec, cgroupParent, logDir string) *runtimeapi.PodSandboxConfig {
	labels := map[string]string{}
	for k, v := range spec.Labels {
		labels[k] = v
	}
	labels[LabelPodName] = spec.Name
	labels[LabelPodNamespace] = spec.Namespace
	labels[LabelPodUID] = spec.UID
	cfg := &runtimeapi.PodSandboxConfig{
		Metadata:     &runtimeapi.PodSandboxMetadata{Name: spec.Name, Namespace: spec.Namespace, Uid: spec.UID},
		LogDirectory: logDir,
		Labels:       labels,
		Annotations:  map[string]string{"kubernetes.io/config.source": "api"},
		Linux: &runtimeapi.LinuxPodSandboxConfig{
			CgroupParent: cgroupParent,
			SecurityContext: &runtimeapi.LinuxSandboxSecurityContext{
				NamespaceOptions: namespaceOptions(spec.HostNetwork),
			},
		},
	}
	// runc cannot set a hostname without a UTS namespace of its own, which
	// host-network pods do not get.
	if !spec.HostNetwork {
		cfg.Hostname = spec.Name
	}
	return cfg
}

// containerConfig is what the kubelet's generateContainerConfig sends for
// one attempt of a container. It is pure.
func containerConfig(pod *Pod, spec ContainerSpec, attempt uint32) *runtimeapi.ContainerConfig {
	mounts := make([]*runtimeapi.Mount, 0, len(spec.Mounts))
	for _, m := range spec.Mounts {
		mounts = append(mounts, &runtimeapi.Mount{ContainerPath: m.MountPath, HostPath: pod.Volumes[m.Volume]})
	}
	shares := int64(minShares)
	if spec.CPURequestMilli > 0 {
		shares = max(minShares, spec.CPURequestMilli*1024/1000)
	}
	resources := &runtimeapi.LinuxContainerResources{
		CpuPeriod:          cpuPeriodMicros,
		CpuShares:          shares,
		MemoryLimitInBytes: spec.MemoryLimitBytes,
	}
	if spec.CPULimitMilli > 0 {
		resources.CpuQuota = spec.CPULimitMilli * cpuPeriodMicros / 1000
	}
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: spec.Name, Attempt: attempt},
		Image:    &runtimeapi.ImageSpec{Image: spec.Image},
		Args:     spec.Args,
		Labels: map[string]string{
			LabelContainerName: spec.Name,
			LabelPodName:       pod.Name,
			LabelPodNamespace:  pod.Namespace,
			LabelPodUID:        pod.UID,
		},
		Annotations: map[string]string{annotationRestartCount: strconv.FormatUint(uint64(attempt), 10)},
		LogPath:     filepath.Join(spec.Name, fmt.Sprintf("%d.log", attempt)),
		Mounts:      mounts,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       resources,
			SecurityContext: &runtimeapi.LinuxContainerSecurityContext{NamespaceOptions: namespaceOptions(pod.HostNetwork)},
		},
	}
}

// verboseInfo is what containerd puts in Info["info"] of a verbose
// sandbox or container status.
type verboseInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec struct {
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// parseVerboseInfo reads the process id (0 once the process has exited)
// and, if the process has a network namespace of its own, the path it is
// mounted at.
func parseVerboseInfo(info map[string]string) (pid int, netnsPath string, err error) {
	raw, ok := info["info"]
	if !ok {
		return 0, "", errors.New("verbose status has no info")
	}
	var parsed verboseInfo
	if err := json.Unmarshal([]byte(raw), &parsed); err != nil {
		return 0, "", fmt.Errorf("parse verbose info: %w", err)
	}
	for _, ns := range parsed.RuntimeSpec.Linux.Namespaces {
		if ns.Type == "network" {
			netnsPath = ns.Path
		}
	}
	return parsed.Pid, netnsPath, nil
}

// podMemoryLimit is the memory limit the kubelet puts on a pod cgroup: the
// sum of its containers' limits when every container has one, else none
// (ResourceConfigForPod).
func podMemoryLimit(spec PodSpec) int64 {
	var sum int64
	for _, c := range spec.Containers {
		if c.MemoryLimitBytes <= 0 {
			return 0
		}
		sum += c.MemoryLimitBytes
	}
	return sum
}

// createCgroup makes a cgroup in every hierarchy with a memory limit (0:
// none), as the kubelet's container manager makes the pod cgroups before
// their sandboxes and the pod root with the node's allocatable memory.
func createCgroup(cgroupPath string, memoryLimit int64) error {
	for _, mountpoint := range cgroupMountpoints() {
		if err := delegateControllers(mountpoint, cgroupPath); err != nil {
			return err
		}
		dir := filepath.Join(mountpoint, cgroupPath)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("create cgroup: %w", err)
		}
		if memoryLimit <= 0 {
			continue
		}
		for _, file := range []string{"memory.limit_in_bytes", "memory.max"} { // v1, v2
			limitFile := filepath.Join(dir, file)
			if _, err := os.Stat(limitFile); err != nil {
				continue
			}
			if err := os.WriteFile(limitFile, []byte(strconv.FormatInt(memoryLimit, 10)), 0o644); err != nil {
				return fmt.Errorf("set memory limit of %s: %w", cgroupPath, err)
			}
		}
	}
	return nil
}
