package v2vm

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Environment of the tier (make e2e-v2 sets the first).
const (
	runEnv     = "KSS_V2VM"         // 1: boot the VM
	layoutsEnv = "KSS_V2VM_LAYOUTS" // comma-separated, default both
	captureEnv = "KSS_V2VM_CAPTURE" // a host directory: capture each layout's tree there
	planEnv    = "KSS_V2VM_PLAN"    // comma-separated plan entries to run, default all
	debugEnv   = "KSS_V2VM_DEBUG"   // 1: the guest's test output goes to the console too
	sourceEnv  = "KSS_V2VM_SOURCE"  // the module tree to build the guest's binaries from, default this one
)

// bootMargin is the VM's deadline beyond its plan's: kernel, init, systemd
// and writing the results.
const bootMargin = 3 * time.Minute

// TestCgroupV2VM boots a real cgroup v2 kernel under QEMU once per layout
// and runs the guest plan there; every binary must exit 0 with its
// required tests passed.
func TestCgroupV2VM(t *testing.T) {
	if os.Getenv(runEnv) != "1" {
		t.Skipf("the cgroup v2 VM tier runs with %s=1 (make e2e-v2)", runEnv)
	}
	ctx := context.Background()
	workDir, source := moduleDirs(t)
	layouts := layouts(t)
	captureDir := os.Getenv(captureEnv)
	plan := selectEntries(guestPlan(captureDir != ""), os.Getenv(planEnv))
	if len(plan) == 0 {
		t.Fatalf("%s=%q selects no plan entry", planEnv, os.Getenv(planEnv))
	}
	a, err := prepare(ctx, source, workDir, filepath.Join(workDir, "cache"), renderPlan(plan), t.Logf)
	if err != nil {
		t.Fatal(err)
	}
	for _, layout := range layouts {
		t.Run(layout, func(t *testing.T) {
			cfg := bootConfig{artifacts: a, layout: layout, runDir: filepath.Join(workDir, "runs", layout),
				timeout: planTimeout(plan) + bootMargin, debug: os.Getenv(debugEnv) == "1"}
			start := time.Now()
			if err := boot(ctx, cfg); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: qemu ran %v; guest uptime at each step:\n%s", layout, time.Since(start).Round(time.Second),
				readOr(filepath.Join(cfg.runDir, "out", "timings")))
			out := filepath.Join(cfg.runDir, "out")
			for _, e := range plan {
				checkEntry(t, out, e)
			}
			if captureDir != "" {
				copyCapture(t, out, captureDir, layout)
			}
		})
	}
}

// selectEntries keeps the named entries (all when names is empty), for
// iterating on one suite.
func selectEntries(plan []planEntry, names string) []planEntry {
	if names == "" {
		return plan
	}
	var out []planEntry
	for _, e := range plan {
		for _, n := range strings.Split(names, ",") {
			if n == e.name {
				out = append(out, e)
			}
		}
	}
	return out
}

// moduleDirs returns the tier's work dir (bin/v2vm of this module) and the
// module tree to build from.
func moduleDirs(t *testing.T) (workDir, source string) {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatalf("locate the module: %v", err)
	}
	root := strings.TrimSpace(string(out))
	source = root
	if dir := os.Getenv(sourceEnv); dir != "" {
		source = dir
	}
	return filepath.Join(root, "bin", "v2vm"), source
}

// layouts are the layouts to boot, both unless layoutsEnv narrows them.
func layouts(t *testing.T) []string {
	t.Helper()
	v := os.Getenv(layoutsEnv)
	if v == "" {
		return []string{"cgroupfs", "systemd"}
	}
	names := strings.Split(v, ",")
	for _, name := range names {
		if name != "cgroupfs" && name != "systemd" {
			t.Fatalf("%s=%q: unknown layout %q (cgroupfs, systemd)", layoutsEnv, v, name)
		}
	}
	return names
}

// checkEntry fails the test unless the binary ran, exited 0 and passed the
// tests it must pass. On failure it shows the failing lines and the log's
// tail; the whole log stays in the run directory.
func checkEntry(t *testing.T, out string, e planEntry) {
	t.Helper()
	logPath := filepath.Join(out, e.name+".log")
	log := readOr(logPath)
	rcText, err := os.ReadFile(filepath.Join(out, e.name+".rc"))
	if err != nil {
		t.Errorf("%s did not finish (no exit code); log %s:\n%s", e.name, logPath, tail(log, 4000))
		return
	}
	rc, err := strconv.Atoi(strings.TrimSpace(string(rcText)))
	if err != nil || rc != 0 {
		why := ""
		if rc == 137 {
			why = fmt.Sprintf(", killed at its %v deadline", e.timeout)
		}
		t.Errorf("%s exited %q%s; failures:\n%s\nlog %s ends:\n%s",
			e.name, strings.TrimSpace(string(rcText)), why, failureLines(log), logPath, tail(log, 4000))
		return
	}
	for _, test := range e.mustPass {
		if !regexp.MustCompile(`(?m)^--- PASS: ` + regexp.QuoteMeta(test) + ` `).MatchString(log) {
			t.Errorf("%s exited 0 but %s did not pass (skipped?); log %s ends:\n%s", e.name, test, logPath, tail(log, 3000))
		}
	}
	t.Logf("%s: ok (%s)", e.name, passSummary(log))
}

// failureLines are the FAIL and panic lines of a go test -v log.
func failureLines(log string) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "--- FAIL") || strings.HasPrefix(trimmed, "panic:") || strings.Contains(line, "_test.go:") {
			out = append(out, line)
		}
	}
	return tail(strings.Join(out, "\n"), 6000)
}

// passSummary counts the PASS and SKIP lines of a go test -v log.
func passSummary(log string) string {
	pass := strings.Count(log, "--- PASS: ")
	skip := strings.Count(log, "--- SKIP: ")
	return fmt.Sprintf("%d passed, %d skipped", pass, skip)
}

// copyCapture copies the layout's captured archive into dir.
func copyCapture(t *testing.T, out, dir, layout string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(out, captureFile(layout)))
	if err != nil {
		t.Errorf("no captured tree: %v", err)
		return
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, captureFile(layout))
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured the %s tree: %s (%d bytes); make golden-import ARCHIVE=%s makes it a golden tree", layout, dst, len(data), dst)
}

func readOr(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	return string(data)
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}
