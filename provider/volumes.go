package provider

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/analyzer"
)

// podVolumeStats converts the analyzer's measurement of a pod's volumes the
// way the kubelet's parsePodVolumeStats does (every FsStats field set, 0
// when unknown) and lists them as makePodStorageStats does: the ephemeral
// volumes first, then the rest. ephemeral is the first part, which alone
// counts toward the pod's ephemeral storage. No volumes gives nil, so that
// the key is omitted.
func podVolumeStats(measured []analyzer.VolumeStats) (all, ephemeral []statsapi.VolumeStats) {
	if len(measured) == 0 {
		return nil, nil
	}
	all = make([]statsapi.VolumeStats, 0, len(measured))
	for _, wantEphemeral := range []bool{true, false} {
		for _, v := range measured {
			if v.Ephemeral == wantEphemeral {
				all = append(all, volumeStats(v))
			}
		}
		if wantEphemeral {
			ephemeral = all[:len(all):len(all)]
		}
	}
	return all, ephemeral
}

func volumeStats(v analyzer.VolumeStats) statsapi.VolumeStats {
	return statsapi.VolumeStats{
		Name: v.Name,
		FsStats: statsapi.FsStats{
			Time:           metav1.NewTime(v.Time),
			AvailableBytes: ptrTo(v.Available),
			CapacityBytes:  ptrTo(v.Capacity),
			UsedBytes:      ptrTo(v.Used.Bytes),
			InodesFree:     ptrTo(v.InodesFree),
			Inodes:         ptrTo(v.Inodes),
			InodesUsed:     ptrTo(v.Used.Inodes),
		},
	}
}
