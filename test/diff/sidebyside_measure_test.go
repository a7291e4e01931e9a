package diff

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// defaultPairs is how many requests each server gets per size unless
	// KSS_SIDE_BY_SIDE_REQUESTS says otherwise: the kubelet needs seconds
	// per summary at 500 pods.
	defaultPairs = 200
	// idleWindow is each window of CPU with nobody asking.
	idleWindow = 60 * time.Second
	// requestLimit bounds each request of the test's client.
	requestLimit = 5 * time.Minute
	// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's CPU times.
	clockTicks = 100
)

// The process groups whose CPU and memory are measured.
const (
	procKubelet = iota
	procOurs
	procContainerd // the daemon, which serves CRI
	procShims      // one shim per pod, which containerd asks for container stats
	procGroups
)

// cpuTimes is CPU seconds (or, as a rate, cores) per process group.
type cpuTimes [procGroups]float64

func (c cpuTimes) minus(o cpuTimes) cpuTimes {
	for i := range c {
		c[i] -= o[i]
	}
	return c
}

func (c cpuTimes) plus(o cpuTimes) cpuTimes {
	for i := range c {
		c[i] += o[i]
	}
	return c
}

func (c cpuTimes) scaled(f float64) cpuTimes {
	for i := range c {
		c[i] *= f
	}
	return c
}

// processes are the PIDs of each group.
type processes [procGroups][]int

// served is what one server's requests measured.
type served struct {
	bytes   int64
	samples []time.Duration
	// fresh says which samples met a body unlike the one before (the
	// first read of a new snapshot, whose body the tick has encoded), head
	// is the start of the last body.
	fresh []bool
	head  []byte
	// window is the wall time between the CPU readings around its
	// requests, and cpu what each group spent in it.
	window time.Duration
	cpu    cpuTimes
}

// gross is a group's CPU per request of this server.
func (s *served) gross(group int) time.Duration {
	return time.Duration(s.cpu[group] / float64(len(s.samples)) * float64(time.Second))
}

// split is the latencies of the requests that met a new body and of the
// others.
func (s *served) split() (fresh, cached []time.Duration) {
	for i, d := range s.samples {
		if s.fresh[i] {
			fresh = append(fresh, d)
		} else {
			cached = append(cached, d)
		}
	}
	return fresh, cached
}

// perRequest is a group's CPU per request of this server, less what the
// group spends anyway (idle, in cores) over the same time.
func (s *served) perRequest(group int, idle cpuTimes) time.Duration {
	net := s.cpu[group] - idle[group]*s.window.Seconds()
	return time.Duration(net / float64(len(s.samples)) * float64(time.Second))
}

type sideBySideResult struct {
	pods                  int
	loadBefore, loadAfter string
	startup, measuring    time.Duration
	// idle is each group's CPU rate with nobody asking; withoutOurs and
	// withoutKubelet the same with the other server stopped (SIGSTOP).
	idle, withoutOurs, withoutKubelet cpuTimes
	kubelet, ours                     served
	rss                               [procGroups]uint64
	shims                             int
}

// measure measures the servers over the running pods: the idle CPU, then
// pairs requests each, alternating which goes first, then RSS.
func (e *sideBySide) measure(t *testing.T, pods, pairs int) *sideBySideResult {
	start := time.Now()
	res := &sideBySideResult{pods: pods, loadBefore: loadAverage(t)}
	procs := e.processes(t)
	res.shims = len(procs[procShims])
	res.kubelet.bytes, res.kubelet.head = fetch(t, e.client, e.kubelet.base+"/stats/summary")
	res.ours.bytes, res.ours.head = fetch(t, e.client, e.ours.Base+"/stats/summary")
	res.withoutOurs = idleRates(t, procs, procs[procOurs][0])
	res.withoutKubelet = idleRates(t, procs, procs[procKubelet][0])
	res.idle = idleRates(t, procs, 0)
	for i := range pairs {
		kubeletFirst := i%2 == 0
		for _, kubelet := range []bool{kubeletFirst, !kubeletFirst} {
			if kubelet {
				e.timed(t, &res.kubelet, e.kubelet.base, procs)
			} else {
				e.timed(t, &res.ours, e.ours.Base, procs)
			}
		}
	}
	for g, pids := range procs {
		for _, pid := range pids {
			res.rss[g] += residentBytes(t, pid)
		}
	}
	res.loadAfter = loadAverage(t)
	res.measuring = time.Since(start)
	return res
}

// timed makes one summary request to base and adds its latency and the
// CPU every group spent around it to s.
func (e *sideBySide) timed(t *testing.T, s *served, base string, procs processes) {
	windowStart := time.Now()
	before := procs.cpu(t)
	start := time.Now()
	_, head := fetch(t, e.client, base+"/stats/summary")
	s.samples = append(s.samples, time.Since(start))
	s.fresh = append(s.fresh, !bytes.Equal(head, s.head))
	s.head = head
	s.cpu = s.cpu.plus(procs.cpu(t).minus(before))
	s.window += time.Since(windowStart)
}

// idleRates is each group's CPU rate over idleWindow with no request,
// with the process stop (when not 0) stopped throughout.
func idleRates(t *testing.T, procs processes, stop int) cpuTimes {
	if stop != 0 {
		if err := syscall.Kill(stop, syscall.SIGSTOP); err != nil {
			t.Fatalf("stop %d: %v", stop, err)
		}
		defer func() {
			if err := syscall.Kill(stop, syscall.SIGCONT); err != nil {
				t.Errorf("continue %d: %v", stop, err)
			}
		}()
	}
	before := procs.cpu(t)
	start := time.Now()
	time.Sleep(idleWindow) // the measurement window itself, not synchronisation
	return procs.cpu(t).minus(before).scaled(1 / time.Since(start).Seconds())
}

// processes finds the kubelet, ours, containerd and its shims (whose
// command lines name containerd's work dir).
func (e *sideBySide) processes(t *testing.T) processes {
	var p processes
	p[procKubelet] = []int{e.kubelet.cmd.Process.Pid}
	p[procOurs] = []int{e.ours.Cmd.Process.Pid}
	for _, pid := range processesNaming(e.rt.Dir()) {
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil {
			continue
		}
		switch argv0, _, _ := bytes.Cut(cmdline, []byte{0}); filepath.Base(string(argv0)) {
		case "containerd":
			p[procContainerd] = append(p[procContainerd], pid)
		case "containerd-shim-runc-v2":
			p[procShims] = append(p[procShims], pid)
		}
	}
	if len(p[procContainerd]) != 1 || len(p[procShims]) == 0 {
		t.Fatalf("found containerd %v and shims %v in %s", p[procContainerd], p[procShims], e.rt.Dir())
	}
	return p
}

// cpu reads the CPU time of each group.
func (p processes) cpu(t *testing.T) cpuTimes {
	var c cpuTimes
	for g, pids := range p {
		for _, pid := range pids {
			c[g] += cpuSeconds(t, pid)
		}
	}
	return c
}

// cpuSeconds is utime+stime of a process (fields 14 and 15 of
// /proc/<pid>/stat, after the parenthesised command name).
func cpuSeconds(t *testing.T, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("CPU of %d: %v", pid, err)
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clockTicks
}

// residentBytes is VmRSS of /proc/<pid>/status.
func residentBytes(t *testing.T, pid int) uint64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("RSS of %d: %v", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if value, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS of %d: %v", pid, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmRSS in /proc/%d/status", pid)
	return 0
}

// fetch GETs url and discards the body as it arrives, like a client that
// streams it into a decoder; it returns the body's size and its first
// headBytes.
func fetch(t *testing.T, client *http.Client, url string) (int64, []byte) {
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	head := &headKeeper{}
	size, err := io.Copy(head, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v", url, resp.Status, err)
	}
	return size, head.head
}

// headBytes of a summary hold the node's system containers and their
// sample times, which change with every snapshot.
const headBytes = 8 << 10

// headKeeper keeps the first headBytes written to it and drops the rest.
type headKeeper struct{ head []byte }

func (h *headKeeper) Write(p []byte) (int, error) {
	if room := headBytes - len(h.head); room > 0 {
		h.head = append(h.head, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func loadAverage(t *testing.T) string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(data))[:3], " ")
}

// requestPairs is KSS_SIDE_BY_SIDE_REQUESTS or defaultPairs.
func requestPairs(t *testing.T) int {
	value := os.Getenv("KSS_SIDE_BY_SIDE_REQUESTS")
	if value == "" {
		return defaultPairs
	}
	n, err := strconv.Atoi(value)
	if err != nil || n < 2 {
		t.Fatalf("KSS_SIDE_BY_SIDE_REQUESTS=%q: want a number of requests per server, at least 2", value)
	}
	return n
}

type percentiles struct{ p50, p90, p99, max time.Duration }

func summarize(samples []time.Duration) percentiles {
	if len(samples) == 0 {
		return percentiles{}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	at := func(q float64) time.Duration { return sorted[int(q*float64(len(sorted)-1))] }
	return percentiles{p50: at(0.50), p90: at(0.90), p99: at(0.99), max: sorted[len(sorted)-1]}
}

func (p percentiles) String() string {
	return ms(p.p50) + " / " + ms(p.p90) + " / " + ms(p.p99) + " / " + ms(p.max)
}

// formatSideBySide is the markdown table of docs/performance.md: one
// column per size.
func formatSideBySide(results []*sideBySideResult, pairs int) string {
	var b strings.Builder
	b.WriteString("| metric |")
	for _, r := range results {
		fmt.Fprintf(&b, " %d pods |", r.pods)
	}
	b.WriteString("\n|---|" + strings.Repeat("---|", len(results)) + "\n")
	row := func(name string, cell func(*sideBySideResult) string) {
		b.WriteString("| " + name + " |")
		for _, r := range results {
			b.WriteString(" " + cell(r) + " |")
		}
		b.WriteString("\n")
	}
	row("load average before / after", func(r *sideBySideResult) string { return r.loadBefore + " / " + r.loadAfter })
	row("time for the added pods to run and both summaries to list them", func(r *sideBySideResult) string {
		return r.startup.Round(time.Second).String()
	})
	row("`/stats/summary` body, kubelet / ours", func(r *sideBySideResult) string {
		return fmt.Sprintf("%.0f KB / %.0f KB", float64(r.kubelet.bytes)/1e3, float64(r.ours.bytes)/1e3)
	})
	row(fmt.Sprintf("kubelet p50 / p90 / p99 / max (%d sequential, alternating)", pairs), func(r *sideBySideResult) string {
		return summarize(r.kubelet.samples).String()
	})
	row(fmt.Sprintf("ours p50 / p90 / p99 / max (%d sequential, alternating)", pairs), func(r *sideBySideResult) string {
		return summarize(r.ours.samples).String()
	})
	row("ours, the first request of each snapshot: count, p50 / p90 / p99 / max", func(r *sideBySideResult) string {
		fresh, _ := r.ours.split()
		return fmt.Sprintf("%d: %s", len(fresh), summarize(fresh))
	})
	row("ours, the other requests: p50 / p90 / p99 / max", func(r *sideBySideResult) string {
		_, cached := r.ours.split()
		return summarize(cached).String()
	})
	row("**kubelet / ours, p50**", func(r *sideBySideResult) string {
		return fmt.Sprintf("**%.0f×**", float64(summarize(r.kubelet.samples).p50)/float64(summarize(r.ours.samples).p50))
	})
	row("CPU per request of the server asked, net of its idle CPU (gross), kubelet / ours", func(r *sideBySideResult) string {
		return fmt.Sprintf("%s (%s) / %s (%s)", ms(r.kubelet.perRequest(procKubelet, r.idle)), ms(r.kubelet.gross(procKubelet)),
			ms(r.ours.perRequest(procOurs, r.idle)), ms(r.ours.gross(procOurs)))
	})
	row("containerd CPU per kubelet request, daemon / shims", func(r *sideBySideResult) string {
		return ms(r.kubelet.perRequest(procContainerd, r.idle)) + " / " + ms(r.kubelet.perRequest(procShims, r.idle))
	})
	row("containerd CPU per request of ours, daemon / shims", func(r *sideBySideResult) string {
		return ms(r.ours.perRequest(procContainerd, r.idle)) + " / " + ms(r.ours.perRequest(procShims, r.idle))
	})
	row("idle CPU (nobody asking), kubelet / ours / containerd daemon / shims", func(r *sideBySideResult) string {
		return percents(r.idle[procKubelet], r.idle[procOurs], r.idle[procContainerd], r.idle[procShims])
	})
	row("idle containerd CPU (daemon + shims): both / ours stopped / kubelet stopped", func(r *sideBySideResult) string {
		runtime := func(c cpuTimes) float64 { return c[procContainerd] + c[procShims] }
		return percents(runtime(r.idle), runtime(r.withoutOurs), runtime(r.withoutKubelet))
	})
	row("idle CPU of ours: both running / kubelet stopped", func(r *sideBySideResult) string {
		return percents(r.idle[procOurs], r.withoutKubelet[procOurs])
	})
	row("RSS after the requests, kubelet / ours / containerd / shims (sum of VmRSS)", func(r *sideBySideResult) string {
		return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f MiB (%d shims)", mib(r.rss[procKubelet]), mib(r.rss[procOurs]),
			mib(r.rss[procContainerd]), mib(r.rss[procShims]), r.shims)
	})
	return b.String()
}

func ms(d time.Duration) string {
	v := float64(d) / float64(time.Millisecond)
	switch {
	case v >= 100 || v <= -100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10 || v <= -10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func percents(rates ...float64) string {
	parts := make([]string, len(rates))
	for i, r := range rates {
		parts[i] = fmt.Sprintf("%.1f", r*100)
	}
	return strings.Join(parts, " / ") + " % of a core"
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
