package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cri"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	criPodCount   = 100
	criPodWorkers = 4
	criTicks      = 10
)

// TestLoadCRI is the runtime half of the load scenario: 100 real pods under
// containerd, each a sandbox plus one idle container, served with the
// runtime joined in. It reports summary latency and what one tick's CRI
// calls cost, read from the server's own histograms.
func TestLoadCRI(t *testing.T) {
	if os.Getenv("KSS_LOAD") != "1" {
		t.Skip("load scenario: run with KSS_LOAD=1 (make bench)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	cgroupRoot := fmt.Sprintf("/kss-load-cri-%d", os.Getpid())
	rt := startContainerd(t, cgroupRoot)
	start := time.Now()
	runPods(t, rt, criPodCount, func(i int) framework.PodSpec {
		return framework.PodSpec{Name: fmt.Sprintf("idle-%03d", i), Namespace: "load",
			Containers: []framework.ContainerSpec{{Name: "pause", Image: framework.PauseImage}}}
	})
	t.Logf("%d pods running after %s", criPodCount, time.Since(start).Round(time.Second))

	binary, removeBinary, err := serverproc.Build()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(removeBinary)
	srv := serverproc.Start(t, binary, "--container-runtime-endpoint="+rt.Endpoint(), "--cgroup-root="+cgroupRoot,
		"--cgroup-driver=cgroupfs", "--pod-logs-dir="+rt.PodLogDir(), "--root-dir="+rt.RootDir(),
		"--housekeeping-interval=2s", "-v=0")
	for {
		if count := metric(t, srv, "kubelet_stats_server_pods"); count >= criPodCount {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	for ticks := metric(t, srv, "kubelet_stats_server_housekeeping_duration_seconds_count"); metric(t, srv,
		"kubelet_stats_server_housekeeping_duration_seconds_count") < ticks+criTicks; {
		time.Sleep(500 * time.Millisecond)
	}
	client := &http.Client{}
	bodySize := get(t, client, srv.Base+"/stats/summary", "")
	latency := measureSequential(t, client, srv.Base+"/stats/summary", "", sequentialQueries)
	criMean := metric(t, srv, "kubelet_stats_server_runtime_calls_duration_seconds_sum") /
		metric(t, srv, "kubelet_stats_server_runtime_calls_duration_seconds_count")
	tickMean := metric(t, srv, "kubelet_stats_server_housekeeping_duration_seconds_sum") /
		metric(t, srv, "kubelet_stats_server_housekeeping_duration_seconds_count")
	calls := timeCRICalls(t, rt.Endpoint())
	t.Logf(`CRI load scenario results:
| metric | value |
|---|---|
| pods (sandbox + 1 container each) | %d |
| /stats/summary body | %d bytes |
| sequential p50 / p99 (%d requests, keep-alive) | %s / %s |
| CRI calls per tick, mean | %.1f ms |
| whole tick incl. CRI, mean | %.1f ms |
| RSS | %s |
%s`, criPodCount, bodySize, sequentialQueries, latency.p50, latency.p99,
		criMean*1000, tickMean*1000, residentMemory(t, srv.Cmd.Process.Pid), calls)
}

// timeCRICalls times each runtime call a tick makes, alone, so the table
// shows which of them costs what.
func timeCRICalls(t *testing.T, endpoint string) string {
	ctx := context.Background()
	client, err := cri.Dial(ctx, cri.Config{Endpoint: endpoint})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	calls := []struct {
		name string
		call func() error
	}{
		{"ListPodSandbox", func() error { _, err := client.ListPodSandbox(ctx); return err }},
		{"ListContainers", func() error { _, err := client.ListContainers(ctx); return err }},
		{"ListContainerStats", func() error { _, err := client.ListContainerStats(ctx); return err }},
		{"ListPodSandboxStats", func() error { _, err := client.ListPodSandboxStats(ctx); return err }},
		{"ImageFsInfo", func() error { _, err := client.ImageFsInfo(ctx); return err }},
	}
	var rows strings.Builder
	for _, c := range calls {
		const rounds = 5
		start := time.Now()
		for i := 0; i < rounds; i++ {
			if err := c.call(); err != nil {
				t.Errorf("%s: %v", c.name, err)
			}
		}
		fmt.Fprintf(&rows, "| %s alone, mean of %d | %.1f ms |\n", c.name, rounds, float64(time.Since(start).Microseconds())/rounds/1000)
	}
	return rows.String()
}

// startContainerd starts a containerd whose pods' cgroups are below
// cgroupRoot/kubepods/besteffort, with the test images imported, stopped
// (with every pod it runs) at the test's end.
func startContainerd(t *testing.T, cgroupRoot string) *framework.Runtime {
	t.Helper()
	ctx := context.Background()
	if err := framework.EnsureInstalled(ctx, t.Logf); err != nil {
		t.Fatal(err)
	}
	rt, err := framework.StartContainerd(ctx, framework.Options{Logf: t.Logf, CgroupParent: cgroupRoot + "/kubepods/besteffort",
		PodLogDir: t.TempDir(), RootDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	if err := rt.ImportTestImages(ctx); err != nil {
		t.Fatal(err)
	}
	return rt
}

// runPods starts count pods, pod i after spec(i), a few at a time;
// containerd serialises much of the work anyway.
func runPods(t *testing.T, rt *framework.Runtime, count int, spec func(i int) framework.PodSpec) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < criPodWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if _, err := rt.RunPod(context.Background(), spec(i)); err != nil {
					t.Errorf("run pod %d: %v", i, err)
				}
			}
		}()
	}
	for i := 0; i < count; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// metric reads one unlabelled series from the server's /metrics.
func metric(t *testing.T, srv *serverproc.Server, name string) float64 {
	resp, err := http.Get(srv.Base + "/metrics")
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
				t.Fatalf("parse %s: %v", line, err)
			}
			return v
		}
	}
	return 0
}
