package snapshot

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/collector"
)

// fixtureContainer is a container cgroup of the collector's v2 fixture tree.
const fixtureContainer = "/kubepods/burstable/pod5c0ffee0-1111-4222-8333-444455556666/9be25294016e2dc0340dd605ce1f57b492039b267a6a618a7ad2a7a58a740f32"

// TestLegacyServesRetainedHistory: the collector keeps only the newest two
// samples as Samples and the older ones encoded; the legacy JSON routes
// must still serve every retained sample (num_stats, time ranges), oldest
// first, and the newest one when asked for one.
func TestLegacyServesRetainedHistory(t *testing.T) {
	root := filepath.Join("..", "collector", "testdata", "v2")
	sampler, err := collector.New(collector.Config{
		CgroupMount: filepath.Join(root, "cgroup"), ProcRoot: filepath.Join(root, "proc"), SysRoot: filepath.Join(root, "sys"),
		Tracked: []string{"/kubepods"}, RescanInterval: time.Hour, Interval: time.Second, Retention: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sampler.Start(ctx); err != nil {
		t.Fatal(err)
	}
	const passes = 5
	var view *cadvisor.View
	for range passes {
		view = sampler.Housekeep(ctx)
	}
	legacy := NewCgroups(view, nil, nil)

	all, ok := legacy.ContainerInfo(fixtureContainer, cadvisorapi.ContainerInfoRequest{NumStats: -1})
	if !ok {
		t.Fatal("fixture container not served")
	}
	if len(all.Stats) != passes {
		t.Fatalf("num_stats -1: %d stats, want all %d passes", len(all.Stats), passes)
	}
	for i := 1; i < len(all.Stats); i++ {
		if !all.Stats[i].Timestamp.After(all.Stats[i-1].Timestamp) {
			t.Errorf("stats %d and %d out of order: %v, %v", i-1, i, all.Stats[i-1].Timestamp, all.Stats[i].Timestamp)
		}
	}
	if got := all.Stats[0].Cpu.Usage.Total; got != 5000000000 {
		t.Errorf("oldest sample's cpu %d, want the fixture's 5e9", got)
	}
	newest := view.Get(fixtureContainer).Latest()
	one, _ := legacy.ContainerInfo(fixtureContainer, cadvisorapi.ContainerInfoRequest{NumStats: 1})
	if len(one.Stats) != 1 || !one.Stats[0].Timestamp.Equal(newest.Timestamp) {
		t.Errorf("num_stats 1: %d stats, want the newest sample", len(one.Stats))
	}
	ranged, _ := legacy.ContainerInfo(fixtureContainer, cadvisorapi.ContainerInfoRequest{
		NumStats: -1, Start: all.Stats[1].Timestamp, End: all.Stats[2].Timestamp})
	if len(ranged.Stats) != 2 || !ranged.Stats[0].Timestamp.Equal(all.Stats[1].Timestamp) {
		t.Errorf("time range of the 2nd and 3rd samples: %d stats", len(ranged.Stats))
	}
}
