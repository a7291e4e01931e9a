package v2vm

import (
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// planEntry is one binary the guest runs.
type planEntry struct {
	name    string
	timeout time.Duration
	binary  string // a goBinaries name
	args    []string
	env     []string
	// mustPass are top-level tests whose PASS line the log must have: a
	// binary that skipped everything exits 0 too.
	mustPass []string
}

// captureFile is where the guest writes a captured tree (see the guest
// package), per layout.
func captureFile(layout string) string { return "capture-" + layout + ".tar.gz" }

// Each entry's timeout is several times what it took on a loaded host
// (docs/compatibility.md); with bootMargin both layouts stay under make
// e2e-v2's go test -timeout.
//
// guestPlan is what runs inside the VM, in order: the collector against the
// kernel's files, the v2 pod checks (OOM kills, raw files), then the
// project's own pod and legacy-endpoint e2e suites on containerd inside the
// VM. With capture, only TestCaptureTree runs instead: it writes the
// layout's tree as an archive (make golden-import turns it into a golden
// tier tree).
func guestPlan(capture bool) []planEntry {
	e2eEnv := []string{
		serverproc.PrebuiltEnv + "=" + path.Join(guestBinDir, "kubelet-stats-server"),
		framework.PrebuiltImagesEnv + "=" + guestBinDir,
	}
	guestEnv := append([]string{"KSS_V2VM_GUEST=1"}, e2eEnv...)
	if capture {
		return []planEntry{
			{name: "capture", timeout: 5 * time.Minute, binary: "guest.test", env: append(guestEnv, "KSS_V2VM_CAPTURE=/out"),
				args: []string{"-test.run", "^TestCaptureTree$"}, mustPass: []string{"TestCaptureTree"}},
		}
	}
	return []planEntry{
		{name: "live", timeout: 3 * time.Minute, binary: "guest.test", env: guestEnv,
			args: []string{"-test.run", "^TestLive"}, mustPass: []string{"TestLiveCollector"}},
		{name: "pods-v2", timeout: 6 * time.Minute, binary: "guest.test", env: guestEnv,
			args: []string{"-test.run", "^TestPodsOnV2$"}, mustPass: []string{"TestPodsOnV2"}},
		{name: "pods", timeout: 8 * time.Minute, binary: "pods.test", env: e2eEnv,
			args: []string{"-test.skip", vmSkips()}, mustPass: []string{"TestPodsFromContainerd"}},
		{name: "legacy", timeout: 5 * time.Minute, binary: "legacy.test", env: e2eEnv,
			mustPass: []string{"TestLegacyEndpoints"}},
	}
}

// vmSkips are the tests of the e2e suites the VM leaves out, because they
// race or measure the workload rather than the server under emulation,
// where containerd answers in hundreds of milliseconds and every thread
// runs tens of times slower. Remove each once its test is fixed:
//   - TestPodListFromContainerd fails at its first /pods when the status
//     calls have not answered yet (the empty list is "items":null, as the
//     kubelet encodes it, and getPodList wants "items":[), and its restart
//     subtest takes the restarted container as soon as /pods lists its ID,
//     while it is still created, not running;
//   - TestPodsFromContainerd's busy-container subtest bounds the work
//     image's own CPU use at 0.4 cores, which its Go runtime exceeds under
//     emulation (0.44 and 0.45 were seen) although the server matched the
//     cgroup; TestPodsOnV2 compares the rate with cpu.stat instead;
//   - TestEventsOfAPod failed 2 of 4 systemd-layout runs on what look like
//     the events feed's races, not the test's: the hog's containerDeletion
//     before its oom and oomKill (the kmsg line read after the scope was
//     gone), and once an oomKill with pid 0 for /kubepods.slice (its
//     memory.events rise not offset by the pod's within one pass). Its
//     fixed cgroupfs assumption (the sandbox's cgroup) is gone.
func vmSkips() string {
	return "^TestPodListFromContainerd$|^TestEventsOfAPod$|^TestPodsFromContainerd$/^busy_container_cpu_matches_its_cgroup$"
}

// renderPlan writes the plan as the `run` lines guest.sh sources. Each
// binary gets a Go test timeout a little under the guest's kill deadline,
// so that a hang prints its goroutines.
func renderPlan(entries []planEntry) string {
	var b strings.Builder
	for _, e := range entries {
		dir := path.Join(guestSourceDir, goBinaryNamed(e.binary).pkg)
		goTimeout := e.timeout - 30*time.Second
		words := []string{"run", e.name, fmt.Sprint(int(e.timeout.Seconds())), dir, "env"}
		words = append(words, e.env...)
		words = append(words, path.Join(guestBinDir, e.binary), "-test.v", "-test.count=1", "-test.timeout="+goTimeout.String())
		words = append(words, e.args...)
		for i, w := range words {
			words[i] = shellQuote(w)
		}
		b.WriteString(strings.Join(words, " ") + "\n")
	}
	return b.String()
}

// planTimeout is the sum of the entries' deadlines.
func planTimeout(entries []planEntry) time.Duration {
	var total time.Duration
	for _, e := range entries {
		total += e.timeout
	}
	return total
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=./:,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
