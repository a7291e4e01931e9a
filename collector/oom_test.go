package collector

import (
	"context"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestOOMLines(t *testing.T) {
	at := time.Date(2026, 11, 23, 11, 44, 12, 0, time.UTC)
	for _, tc := range []struct {
		name  string
		lines []string
		want  []cadvisor.OOMKill
	}{
		{
			name: "cgroup limit, Linux 6.18 (this machine)",
			lines: []string{
				"tail invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
				"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/kss-oomprobe,task_memcg=/kss-oomprobe,task=tail,pid=28781,uid=0",
				"Memory cgroup out of memory: Killed process 28781 (tail) total-vm:18676kB, anon-rss:15872kB, file-rss:1552kB, shmem-rss:0kB, UID:0 pgtables:80kB oom_score_adj:0",
			},
			want: []cadvisor.OOMKill{{Time: at, PID: 28781, ProcessName: "tail", Cgroup: "/kss-oomprobe", LimitCgroup: "/kss-oomprobe", Constraint: "CONSTRAINT_MEMCG"}},
		},
		{
			name: "pod limit hit by one of its containers",
			lines: []string{
				"oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=c1,mems_allowed=0,oom_memcg=/kubepods/burstable/pod1,task_memcg=/kubepods/burstable/pod1/c1,task=java,pid=7,uid=1000",
				"Memory cgroup out of memory: Killed process 7 (java) total-vm:1kB",
			},
			want: []cadvisor.OOMKill{{Time: at, PID: 7, ProcessName: "java", Cgroup: "/kubepods/burstable/pod1/c1", LimitCgroup: "/kubepods/burstable/pod1", Constraint: "CONSTRAINT_MEMCG"}},
		},
		{
			name: "system OOM, Linux 5.0+",
			lines: []string{
				"oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/db.service,task=postgres,pid=99,uid=70",
				"Out of memory: Killed process 99 (postgres) total-vm:1kB",
			},
			want: []cadvisor.OOMKill{{Time: at, PID: 99, ProcessName: "postgres", Cgroup: "/system.slice/db.service", LimitCgroup: "/", Constraint: "CONSTRAINT_NONE"}},
		},
		{
			name: "cgroup limit, before Linux 5.0",
			lines: []string{
				"Task in /kubepods/pod1/c1 killed as a result of limit of /kubepods/pod1",
				"memory: usage 102400kB, limit 102400kB, failcnt 12",
				"Memory cgroup out of memory: Kill process 5 (stress) score 1000 or sacrifice child",
				"Killed process 5 (stress) total-vm:1kB, anon-rss:1kB",
			},
			want: []cadvisor.OOMKill{{Time: at, PID: 5, ProcessName: "stress", Cgroup: "/kubepods/pod1/c1", LimitCgroup: "/kubepods/pod1"}},
		},
		{
			name:  "system OOM, before Linux 5.0",
			lines: []string{"Out of memory: Kill process 3 (x) score 900 or sacrifice child", "Killed process 3 (x) total-vm:1kB"},
			want:  []cadvisor.OOMKill{{Time: at, PID: 3, ProcessName: "x", Cgroup: "/", LimitCgroup: "/"}},
		},
		{
			name:  "other lines",
			lines: []string{"eth0: link up", "Killed processes are gone"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o oomLines
			var got []cadvisor.OOMKill
			for _, line := range tc.lines {
				if kill, ok := o.add(line, at); ok {
					got = append(got, kill)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("kills %+v, want %+v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("kill %+v, want %+v", got[i], tc.want[i])
				}
			}
			if len(got) == 1 && got[0].System() != (got[0].LimitCgroup == "/") {
				t.Error("System() disagrees with LimitCgroup")
			}
		})
	}
}

// TestWatchOOMKillsLive makes the kernel OOM-kill a process in a cgroup
// with a 16 MiB limit and expects the watcher to report it, and only it:
// kills logged before the watcher started are not replayed.
func TestWatchOOMKillsLive(t *testing.T) {
	lc := newLiveCgroups(t)
	oomKill := func(cgroup string) {
		lc.mkdir(cgroup)
		lc.write("memory", cgroup, "memory.limit_in_bytes", "16777216")
		// tail buffers all of its input when it has no newline: 200 MiB.
		p := lc.run(cgroup, exec.Command("sh", "-c", "read go; head -c 200M /dev/zero | tail"), false)
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Wait() // sh exits once tail is killed
	}
	before, after := lc.name("before"), lc.name("after")
	oomKill(before)

	kills := make(chan cadvisor.OOMKill, 16)
	ctx, cancel := context.WithCancel(context.Background())
	watching := make(chan error, 1)
	go func() { watching <- WatchOOMKills(ctx, func(k cadvisor.OOMKill) { kills <- k }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-watching; err != nil {
			t.Errorf("watch: %v", err)
		}
	})
	// The watcher may still be opening kmsg: keep killing in fresh cgroups
	// until one of them is reported, then check that "before" never was.
	// Attempts are bounded so that a watcher that reports nothing fails.
	for attempt := 0; attempt < maxOOMAttempts; attempt++ {
		oomKill(after + strconv.Itoa(attempt))
		if kill, seen := reportedKill(t, kills, after, before); seen {
			if kill.Cgroup != kill.LimitCgroup || kill.ProcessName != "tail" || kill.PID <= 0 || kill.System() ||
				kill.Constraint != "CONSTRAINT_MEMCG" {
				t.Errorf("kill %+v", kill)
			}
			return
		}
	}
	t.Fatalf("none of %d OOM kills under %s was reported", maxOOMAttempts, after)
}

// maxOOMAttempts bounds the kills a live test makes before it gives up.
const maxOOMAttempts = 20

// reportedKill reads the kills reported so far and returns one in a cgroup
// named with prefix, failing the test on one in forbidden.
func reportedKill(t *testing.T, kills <-chan cadvisor.OOMKill, prefix, forbidden string) (cadvisor.OOMKill, bool) {
	t.Helper()
	for {
		select {
		case kill := <-kills:
			if kill.LimitCgroup == forbidden {
				t.Fatalf("a kill from before the watcher started was reported: %+v", kill)
			}
			if strings.HasPrefix(kill.LimitCgroup, prefix) {
				return kill, true
			}
		default:
			return cadvisor.OOMKill{}, false
		}
	}
}
