package snapshot

import (
	"reflect"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// historySample is a sample at base+seconds (plus a jitter within one pass)
// with cumulative cpu, a working set and an OOM kill count.
func historySample(base time.Time, seconds float64, cpuNanos, workingSet, oomKills uint64) *cadvisor.Sample {
	return &cadvisor.Sample{
		Timestamp: base.Add(time.Duration(seconds * float64(time.Second))),
		CPU:       cadvisor.CPUStats{UsageTotal: cpuNanos},
		Memory:    cadvisor.MemoryStats{WorkingSet: workingSet, OOMKills: oomKills},
	}
}

func withNetwork(s *cadvisor.Sample, rx, tx uint64) *cadvisor.Sample {
	s.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{
		{Name: "eth0", RxBytes: rx, TxBytes: tx},
		{Name: "eth1", RxBytes: rx, TxBytes: tx},
	}}
	return s
}

func ok(v uint64) Point { return Point{Value: v, OK: true} }

// historyView has a root sampled in five passes 10 s apart and a pod and
// container cgroup that miss some of them.
func historyView(base time.Time) *cadvisor.View {
	memory := cadvisor.Spec{HasCPU: true, HasMemory: true}
	root := &cadvisor.CgroupInfo{Name: "/", Spec: memory}
	for i := range 5 {
		root.Samples = append(root.Samples, historySample(base, float64(10*i), uint64(i)*4e9, 1<<30, 0))
	}
	pod := &cadvisor.CgroupInfo{Name: "/kubepods/podu1", Spec: memory, Samples: []*cadvisor.Sample{
		// Passes 1, 2 and 4, read 100 ms before the root; pass 3 missed.
		withNetwork(historySample(base, 9.9, 1e9, 10<<20, 0), 1000, 500),
		withNetwork(historySample(base, 19.9, 3e9, 11<<20, 0), 21000, 10500),
		withNetwork(historySample(base, 39.9, 7e9, 12<<20, 1), 61000, 20500),
	}}
	container := &cadvisor.CgroupInfo{Name: "/kubepods/podu1/c1", Spec: memory, Samples: []*cadvisor.Sample{
		// Passes 1 to 4 of a loaded machine, read 7 s after the root,
		// with a counter reset in pass 3.
		historySample(base, 17, 1e9, 1<<20, 0),
		historySample(base, 27, 2e9, 2<<20, 2),
		historySample(base, 37, 1e9, 3<<20, 3),
		historySample(base, 47, 2e9, 4<<20, 3),
	}}
	noMemory := &cadvisor.CgroupInfo{Name: "/kubepods/podu1/c2", Spec: cadvisor.Spec{HasCPU: true}, Samples: []*cadvisor.Sample{
		historySample(base, 30, 1e9, 0, 0), historySample(base, 40, 2e9, 0, 0),
	}}
	return &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{
		"/": root, pod.Name: pod, container.Name: container, noMemory.Name: noMemory,
	}}
}

func TestHistorySeriesOnTheRootsPasses(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	history := NewCgroups(historyView(base), nil, nil).History()
	if len(history.Passes) != 5 || !history.Passes[0].Equal(base) || !history.Passes[4].Equal(base.Add(40*time.Second)) {
		t.Fatalf("passes = %v, want the root's 5 sample times", history.Passes)
	}
	none := Point{}
	tests := []struct {
		cgroup string
		want   Series
	}{
		{"/", Series{
			CPU:        []Point{none, ok(4e8), ok(4e8), ok(4e8), ok(4e8)},
			WorkingSet: []Point{ok(1 << 30), ok(1 << 30), ok(1 << 30), ok(1 << 30), ok(1 << 30)},
		}},
		{"/kubepods/podu1", Series{
			// The rate of pass 4 spans the missed pass: 4 s of cpu in 20 s.
			CPU:        []Point{none, none, ok(2e8), none, ok(2e8)},
			WorkingSet: []Point{none, ok(10 << 20), ok(11 << 20), none, ok(12 << 20)},
			// Two interfaces, each 20000 B rx and 10000 B tx in 10 s, then
			// 40000 and 10000 in 20 s.
			RxRate:        []Point{none, none, ok(4000), none, ok(4000)},
			TxRate:        []Point{none, none, ok(2000), none, ok(1000)},
			OOMKills:      []int{4},
			OOMKillsTotal: 1,
		}},
		{"/kubepods/podu1/c1", Series{
			// A sample belongs to a pass by order, not by nearness to the
			// root's sample: a pass reads cgroups in parallel, and on a
			// loaded machine for seconds.
			CPU:           []Point{none, none, ok(1e8), none, ok(1e8)},
			WorkingSet:    []Point{none, ok(1 << 20), ok(2 << 20), ok(3 << 20), ok(4 << 20)},
			OOMKills:      []int{2, 3},
			OOMKillsTotal: 3,
		}},
		{"/kubepods/podu1/c2", Series{
			CPU:        []Point{none, none, none, none, ok(1e8)},
			WorkingSet: make([]Point, 5),
		}},
	}
	for _, tt := range tests {
		got, found := history.Series(tt.cgroup)
		if !found {
			t.Errorf("%s: not found", tt.cgroup)
			continue
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tt.cgroup, got, tt.want)
		}
	}
	if _, found := history.Series("/nope"); found {
		t.Error("an untracked cgroup has a series")
	}
}

func TestHistoryWithoutRootSamples(t *testing.T) {
	history := NewCgroups(nil, nil, nil).History()
	if len(history.Passes) != 0 {
		t.Errorf("passes = %v, want none", history.Passes)
	}
	if _, found := history.Series("/"); found {
		t.Error("a view without cgroups has a root series")
	}
}

func TestNetworkRatesAcrossARecreatedInterface(t *testing.T) {
	base := time.Unix(1_700_000_000, 0)
	prev := withNetwork(historySample(base, 0, 0, 0, 0), 5000, 5000)
	cur := withNetwork(historySample(base, 10, 0, 0, 0), 100, 6000)
	if rx, tx := networkRates(prev, cur); rx.OK || tx.OK {
		t.Errorf("rates across a counter reset = %+v %+v, want none", rx, tx)
	}
	// An interface only one sample lists is left out of the sum.
	cur = withNetwork(historySample(base, 10, 0, 0, 0), 6000, 6000)
	cur.Network.Interfaces = append(cur.Network.Interfaces, cadvisor.InterfaceStats{Name: "new", RxBytes: 1e9})
	if rx, _ := networkRates(prev, cur); rx != ok(200) {
		t.Errorf("rx = %+v, want 200 B/s from eth0 and eth1", rx)
	}
	if rx, _ := networkRates(cur, cur); rx.OK {
		t.Errorf("rate without elapsed time = %+v, want none", rx)
	}
}

func TestLegacyPodByName(t *testing.T) {
	legacy := NewCgroups(nil, nil, []Pod{{Namespace: "ns", Name: "web", UID: "u1", Cgroup: "/kubepods/podu1",
		Containers: []Container{{Name: "app", Cgroup: "/kubepods/podu1/c1"}}}})
	pod, found := legacy.Pod("ns", "web", "u1")
	if !found || pod.Cgroup != "/kubepods/podu1" || len(pod.Containers) != 1 || pod.Containers[0].Cgroup != "/kubepods/podu1/c1" {
		t.Errorf("Pod(ns, web, u1) = %+v, %v", pod, found)
	}
	if _, found := legacy.Pod("ns", "web", ""); !found {
		t.Error("Pod without a uid did not find the pod")
	}
	for _, miss := range [][3]string{{"ns", "web", "u2"}, {"other", "web", ""}, {"ns", "db", ""}} {
		if _, found := legacy.Pod(miss[0], miss[1], miss[2]); found {
			t.Errorf("Pod%v found a pod", miss)
		}
	}
}
