package analyzer

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// FsResourceAnalyzer keeps every pod's volume stats in the background, as
// the kubelet's fsResourceAnalyzer does, so that reading them never walks a
// disk. Pods are the directories under the kubelet's pods dir.
type FsResourceAnalyzer struct {
	podsDir     string
	period      time.Duration
	logger      klog.Logger
	calculators atomic.Pointer[map[string]*volumeStatCalculator]
}

// NewFsResourceAnalyzer analyzes the pods under podsDir
// (<root-dir>/pods) every period; period <= 0 disables it.
func NewFsResourceAnalyzer(podsDir string, period time.Duration, logger klog.Logger) *FsResourceAnalyzer {
	a := &FsResourceAnalyzer{podsDir: podsDir, period: period, logger: logger}
	a.calculators.Store(&map[string]*volumeStatCalculator{})
	return a
}

// Run looks for new and removed pods at once and then every period (from
// the end of the previous look) until ctx ends. A new pod's volumes are
// measured at once, then every period to twice the period (jittered, so
// that pods do not walk their disks together), like the kubelet's
// volumeStatCalculator.
func (a *FsResourceAnalyzer) Run(ctx context.Context) {
	if a.period <= 0 {
		a.logger.Info("Volume stats collection disabled")
		return
	}
	wait.UntilWithContext(ctx, a.updatePods, a.period)
	for _, c := range *a.calculators.Load() {
		c.stop()
	}
}

// PodVolumeStats returns the newest stats of the pod's volumes, sorted by
// name; false until its first measurement is done, and for pods without
// measured volumes.
func (a *FsResourceAnalyzer) PodVolumeStats(uid string) ([]VolumeStats, bool) {
	c := (*a.calculators.Load())[uid]
	if c == nil {
		return nil, false
	}
	latest := c.latest.Load()
	if latest == nil {
		return nil, false
	}
	return *latest, true
}

// updatePods swaps in a calculator map for the current pod directories,
// keeping the calculators of known pods, starting new ones and stopping
// those of pods that are gone.
func (a *FsResourceAnalyzer) updatePods(ctx context.Context) {
	entries, err := os.ReadDir(a.podsDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		a.logger.Error(err, "Cannot list pods for volume stats", "dir", a.podsDir)
		return
	}
	old := *a.calculators.Load()
	current := make(map[string]*volumeStatCalculator, len(entries))
	for _, entry := range entries {
		uid := entry.Name()
		if !entry.IsDir() {
			continue
		}
		if c := old[uid]; c != nil {
			current[uid] = c
			continue
		}
		c := newVolumeStatCalculator(filepath.Join(a.podsDir, uid), a.period, a.logger.WithValues("podUID", uid))
		c.start(ctx)
		current[uid] = c
	}
	for uid, c := range old {
		if current[uid] == nil {
			c.stop()
		}
	}
	a.calculators.Store(&current)
}

// volumeStatCalculator measures one pod's volumes until stopped. Only its
// own goroutine touches cachedForever.
type volumeStatCalculator struct {
	podDir        string
	period        time.Duration
	logger        klog.Logger
	stop          context.CancelFunc
	latest        atomic.Pointer[[]VolumeStats]
	cachedForever map[Volume]VolumeStats
}

func newVolumeStatCalculator(podDir string, period time.Duration, logger klog.Logger) *volumeStatCalculator {
	return &volumeStatCalculator{podDir: podDir, period: period, logger: logger, stop: func() {}, cachedForever: map[Volume]VolumeStats{}}
}

// start measures at once and then after period plus up to one more period
// each time (wait.JitterUntil, factor 1.0, sliding), until stop or ctx end.
// Stopping does not interrupt a walk in flight.
func (c *volumeStatCalculator) start(ctx context.Context) {
	ctx, c.stop = context.WithCancel(ctx)
	go wait.JitterUntilWithContext(ctx, func(context.Context) { c.calcAndStore() }, c.period, 1.0, true)
}

// calcAndStore measures every volume of the pod. Volumes that cannot be
// measured are left out; a pod without volumes stores nothing.
func (c *volumeStatCalculator) calcAndStore() {
	volumes, err := PodVolumes(c.podDir)
	if err != nil {
		c.logger.V(4).Info("Cannot list the pod's volumes", "err", err)
		return
	}
	if len(volumes) == 0 {
		return
	}
	stats := make([]VolumeStats, 0, len(volumes))
	for _, v := range volumes {
		if cached, ok := c.cachedForever[v]; ok {
			stats = append(stats, cached)
			continue
		}
		measured, err := MeasureVolume(v)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.logger.V(4).Info("Cannot measure a volume", "volume", v.Name, "err", err)
			}
			continue
		}
		if measuredPlugins[v.Plugin].cachedForever {
			c.cachedForever[v] = measured
		}
		stats = append(stats, measured)
	}
	c.latest.Store(&stats)
}
