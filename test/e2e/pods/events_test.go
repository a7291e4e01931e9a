package pods

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// event is what the events API sends: cAdvisor's Event plus the pod.
type event struct {
	cadvisorapi.Event
	Namespace string `json:"namespace"`
	Pod       string `json:"pod"`
	PodUID    string `json:"pod_uid"`
	Container string `json:"container"`
}

func (e event) String() string {
	s := fmt.Sprintf("%s %s %s/%s/%s", e.EventType, e.ContainerName, e.Namespace, e.Pod, e.Container)
	if k := e.EventData.OomKill; k != nil {
		s += fmt.Sprintf(" pid=%d %s", k.Pid, k.ProcessName)
	}
	if d := e.EventData.ContainerDeletion; d != nil {
		s += fmt.Sprintf(" exit=%d", d.ExitCode)
	}
	return s
}

// eventsWait bounds how long the stream may take to show what a step
// caused: a pod's events wait for a tick (1 s) that names them, at most
// 5 s; 30 s leaves room for a loaded machine.
const eventsWait = 30 * time.Second

// watchEvents streams the events of the cgroups below cgroup into the
// returned channel until the test ends.
func watchEvents(t *testing.T, srv *serverproc.Server, cgroup string) <-chan event {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	url := srv.Base + "/api/v2.0/events" + cgroup + "?stream=true&all_events=true&subcontainers=true"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req) // no timeout: the test's context ends it
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	events := make(chan event, 1024)
	go func() {
		defer resp.Body.Close()
		defer close(events)
		dec := json.NewDecoder(resp.Body)
		for {
			var ev event
			if err := dec.Decode(&ev); err != nil {
				return
			}
			events <- ev
		}
	}()
	return events
}

// collectUntil appends streamed events to seen until done accepts them; it
// fails the test, naming what, after eventsWait.
func collectUntil(t *testing.T, events <-chan event, seen *[]event, what string, done func([]event) bool) {
	t.Helper()
	deadline := time.NewTimer(eventsWait)
	defer deadline.Stop()
	for !done(*seen) {
		select {
		case ev, open := <-events:
			if !open {
				t.Fatalf("the stream ended while waiting for %s; seen:\n%s", what, eventList(*seen))
			}
			*seen = append(*seen, ev)
		case <-deadline.C:
			t.Fatalf("no %s within %v; seen:\n%s", what, eventsWait, eventList(*seen))
		}
	}
}

func eventList(events []event) string {
	var b strings.Builder
	for i, e := range events {
		fmt.Fprintf(&b, "  %d %s\n", i, e)
	}
	return b.String()
}

// index is the position of the first event of type typ for cgroup, -1 if
// none.
func index(events []event, typ cadvisorapi.EventType, cgroup string) int {
	for i, e := range events {
		if e.EventType == typ && e.ContainerName == cgroup {
			return i
		}
	}
	return -1
}

func count(events []event, typ cadvisorapi.EventType, cgroup string) int {
	n := 0
	for _, e := range events {
		if e.EventType == typ && e.ContainerName == cgroup {
			n++
		}
	}
	return n
}

// TestEventsOfAPod watches a pod whose container is OOM-killed at start:
// creation, the kill and deletion of each of its cgroups arrive in order,
// named with the pod and container, and the kill once though the kernel
// log and the cgroup's counter both see it.
func TestEventsOfAPod(t *testing.T) {
	c := framework.StartCluster(t, "kss-events")
	srv := serverproc.Start(t, serverBinary, c.ServerArgs()...)
	events := watchEvents(t, srv, c.CgroupRoot)

	pod, err := c.Runtime.RunPod(context.Background(), framework.PodSpec{
		Name: "oom", Namespace: namespace,
		Containers: []framework.ContainerSpec{
			// 256 MiB touched under a 32 MiB limit: killed at once.
			{Name: "hog", Image: framework.WorkImage, Args: []string{"-mem", "256"}, MemoryLimitBytes: 32 << 20},
			{Name: "steady", Image: framework.PauseImage},
		},
	})
	if err != nil {
		t.Fatalf("run the pod: %v", err)
	}
	hog, steady := pod.CgroupPath(pod.Container("hog")), pod.CgroupPath(pod.Container("steady"))
	sandbox := pod.SandboxCgroupPath()
	ctx, cancel := context.WithTimeout(context.Background(), eventsWait)
	defer cancel()
	if code, err := c.Runtime.WaitContainerExited(ctx, pod, "hog"); err != nil || code != 137 {
		t.Fatalf("hog exited with %d, %v; want 137 (SIGKILL from the OOM killer)", code, err)
	}

	var seen []event
	collectUntil(t, events, &seen, "hog's deletion and steady's creation", func(seen []event) bool {
		return index(seen, cadvisorapi.EventContainerDeletion, hog) >= 0 && index(seen, cadvisorapi.EventContainerCreation, steady) >= 0
	})
	if err := c.Runtime.RemovePod(context.Background(), pod); err != nil {
		t.Fatalf("remove the pod: %v", err)
	}
	collectUntil(t, events, &seen, "the pod cgroup's deletion", func(seen []event) bool {
		return index(seen, cadvisorapi.EventContainerDeletion, pod.CgroupParent) >= 0
	})
	t.Logf("events:\n%s", eventList(seen))

	t.Run("order", func(t *testing.T) {
		for _, step := range [][2]int{
			{index(seen, cadvisorapi.EventContainerCreation, pod.CgroupParent), index(seen, cadvisorapi.EventContainerCreation, sandbox)},
			{index(seen, cadvisorapi.EventContainerCreation, sandbox), index(seen, cadvisorapi.EventContainerCreation, hog)},
			{index(seen, cadvisorapi.EventContainerCreation, hog), index(seen, cadvisorapi.EventOom, hog)},
			{index(seen, cadvisorapi.EventOom, hog), index(seen, cadvisorapi.EventOomKill, hog)},
			{index(seen, cadvisorapi.EventOomKill, hog), index(seen, cadvisorapi.EventContainerDeletion, hog)},
			{index(seen, cadvisorapi.EventContainerCreation, steady), index(seen, cadvisorapi.EventContainerDeletion, steady)},
			{index(seen, cadvisorapi.EventContainerDeletion, steady), index(seen, cadvisorapi.EventContainerDeletion, pod.CgroupParent)},
			{index(seen, cadvisorapi.EventContainerDeletion, sandbox), index(seen, cadvisorapi.EventContainerDeletion, pod.CgroupParent)},
		} {
			if step[0] < 0 || step[1] <= step[0] {
				t.Errorf("events %d then %d: missing or out of order", step[0], step[1])
			}
		}
	})

	t.Run("one kill, one oom", func(t *testing.T) {
		if n := count(seen, cadvisorapi.EventOomKill, hog); n != 1 {
			t.Errorf("%d oomKill events for hog, want 1", n)
		}
		if n := count(seen, cadvisorapi.EventOom, hog); n != 1 {
			t.Errorf("%d oom events for hog's cgroup, whose limit was hit; want 1", n)
		}
		kill := seen[index(seen, cadvisorapi.EventOomKill, hog)]
		if k := kill.EventData.OomKill; k == nil || k.Pid <= 0 || k.ProcessName == "" {
			t.Errorf("oomKill %s, want the killed process's pid and name", kill)
		}
		for _, e := range seen {
			if (e.EventType == cadvisorapi.EventOom || e.EventType == cadvisorapi.EventOomKill) && e.ContainerName != hog {
				t.Errorf("%s: an OOM event of another cgroup", e)
			}
		}
	})

	t.Run("identity", func(t *testing.T) {
		containers := map[string]string{hog: "hog", steady: "steady"}
		for _, e := range seen {
			if !strings.HasPrefix(e.ContainerName, pod.CgroupParent) {
				continue
			}
			if e.Namespace != namespace || e.Pod != "oom" || e.PodUID != pod.UID || e.Container != containers[e.ContainerName] {
				t.Errorf("%s: want pod %s/oom (%s), container %q", e, namespace, pod.UID, containers[e.ContainerName])
			}
		}
		if d := seen[index(seen, cadvisorapi.EventContainerDeletion, hog)].EventData.ContainerDeletion; d == nil || (d.ExitCode != 137 && d.ExitCode != -1) {
			t.Errorf("hog's deletion data %+v, want exit code 137, or -1 when the runtime had not reported it", d)
		}
	})

	t.Run("stored", func(t *testing.T) {
		status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+"/api/v1.3/events"+pod.CgroupParent+"?all_events=true&subcontainers=true&max_events=-1", nil, nil)
		if status != http.StatusOK {
			t.Fatalf("query: %d %s", status, body)
		}
		var stored []event
		if err := json.Unmarshal(body, &stored); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []cadvisorapi.EventType{cadvisorapi.EventContainerCreation, cadvisorapi.EventOom, cadvisorapi.EventOomKill, cadvisorapi.EventContainerDeletion} {
			if got, want := count(stored, typ, hog), count(seen, typ, hog); got != want || got != 1 {
				t.Errorf("%d %s events of hog stored, %d streamed; want 1", got, typ, want)
			}
		}
	})
}
