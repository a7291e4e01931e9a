// Package diff runs a real kubelet v1.36.3 and this server side by side on
// one containerd and compares their /stats/summary for the same pod (the
// same JSON keys, values that agree within what their different sample
// times allow) and their /metrics/resource and /metrics/cadvisor families. It builds the kubelet from source (about 7 minutes on 2
// cores), so it runs only with KSS_DIFF=1 (make diff); KSS_KUBELET names an
// already built kubelet binary to skip the build.
//
// TestSideBySide (KSS_SIDE_BY_SIDE=1, make bench-kubelet) starts the same
// kubelet with maxPods: 500 over 100, 250 and 500 static pods and measures
// its /stats/summary latency, CPU and memory beside ours and containerd's
// (docs/performance.md). It lives here to share the kubelet's build and
// start.
package diff

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	kubeletVersion = "v1.36.3"
	podName        = "work"
	podNamespace   = "default"
	// cadvisorSocket is the only place the kubelet's cAdvisor looks for
	// containerd; without it pods lack network stats.
	cadvisorSocket = "/run/containerd/containerd.sock"
	// kubeletDefaultRoot is where the kubelet puts its device plugin socket.
	kubeletDefaultRoot = "/var/lib/kubelet"
)

var serverBinary string

// sideBySideEnv asks for TestSideBySide, the kubelet's latency and cost
// beside ours at a node's scale (make bench-kubelet).
const sideBySideEnv = "KSS_SIDE_BY_SIDE"

func TestMain(m *testing.M) {
	if os.Getenv("KSS_DIFF") == "" && os.Getenv(sideBySideEnv) == "" {
		fmt.Fprintln(os.Stderr, "skipping: the kubelet tests run with KSS_DIFF=1 (make diff) or KSS_SIDE_BY_SIDE=1 (make bench-kubelet)")
		os.Exit(0)
	}
	os.Exit(framework.Main(func() int { return serverproc.RunTests(m, &serverBinary) }))
}

func TestSummaryMatchesKubelet(t *testing.T) {
	if os.Getenv("KSS_DIFF") == "" {
		t.Skip("the differential test runs with KSS_DIFF=1 (make diff)")
	}
	kubelet := kubeletBinary(t)
	checkKubeletVersion(t, kubelet)
	// The kubelet makes /kubepods and leaves it behind; one that exists
	// already belongs to a kubelet on this machine, whose pods ours would
	// be killed among. Removed last, after containerd took the pod down.
	if dirs := framework.CgroupDirs("/kubepods"); len(dirs) > 0 {
		t.Skipf("%v exists: a kubelet runs on this machine", dirs)
	}
	t.Cleanup(func() {
		if err := framework.RemoveCgroupTree("/kubepods"); err != nil {
			t.Errorf("remove the kubelet's /kubepods: %v", err)
		}
	})
	claimKubeletDefaultRoot(t)
	rt, err := framework.StartContainerd(context.Background(), framework.Options{Logf: t.Logf, PodLogDir: t.TempDir()})
	if err != nil {
		t.Fatalf("start containerd: %v", err)
	}
	t.Cleanup(func() {
		if err := rt.Stop(); err != nil {
			t.Errorf("stop containerd: %v", err)
		}
	})
	if err := rt.ImportTestImages(context.Background()); err != nil {
		t.Fatal(err)
	}
	linkCadvisorSocket(t, strings.TrimPrefix(rt.Endpoint(), "unix://"))

	k := startKubelet(t, kubelet, rt)
	kubeletSummary := func() *statsapi.Summary { return getSummary(t, k.base) }
	t.Log("waiting for the kubelet to run the static pod")
	waitFor(t, kubeletSummary, podReady)

	ours := serverproc.Start(t, serverBinary,
		"--container-runtime-endpoint="+rt.Endpoint(), "--cgroup-driver=cgroupfs",
		"--root-dir="+k.rootDir, "--pod-logs-dir="+k.podLogsDir, "--housekeeping-interval=10s",
		"--volume-stats-agg-period=1m")
	ourSummary := func() *statsapi.Summary { return getSummary(t, ours.Base) }
	waitFor(t, ourSummary, func(s *statsapi.Summary) bool { return podReady(s) && findPod(s).VolumeStats != nil })
	waitFor(t, kubeletSummary, func(s *statsapi.Summary) bool { return podReady(s) && findPod(s).VolumeStats != nil })

	theirs, mine := rawSummary(t, k.base), rawSummary(t, ours.Base)
	t.Run("same keys", func(t *testing.T) {
		compareKeys(t, "node", keysOf(t, theirs, nodeOf), keysOf(t, mine, nodeOf))
		compareKeys(t, "pod", keysOf(t, theirs, podOf), keysOf(t, mine, podOf))
	})
	t.Run("same resource metrics", func(t *testing.T) {
		theirs, ours := scrape(t, k.base+"/metrics/resource"), scrape(t, ours.Base+"/metrics/resource")
		compareFamilies(t, theirs, ours, nil)
	})
	t.Run("same cadvisor metrics", func(t *testing.T) {
		theirs, ours := scrape(t, k.base+"/metrics/cadvisor"), scrape(t, ours.Base+"/metrics/cadvisor")
		compareFamilies(t, theirs, ours, cadvisorFamiliesWeLack)
	})
	t.Run("same values", func(t *testing.T) {
		var kubeletView, ourView statsapi.Summary
		decode(t, theirs, &kubeletView)
		decode(t, mine, &ourView)
		compareValues(t, &kubeletView, &ourView)
	})
	t.Run("same pods", func(t *testing.T) { comparePodLists(t, k.base, ours.Base) })
}

type kubeletProcess struct {
	base                string
	rootDir, podLogsDir string
	// manifests is its staticPodPath: a pod file written there is run.
	manifests string
	cmd       *exec.Cmd
}

// startKubelet runs the kubelet standalone (no API server) with a static
// pod: one container burning 0.2 cores and holding 50 MiB under a 100 MiB
// limit, writing into an emptyDir.
func startKubelet(t *testing.T, binary string, rt *framework.Runtime) *kubeletProcess {
	k := newKubelet(t)
	writeFile(t, filepath.Join(k.manifests, "work.yaml"), fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
  namespace: %s
spec:
  containers:
  - name: work
    image: %s
    imagePullPolicy: Never
    args: ["-cpu", "0.2", "-mem", "50", "-net", "-write", "/scratch"]
    resources:
      limits: {memory: 100Mi}
    volumeMounts: [{name: scratch, mountPath: /scratch}]
  volumes: [{name: scratch, emptyDir: {}}]
`, podName, podNamespace, framework.WorkImage))
	k.start(t, binary, rt, "kss-diff", "")
	return k
}

// newKubelet makes the directories of a kubelet in a test directory and
// picks its port.
func newKubelet(t *testing.T) *kubeletProcess {
	dir := t.TempDir()
	k := &kubeletProcess{rootDir: filepath.Join(dir, "root"), podLogsDir: filepath.Join(dir, "pods-logs"),
		manifests: filepath.Join(dir, "manifests")}
	for _, d := range []string{k.rootDir, k.podLogsDir, k.manifests} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return k
}

// start runs the kubelet on rt with extraConfig appended to its
// KubeletConfiguration; it is killed and its mounts removed at cleanup.
func (k *kubeletProcess) start(t *testing.T, binary string, rt *framework.Runtime, hostname, extraConfig string) {
	dir := filepath.Dir(k.rootDir)
	port := serverproc.FreePort(t)
	k.base = fmt.Sprintf("http://127.0.0.1:%d", port)
	config := filepath.Join(dir, "kubelet.yaml")
	writeFile(t, config, fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
failSwapOn: false
makeIPTablesUtilChains: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: %s
staticPodPath: %s
podLogsDir: %s
address: 127.0.0.1
readOnlyPort: %d
port: %d
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
%s`, rt.Endpoint(), k.manifests, k.podLogsDir, port, serverproc.FreePort(t), extraConfig))
	k.cmd = exec.Command(binary, "--config="+config, "--root-dir="+k.rootDir, "--cert-dir="+filepath.Join(dir, "pki"),
		"--hostname-override="+hostname, "-v=2")
	logFile, err := os.Create(filepath.Join(dir, "kubelet.log"))
	if err != nil {
		t.Fatal(err)
	}
	k.cmd.Stdout, k.cmd.Stderr = logFile, logFile
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("start kubelet: %v", err)
	}
	t.Cleanup(func() {
		_ = k.cmd.Process.Kill()
		_ = k.cmd.Wait()
		// The kubelet bind-mounts its root dir onto itself (shared mounts).
		if err := framework.UnmountUnder(dir); err != nil {
			t.Errorf("unmount the kubelet's mounts: %v", err)
		}
		if t.Failed() {
			t.Logf("kubelet log (tail):\n%s", k.logTail(60))
		}
	})
}

// logTail is the end of the kubelet's log, for failure messages.
func (k *kubeletProcess) logTail(lines int) string {
	log, err := os.ReadFile(filepath.Join(filepath.Dir(k.rootDir), "kubelet.log"))
	if err != nil {
		return err.Error()
	}
	return tail(string(log), lines)
}

// claimKubeletDefaultRoot skips when /var/lib/kubelet exists and removes
// the one the kubelet makes at cleanup: its device plugin socket lives
// there whatever --root-dir says, and a /var/lib/kubelet made for it would
// also change our node fs.
func claimKubeletDefaultRoot(t *testing.T) {
	if _, err := os.Stat(kubeletDefaultRoot); err == nil {
		t.Skipf("%s exists: a kubelet runs or ran on this machine", kubeletDefaultRoot)
	}
	t.Cleanup(func() { _ = os.RemoveAll(kubeletDefaultRoot) })
}

// kubeletBinary is KSS_KUBELET or a kubelet built from the published
// module in a scratch module, never inside this repository.
func kubeletBinary(t *testing.T) string {
	if path := os.Getenv("KSS_KUBELET"); path != "" {
		return path
	}
	dir := t.TempDir()
	kubernetes, err := exec.Command("go", "mod", "download", "-json", "k8s.io/kubernetes@"+kubeletVersion).Output()
	if err != nil {
		t.Fatalf("download k8s.io/kubernetes: %v", err)
	}
	var module struct{ GoMod string }
	if err := json.Unmarshal(kubernetes, &module); err != nil {
		t.Fatal(err)
	}
	upstream, err := os.ReadFile(module.GoMod)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "go.mod"), scratchGoMod(string(upstream)))
	writeFile(t, filepath.Join(dir, "main.go"), "package main\n\nimport _ \"k8s.io/kubernetes/cmd/kubelet/app\"\n\nfunc main() {}\n")
	t.Logf("building kubelet %s (about 7 minutes)", kubeletVersion)
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-ldflags", kubeletLdflags(), "-o", "kubelet", "k8s.io/kubernetes/cmd/kubelet"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %v: %v\n%s", args, err, out)
		}
	}
	return filepath.Join(dir, "kubelet")
}

// kubeletLdflags stamps the kubelet with its version the way a release
// build does (hack/lib/version.sh, kube::version::ldflags). component-base
// hides deprecated metrics by the binary's version: an unstamped build is
// v0.0.0 and still serves what a release kubelet hides (scrape_error on
// /metrics/resource, deprecated in 1.29).
func kubeletLdflags() string {
	major, minor, _ := strings.Cut(strings.TrimPrefix(kubeletVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	var flags []string
	for _, pkg := range []string{"k8s.io/client-go/pkg/version", "k8s.io/component-base/version"} {
		for _, kv := range [][2]string{{"gitVersion", kubeletVersion}, {"gitMajor", major}, {"gitMinor", minor},
			{"gitTreeState", "clean"}, {"buildDate", time.Now().UTC().Format(time.RFC3339)}} {
			flags = append(flags, fmt.Sprintf("-X '%s.%s=%s'", pkg, kv[0], kv[1]))
		}
	}
	return strings.Join(flags, " ")
}

// checkKubeletVersion refuses a kubelet (KSS_KUBELET) that is not a
// release-like build of kubeletVersion: its metrics would differ.
func checkKubeletVersion(t *testing.T, binary string) {
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v\n%s", binary, err, out)
	}
	if got := strings.TrimSpace(string(out)); got != "Kubernetes "+kubeletVersion {
		t.Fatalf("%s --version says %q, want \"Kubernetes %s\": build it with kubeletLdflags", binary, got, kubeletVersion)
	}
}

// scratchGoMod requires k8s.io/kubernetes and points every module its go.mod
// takes from ./staging at the published version of the same release.
func scratchGoMod(upstream string) string {
	var b strings.Builder
	b.WriteString("module kubeletbuild\n\ngo 1.26\n\nrequire k8s.io/kubernetes " + kubeletVersion + "\n\nreplace (\n")
	staging := "v0" + strings.TrimPrefix(kubeletVersion, "v1")
	for _, line := range strings.Split(upstream, "\n") {
		fields := strings.Fields(line)
		if len(fields) == 3 && fields[1] == "=>" && strings.HasPrefix(fields[2], "./staging/") {
			fmt.Fprintf(&b, "\t%s => %s %s\n", fields[0], fields[0], staging)
		}
	}
	b.WriteString(")\n")
	return b.String()
}

// linkCadvisorSocket points cAdvisor's fixed containerd path at our
// containerd for the test, refusing to touch a real one.
func linkCadvisorSocket(t *testing.T, socket string) {
	if _, err := os.Lstat(cadvisorSocket); err == nil {
		t.Skipf("%s exists: a containerd runs on this machine", cadvisorSocket)
	}
	if err := os.MkdirAll(filepath.Dir(cadvisorSocket), 0o711); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(socket, cadvisorSocket); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(cadvisorSocket) })
}

func getSummary(t *testing.T, base string) *statsapi.Summary {
	t.Helper()
	var s statsapi.Summary
	decode(t, rawSummary(t, base), &s)
	return &s
}

func rawSummary(t *testing.T, base string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/stats/summary")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var body json.RawMessage
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return nil
	}
	return body
}

func decode(t *testing.T, body []byte, into any) {
	t.Helper()
	if body == nil {
		return
	}
	if err := json.Unmarshal(body, into); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
}

// waitFor polls get until ready holds.
func waitFor(t *testing.T, get func() *statsapi.Summary, ready func(*statsapi.Summary) bool) {
	t.Helper()
	for !ready(get()) {
		time.Sleep(time.Second)
	}
}

func findPod(s *statsapi.Summary) *statsapi.PodStats {
	for i := range s.Pods {
		if strings.HasPrefix(s.Pods[i].PodRef.Name, podName) && s.Pods[i].PodRef.Namespace == podNamespace {
			return &s.Pods[i]
		}
	}
	return nil
}

// podReady: the pod is listed with a cpu rate and network for its container.
func podReady(s *statsapi.Summary) bool {
	pod := findPod(s)
	return pod != nil && len(pod.Containers) == 1 && pod.Containers[0].CPU != nil &&
		pod.Containers[0].CPU.UsageNanoCores != nil && pod.Network != nil
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}

// keysOf lists the key paths of a part of a summary body.
func keysOf(t *testing.T, body []byte, part func(map[string]any) any) map[string]bool {
	t.Helper()
	var summary map[string]any
	if err := json.Unmarshal(body, &summary); err != nil {
		t.Fatal(err)
	}
	return framework.KeyPaths(part(summary))
}

func nodeOf(summary map[string]any) any { return summary["node"] }

func podOf(summary map[string]any) any {
	pods, _ := summary["pods"].([]any)
	for _, pod := range pods {
		ref, _ := pod.(map[string]any)["podRef"].(map[string]any)
		if name, _ := ref["name"].(string); strings.HasPrefix(name, podName) {
			return pod
		}
	}
	return nil
}

func compareKeys(t *testing.T, what string, kubelet, ours map[string]bool) {
	t.Helper()
	for path := range kubelet {
		if !ours[path] {
			t.Errorf("%s: the kubelet has %s, we do not", what, path)
		}
	}
	for path := range ours {
		if !kubelet[path] {
			t.Errorf("%s: we have %s, the kubelet does not", what, path)
		}
	}
}

// compareValues checks the quantities both read from the same kernel: equal
// within what the different sample times and a few percent allow.
func compareValues(t *testing.T, kubelet, ours *statsapi.Summary) {
	theirPod, ourPod := findPod(kubelet), findPod(ours)
	their, our := theirPod.Containers[0], ourPod.Containers[0]
	rate := float64(*our.CPU.UsageNanoCores)
	counter := func(what string, theirs, ours *uint64, theirTime, ourTime time.Time, perSecond float64) {
		t.Helper()
		if theirs == nil || ours == nil {
			t.Errorf("%s: kubelet %v, ours %v", what, theirs, ours)
			return
		}
		allowed := perSecond*math.Abs(ourTime.Sub(theirTime).Seconds())*1.25 + perSecond*0.5
		t.Logf("%s: kubelet %d at %v, ours %d at %v", what, *theirs, theirTime, *ours, ourTime)
		if diff := math.Abs(float64(*ours) - float64(*theirs)); diff > allowed {
			t.Errorf("%s: kubelet %d at %v, ours %d at %v: %.0f apart, allowed %.0f", what, *theirs, theirTime, *ours, ourTime, diff, allowed)
		}
	}
	gauge := func(what string, theirs, ours *uint64, tolerance float64) {
		t.Helper()
		if theirs == nil || ours == nil {
			t.Errorf("%s: kubelet %v, ours %v", what, theirs, ours)
			return
		}
		t.Logf("%s: kubelet %d, ours %d", what, *theirs, *ours)
		if diff := math.Abs(float64(*ours) - float64(*theirs)); diff > tolerance*float64(*theirs) {
			t.Errorf("%s: kubelet %d, ours %d", what, *theirs, *ours)
		}
	}
	counter("container cpu usageCoreNanoSeconds", their.CPU.UsageCoreNanoSeconds, our.CPU.UsageCoreNanoSeconds, their.CPU.Time.Time, our.CPU.Time.Time, rate)
	counter("pod cpu usageCoreNanoSeconds", theirPod.CPU.UsageCoreNanoSeconds, ourPod.CPU.UsageCoreNanoSeconds, theirPod.CPU.Time.Time, ourPod.CPU.Time.Time, rate)
	gauge("container usageNanoCores", their.CPU.UsageNanoCores, our.CPU.UsageNanoCores, 0.3)
	gauge("container memory workingSetBytes", their.Memory.WorkingSetBytes, our.Memory.WorkingSetBytes, 0.1)
	gauge("container memory availableBytes", their.Memory.AvailableBytes, our.Memory.AvailableBytes, 0.1)
	gauge("pod memory workingSetBytes", theirPod.Memory.WorkingSetBytes, ourPod.Memory.WorkingSetBytes, 0.1)
	gauge("container rootfs capacityBytes", their.Rootfs.CapacityBytes, our.Rootfs.CapacityBytes, 0.01)
	gauge("pod volume usedBytes", theirPod.VolumeStats[0].UsedBytes, ourPod.VolumeStats[0].UsedBytes, 0.1)
	gauge("node memory capacity (workingSet + available)", sum(kubelet.Node.Memory.WorkingSetBytes, kubelet.Node.Memory.AvailableBytes),
		sum(ours.Node.Memory.WorkingSetBytes, ours.Node.Memory.AvailableBytes), 0.01)
	gauge("node fs capacityBytes", kubelet.Node.Fs.CapacityBytes, ours.Node.Fs.CapacityBytes, 0.01)
	near := func(what string, theirs, ours *uint64, slack float64) {
		t.Helper()
		if theirs == nil || ours == nil {
			t.Errorf("%s: kubelet %v, ours %v", what, theirs, ours)
			return
		}
		t.Logf("%s: kubelet %d, ours %d", what, *theirs, *ours)
		if diff := math.Abs(float64(*ours) - float64(*theirs)); diff > slack+0.1*float64(*theirs) {
			t.Errorf("%s: kubelet %d, ours %d", what, *theirs, *ours)
		}
	}
	near("pod network rxBytes", theirPod.Network.RxBytes, ourPod.Network.RxBytes, 64<<10)
	near("pod network txBytes", theirPod.Network.TxBytes, ourPod.Network.TxBytes, 64<<10)
	near("container logs usedBytes", their.Logs.UsedBytes, our.Logs.UsedBytes, 64<<10)
	near("pod ephemeral-storage usedBytes", theirPod.EphemeralStorage.UsedBytes, ourPod.EphemeralStorage.UsedBytes, 256<<10)
	near("node fs usedBytes", kubelet.Node.Fs.UsedBytes, ours.Node.Fs.UsedBytes, 64<<20)
	near("image fs usedBytes", kubelet.Node.Runtime.ImageFs.UsedBytes, ours.Node.Runtime.ImageFs.UsedBytes, 1<<20)
	if theirPod.PodRef != ourPod.PodRef {
		t.Errorf("podRef: kubelet %+v, ours %+v", theirPod.PodRef, ourPod.PodRef)
	}
	if !their.StartTime.Equal(&our.StartTime) {
		t.Errorf("container startTime: kubelet %v, ours %v", their.StartTime, our.StartTime)
	}
	if theirPod.Network.Name != ourPod.Network.Name {
		t.Errorf("pod network interface: kubelet %q, ours %q", theirPod.Network.Name, ourPod.Network.Name)
	}
}

func sum(a, b *uint64) *uint64 {
	if a == nil || b == nil {
		return nil
	}
	s := *a + *b
	return &s
}

// lack says why we may not serve a family the kubelet serves.
type lack int

const (
	// lackAlways: the collector has no data for it.
	lackAlways lack = iota + 1
	// lackWithoutIO: the kubelet serves it for "/" from the host's
	// filesystems too, we only from per-device I/O (io.stat, blkio), which
	// a v1 node whose blkio lists no device (this machine) does not have.
	lackWithoutIO
)

// cadvisorFamiliesWeLack are the /metrics/cadvisor families the collector
// may have no data for (docs/compatibility.md): per-filesystem usage and
// I/O, and per-process limits.
var cadvisorFamiliesWeLack = map[string]lack{
	"container_fs_inodes_free": lackAlways, "container_fs_inodes_total": lackAlways, "container_fs_io_current": lackAlways,
	"container_fs_io_time_seconds_total": lackAlways, "container_fs_io_time_weighted_seconds_total": lackAlways,
	"container_fs_limit_bytes": lackAlways, "container_fs_read_seconds_total": lackAlways, "container_fs_reads_merged_total": lackAlways,
	"container_fs_reads_total": lackWithoutIO, "container_fs_sector_reads_total": lackAlways, "container_fs_sector_writes_total": lackAlways,
	"container_fs_usage_bytes": lackAlways, "container_fs_write_seconds_total": lackAlways, "container_fs_writes_merged_total": lackAlways,
	"container_fs_writes_total": lackWithoutIO, "container_ulimits_soft": lackAlways,
}

func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse %s: %v", url, err)
	}
	return families
}

// compareFamilies wants the kubelet's families, help texts, types and label
// names, except the families in lacking.
func compareFamilies(t *testing.T, kubelet, ours map[string]*dto.MetricFamily, lacking map[string]lack) {
	t.Helper()
	for name, theirs := range kubelet {
		mine := ours[name]
		switch {
		case mine == nil && lacking[name] != 0:
			continue
		case mine == nil:
			t.Errorf("the kubelet serves %s, we do not", name)
			continue
		case lacking[name] == lackAlways:
			t.Errorf("we serve %s, listed as lacking: update the list and the docs", name)
		}
		if mine.GetHelp() != theirs.GetHelp() || mine.GetType() != theirs.GetType() {
			t.Errorf("%s: help %q type %v, kubelet %q %v", name, mine.GetHelp(), mine.GetType(), theirs.GetHelp(), theirs.GetType())
		}
		if got, want := labelNames(mine), labelNames(theirs); got != want {
			t.Errorf("%s: labels %s, kubelet %s", name, got, want)
		}
	}
	for name := range ours {
		if kubelet[name] == nil {
			t.Errorf("we serve %s, the kubelet does not", name)
		}
	}
}

func labelNames(family *dto.MetricFamily) string {
	if len(family.Metric) == 0 {
		return ""
	}
	var names []string
	for _, l := range family.Metric[0].Label {
		names = append(names, l.GetName())
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}
