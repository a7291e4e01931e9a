package node

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/cgrouptest"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// TestOOMKillsAreCountedAndLogged has the kernel OOM-kill a process under a
// 16 MiB cgroup limit while the real binary runs, and expects the kill in
// its /metrics counter and its log.
func TestOOMKillsAreCountedAndLogged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root for cgroups and /dev/kmsg")
	}
	tree, err := cgrouptest.New("/sys/fs/cgroup")
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := tree.Cleanup(); err != nil {
			t.Error(err)
		}
	})
	srv := serverproc.Start(t, serverBinary)
	parent := fmt.Sprintf("/kss-node-oom-%d", os.Getpid())

	// The watcher starts beside the first tick: kill in fresh cgroups until
	// one kill is counted, a bounded number of times.
	const counted = `kubelet_stats_server_oom_kills_total{scope="cgroup"}`
	for attempt := 0; !strings.Contains(oomKillsMetric(t, srv), counted); attempt++ {
		if attempt == 20 {
			t.Fatalf("20 OOM kills and none counted:\n%s", oomKillsMetric(t, srv))
		}
		oomKill(t, tree, fmt.Sprintf("%s/victim%d", parent, attempt))
	}
	if log := srv.Log(); !strings.Contains(log, "OOM kill under a cgroup memory limit") || !strings.Contains(log, `process="tail"`) {
		t.Errorf("the kill is not in the log:\n%s", log)
	}
}

// oomKill makes the kernel kill tail in cgroup, limited to 16 MiB.
func oomKill(t *testing.T, tree *cgrouptest.Tree, cgroup string) {
	t.Helper()
	if err := tree.Create(cgroup); err != nil {
		t.Fatal(err)
	}
	limit := "/sys/fs/cgroup/memory" + cgroup + "/memory.limit_in_bytes"
	if _, err := os.Stat(limit); err != nil {
		t.Skip("needs a cgroup v1 memory hierarchy")
	}
	if err := os.WriteFile(limit, []byte("16777216"), 0o644); err != nil {
		t.Fatal(err)
	}
	// tail buffers all of its input when it has no newline: 200 MiB.
	cmd := exec.Command("sh", "-c", "read go; head -c 200M /dev/zero | tail")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Start(cgroup, cmd); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait() // sh exits once tail is killed
}

func oomKillsMetric(t *testing.T, srv *serverproc.Server) string {
	t.Helper()
	status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/metrics", nil, nil)
	if status != http.StatusOK {
		t.Fatalf("/metrics = %d", status)
	}
	return string(body)
}
