package server

import (
	"math"
	"slices"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// historyDoc is the /history document; docs/page.md describes its fields.
// Current values are the snapshot's /stats/summary values, unconverted;
// series are rounded to what a sparkline can show.
type historyDoc struct {
	Node string `json:"node"`
	// Time is the summary's node.cpu.time, written as the summary writes
	// it, so that a client can tell which summary the document matches.
	Time       metav1.Time `json:"time"`
	Generation uint64      `json:"generation"`
	// Passes are the housekeeping passes the series are drawn on, in unix
	// milliseconds, oldest first.
	Passes         []int64      `json:"passes"`
	Cores          int          `json:"cores,omitempty"`
	MemoryCapacity uint64       `json:"memoryCapacity,omitempty"`
	NodeStats      historyNode  `json:"nodeStats"`
	Pods           []historyPod `json:"pods"`
}

type historyNode struct {
	CPU     *uint64        `json:"cpu"`
	Memory  *uint64        `json:"memory"`
	Fs      *historyFs     `json:"fs,omitempty"`
	ImageFs *historyFs     `json:"imageFs,omitempty"`
	Rx      *uint64        `json:"rx,omitempty"`
	Tx      *uint64        `json:"tx,omitempty"`
	History *historySeries `json:"history,omitempty"`
}

type historyFs struct {
	Used     *uint64 `json:"used"`
	Capacity *uint64 `json:"capacity"`
}

type historyPod struct {
	Namespace  string             `json:"namespace"`
	Name       string             `json:"name"`
	UID        string             `json:"uid"`
	CPU        *uint64            `json:"cpu"`
	Memory     *uint64            `json:"memory"`
	History    *historySeries     `json:"history,omitempty"`
	Containers []historyContainer `json:"containers"`
}

type historyContainer struct {
	Name    string         `json:"name"`
	CPU     *uint64        `json:"cpu"`
	Memory  *uint64        `json:"memory"`
	History *historySeries `json:"history,omitempty"`
}

// historySeries is one cgroup's series, one entry per pass, null where the
// cgroup has no value in that pass.
type historySeries struct {
	CPU millicoreSeries `json:"cpu"`
	Mem kibibyteSeries  `json:"mem"`
	Rx  byteRateSeries  `json:"rx,omitempty"`
	Tx  byteRateSeries  `json:"tx,omitempty"`
	// OOM are the passes (indices) with an OOM kill; for a pod, in its
	// cgroup or any of its containers'.
	OOM      []int  `json:"oom,omitempty"`
	OOMTotal uint64 `json:"oomTotal,omitempty"`
}

// historyDocument projects a snapshot for the page: current values from
// its summary, series from the collector's retained samples.
func historyDocument(snap *snapshot.Snapshot) (*historyDoc, error) {
	summary := snap.Summary
	if summary == nil {
		return nil, errNoSummary
	}
	doc := &historyDoc{
		Node:       summary.Node.NodeName,
		Time:       metav1.NewTime(snap.Time),
		Generation: snap.Generation,
		Passes:     []int64{},
		NodeStats:  nodeValues(&summary.Node),
		Pods:       make([]historyPod, 0, len(summary.Pods)),
	}
	if summary.Node.CPU != nil {
		doc.Time = summary.Node.CPU.Time
	}
	var history *snapshot.History
	if snap.Cgroups != nil {
		history = snap.Cgroups.History()
		for _, pass := range history.Passes {
			doc.Passes = append(doc.Passes, pass.UnixMilli())
		}
		if machine, ok := snap.Cgroups.MachineInfo(); ok {
			doc.Cores, doc.MemoryCapacity = machine.NumCores, machine.MemoryCapacity
		}
		doc.NodeStats.History = seriesOf(history, "/")
	}
	for i := range summary.Pods {
		doc.Pods = append(doc.Pods, podValues(&summary.Pods[i], snap.Cgroups, history))
	}
	return doc, nil
}

func nodeValues(node *statsapi.NodeStats) historyNode {
	out := historyNode{CPU: usageNanoCores(node.CPU), Memory: workingSetBytes(node.Memory), Fs: fsValues(node.Fs)}
	if node.Runtime != nil {
		out.ImageFs = fsValues(node.Runtime.ImageFs)
	}
	if node.Network != nil {
		var rx, tx uint64
		for _, iface := range node.Network.Interfaces {
			rx += deref(iface.RxBytes)
			tx += deref(iface.TxBytes)
		}
		out.Rx, out.Tx = &rx, &tx
	}
	return out
}

func podValues(pod *statsapi.PodStats, legacy *snapshot.Cgroups, history *snapshot.History) historyPod {
	out := historyPod{
		Namespace:  pod.PodRef.Namespace,
		Name:       pod.PodRef.Name,
		UID:        pod.PodRef.UID,
		CPU:        usageNanoCores(pod.CPU),
		Memory:     workingSetBytes(pod.Memory),
		Containers: make([]historyContainer, 0, len(pod.Containers)),
	}
	var cgroups snapshot.Pod
	if legacy != nil {
		cgroups, _ = legacy.Pod(pod.PodRef.Namespace, pod.PodRef.Name, pod.PodRef.UID)
		out.History = seriesOf(history, cgroups.Cgroup)
	}
	var oom []int
	for i := range pod.Containers {
		c := &pod.Containers[i]
		container := historyContainer{Name: c.Name, CPU: usageNanoCores(c.CPU), Memory: workingSetBytes(c.Memory)}
		if cgroup := containerCgroup(cgroups, c.Name); cgroup != "" {
			container.History = seriesOf(history, cgroup)
		}
		if container.History != nil {
			oom = append(oom, container.History.OOM...)
		}
		out.Containers = append(out.Containers, container)
	}
	if out.History != nil && len(oom) > 0 {
		oom = append(oom, out.History.OOM...)
		slices.Sort(oom)
		out.History.OOM = slices.Compact(oom)
	}
	return out
}

func containerCgroup(pod snapshot.Pod, name string) string {
	for _, c := range pod.Containers {
		if c.Name == name {
			return c.Cgroup
		}
	}
	return ""
}

// seriesOf is a cgroup's series, nil when it has none.
func seriesOf(history *snapshot.History, cgroup string) *historySeries {
	if history == nil || cgroup == "" {
		return nil
	}
	series, found := history.Series(cgroup)
	if !found {
		return nil
	}
	return &historySeries{
		CPU:      series.CPU,
		Mem:      series.WorkingSet,
		Rx:       series.RxRate,
		Tx:       series.TxRate,
		OOM:      series.OOMKills,
		OOMTotal: series.OOMKillsTotal,
	}
}

func usageNanoCores(cpu *statsapi.CPUStats) *uint64 {
	if cpu == nil {
		return nil
	}
	return cpu.UsageNanoCores
}

func workingSetBytes(mem *statsapi.MemoryStats) *uint64 {
	if mem == nil {
		return nil
	}
	return mem.WorkingSetBytes
}

func fsValues(fs *statsapi.FsStats) *historyFs {
	if fs == nil {
		return nil
	}
	return &historyFs{Used: fs.UsedBytes, Capacity: fs.CapacityBytes}
}

func deref(v *uint64) uint64 {
	if v == nil {
		return 0
	}
	return *v
}

// millicoreSeries writes nanocores as millicores with at most one decimal.
type millicoreSeries []snapshot.Point

func (s millicoreSeries) MarshalJSON() ([]byte, error) {
	return appendPoints(s, func(b []byte, v uint64) []byte {
		return strconv.AppendFloat(b, math.Round(float64(v)/1e5)/10, 'f', -1, 64)
	}), nil
}

// kibibyteSeries writes bytes as whole KiB.
type kibibyteSeries []snapshot.Point

func (s kibibyteSeries) MarshalJSON() ([]byte, error) {
	return appendPoints(s, func(b []byte, v uint64) []byte {
		return strconv.AppendUint(b, uint64(math.Round(float64(v)/1024)), 10)
	}), nil
}

// byteRateSeries writes bytes per second as they are.
type byteRateSeries []snapshot.Point

func (s byteRateSeries) MarshalJSON() ([]byte, error) {
	return appendPoints(s, func(b []byte, v uint64) []byte { return strconv.AppendUint(b, v, 10) }), nil
}

// appendPoints writes a JSON array of points, null where a point has no
// value.
func appendPoints(points []snapshot.Point, appendValue func([]byte, uint64) []byte) []byte {
	b := make([]byte, 0, 2+len(points)*8)
	b = append(b, '[')
	for i, p := range points {
		if i > 0 {
			b = append(b, ',')
		}
		if !p.OK {
			b = append(b, "null"...)
			continue
		}
		b = appendValue(b, p.Value)
	}
	return append(b, ']')
}
