package cadvisor

import (
	"slices"
	"testing"
	"time"
)

func TestSampleRing(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(seconds int) *Sample { return &Sample{Timestamp: t0.Add(time.Duration(seconds) * time.Second)} }
	seconds := func(samples []*Sample) []int {
		var out []int
		for _, s := range samples {
			out = append(out, int(s.Timestamp.Sub(t0)/time.Second))
		}
		return out
	}
	tests := []struct {
		name      string
		capacity  int
		retention time.Duration
		push      []int
		want      []int
	}{
		{name: "empty", capacity: 3, retention: time.Minute},
		{name: "under capacity", capacity: 3, retention: time.Minute, push: []int{0, 10}, want: []int{0, 10}},
		{name: "capacity evicts oldest", capacity: 3, retention: time.Minute, push: []int{0, 10, 20, 30, 40}, want: []int{20, 30, 40}},
		{name: "retention evicts old", capacity: 13, retention: 20 * time.Second, push: []int{0, 10, 20, 30, 45}, want: []int{30, 45}},
		{name: "the last two always kept", capacity: 3, retention: time.Second, push: []int{0, 100}, want: []int{0, 100}},
		{name: "the last two of many", capacity: 3, retention: time.Second, push: []int{0, 100, 200}, want: []int{100, 200}},
		{name: "a late tick keeps the rate", capacity: 2, retention: 10 * time.Second, push: []int{0, 10, 21}, want: []int{10, 21}},
		{name: "retention boundary is inclusive", capacity: 5, retention: 20 * time.Second, push: []int{0, 10, 20}, want: []int{0, 10, 20}},
		// Long enough for the history to move to new arrays several times.
		{name: "many passes", capacity: 13, retention: 2 * time.Minute, push: every(10, 0, 400), want: every(10, 280, 400)},
		{name: "many passes, late ticks", capacity: 13, retention: 30 * time.Second, push: every(17, 0, 400), want: every(17, 374, 400)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ring := NewSampleRing(tt.capacity)
			var published [][]*Sample
			var infos []CgroupInfo
			all := func() []*Sample {
				info := CgroupInfo{Samples: ring.AppendNewest(nil), History: ring.History()}
				if info.SampleCount() != ring.Len() {
					t.Errorf("SampleCount %d, ring holds %d", info.SampleCount(), ring.Len())
				}
				infos = append(infos, info)
				return info.AllSamples()
			}
			for _, s := range tt.push {
				ring.Push(at(s), tt.retention)
				published = append(published, all())
			}
			got := seconds(all())
			if len(got) != len(tt.want) {
				t.Fatalf("samples at %v, want %v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("samples at %v, want %v", got, tt.want)
				}
			}
			// Slices handed out earlier never change, nor do the histories
			// published with them.
			for i, p := range published {
				if last := p[len(p)-1]; int(last.Timestamp.Sub(t0)/time.Second) != tt.push[i] {
					t.Errorf("published slice %d changed: newest is %v", i, last.Timestamp)
				}
				if now := seconds(infos[i].AllSamples()); !slices.Equal(now, seconds(p)) {
					t.Errorf("published history %d changed: samples at %v, were at %v", i, now, seconds(p))
				}
			}
		})
	}
}
