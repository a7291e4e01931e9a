package collector

import (
	"context"
	"fmt"
	"path"
	"regexp"
	"strconv"
	"time"

	"github.com/euank/go-kmsg-parser/kmsgparser"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// WatchOOMKills calls record for every OOM kill the kernel logs from now
// on, until ctx ends. It reads /dev/kmsg with the kmsg parser cAdvisor's
// oomparser uses, but from the end of the ring buffer: oomparser replays
// the whole buffer, so the kubelet reports a node's old OOM kills again at
// every restart, and its timestamps (boot time from the rounded uptime plus
// the kmsg clock) are too coarse to tell old kills from new ones.
func WatchOOMKills(ctx context.Context, record func(cadvisor.OOMKill)) error {
	parser, err := kmsgparser.NewParser()
	if err != nil {
		return fmt.Errorf("open /dev/kmsg: %w", err)
	}
	if err := parser.SeekEnd(); err != nil {
		_ = parser.Close()
		return fmt.Errorf("seek to the end of /dev/kmsg: %w", err)
	}
	parser.SetLogger(discardKmsgLogs{})
	messages := parser.Parse()
	go func() {
		<-ctx.Done()
		_ = parser.Close() // ends the reader, which closes messages
	}()
	var oom oomLines
	for message := range messages {
		if kill, ok := oom.add(message.Message, message.Timestamp); ok {
			record(kill)
		}
	}
	return nil
}

// discardKmsgLogs silences the kmsg parser: a closed reader at shutdown is
// its only complaint in practice.
type discardKmsgLogs struct{}

func (discardKmsgLogs) Infof(string, ...any)    {}
func (discardKmsgLogs) Warningf(string, ...any) {}
func (discardKmsgLogs) Errorf(string, ...any)   {}

// The kernel's OOM report lines that name the victim, as cAdvisor's
// oomparser matches them.
var (
	// Linux 5.0 and later: one line with everything, oom_memcg=<cgroup> or
	// global_oom.
	oomKillLine = regexp.MustCompile(`^oom-kill:constraint=([^,]*),.*?,(?:oom_memcg=([^,]*)|global_oom),task_memcg=([^,]*),task=(.*),pid=(\d+),uid=\d+`)
	// Before 5.0: the cgroups on one line, the process on a later one.
	legacyCgroupLine = regexp.MustCompile(`^Task in (.*) killed as a result of limit of (.*)`)
	killedLine       = regexp.MustCompile(`Killed process (\d+) \((.+?)\)`)
)

// oomLines assembles OOM kills from consecutive kmsg lines.
type oomLines struct {
	// pending is a pre-5.0 kill whose cgroups are known, not yet its process.
	pending *cadvisor.OOMKill
	// reported is set after a 5.0 oom-kill line, whose "Killed process"
	// line follows and must not count again.
	reported bool
}

// add takes the next kmsg line and returns a kill when one is complete.
func (o *oomLines) add(line string, at time.Time) (cadvisor.OOMKill, bool) {
	if m := oomKillLine.FindStringSubmatch(line); m != nil {
		pid, _ := strconv.Atoi(m[5]) // \d+
		limit := m[2]
		if limit == "" {
			limit = "/" // global_oom
		}
		o.pending, o.reported = nil, true
		return cadvisor.OOMKill{Time: at, PID: pid, ProcessName: m[4], Cgroup: m[3], LimitCgroup: limit, Constraint: m[1]}, true
	}
	if m := legacyCgroupLine.FindStringSubmatch(line); m != nil {
		o.pending = &cadvisor.OOMKill{Cgroup: path.Join("/", m[1]), LimitCgroup: path.Join("/", m[2])}
		o.reported = false
		return cadvisor.OOMKill{}, false
	}
	m := killedLine.FindStringSubmatch(line)
	if m == nil {
		return cadvisor.OOMKill{}, false
	}
	if o.reported {
		o.reported = false
		return cadvisor.OOMKill{}, false
	}
	kill := cadvisor.OOMKill{Cgroup: "/", LimitCgroup: "/"} // a pre-5.0 system OOM names no cgroup
	if o.pending != nil {
		kill = *o.pending
		o.pending = nil
	}
	kill.Time = at
	kill.PID, _ = strconv.Atoi(m[1])
	kill.ProcessName = m[2]
	return kill, true
}
