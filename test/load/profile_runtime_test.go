package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"testing"
	"time"

	"github.com/spf13/pflag"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cmd/kubelet-stats-server/app"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// TestProfileRuntime is TestProfileServer over real pods under containerd
// (KSS_LOAD_PODS, default 500, of 3 sleeping containers each, on the host
// network so that 500 pods need no 500 addresses): the server's own app.Run
// in this process, joined to the runtime, at the binary's GOGC. It logs the
// heap's goal and the process's resident set at every tick of a minute
// and writes heap profiles before and after it (KSS_PROFILE=<dir>): what
// the runtime's pod view, statuses and stats add to the memory.
func TestProfileRuntime(t *testing.T) {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		t.Skip("profiles: run with KSS_PROFILE=<dir> (and KSS_LOAD_PODS, default 500)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	pods := podsFromEnv(t, 500)
	cgroupRoot := fmt.Sprintf("/kss-profile-runtime-%d", os.Getpid())
	rt := startContainerd(t, cgroupRoot)
	start := time.Now()
	runPods(t, rt, pods, func(i int) framework.PodSpec {
		return framework.PodSpec{Name: fmt.Sprintf("idle-%03d", i), Namespace: "load", HostNetwork: true,
			Containers: []framework.ContainerSpec{{Name: "a", Image: framework.PauseImage},
				{Name: "b", Image: framework.PauseImage}, {Name: "c", Image: framework.PauseImage}}}
	})
	t.Logf("%d pods running after %s", pods, time.Since(start).Round(time.Second))

	defer debug.SetGCPercent(debug.SetGCPercent(50)) // the binary's default (main.go)
	base := startInProcess(t, "--cgroup-root="+cgroupRoot, "--cgroup-driver=cgroupfs",
		"--container-runtime-endpoint="+rt.Endpoint(), "--root-dir="+rt.RootDir(), "--pod-logs-dir="+rt.PodLogDir())
	waitForSummaryPods(t, base, pods)
	time.Sleep(30 * time.Second) // three ticks: the measured state, not synchronisation
	writeHeapProfile(t, filepath.Join(dir, "runtime-idle.prof"))
	var peakGoal uint64
	for i := range 7 {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		peakGoal = max(peakGoal, m.NextGC)
		t.Logf("after %2d s: heap in use %.1f MB, goal %.1f MB, %d GCs; process %s", i*10, float64(m.HeapInuse)/1e6,
			float64(m.NextGC)/1e6, m.NumGC, residentMemory(t, os.Getpid()))
		time.Sleep(10 * time.Second) // the tick being observed
	}
	writeHeapProfile(t, filepath.Join(dir, "runtime-minute.prof"))
	t.Logf("highest heap goal over the minute: %.1f MB", float64(peakGoal)/1e6)
}

// startInProcess runs app.Run in this process with the read-only port on
// loopback and the given flags, stopped at the test's end, and returns the
// port's base URL.
func startInProcess(t *testing.T, args ...string) string {
	t.Helper()
	opts := app.NewOptions()
	flags := pflag.NewFlagSet("kubelet-stats-server", pflag.ContinueOnError)
	opts.AddFlags(flags)
	port := serverproc.FreePort(t)
	args = append([]string{"--address=127.0.0.1", "--read-only-port=" + strconv.Itoa(port), "--port=0", "--healthz-port=0"}, args...)
	if err := flags.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Run(ctx, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("the server ended with %v", err)
			}
		case <-time.After(time.Minute):
			t.Error("the server did not stop within a minute")
		}
	})
	return fmt.Sprintf("http://127.0.0.1:%d", port)
}

// waitForSummaryPods polls the summary until it lists want pods.
func waitForSummaryPods(t *testing.T, base string, want int) {
	t.Helper()
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := time.Now().Add(3 * time.Minute)
	listed := 0
	for time.Now().Before(deadline) {
		if resp, err := client.Get(base + "/stats/summary"); err == nil {
			var summary statsapi.Summary
			if json.NewDecoder(resp.Body).Decode(&summary) == nil {
				listed = len(summary.Pods)
			}
			resp.Body.Close()
			if listed >= want {
				return
			}
		}
		time.Sleep(time.Second)
	}
	t.Fatalf("the summary lists %d pods after 3 minutes, want %d", listed, want)
}
