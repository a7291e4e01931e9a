package image

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"sigs.k8s.io/yaml"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
)

const cpuPeriodMicros = 100000

// The kubelet's default masked and read-only paths for containers that are
// not privileged (pkg/securitycontext/util.go), which containerd applies
// only when asked.
var (
	defaultMaskedPaths = []string{"/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap"}
	defaultReadonlyPaths = []string{"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// loadDaemonSet reads deploy/base/daemonset.yaml, strictly.
func loadDaemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(moduleRoot(t), "deploy", "base", "daemonset.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ds appsv1.DaemonSet
	if err := yaml.UnmarshalStrict(data, &ds); err != nil {
		t.Fatalf("deploy/base/daemonset.yaml: %v", err)
	}
	if n := len(ds.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("the DaemonSet has %d containers, want 1", n)
	}
	return &ds
}

// podEnv is where the DaemonSet's pod lands on this machine.
type podEnv struct {
	NodeName string
	// HostPaths maps the DaemonSet's hostPath paths to the harness's
	// directories; paths not listed are used as they are.
	HostPaths map[string]string
	// EmptyDirs maps emptyDir volume names to host directories.
	EmptyDirs map[string]string
}

// containerConfig is what the kubelet would send to CRI for the
// DaemonSet's container, with image and extra arguments (appended, so they
// override the DaemonSet's: the last value of a flag wins). ConfigMap and
// service account volumes are left out; the test overrides the flags that
// name them.
func containerConfig(ds *appsv1.DaemonSet, image string, env podEnv, extraArgs []string) (*runtimeapi.ContainerConfig, error) {
	spec := ds.Spec.Template.Spec
	ctr := spec.Containers[0]
	args, err := expandArgs(ctr, env.NodeName)
	if err != nil {
		return nil, err
	}
	mounts, err := criMounts(spec.Volumes, ctr.VolumeMounts, env)
	if err != nil {
		return nil, err
	}
	sc, err := criSecurityContext(ctr.SecurityContext, namespaces(spec))
	if err != nil {
		return nil, err
	}
	return &runtimeapi.ContainerConfig{
		Metadata: &runtimeapi.ContainerMetadata{Name: ctr.Name},
		Image:    &runtimeapi.ImageSpec{Image: image},
		Args:     append(args, extraArgs...),
		Labels:   map[string]string{framework.LabelContainerName: ctr.Name},
		LogPath:  filepath.Join(ctr.Name, "0.log"),
		Mounts:   mounts,
		Linux: &runtimeapi.LinuxContainerConfig{
			Resources:       criResources(ctr.Resources),
			SecurityContext: sc,
		},
	}, nil
}

// expandArgs resolves $(NODE_NAME)-style references to the container's
// env, as the kubelet does; spec.nodeName is the only fieldRef it knows.
func expandArgs(ctr corev1.Container, nodeName string) ([]string, error) {
	vars := map[string]string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			vars[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName":
			vars[e.Name] = nodeName
		default:
			return nil, fmt.Errorf("env %s: only values and spec.nodeName are mapped", e.Name)
		}
	}
	args := make([]string, len(ctr.Args))
	for i, arg := range ctr.Args {
		for name, value := range vars {
			arg = strings.ReplaceAll(arg, "$("+name+")", value)
		}
		if strings.Contains(arg, "$(") {
			return nil, fmt.Errorf("argument %q references an unknown variable", arg)
		}
		args[i] = arg
	}
	return args, nil
}

func criMounts(volumes []corev1.Volume, mounts []corev1.VolumeMount, env podEnv) ([]*runtimeapi.Mount, error) {
	byName := map[string]corev1.Volume{}
	for _, v := range volumes {
		byName[v.Name] = v
	}
	var out []*runtimeapi.Mount
	for _, m := range mounts {
		v, ok := byName[m.Name]
		if !ok {
			return nil, fmt.Errorf("volumeMount %s: no such volume", m.Name)
		}
		var host string
		switch {
		case v.HostPath != nil:
			host = v.HostPath.Path
			if mapped, ok := env.HostPaths[host]; ok {
				host = mapped
			}
		case v.EmptyDir != nil:
			if host, ok = env.EmptyDirs[v.Name]; !ok {
				return nil, fmt.Errorf("emptyDir %s: no host directory given", v.Name)
			}
		default:
			continue
		}
		out = append(out, &runtimeapi.Mount{
			ContainerPath: m.MountPath,
			HostPath:      host,
			Readonly:      m.ReadOnly,
			Propagation:   criPropagation(m.MountPropagation),
		})
	}
	return out, nil
}

func criPropagation(p *corev1.MountPropagationMode) runtimeapi.MountPropagation {
	switch {
	case p == nil:
		return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
	case *p == corev1.MountPropagationHostToContainer:
		return runtimeapi.MountPropagation_PROPAGATION_HOST_TO_CONTAINER
	case *p == corev1.MountPropagationBidirectional:
		return runtimeapi.MountPropagation_PROPAGATION_BIDIRECTIONAL
	}
	return runtimeapi.MountPropagation_PROPAGATION_PRIVATE
}

// namespaces are the pod's host namespaces as CRI takes them.
func namespaces(spec corev1.PodSpec) *runtimeapi.NamespaceOption {
	ns := &runtimeapi.NamespaceOption{Network: runtimeapi.NamespaceMode_POD, Pid: runtimeapi.NamespaceMode_CONTAINER, Ipc: runtimeapi.NamespaceMode_POD}
	if spec.HostNetwork {
		ns.Network = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostPID {
		ns.Pid = runtimeapi.NamespaceMode_NODE
	}
	if spec.HostIPC {
		ns.Ipc = runtimeapi.NamespaceMode_NODE
	}
	return ns
}

// criSecurityContext maps the fields the DaemonSet sets; it refuses
// settings it does not map rather than run something else.
func criSecurityContext(sc *corev1.SecurityContext, ns *runtimeapi.NamespaceOption) (*runtimeapi.LinuxContainerSecurityContext, error) {
	if sc == nil || sc.RunAsUser == nil || sc.Capabilities == nil || sc.ReadOnlyRootFilesystem == nil ||
		sc.AllowPrivilegeEscalation == nil || sc.SeccompProfile == nil {
		return nil, fmt.Errorf("securityContext must set runAsUser, capabilities, readOnlyRootFilesystem, allowPrivilegeEscalation and seccompProfile")
	}
	if sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		return nil, fmt.Errorf("seccompProfile %s is not mapped", sc.SeccompProfile.Type)
	}
	out := &runtimeapi.LinuxContainerSecurityContext{
		Capabilities:     &runtimeapi.Capability{},
		Privileged:       sc.Privileged != nil && *sc.Privileged,
		NamespaceOptions: ns,
		RunAsUser:        &runtimeapi.Int64Value{Value: *sc.RunAsUser},
		ReadonlyRootfs:   *sc.ReadOnlyRootFilesystem,
		NoNewPrivs:       !*sc.AllowPrivilegeEscalation,
		Seccomp:          &runtimeapi.SecurityProfile{ProfileType: runtimeapi.SecurityProfile_RuntimeDefault},
		MaskedPaths:      defaultMaskedPaths,
		ReadonlyPaths:    defaultReadonlyPaths,
	}
	if sc.RunAsGroup != nil {
		out.RunAsGroup = &runtimeapi.Int64Value{Value: *sc.RunAsGroup}
	}
	for _, c := range sc.Capabilities.Add {
		out.Capabilities.AddCapabilities = append(out.Capabilities.AddCapabilities, string(c))
	}
	for _, c := range sc.Capabilities.Drop {
		out.Capabilities.DropCapabilities = append(out.Capabilities.DropCapabilities, string(c))
	}
	return out, nil
}

// criResources are the kubelet's cgroup settings for requests and limits.
func criResources(r corev1.ResourceRequirements) *runtimeapi.LinuxContainerResources {
	out := &runtimeapi.LinuxContainerResources{CpuPeriod: cpuPeriodMicros, CpuShares: 2}
	if cpu, ok := r.Requests[corev1.ResourceCPU]; ok {
		out.CpuShares = max(2, cpu.MilliValue()*1024/1000)
	}
	if cpu, ok := r.Limits[corev1.ResourceCPU]; ok {
		out.CpuQuota = cpu.MilliValue() * cpuPeriodMicros / 1000
	}
	if mem, ok := r.Limits[corev1.ResourceMemory]; ok {
		out.MemoryLimitInBytes = mem.Value()
	}
	return out
}
