package server

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// fakeSource is a SnapshotSource whose snapshot the test swaps.
type fakeSource struct {
	snapshot atomic.Pointer[snapshot.Snapshot]
}

func (f *fakeSource) Current() *snapshot.Snapshot { return f.snapshot.Load() }

// publish stores a snapshot of generation gen built from full and cpuAndMemory.
func (f *fakeSource) publish(gen uint64, full, cpuAndMemory *statsapi.Summary) *snapshot.Snapshot {
	snap := &snapshot.Snapshot{Generation: gen, Time: time.Now(), Summary: full, CPUAndMemory: cpuAndMemory}
	f.snapshot.Store(snap)
	return snap
}

// panickingSource panics on its first Current and then behaves.
type panickingSource struct {
	fakeSource
	calls atomic.Int32
}

func (p *panickingSource) Current() *snapshot.Snapshot {
	if p.calls.Add(1) == 1 {
		panic("provider exploded")
	}
	return p.fakeSource.Current()
}

// fakeHealth is a HealthChecker whose answer the test sets.
type fakeHealth struct {
	err atomic.Pointer[error]
}

func (f *fakeHealth) Healthy() error {
	if err := f.err.Load(); err != nil {
		return *err
	}
	return nil
}

func (f *fakeHealth) fail(err error) { f.err.Store(&err) }

// logLines collects the lines of test loggers.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logger() klog.Logger { return l.loggerAt(4) }

// loggerAt is a logger that records lines up to verbosity v.
func (l *logLines) loggerAt(v int) klog.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{Verbosity: v})
}

// matching returns the lines containing every one of substrings.
func (l *logLines) matching(substrings ...string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
next:
	for _, line := range l.lines {
		for _, s := range substrings {
			if !strings.Contains(line, s) {
				continue next
			}
		}
		out = append(out, line)
	}
	return out
}

// testServer is the read-only handler on a real loopback socket.
type testServer struct {
	*httptest.Server
	source  *fakeSource
	health  *fakeHealth
	log     *logLines
	encodes atomic.Int64
	// full and cpuAndMemory are the summaries of the snapshot served when the
	// test passed no source.
	full, cpuAndMemory *statsapi.Summary
}

// newTestServer serves src, or when src is nil a fakeSource holding a
// snapshot of generation 1 built from craftedSummary and cpuAndMemorySummary.
// It counts encodings in encodes and logs into log unless cfg has a logger.
func newTestServer(t testing.TB, cfg Config, src SnapshotSource) *testServer {
	t.Helper()
	ts := &testServer{health: &fakeHealth{}, log: &logLines{}}
	if src == nil {
		ts.source = &fakeSource{}
		ts.full, ts.cpuAndMemory = craftedSummary(), cpuAndMemorySummary()
		ts.source.publish(1, ts.full, ts.cpuAndMemory)
		src = ts.source
	}
	if cfg.Logger.GetSink() == nil {
		cfg.Logger = ts.log.logger()
	}
	countingEncode := func(s *statsapi.Summary) ([]byte, error) {
		ts.encodes.Add(1)
		return encodeSummary(s)
	}
	ts.Server = httptest.NewServer(newReadOnlyHandler(cfg, src, ts.health, countingEncode))
	t.Cleanup(ts.Close)
	return ts
}

var dateHeader = regexp.MustCompile("(?m)^Date: [^\r]*\r\n")

// rawExchange sends request (the text of a whole request) over a fresh
// connection and returns the response exactly as it came off the wire, minus
// the Date header.
func rawExchange(t testing.TB, addr, method, request string) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, request); err != nil {
		t.Fatalf("write request: %v", err)
	}
	// The server sends nothing after the response on a kept-alive
	// connection, so the bytes read while parsing it are exactly the response.
	var wire bytes.Buffer
	resp, err := http.ReadResponse(bufio.NewReader(io.TeeReader(conn, &wire)), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("read response body: %v", err)
	}
	return dateHeader.ReplaceAll(wire.Bytes(), nil)
}

// do does a request through net/http's client and returns status, header
// and body.
func do(t testing.TB, method, url, contentType, body string, header ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatalf("new request: %v", err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp, string(b)
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func ptr[T any](v T) *T { return &v }

// sampleTime is a sub-second time in a non-UTC zone, to show that the wire
// carries whole seconds in UTC.
var sampleTime = time.Date(2026, 11, 22, 14, 22, 34, 987654321, time.FixedZone("CET", 3600))

// craftedSummary exercises the encoding rules: nil pointers omitted, zero
// pointers present, zero times null, a pod without containers.
func craftedSummary() *statsapi.Summary {
	t := metav1.NewTime(sampleTime)
	return &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName: "node-a",
			CPU: &statsapi.CPUStats{
				Time:                 t,
				UsageCoreNanoSeconds: ptr(uint64(0)),
			},
			Memory: &statsapi.MemoryStats{
				Time:            t,
				WorkingSetBytes: ptr(uint64(52428800)),
			},
		},
		Pods: []statsapi.PodStats{{
			PodRef:    statsapi.PodReference{Name: "web-0", Namespace: "default", UID: "0b5a7e2c"},
			StartTime: t,
			Network: &statsapi.NetworkStats{
				Time:           t,
				InterfaceStats: statsapi.InterfaceStats{Name: "eth0", RxBytes: ptr(uint64(1))},
			},
		}},
	}
}

// craftedSummaryJSON is craftedSummary as the kubelet would write it.
const craftedSummaryJSON = `{
 "node": {
  "nodeName": "node-a",
  "startTime": null,
  "cpu": {
   "time": "2026-11-22T13:22:34Z",
   "usageCoreNanoSeconds": 0
  },
  "memory": {
   "time": "2026-11-22T13:22:34Z",
   "workingSetBytes": 52428800
  }
 },
 "pods": [
  {
   "podRef": {
    "name": "web-0",
    "namespace": "default",
    "uid": "0b5a7e2c"
   },
   "startTime": "2026-11-22T13:22:34Z",
   "containers": null,
   "network": {
    "time": "2026-11-22T13:22:34Z",
    "name": "eth0",
    "rxBytes": 1
   }
  }
 ]
}`

// cpuAndMemorySummary is a distinct summary for the only_cpu_and_memory mode.
func cpuAndMemorySummary() *statsapi.Summary {
	return &statsapi.Summary{Node: statsapi.NodeStats{NodeName: "cpu-and-memory-only"}, Pods: []statsapi.PodStats{}}
}

// syntheticSummary is a node with pods×containers containers, every field a
// real summary fills, for benchmarks.
func syntheticSummary(pods, containers int) *statsapi.Summary {
	t := metav1.NewTime(sampleTime)
	psi := &statsapi.PSIStats{
		Full: statsapi.PSIData{Total: 123456, Avg10: 0.12, Avg60: 0.05, Avg300: 0.01},
		Some: statsapi.PSIData{Total: 234567, Avg10: 0.34, Avg60: 0.15, Avg300: 0.02},
	}
	cpu := func(i int) *statsapi.CPUStats {
		return &statsapi.CPUStats{Time: t, UsageNanoCores: ptr(uint64(1e6 * i)), UsageCoreNanoSeconds: ptr(uint64(1e11 * i)), PSI: psi}
	}
	mem := func(i int) *statsapi.MemoryStats {
		return &statsapi.MemoryStats{Time: t, AvailableBytes: ptr(uint64(1 << 30)), UsageBytes: ptr(uint64(1<<20) * uint64(i)),
			WorkingSetBytes: ptr(uint64(1<<20) * uint64(i)), RSSBytes: ptr(uint64(1 << 19)), PageFaults: ptr(uint64(4242)),
			MajorPageFaults: ptr(uint64(3)), PSI: psi}
	}
	fs := func(i int) *statsapi.FsStats {
		return &statsapi.FsStats{Time: t, AvailableBytes: ptr(uint64(1 << 35)), CapacityBytes: ptr(uint64(1 << 36)),
			UsedBytes: ptr(uint64(4096 * i)), InodesFree: ptr(uint64(1 << 20)), Inodes: ptr(uint64(1 << 21)), InodesUsed: ptr(uint64(i))}
	}
	iface := statsapi.InterfaceStats{Name: "eth0", RxBytes: ptr(uint64(123456789)), RxErrors: ptr(uint64(0)),
		TxBytes: ptr(uint64(98765432)), TxErrors: ptr(uint64(0))}
	s := &statsapi.Summary{
		Node: statsapi.NodeStats{
			NodeName: "node-a", StartTime: t, CPU: cpu(1), Memory: mem(1), IO: &statsapi.IOStats{Time: t, PSI: psi},
			Network: &statsapi.NetworkStats{Time: t, InterfaceStats: iface, Interfaces: []statsapi.InterfaceStats{iface}},
			Fs:      fs(1), Runtime: &statsapi.RuntimeStats{ImageFs: fs(2), ContainerFs: fs(2)},
			Rlimit: &statsapi.RlimitStats{Time: t, MaxPID: ptr(int64(4194304)), NumOfRunningProcesses: ptr(int64(512))},
			SystemContainers: []statsapi.ContainerStats{
				{Name: "kubelet", StartTime: t, CPU: cpu(1), Memory: mem(1)},
				{Name: "pods", StartTime: t, CPU: cpu(2), Memory: mem(2), Swap: &statsapi.SwapStats{Time: t, SwapUsageBytes: ptr(uint64(0))}},
			},
		},
		Pods: make([]statsapi.PodStats, 0, pods),
	}
	for p := range pods {
		pod := statsapi.PodStats{
			PodRef:    statsapi.PodReference{Name: fmt.Sprintf("pod-%03d", p), Namespace: "default", UID: fmt.Sprintf("6f1c2a4e-0000-4000-8000-%012d", p)},
			StartTime: t, CPU: cpu(p), Memory: mem(p), IO: &statsapi.IOStats{Time: t, PSI: psi},
			Network:          &statsapi.NetworkStats{Time: t, InterfaceStats: iface, Interfaces: []statsapi.InterfaceStats{iface}},
			EphemeralStorage: fs(p), ProcessStats: &statsapi.ProcessStats{ProcessCount: ptr(uint64(containers))},
			Swap: &statsapi.SwapStats{Time: t, SwapUsageBytes: ptr(uint64(0))},
			VolumeStats: []statsapi.VolumeStats{
				{Name: "kube-api-access", FsStats: *fs(p)},
				{Name: "scratch", FsStats: *fs(p)},
			},
		}
		for c := range containers {
			pod.Containers = append(pod.Containers, statsapi.ContainerStats{
				Name: fmt.Sprintf("container-%d", c), StartTime: t, CPU: cpu(c), Memory: mem(c),
				IO: &statsapi.IOStats{Time: t, PSI: psi}, Rootfs: fs(c), Logs: fs(c),
				Swap: &statsapi.SwapStats{Time: t, SwapUsageBytes: ptr(uint64(0))},
			})
		}
		s.Pods = append(s.Pods, pod)
	}
	return s
}

var errHousekeepingStalled = errors.New("housekeeping has not completed for 35s (interval 10s)")

// discardLogger drops everything; for benchmarks.
func discardLogger() klog.Logger { return logr.Discard() }
