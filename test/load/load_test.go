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
	// overrides it.
	defaultPodCount   = 110
	containersPerPod  = 3
	sequentialQueries = 2000
	concurrentClients = 8
	steadyWindow      = 60 * time.Second
)

func TestLoad(t *testing.T) {
	if os.Getenv("KSS_LOAD") != "1" {
		t.Skip("load scenario: run with KSS_LOAD=1 (make bench)")
	}
	podCount := podsFromEnv(t, defaultPodCount)
	parent := layOutPods(t, podCount)

	binary, removeBinary, err := serverproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeBinary)
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
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrentClients}}
	waitForPodsContainer(t, client, base, &logs)

	bodySize := get(t, client, base+"/stats/summary")
	sequential := measureSequential(t, client, base+"/stats/summary")
	concurrent := measureConcurrent(t, client, base+"/stats/summary")
	resourceSize := get(t, client, base+"/metrics/resource")
	resource := measureSequential(t, client, base+"/metrics/resource")
	cadvisorSize := get(t, client, base+"/metrics/cadvisor")
	cadvisor := measureSequential(t, client, base+"/metrics/cadvisor")
	memoryAfterLoad := residentMemory(t, server.Process.Pid)

	cpuBefore := cpuSeconds(t, server.Process.Pid)
	time.Sleep(steadyWindow) // the measurement window itself, not synchronisation
	cpuAfter := cpuSeconds(t, server.Process.Pid)
	steadyCPU := (cpuAfter - cpuBefore) / steadyWindow.Seconds()
	ticks := steadyWindow.Seconds() / 10

	report := fmt.Sprintf(`| metric | value |
|---|---|
| cgroups tracked | %d pod + %d container (+ root, kubepods, QoS) |
| /stats/summary body | %d bytes |
| sequential p50 / p99 (%d requests, keep-alive) | %s / %s |
| concurrent p50 / p99 (%d clients × %d requests) | %s / %s |
| /metrics/resource body (sent gzip, counted decompressed) | %d bytes |
| /metrics/resource sequential p50 / p99 (%d requests, keep-alive, gzip) | %s / %s |
| /metrics/cadvisor body (sent gzip, counted decompressed) | %d bytes |
| /metrics/cadvisor sequential p50 / p99 / max (%d requests, keep-alive, gzip; the max is a scrape that built a new snapshot's metrics) | %s / %s / %s |
| steady-state CPU (no requests, 10s housekeeping) | %.2f%% of one core (%.1f ms CPU per tick) |
| RSS after load | %s |
`, podCount, podCount*containersPerPod, bodySize, sequentialQueries, sequential.p50, sequential.p99,
		concurrentClients, sequentialQueries/concurrentClients, concurrent.p50, concurrent.p99,
		resourceSize, sequentialQueries, resource.p50, resource.p99,
		cadvisorSize, sequentialQueries, cadvisor.p50, cadvisor.p99, cadvisor.max,
		steadyCPU*100, (cpuAfter-cpuBefore)/ticks*1000, memoryAfterLoad)
	t.Logf("load scenario results:\n%s", report)
	if path := os.Getenv("KSS_LOAD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil {
			t.Error(err)
		}
	}
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

func measureSequential(t *testing.T, client *http.Client, url string) percentiles {
	samples := make([]time.Duration, 0, sequentialQueries)
	for i := 0; i < sequentialQueries; i++ {
		start := time.Now()
		get(t, client, url)
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
				get(t, client, url)
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

// get fetches url and discards the body, like a scraper that streams it
// into a decoder, so that the client's buffering does not pose as server
// latency. It returns the body size.
func get(t *testing.T, client *http.Client, url string) int64 {
	resp, err := client.Get(url)
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
// is its heap and stacks, file the pages of its binary it touched.
type memoryUse struct{ rss, anon, file uint64 }

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
	return memoryUse{rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile")}
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
