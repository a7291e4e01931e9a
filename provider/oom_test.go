package provider

import (
	"strings"
	"testing"

	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

func TestRecordOOMKill(t *testing.T) {
	var logs []string
	logger := funcr.New(func(prefix, args string) { logs = append(logs, args) }, funcr.Options{Verbosity: 1})
	registry := prometheus.NewRegistry()
	p := New(Config{Registerer: registry, Logger: logger})
	podCgroup := "/kubepods/burstable/pod1"
	view := &cadvisor.View{Cgroups: map[string]*cadvisor.CgroupInfo{
		"/": {Name: "/"}, podCgroup: {Name: podCgroup}, podCgroup + "/c1": {Name: podCgroup + "/c1"},
	}}
	p.current.Store(&snapshot.Snapshot{Cgroups: snapshot.NewCgroups(view, nil, []snapshot.Pod{{
		Namespace: "shop", Name: "cart", UID: "1", Cgroup: podCgroup,
		Containers: []snapshot.Container{{Name: "app", ID: "c1", Cgroup: podCgroup + "/c1"}},
	}})})

	p.RecordOOMKill(cadvisor.OOMKill{PID: 7, ProcessName: "java", Cgroup: podCgroup + "/c1", LimitCgroup: podCgroup})
	p.RecordOOMKill(cadvisor.OOMKill{PID: 9, ProcessName: "pause", Cgroup: podCgroup + "/sandbox", LimitCgroup: podCgroup})
	p.RecordOOMKill(cadvisor.OOMKill{PID: 99, ProcessName: "postgres", Cgroup: "/system.slice/db.service", LimitCgroup: "/"})

	if got := testutil.ToFloat64(p.metrics.oomKills.WithLabelValues("cgroup")); got != 2 {
		t.Errorf("cgroup kills %v, want 2", got)
	}
	if got := testutil.ToFloat64(p.metrics.oomKills.WithLabelValues("system")); got != 1 {
		t.Errorf("system kills %v, want 1", got)
	}
	if len(logs) != 3 {
		t.Fatalf("logs %q", logs)
	}
	for i, want := range []string{`"pod"="shop/cart" "container"="app"`, `"pod"="shop/cart" "container"=""`, `"msg"="System OOM encountered" "process"="postgres" "pid"=99`} {
		if !strings.Contains(logs[i], want) {
			t.Errorf("log %d %s, want %s", i, logs[i], want)
		}
	}
	if strings.Contains(logs[2], `"pod"`) {
		t.Errorf("a system process attributed to a pod: %s", logs[2])
	}
}
