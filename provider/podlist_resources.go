package provider

import (
	"math"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// The kubelet's cpu conversions (pkg/kubelet/cm/helpers_linux.go).
const (
	minShares     = 2
	sharesPerCPU  = 1024
	milliCPUToCPU = 1000
	// unlimitedMemory: a memory limit above 2^62 bytes is no limit
	// (cgroup v1 writes "unlimited" as 2^63 rounded down to a page).
	unlimitedMemory = 1 << 62
)

// cgroupResources are the resource settings the kubelet gave a container,
// as the runtime reports them (CRI ContainerStatus.resources) or as they
// are in its cgroup.
type cgroupResources struct {
	shares, quota, period int64
	memoryLimit           uint64
}

// resourcesOf prefers the runtime's answer (what the kubelet asked for) and
// falls back to the cgroup, which the collector may have read before runc
// wrote the limits and re-reads only at its next rescan.
func resourcesOf(cri *runtimeapi.LinuxContainerResources, cgroup *cadvisor.CgroupInfo) (cgroupResources, bool) {
	if cri != nil && (cri.CpuShares != 0 || cri.CpuQuota != 0 || cri.MemoryLimitInBytes != 0) {
		return cgroupResources{shares: cri.CpuShares, quota: cri.CpuQuota, period: cri.CpuPeriod,
			memoryLimit: uint64(max(cri.MemoryLimitInBytes, 0))}, true
	}
	if cgroup == nil {
		return cgroupResources{}, false
	}
	out := cgroupResources{
		shares: int64(min(cgroup.Spec.CPUShares, math.MaxInt64)),
		quota:  cgroup.Spec.CPUQuota,
		period: int64(min(cgroup.Spec.CPUPeriod, math.MaxInt64)),
	}
	if latest := cgroup.Latest(); latest != nil {
		out.memoryLimit = latest.Memory.Limit
	}
	return out, true
}

// containerResources turns what the kubelet wrote back into requests and
// limits, inverting its conversions: cpu.shares to a cpu request
// (SharesToMilliCPU; the floor of 2 shares, which the kubelet writes for no
// request, is no request), the CFS quota over its period to a cpu limit
// (QuotaToMilliCPU), the memory limit as is. A memory request leaves no
// trace in cgroup v1, except in the pod's QoS class: Guaranteed pods
// request what they are limited to, BestEffort pods neither.
func containerResources(qos corev1.PodQOSClass, cri *runtimeapi.LinuxContainerResources, cgroup *cadvisor.CgroupInfo) corev1.ResourceRequirements {
	settings, known := resourcesOf(cri, cgroup)
	if !known || qos == corev1.PodQOSBestEffort {
		return corev1.ResourceRequirements{}
	}
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	if settings.shares > minShares {
		requests[corev1.ResourceCPU] = *resource.NewMilliQuantity(sharesToMilliCPU(settings.shares), resource.DecimalSI)
	}
	if settings.quota > 0 && settings.period > 0 {
		limits[corev1.ResourceCPU] = *resource.NewMilliQuantity(settings.quota*milliCPUToCPU/settings.period, resource.DecimalSI)
	}
	if settings.memoryLimit > 0 && settings.memoryLimit <= unlimitedMemory {
		limits[corev1.ResourceMemory] = *resource.NewQuantity(int64(settings.memoryLimit), resource.BinarySI)
	}
	if qos == corev1.PodQOSGuaranteed {
		for name, limit := range limits {
			requests[name] = limit
		}
	}
	return corev1.ResourceRequirements{Requests: nilIfEmpty(requests), Limits: nilIfEmpty(limits)}
}

// sharesToMilliCPU is the kubelet's SharesToMilliCPU: the smallest request
// that gives these shares.
func sharesToMilliCPU(shares int64) int64 {
	if shares < minShares {
		return 0
	}
	return int64(math.Ceil(float64(shares*milliCPUToCPU) / float64(sharesPerCPU)))
}

func nilIfEmpty(list corev1.ResourceList) corev1.ResourceList {
	if len(list) == 0 {
		return nil
	}
	return list
}

// podQOSClass reads the pod's QoS class from where the kubelet put its
// cgroup: below kubepods/besteffort, kubepods/burstable, or right below
// kubepods for Guaranteed pods (kubepods-besteffort-pod<uid>.slice and so on
// with systemd). Empty when the pod cgroup is not known.
func podQOSClass(podCgroup *cadvisor.CgroupInfo) corev1.PodQOSClass {
	if podCgroup == nil {
		return ""
	}
	name := podCgroup.Name
	switch {
	case strings.Contains(name, "besteffort"):
		return corev1.PodQOSBestEffort
	case strings.Contains(name, "burstable"):
		return corev1.PodQOSBurstable
	}
	return corev1.PodQOSGuaranteed
}
