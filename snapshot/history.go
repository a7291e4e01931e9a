package snapshot

import (
	"slices"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// History lines up the samples the collector retains for each cgroup on
// one time axis, the node's housekeeping passes, for the page's sparklines
// (server/page.go): so that the charts of every row share their x axis,
// and a pass where a cgroup has no sample shows as a gap. It only reads
// the snapshot's memory.
type History struct {
	legacy *Cgroups
	// Passes are the times of the root cgroup's retained samples, oldest
	// first: one per housekeeping pass.
	Passes []time.Time
}

// Point is a series' value in one pass; OK is false where there is none:
// no sample in that pass, no sample before it to take a rate from, a
// counter that went backwards, or no memory accounting.
type Point struct {
	Value uint64
	OK    bool
}

// Series is one cgroup's recent past, one Point per pass of its History.
type Series struct {
	// CPU is the usage in nanocores since the cgroup's sample before, as
	// usageNanoCores is computed.
	CPU []Point
	// WorkingSet is the memory working set in bytes.
	WorkingSet []Point
	// RxRate and TxRate are bytes per second received and sent over every
	// interface since the sample before; nil for cgroups without network
	// (containers: their pod's cgroup has it).
	RxRate, TxRate []Point
	// OOMKills are the passes (indices) in which the cgroup's OOM kill
	// counter rose.
	OOMKills []int
	// OOMKillsTotal is the counter at the newest sample: kills under the
	// cgroup since it was created, where the kernel counts them (v1: at
	// the cgroup whose limit was hit; v2: hierarchically).
	OOMKillsTotal uint64
}

// History returns the retained samples' time axis. It decodes the root
// cgroup's samples; call it once per snapshot.
func (l *Cgroups) History() *History {
	h := &History{legacy: l}
	for _, s := range l.view.Get("/").AllSamples() {
		h.Passes = append(h.Passes, s.Timestamp)
	}
	return h
}

// Pod is what the cgroup view knows of a running pod, found by namespace
// and name; uid, when not empty, must match. The result shares the
// snapshot's memory: callers must not modify it.
func (l *Cgroups) Pod(namespace, name, uid string) (Pod, bool) {
	pod := l.pods[podKey{namespace: namespace, name: name}]
	if pod == nil || (uid != "" && uid != pod.UID) {
		return Pod{}, false
	}
	return pod.Pod, true
}

// Series projects a tracked cgroup's retained samples onto the passes,
// decoding them; false when the cgroup is not tracked.
//
// A pass reads every tracked cgroup once, in parallel and in no set order,
// so a cgroup's sample may be taken seconds before or after the root's in
// a loaded pass: samples are matched to passes by order, newest to newest.
// Only time bounds a sample: one of pass i is taken after the root's sample
// of pass i-1 (which ended before pass i began), so an older sample shows
// the cgroup missed a pass. A cgroup created during the window has fewer
// samples, on the newest passes.
func (h *History) Series(cgroup string) (Series, bool) {
	info := h.legacy.view.Get(cgroup)
	if info == nil {
		return Series{}, false
	}
	samples := info.AllSamples()
	n := len(h.Passes)
	out := Series{CPU: make([]Point, n), WorkingSet: make([]Point, n)}
	hasNetwork := false
	for _, s := range samples {
		hasNetwork = hasNetwork || s.Network != nil
	}
	if hasNetwork {
		out.RxRate, out.TxRate = make([]Point, n), make([]Point, n)
	}
	// Newest first: the newest sample is of the newest pass, each older
	// one of the pass before, unless its time proves it older still.
	pass := n - 1
	for i := len(samples) - 1; i >= 0 && pass >= 0; i-- {
		s := samples[i]
		for pass > 0 && !s.Timestamp.After(h.Passes[pass-1]) {
			pass--
		}
		var prev *cadvisor.Sample
		if i > 0 {
			prev = samples[i-1]
		}
		out.set(pass, prev, s, info.Spec.HasMemory)
		pass--
	}
	slices.Reverse(out.OOMKills) // found newest first
	if latest := info.Latest(); latest != nil {
		out.OOMKillsTotal = latest.Memory.OOMKills
	}
	return out, true
}

// set fills pass i from sample s and the cgroup's sample before it.
func (out *Series) set(i int, prev, s *cadvisor.Sample, hasMemory bool) {
	if rate, ok := cadvisor.NanoCores(prev, s); ok {
		out.CPU[i] = Point{Value: rate, OK: true}
	}
	if hasMemory {
		out.WorkingSet[i] = Point{Value: s.Memory.WorkingSet, OK: true}
	}
	if prev != nil && s.Memory.OOMKills > prev.Memory.OOMKills {
		out.OOMKills = append(out.OOMKills, i)
	}
	if out.RxRate != nil && prev != nil {
		out.RxRate[i], out.TxRate[i] = networkRates(prev, s)
	}
}

// networkRates are the bytes per second received and sent between two
// samples, summed over the interfaces both list; none when time did not
// move forward or a counter went backwards (an interface was recreated).
func networkRates(prev, cur *cadvisor.Sample) (rx, tx Point) {
	elapsed := cur.Timestamp.Sub(prev.Timestamp).Seconds()
	if prev.Network == nil || cur.Network == nil || elapsed <= 0 {
		return Point{}, Point{}
	}
	var rxBytes, txBytes uint64
	for _, iface := range cur.Network.Interfaces {
		old, found := findInterface(prev.Network.Interfaces, iface.Name)
		if !found {
			continue
		}
		if iface.RxBytes < old.RxBytes || iface.TxBytes < old.TxBytes {
			return Point{}, Point{}
		}
		rxBytes += iface.RxBytes - old.RxBytes
		txBytes += iface.TxBytes - old.TxBytes
	}
	return Point{Value: uint64(float64(rxBytes) / elapsed), OK: true},
		Point{Value: uint64(float64(txBytes) / elapsed), OK: true}
}

// findInterface looks an interface up by name: a pod has one or two, so a
// scan beats a map.
func findInterface(ifaces []cadvisor.InterfaceStats, name string) (cadvisor.InterfaceStats, bool) {
	for _, iface := range ifaces {
		if iface.Name == name {
			return iface, true
		}
	}
	return cadvisor.InterfaceStats{}, false
}
