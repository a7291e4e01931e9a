package load

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/cgrouptest"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	// defaultPodCount is the kubelet's default max-pods; KSS_LOAD_PODS
	// overrides it with one size or a comma-separated list.
	defaultPodCount   = 110
	containersPerPod  = 3
	sequentialQueries = 2000
	// cadvisorQueries is fewer: a body is a megabyte of gzip at 500 pods.
	cadvisorQueries   = 200
	concurrentClients = 8
	steadyWindow      = 60 * time.Second
	// scrapeInterval and scrapedWindow are the Prometheus of the RSS
	// target: /metrics/cadvisor every 15 s for two minutes.
	scrapeInterval = 15 * time.Second
	scrapedWindow  = 2 * time.Minute
	// builds is how many new snapshots the build times are the median of.
	builds = 5
)

// TestLoad is the load scenario: for each size of KSS_LOAD_PODS (110 by
// default; make bench runs 100 and 250, make bench-500 500), pod cgroups
// with 3 sleeping containers each, the real binary over them with the
// default 10 s housekeeping, and one column of the report per size.
func TestLoad(t *testing.T) {
	if os.Getenv("KSS_LOAD") != "1" {
		t.Skip("load scenario: run with KSS_LOAD=1 (make bench)")
	}
	binary, removeBinary, err := serverproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeBinary)
	var results []*scenario
	for _, pods := range podCountsFromEnv(t) {
		t.Run(fmt.Sprintf("pods=%d", pods), func(t *testing.T) {
			results = append(results, runScenario(t, binary, pods))
		})
	}
	report := formatReport(results)
	t.Logf("load scenario results:\n%s", report)
	if path := os.Getenv("KSS_LOAD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// scenario is what one size measured.
type scenario struct {
	pods, cgroups         int
	loadBefore, loadAfter string
	summaryBytes          int64
	summary, concurrent   percentiles
	resourceBytes         int64
	resource              percentiles
	cadvisorBytes         int64
	cadvisor              percentiles
	resourceBuild         time.Duration
	cadvisorBuild         time.Duration
	tickWall              time.Duration
	steadyCPU, cpuPerTick float64
	rssIdle               memoryUse
	scrapedCPU            float64
	rssScraped            memoryUse
	peakScraped           uint64
}

func runScenario(t *testing.T, binary string, pods int) *scenario {
	res := &scenario{pods: pods, loadBefore: loadAverage(t)}
	parent := layOutPods(t, pods)
	port := serverproc.FreePort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	server := exec.Command(binary, "--address=127.0.0.1", "--read-only-port="+strconv.Itoa(port), "--port=0", "--healthz-port=0",
		"--cgroup-root="+parent, "--cgroup-driver=cgroupfs")
	var logs bytes.Buffer
	server.Stderr = &logs
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cgrouptest.Kill(server) })
	pid := server.Process.Pid
	// Bodies are counted as sent: a scraper's gunzip is its own cost.
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrentClients, DisableCompression: true}}
	waitForPodsContainer(t, client, base, &logs)

	// Idle first: the steady state with nobody asking.
	ticksBefore, tickSecondsBefore := housekeeping(t, client, base)
	cpuBefore := cpuSeconds(t, pid)
	time.Sleep(steadyWindow) // the measurement window itself, not synchronisation
	cpuAfter := cpuSeconds(t, pid)
	ticksAfter, tickSecondsAfter := housekeeping(t, client, base)
	res.steadyCPU = (cpuAfter - cpuBefore) / steadyWindow.Seconds()
	if ticks := ticksAfter - ticksBefore; ticks > 0 {
		res.cpuPerTick = (cpuAfter - cpuBefore) / ticks
		res.tickWall = time.Duration((tickSecondsAfter - tickSecondsBefore) / ticks * float64(time.Second))
	}
	res.rssIdle = residentMemory(t, pid)
	res.cgroups = int(metricValue(t, client, base, "kubelet_stats_server_tracked_cgroups"))

	res.resourceBuild, res.cadvisorBuild = measureBuilds(t, client, base)
	res.summaryBytes = get(t, client, base+"/stats/summary", "")
	res.summary = measureSequential(t, client, base+"/stats/summary", "", sequentialQueries)
	res.concurrent = measureConcurrent(t, client, base+"/stats/summary")
	res.resourceBytes = get(t, client, base+"/metrics/resource", "gzip")
	res.resource = measureSequential(t, client, base+"/metrics/resource", "gzip", sequentialQueries)
	res.cadvisorBytes = get(t, client, base+"/metrics/cadvisor", "gzip")
	res.cadvisor = measureSequential(t, client, base+"/metrics/cadvisor", "gzip", cadvisorQueries)

	// A Prometheus scraping /metrics/cadvisor every 15 s.
	cpuBefore = cpuSeconds(t, pid)
	for start := time.Now(); time.Since(start) < scrapedWindow; {
		next := time.Now().Add(scrapeInterval)
		get(t, client, base+"/metrics/cadvisor", "gzip")
		time.Sleep(time.Until(next)) // the scrape interval being measured
	}
	res.scrapedCPU = (cpuSeconds(t, pid) - cpuBefore) / scrapedWindow.Seconds()
	res.rssScraped = residentMemory(t, pid)
	res.peakScraped = res.rssScraped.peak
	res.loadAfter = loadAverage(t)
	return res
}

// measureBuilds times the first /metrics/resource and /metrics/cadvisor
// scrapes of new snapshots (each builds its body): the median of builds.
func measureBuilds(t *testing.T, client *http.Client, base string) (resource, cadvisor time.Duration) {
	var resources, cadvisors []time.Duration
	for range builds {
		waitForTick(t, client, base)
		start := time.Now()
		get(t, client, base+"/metrics/resource", "gzip")
		resources = append(resources, time.Since(start))
		start = time.Now()
		get(t, client, base+"/metrics/cadvisor", "gzip")
		cadvisors = append(cadvisors, time.Since(start))
	}
	return median(resources), median(cadvisors)
}

func median(samples []time.Duration) time.Duration {
	slices.Sort(samples)
	return samples[len(samples)/2]
}

// waitForTick polls the server's housekeeping counter until a tick
// completes.
func waitForTick(t *testing.T, client *http.Client, base string) {
	t.Helper()
	before, _ := housekeeping(t, client, base)
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if ticks, _ := housekeeping(t, client, base); ticks > before {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("no housekeeping tick within a minute")
}

// housekeeping returns the server's count of ticks and their total seconds.
func housekeeping(t *testing.T, client *http.Client, base string) (ticks, seconds float64) {
	t.Helper()
	return metricValue(t, client, base, "kubelet_stats_server_housekeeping_duration_seconds_count"),
		metricValue(t, client, base, "kubelet_stats_server_housekeeping_duration_seconds_sum")
}

// metricValue reads one unlabelled sample of the server's own /metrics.
func metricValue(t *testing.T, client *http.Client, base, name string) float64 {
	t.Helper()
	resp, err := client.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(body), "\n") {
		if value, ok := strings.CutPrefix(line, name+" "); ok {
			v, err := strconv.ParseFloat(value, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func loadAverage(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data))
	return strings.Join(fields[:3], " ")
}

// formatReport is the markdown table of docs/performance.md: one column
// per size.
func formatReport(results []*scenario) string {
	var b strings.Builder
	b.WriteString("| metric |")
	for _, r := range results {
		fmt.Fprintf(&b, " %d pods |", r.pods)
	}
	b.WriteString("\n|---|")
	for range results {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	row := func(name string, cell func(*scenario) string) {
		b.WriteString("| " + name + " |")
		for _, r := range results {
			b.WriteString(" " + cell(r) + " |")
		}
		b.WriteString("\n")
	}
	ms := func(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)) }
	row("cgroups tracked", func(r *scenario) string { return strconv.Itoa(r.cgroups) })
	row("load average before / after (2 CPUs)", func(r *scenario) string { return r.loadBefore + " / " + r.loadAfter })
	row("tick wall, mean", func(r *scenario) string { return ms(r.tickWall) })
	row("CPU per tick, steady (all threads, rescans and GC included)", func(r *scenario) string { return fmt.Sprintf("%.0f ms", r.cpuPerTick*1000) })
	row("steady CPU, no requests", func(r *scenario) string { return fmt.Sprintf("%.2f %% of a core", r.steadyCPU*100) })
	row("RSS, no requests", func(r *scenario) string { return r.rssIdle.String() })
	row("/stats/summary body", func(r *scenario) string { return fmt.Sprintf("%.0f KB", float64(r.summaryBytes)/1e3) })
	row("/stats/summary p50 / p99 (2,000 sequential)", func(r *scenario) string { return ms(r.summary.p50) + " / " + ms(r.summary.p99) })
	row("/stats/summary p50 / p99 (8 clients × 250)", func(r *scenario) string { return ms(r.concurrent.p50) + " / " + ms(r.concurrent.p99) })
	row("/metrics/resource build (first scrape of a snapshot, median of 5)", func(r *scenario) string { return ms(r.resourceBuild) })
	row("/metrics/resource replay p50 / p99 (gzip)", func(r *scenario) string { return ms(r.resource.p50) + " / " + ms(r.resource.p99) })
	row("/metrics/cadvisor body (gzip)", func(r *scenario) string { return fmt.Sprintf("%.0f KB", float64(r.cadvisorBytes)/1e3) })
	row("/metrics/cadvisor build (first scrape of a snapshot, median of 5)", func(r *scenario) string { return ms(r.cadvisorBuild) })
	row("/metrics/cadvisor replay p50 / p99 (gzip, 200 sequential)", func(r *scenario) string { return ms(r.cadvisor.p50) + " / " + ms(r.cadvisor.p99) })
	row("CPU with /metrics/cadvisor scraped every 15 s", func(r *scenario) string { return fmt.Sprintf("%.2f %% of a core", r.scrapedCPU*100) })
	row("RSS with /metrics/cadvisor scraped every 15 s (peak)", func(r *scenario) string {
		return fmt.Sprintf("%s (%.1f MiB)", r.rssScraped, mib(r.peakScraped))
	})
	return b.String()
}

// podCountsFromEnv is KSS_LOAD_PODS as a list of sizes, or defaultPodCount.
func podCountsFromEnv(t *testing.T) []int {
	t.Helper()
	value := os.Getenv("KSS_LOAD_PODS")
	if value == "" {
		return []int{defaultPodCount}
	}
	var out []int
	for _, field := range strings.Split(value, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(field))
		if err != nil || n <= 0 {
			t.Fatalf("KSS_LOAD_PODS=%q: want pod counts separated by commas", value)
		}
		out = append(out, n)
	}
	return out
}

// podsFromEnv is KSS_LOAD_PODS, or def.
func podsFromEnv(t *testing.T, def int) int {
	t.Helper()
	value := os.Getenv("KSS_LOAD_PODS")
	if value == "" {
		return def
	}
	n, err := strconv.Atoi(value)
	if err != nil || n <= 0 {
		t.Fatalf("KSS_LOAD_PODS=%q: want a positive number of pods", value)
	}
	return n
}

// layOutPods creates pods pod cgroups with containersPerPod container
// cgroups each under a new parent, /<parent>/kubepods/burstable/pod<uid>/<id>,
// a sleeping process in every container, all removed at cleanup. It
// returns the parent.
func layOutPods(t *testing.T, pods int) string {
	t.Helper()
	tree, err := cgrouptest.New("/sys/fs/cgroup")
	if err != nil {
		t.Skipf("no cgroups to create: %v", err)
	}
	parent := fmt.Sprintf("/kss-load-%d", os.Getpid())
	t.Cleanup(func() {
		if err := tree.Cleanup(); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	start := time.Now()
	for pod := 0; pod < pods; pod++ {
		podCgroup := fmt.Sprintf("%s/kubepods/burstable/pod%s", parent, randomUID(t))
		mustCreate(t, tree, podCgroup)
		for c := 0; c < containersPerPod; c++ {
			container := podCgroup + "/" + randomHex(t, 32)
			mustCreate(t, tree, container)
			if _, err := tree.StartSleeper(container); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("laid out %d pod cgroups with %d containers each in %s", pods, containersPerPod, time.Since(start))
	return parent
}

func mustCreate(t *testing.T, tree *cgrouptest.Tree, name string) {
	t.Helper()
	if err := tree.Create(name); err != nil {
		t.Fatal(err)
	}
}

type percentiles struct{ p50, p99, max time.Duration }

func summarize(samples []time.Duration) percentiles {
	slices.Sort(samples)
	at := func(q float64) time.Duration { return samples[int(q*float64(len(samples)-1))] }
	return percentiles{p50: at(0.50), p99: at(0.99), max: samples[len(samples)-1]}
}

func measureSequential(t *testing.T, client *http.Client, url, encoding string, queries int) percentiles {
	samples := make([]time.Duration, 0, queries)
	for i := 0; i < queries; i++ {
		start := time.Now()
		get(t, client, url, encoding)
		samples = append(samples, time.Since(start))
	}
	return summarize(samples)
}

func measureConcurrent(t *testing.T, client *http.Client, url string) percentiles {
	var mu sync.Mutex
	var wg sync.WaitGroup
	samples := make([]time.Duration, 0, sequentialQueries)
	for w := 0; w < concurrentClients; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < sequentialQueries/concurrentClients; i++ {
				start := time.Now()
				get(t, client, url, "")
				elapsed := time.Since(start)
				mu.Lock()
				samples = append(samples, elapsed)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return summarize(samples)
}

// get fetches url, asking for encoding when not empty, and discards the
// body as it arrives, like a scraper that streams it into a decoder, so
// that the client's buffering does not pose as server latency. It returns
// the body's size as sent.
func get(t *testing.T, client *http.Client, url, encoding string) int64 {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Error(err)
		return 0
	}
	defer resp.Body.Close()
	size, err := io.Copy(io.Discard, resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return size
}

// waitForPodsContainer polls until the summary lists the "pods" system
// container, i.e. the collector found the generated tree.
func waitForPodsContainer(t *testing.T, client *http.Client, base string, logs *bytes.Buffer) {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		if resp, err := client.Get(base + "/stats/summary"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && bytes.Contains(body, []byte(`"name": "pods"`)) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("server never reported the pods system container\n%s", logs.String())
}

// cpuSeconds is utime+stime of a process (fields 14 and 15 of /proc/<pid>/stat).
func cpuSeconds(t *testing.T, pid int) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	const clockTicksPerSecond = 100
	return (utime + stime) / clockTicksPerSecond
}

// memoryUse is a process's resident memory from /proc/<pid>/status: anon
// is its heap and stacks, file the pages of its binary it touched, peak
// the high-water mark of the whole.
type memoryUse struct{ rss, anon, file, peak uint64 }

func (m memoryUse) String() string {
	return fmt.Sprintf("%.1f MiB (anon %.1f, file %.1f)", mib(m.rss), mib(m.anon), mib(m.file))
}

func mib(bytes uint64) float64 { return float64(bytes) / (1 << 20) }

func residentMemory(t *testing.T, pid int) memoryUse {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	kib := func(field string) uint64 {
		for _, line := range strings.Split(string(data), "\n") {
			if value, ok := strings.CutPrefix(line, field+":"); ok {
				kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
				if err != nil {
					t.Fatalf("%s in /proc/%d/status: %v", field, pid, err)
				}
				return kb * 1024
			}
		}
		t.Fatalf("no %s in /proc/%d/status", field, pid)
		return 0
	}
	return memoryUse{rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), peak: kib("VmHWM")}
}

func randomHex(t *testing.T, n int) string {
	buf := make([]byte, n)
	if _, err := rand.Read(buf); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(buf)
}

func randomUID(t *testing.T) string {
	h := randomHex(t, 16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
