package browser

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

// A laptop's screen.
const laptopWidth, laptopHeight = 1440, 900

// Waits: the pods' first cpu rates take two ticks of 2 s; a snapshot is
// on the page within half a tick of its publication.
const (
	readyLimit = time.Minute
	matchLimit = 30 * time.Second
)

// pageState is what the page shows, read in one evaluation so that it is
// one render's.
type pageState struct {
	Time       string               `json:"time"`
	Generation string               `json:"generation"`
	RenderMs   string               `json:"renderMs"`
	Node       map[string]pageValue `json:"node"`
	Rows       []pageRow            `json:"rows"`
	Sort       map[string]string    `json:"sort"`
	Count      string               `json:"count"`
}

type pageValue struct {
	Text string `json:"text"`
	V    string `json:"v"`
}

type pageRow struct {
	Kind       string `json:"kind"`
	Pod        string `json:"pod"`
	Container  string `json:"container"`
	CPU        string `json:"cpu"`
	CPUText    string `json:"cpuText"`
	Memory     string `json:"memory"`
	MemoryText string `json:"memoryText"`
	OOMMarks   int    `json:"oomMarks"`
	OOMTag     bool   `json:"oomTag"`
	Sparklines int    `json:"sparklines"`
}

const readPageState = `(() => {
  const value = (id) => { const el = document.getElementById(id); return { text: el.textContent, v: el.dataset.v ?? '' }; };
  const rows = [...document.querySelectorAll('#rows tr')].map((tr) => {
    const cpu = tr.querySelector('td.cpu'), mem = tr.querySelector('td.memory');
    return {
      kind: tr.classList.contains('pod') ? 'pod' : 'container',
      pod: tr.dataset.pod, container: tr.dataset.container || '',
      cpu: cpu.dataset.v, cpuText: cpu.textContent, memory: mem.dataset.v, memoryText: mem.textContent,
      oomMarks: tr.querySelectorAll('.oom-mark').length, oomTag: !!tr.querySelector('.oom-tag'),
      sparklines: tr.querySelectorAll('td.trend svg path.line').length,
    };
  });
  const sort = {};
  for (const th of document.querySelectorAll('th[data-key]')) sort[th.dataset.key] = th.getAttribute('aria-sort');
  const node = {};
  for (const id of ['node-cpu', 'node-memory', 'node-fs', 'node-rx', 'node-tx']) node[id] = value(id);
  return { time: document.body.dataset.time || '', generation: document.body.dataset.generation || '',
    renderMs: document.body.dataset.renderMs || '', node, rows, sort, count: document.getElementById('count').textContent };
})()`

// testPods are real pods whose CPU and memory differ, so that sorting has
// something to order; "oom" gets a process OOM-killed in its "victim"
// container (its "helper" has no limit, so that the pod cgroup has none
// and the kill is counted at the container's).
func testPods() []framework.PodSpec {
	work := func(name string, args ...string) framework.ContainerSpec {
		return framework.ContainerSpec{Name: name, Image: framework.WorkImage, Args: args}
	}
	pause := func(name string) framework.ContainerSpec {
		return framework.ContainerSpec{Name: name, Image: framework.PauseImage}
	}
	victim := pause("victim")
	victim.MemoryLimitBytes = 32 << 20
	return []framework.PodSpec{
		{Name: "checkout", Namespace: "shop", Containers: []framework.ContainerSpec{work("app", "-cpu", "0.3", "-mem", "40", "-net"), pause("proxy")}},
		{Name: "catalog", Namespace: "shop", Containers: []framework.ContainerSpec{work("app", "-cpu", "0.1", "-mem", "120")}},
		{Name: "cache", Namespace: "infra", Containers: []framework.ContainerSpec{work("redis", "-cpu", "0.05", "-mem", "80"), work("exporter", "-mem", "10")}},
		{Name: "oom", Namespace: "infra", Containers: []framework.ContainerSpec{victim, pause("helper")}},
		{Name: "agent", Namespace: "kube-system", HostNetwork: true, Containers: []framework.ContainerSpec{pause("main")}},
	}
}

func TestPageOverRealPods(t *testing.T) {
	c := framework.StartCluster(t, "kss-browser")
	pods := map[string]*framework.Pod{}
	for _, spec := range testPods() {
		pod, err := c.Runtime.RunPod(context.Background(), spec)
		if err != nil {
			t.Fatalf("run pod %s: %v", spec.Name, err)
		}
		pods[spec.Name] = pod
	}
	srv := serverproc.Start(t, serverBinary, c.ServerArgs("--housekeeping-interval=2s", "--stats-retention=2m")...)
	framework.Eventually(t, readyLimit, "every pod and container with a cpu rate", func() bool {
		return allRates(summary(t, srv), len(pods))
	})
	oomVictim := pods["oom"]
	oomKill(t, oomVictim.CgroupPath(oomVictim.Container("victim")))
	framework.Eventually(t, readyLimit, "the OOM kill in /history", func() bool {
		return strings.Contains(get(t, srv, "/history"), `"oomTotal":1`)
	})

	b := startBrowser(t, laptopWidth, laptopHeight)
	b.run(t, "open the page", chromedp.Navigate(srv.Base+"/"), chromedp.WaitVisible(chromedp.CSS(`#rows tr`)))

	t.Run("numbers are the summary's of the same snapshot", func(t *testing.T) {
		state, sum := sameSnapshot(t, b, srv)
		compareNode(t, state, sum)
		compareRows(t, state, sum, true)
		t.Logf("snapshot %s (generation %s): %d rows rendered in %s ms", state.Time, state.Generation, len(state.Rows), state.RenderMs)
	})

	t.Run("OOM kill marked", func(t *testing.T) {
		state := read(t, b)
		for _, row := range state.Rows {
			oomRow := row.Pod == "infra/oom" && (row.Kind == "pod" || row.Container == "victim")
			if oomRow && (row.OOMMarks == 0 || !row.OOMTag) {
				t.Errorf("%s %s %s: %d OOM marks, tag %v; want a mark and the tag", row.Kind, row.Pod, row.Container, row.OOMMarks, row.OOMTag)
			}
			if !oomRow && (row.OOMMarks > 0 || row.OOMTag) {
				t.Errorf("%s %s %s: OOM marks %d, tag %v; want none", row.Kind, row.Pod, row.Container, row.OOMMarks, row.OOMTag)
			}
			if row.Sparklines != 2 {
				t.Errorf("%s %s %s: %d sparklines, want cpu and memory", row.Kind, row.Pod, row.Container, row.Sparklines)
			}
		}
	})

	t.Run("sorting", func(t *testing.T) {
		// A first click sorts numbers largest first and names from A, a
		// second one the other way.
		for _, step := range []struct{ key, order string }{
			{"memory", "descending"}, {"memory", "ascending"}, {"cpu", "descending"}, {"cpu", "ascending"},
			{"name", "ascending"}, {"name", "descending"},
		} {
			b.run(t, "click "+step.key, chromedp.Click(chromedp.CSS(`th[data-key="`+step.key+`"] button`)))
			state := read(t, b)
			if state.Sort[step.key] != step.order {
				t.Errorf("after clicking %s: aria-sort %v, want %s %s", step.key, state.Sort, step.key, step.order)
			}
			checkOrder(t, state, step.key, step.order == "descending")
		}
	})

	t.Run("screenshots", func(t *testing.T) {
		// With half a minute of history, so that the sparklines have a shape.
		framework.Eventually(t, readyLimit, "15 passes of history", func() bool {
			var doc struct{ Passes []int64 }
			return json.Unmarshal([]byte(get(t, srv, "/history")), &doc) == nil && len(doc.Passes) >= 15
		})
		sameSnapshot(t, b, srv)
		b.run(t, "sort by cpu", chromedp.Click(chromedp.CSS(`th[data-key="cpu"] button`)))
		b.screenshot(t, "page-real-pods.png", false)
		b.screenshot(t, "page-real-pods-full.png", true)
	})

	if errs := b.errors.all(); len(errs) > 0 {
		t.Errorf("the page logged errors:\n%s", strings.Join(errs, "\n"))
	}
}

// allRates reports whether the summary lists n pods and every container
// with a memory value, and every container but the pause ones a cpu rate.
func allRates(s *statsapi.Summary, n int) bool {
	if len(s.Pods) != n {
		return false
	}
	for _, pod := range s.Pods {
		if pod.CPU == nil || pod.CPU.UsageNanoCores == nil {
			return false
		}
		for _, c := range pod.Containers {
			if c.CPU == nil || c.CPU.UsageNanoCores == nil || c.Memory == nil || c.Memory.WorkingSetBytes == nil {
				return false
			}
		}
	}
	return true
}

// oomKill has the kernel OOM-kill a host process moved into the memory
// cgroup of a container (limited to 32 MiB): tail buffers 200 MiB of input
// without a newline. Its oom_score_adj makes it the victim, not the
// container's own process.
func oomKill(t *testing.T, cgroup string) {
	t.Helper()
	procs := filepath.Join("/sys/fs/cgroup/memory", cgroup, "cgroup.procs")
	if _, err := os.Stat(procs); err != nil {
		procs = filepath.Join("/sys/fs/cgroup", cgroup, "cgroup.procs") // cgroup v2
	}
	cmd := exec.Command("sh", "-c", "echo 1000 > /proc/self/oom_score_adj; read go; head -c 200M /dev/zero | tail")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if err := os.WriteFile(procs, []byte(strconv.Itoa(cmd.Process.Pid)), 0o644); err != nil {
		t.Fatalf("move the OOM victim into %s: %v", procs, err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("tail was not killed: the container's memory limit did not hold")
		}
	case <-time.After(matchLimit):
		t.Fatal("tail was not OOM-killed within 30 s")
	}
}

// sameSnapshot returns the page's state and /stats/summary at the same
// snapshot: it reads the summary, then waits for the page to show that
// snapshot, again with a newer summary when the page has moved past it.
func sameSnapshot(t *testing.T, b *browser, srv *serverproc.Server) (pageState, *statsapi.Summary) {
	t.Helper()
	deadline := time.Now().Add(matchLimit)
	for time.Now().Before(deadline) {
		sum := summary(t, srv)
		want := wireTime(t, sum)
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait); time.Sleep(100 * time.Millisecond) {
			state := read(t, b)
			if state.Time == want {
				return state, sum
			}
			if state.Time > want { // RFC 3339 in UTC sorts as time
				break
			}
		}
	}
	t.Fatalf("the page never showed the snapshot of a summary within %v (page at %q)", matchLimit, read(t, b).Time)
	return pageState{}, nil
}

func compareNode(t *testing.T, state pageState, sum *statsapi.Summary) {
	t.Helper()
	var rx, tx uint64
	for _, iface := range sum.Node.Network.Interfaces {
		rx += *iface.RxBytes
		tx += *iface.TxBytes
	}
	for id, want := range map[string]struct {
		value *uint64
		text  string
	}{
		"node-cpu":    {sum.Node.CPU.UsageNanoCores, formatCores(sum.Node.CPU.UsageNanoCores)},
		"node-memory": {sum.Node.Memory.WorkingSetBytes, formatBytes(sum.Node.Memory.WorkingSetBytes)},
		"node-fs":     {sum.Node.Fs.UsedBytes, formatBytes(sum.Node.Fs.UsedBytes)},
		"node-rx":     {&rx, formatBytes(&rx)},
		"node-tx":     {&tx, formatBytes(&tx)},
	} {
		got := state.Node[id]
		if got.V != number(want.value) || got.Text != want.text {
			t.Errorf("%s = %q (data-v %q), want %q (%s)", id, got.Text, got.V, want.text, number(want.value))
		}
	}
}

// compareRows checks that every pod of the summary, and with containers
// every container, has its row with the summary's cpu and memory, and no
// other row exists.
func compareRows(t *testing.T, state pageState, sum *statsapi.Summary, containers bool) {
	t.Helper()
	rows := map[string]pageRow{}
	for _, row := range state.Rows {
		rows[row.Pod+"|"+row.Container] = row
	}
	want := 0
	for _, pod := range sum.Pods {
		name := pod.PodRef.Namespace + "/" + pod.PodRef.Name
		checkRow(t, rows, name, "", pod.CPU, pod.Memory)
		want++
		if !containers {
			continue
		}
		for _, c := range pod.Containers {
			checkRow(t, rows, name, c.Name, c.CPU, c.Memory)
		}
		want += len(pod.Containers)
	}
	if len(state.Rows) != want {
		t.Errorf("%d rows, want %d (the summary's pods, containers %v)", len(state.Rows), want, containers)
	}
}

func checkRow(t *testing.T, rows map[string]pageRow, pod, container string, cpu *statsapi.CPUStats, mem *statsapi.MemoryStats) {
	t.Helper()
	row, found := rows[pod+"|"+container]
	if !found {
		t.Errorf("no row for %s %s", pod, container)
		return
	}
	var nanoCores, workingSet *uint64
	if cpu != nil {
		nanoCores = cpu.UsageNanoCores
	}
	if mem != nil {
		workingSet = mem.WorkingSetBytes
	}
	if row.CPU != number(nanoCores) || row.CPUText != formatMillicores(nanoCores) {
		t.Errorf("%s %s cpu = %q (%s), want %q (%s)", pod, container, row.CPUText, row.CPU, formatMillicores(nanoCores), number(nanoCores))
	}
	if row.Memory != number(workingSet) || row.MemoryText != formatBytes(workingSet) {
		t.Errorf("%s %s memory = %q (%s), want %q (%s)", pod, container, row.MemoryText, row.Memory, formatBytes(workingSet), number(workingSet))
	}
}

// checkOrder checks that pods are in order of key, and each pod's
// containers below it in the same order.
func checkOrder(t *testing.T, state pageState, key string, descending bool) {
	t.Helper()
	sortKey := func(r pageRow) string {
		switch key {
		case "cpu":
			return r.CPU
		case "memory":
			return r.Memory
		}
		if r.Kind == "pod" {
			return r.Pod
		}
		return r.Container
	}
	var pods []string
	groups := map[string][]string{}
	for _, row := range state.Rows {
		if row.Kind == "pod" {
			pods = append(pods, sortKey(row))
		} else {
			groups[row.Pod] = append(groups[row.Pod], sortKey(row))
		}
	}
	check := func(what string, keys []string) {
		if !slices.IsSortedFunc(keys, func(a, b string) int { return compareKeys(key, a, b, descending) }) {
			t.Errorf("sorted by %s (descending %v): %s in order %v", key, descending, what, keys)
		}
	}
	check("pods", pods)
	for pod, keys := range groups {
		check("containers of "+pod, keys)
	}
}

// compareKeys orders two data-v values (numbers, "" for none, below every
// number) or names.
func compareKeys(key, a, b string, descending bool) int {
	var c int
	if key == "name" {
		c = strings.Compare(a, b)
	} else {
		c = numberOrMinus1(a) - numberOrMinus1(b)
		c = min(max(c, -1), 1)
	}
	if descending {
		return -c
	}
	return c
}

func numberOrMinus1(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func number(v *uint64) string {
	if v == nil {
		return ""
	}
	return strconv.FormatUint(*v, 10)
}

func read(t *testing.T, b *browser) pageState {
	t.Helper()
	return evaluate[pageState](t, b, readPageState)
}

func get(t *testing.T, srv *serverproc.Server, path string) string {
	t.Helper()
	status, _, body := serverproc.Do(t, http.MethodGet, srv.Base+path, nil, nil)
	if status != http.StatusOK {
		t.Fatalf("GET %s = %d: %s", path, status, body)
	}
	return string(body)
}

func summary(t *testing.T, srv *serverproc.Server) *statsapi.Summary {
	t.Helper()
	var s statsapi.Summary
	if err := json.Unmarshal([]byte(get(t, srv, "/stats/summary")), &s); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	return &s
}

// wireTime is the summary's node.cpu.time as it is written on the wire,
// which the page's data-time repeats.
func wireTime(t *testing.T, s *statsapi.Summary) string {
	t.Helper()
	if s.Node.CPU == nil {
		t.Fatal("the summary has no node cpu")
	}
	data, err := json.Marshal(s.Node.CPU.Time)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Trim(string(data), `"`)
}
