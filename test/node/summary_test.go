package node

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

func getSummary(t *testing.T, srv *serverproc.Server, method, query string) *statsapi.Summary {
	t.Helper()
	status, header, body := serverproc.Do(t, method, srv.Base+"/stats/summary"+query, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("%s /stats/summary%s = %d: %s", method, query, status, body)
	}
	if ct := header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var summary statsapi.Summary
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatalf("decode summary: %v\n%s", err, body)
	}
	return &summary
}

// bootTime reads btime from /proc/stat, the kubelet's node.startTime.
func bootTime(t *testing.T) time.Time {
	t.Helper()
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, "btime "); ok {
			secs, err := strconv.ParseInt(strings.TrimSpace(value), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return time.Unix(secs, 0)
		}
	}
	t.Fatal("no btime in /proc/stat")
	return time.Time{}
}

func memTotal(t *testing.T) uint64 {
	t.Helper()
	data, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

func recent(t *testing.T, what string, ts time.Time) {
	t.Helper()
	now := time.Now()
	if ts.Before(now.Add(-time.Minute)) || ts.After(now.Add(time.Minute)) {
		t.Errorf("%s = %v, want within a minute of now (%v)", what, ts, now)
	}
}

func inRange(t *testing.T, what string, v *uint64, lo, hi uint64) {
	t.Helper()
	if v == nil {
		t.Errorf("%s is missing", what)
		return
	}
	if *v < lo || *v > hi {
		t.Errorf("%s = %d, want in [%d, %d]", what, *v, lo, hi)
	}
}

// TestNodeSummary checks every node field the kubelet fills on a real node,
// with the bounds of the kubelet's own e2e test where they hold on this
// machine (test/e2e_node/summary_test.go).
func TestNodeSummary(t *testing.T) {
	rootDir := t.TempDir()
	srv := serverproc.Start(t, serverBinary, "--node-name=test-node", "--root-dir="+rootDir)
	capacity := memTotal(t)

	var summary *statsapi.Summary
	// usageNanoCores needs two samples of the root cgroup.
	for summary == nil || summary.Node.CPU == nil || summary.Node.CPU.UsageNanoCores == nil {
		summary = getSummary(t, srv, http.MethodGet, "")
		time.Sleep(200 * time.Millisecond)
	}
	node := summary.Node
	if node.NodeName != "test-node" {
		t.Errorf("nodeName = %q", node.NodeName)
	}
	if !node.StartTime.Time.Equal(bootTime(t)) {
		t.Errorf("startTime = %v, want boot time %v", node.StartTime, bootTime(t))
	}
	recent(t, "cpu.time", node.CPU.Time.Time)
	inRange(t, "cpu.usageNanoCores", node.CPU.UsageNanoCores, 1, 2e9*uint64(2))
	inRange(t, "cpu.usageCoreNanoSeconds", node.CPU.UsageCoreNanoSeconds, 1e6, 1e18)
	if node.CPU.PSI == nil {
		t.Error("cpu.psi missing")
	}
	if node.Memory == nil {
		t.Fatal("memory missing")
	}
	recent(t, "memory.time", node.Memory.Time.Time)
	inRange(t, "memory.usageBytes", node.Memory.UsageBytes, 10e6, capacity)
	inRange(t, "memory.workingSetBytes", node.Memory.WorkingSetBytes, 1e6, *node.Memory.UsageBytes)
	inRange(t, "memory.availableBytes", node.Memory.AvailableBytes, 100e6, capacity)
	inRange(t, "memory.rssBytes", node.Memory.RSSBytes, 1e3, capacity)
	inRange(t, "memory.pageFaults", node.Memory.PageFaults, 1000, 1e12)
	inRange(t, "memory.majorPageFaults", node.Memory.MajorPageFaults, 0, 1e12)
	if node.Swap == nil || node.Swap.SwapUsageBytes == nil {
		t.Errorf("swap = %+v, want usage present", node.Swap)
	}
	if node.IO == nil || node.IO.PSI == nil {
		t.Errorf("io = %+v, want time and psi", node.IO)
	}
	if node.Network == nil || len(node.Network.Interfaces) == 0 {
		t.Errorf("network = %+v, want this machine's interfaces", node.Network)
	} else {
		for _, iface := range node.Network.Interfaces {
			if iface.Name == "lo" || strings.HasPrefix(iface.Name, "veth") {
				t.Errorf("network lists %s, which the kubelet filters out", iface.Name)
			}
		}
		if _, err := os.Stat("/sys/class/net/eth0"); err == nil && node.Network.Name != "eth0" {
			t.Errorf("network default interface = %q, want eth0 on a machine that has it", node.Network.Name)
		}
	}
	if node.Fs == nil {
		t.Fatal("fs missing")
	}
	inRange(t, "fs.capacityBytes", node.Fs.CapacityBytes, 100e6, 1e15)
	inRange(t, "fs.availableBytes", node.Fs.AvailableBytes, 1, *node.Fs.CapacityBytes)
	inRange(t, "fs.usedBytes", node.Fs.UsedBytes, 1e3, *node.Fs.CapacityBytes)
	inRange(t, "fs.inodes", node.Fs.Inodes, 1e4, 1e10)
	inRange(t, "fs.inodesFree", node.Fs.InodesFree, 0, *node.Fs.Inodes)
	inRange(t, "fs.inodesUsed", node.Fs.InodesUsed, 1, *node.Fs.Inodes)
	if node.Rlimit == nil || node.Rlimit.MaxPID == nil || *node.Rlimit.MaxPID <= 0 ||
		node.Rlimit.NumOfRunningProcesses == nil || *node.Rlimit.NumOfRunningProcesses <= 0 {
		t.Errorf("rlimit = %+v", node.Rlimit)
	}
	if summary.Pods == nil {
		t.Error(`pods is null, want []`)
	}

	posted := getSummary(t, srv, http.MethodPost, "")
	if posted.Node.NodeName != "test-node" || posted.Node.CPU == nil {
		t.Errorf("POST summary node = %+v", posted.Node)
	}
}

// TestOnlyCPUAndMemory checks spec section 3 on the node: cpu, memory and
// swap only, startTime from the root cgroup.
func TestOnlyCPUAndMemory(t *testing.T) {
	srv := serverproc.Start(t, serverBinary)
	summary := getSummary(t, srv, http.MethodGet, "?only_cpu_and_memory=true")
	node := summary.Node
	if node.CPU == nil || node.Memory == nil || node.Swap == nil {
		t.Errorf("node lacks cpu/memory/swap: %+v", node)
	}
	if node.Network != nil || node.Fs != nil || node.Runtime != nil || node.Rlimit != nil || node.IO != nil {
		t.Errorf("cpu-and-memory node carries more: %+v", node)
	}
	for _, query := range []string{"?only_cpu_and_memory=True", "?only_cpu_and_memory=1",
		"?only_cpu_and_memory=true&only_cpu_and_memory=true"} {
		if full := getSummary(t, srv, http.MethodGet, query); full.Node.Fs == nil {
			t.Errorf("%s gave a cpu-and-memory summary, want the full one", query)
		}
	}
	form := strings.NewReader("only_cpu_and_memory=true")
	status, _, body := serverproc.Do(t, http.MethodPost, srv.Base+"/stats/summary",
		http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}, form)
	if status != http.StatusOK {
		t.Fatalf("POST form = %d %s", status, body)
	}
	var posted statsapi.Summary
	if err := json.Unmarshal(body, &posted); err != nil || posted.Node.Fs != nil {
		t.Errorf("a urlencoded POST body must count like the query (err %v, fs %v)", err, posted.Node.Fs)
	}
}

// TestHTTPEdgeCases replays ../shared/reference/kubelet-v1.36.3-sample/http-edge-cases.txt.
func TestHTTPEdgeCases(t *testing.T) {
	srv := serverproc.Start(t, serverBinary)
	tests := []struct {
		method, path string
		header       http.Header
		wantStatus   int
		wantBody     string
		wantHeader   map[string]string
	}{
		{method: "GET", path: "/stats/summary/", wantStatus: 200, wantHeader: map[string]string{"Content-Type": "application/json"}},
		{method: "GET", path: "/stats/default/x/y/z/w", wantStatus: 404, wantBody: "404: Page Not Found"},
		{method: "GET", path: "/stats/summary?only_cpu_and_memory=%zz", wantStatus: 500,
			wantBody:   `Internal Error: parse form failed: invalid URL escape "%zz"`,
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8"}},
		{method: "GET", path: "/healthz", wantStatus: 200, wantBody: "ok",
			wantHeader: map[string]string{"Content-Type": "text/plain; charset=utf-8", "X-Content-Type-Options": "nosniff"}},
		{method: "GET", path: "/metrics/nope", wantStatus: 404, wantBody: "404 page not found\n",
			wantHeader: map[string]string{"X-Content-Type-Options": "nosniff"}},
		{method: "HEAD", path: "/stats/summary", wantStatus: 405, wantHeader: map[string]string{"Allow": "GET, POST"}},
		{method: "DELETE", path: "/stats/summary", wantStatus: 405, wantBody: "405: Method Not Allowed",
			wantHeader: map[string]string{"Allow": "GET, POST"}},
		{method: "GET", path: "/stats/summary", header: http.Header{"Accept": {"text/plain"}}, wantStatus: 406,
			wantBody: "406: Not Acceptable\n\nAvailable representations: application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			status, header, body := serverproc.Do(t, tt.method, srv.Base+tt.path, tt.header, nil)
			if status != tt.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", status, tt.wantStatus, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %q, want %q", body, tt.wantBody)
			}
			for key, want := range tt.wantHeader {
				if got := header.Get(key); got != want {
					t.Errorf("%s = %q, want %q", key, got, want)
				}
			}
		})
	}
}
