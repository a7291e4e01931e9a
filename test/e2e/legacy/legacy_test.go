package legacy

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/e2e/framework"
	"github.com/kubelet-stats-server/kubelet-stats-server/test/serverproc"
)

const (
	namespace      = "e2e"
	busyLimitBytes = 100 << 20
)

// twoPods runs e2e/busy (a working container with limits next to an idle
// one, on the pod network) and default/web, for the route without a
// namespace.
func twoPods(t *testing.T, c *framework.Cluster) (busy, web *framework.Pod) {
	t.Helper()
	ctx := context.Background()
	var err error
	busy, err = c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "busy", Namespace: namespace,
		Containers: []framework.ContainerSpec{
			{Name: "work", Image: framework.WorkImage, Args: []string{"-cpu", "0.2", "-mem", "20", "-net"},
				MemoryLimitBytes: busyLimitBytes, CPULimitMilli: 500, CPURequestMilli: 250},
			{Name: "idle", Image: framework.PauseImage},
		},
	})
	if err != nil {
		t.Fatalf("run busy pod: %v", err)
	}
	web, err = c.Runtime.RunPod(ctx, framework.PodSpec{
		Name: "web", Namespace: "default",
		Containers: []framework.ContainerSpec{{Name: "app", Image: framework.PauseImage}},
	})
	if err != nil {
		t.Fatalf("run web pod: %v", err)
	}
	return busy, web
}

func podContainerPath(pod *framework.Pod, container string) string {
	return "/stats/" + pod.Namespace + "/" + pod.Name + "/" + pod.UID + "/" + container
}

// sampleWait bounds the waits for samples: ticks are 1 s apart.
const sampleWait = time.Minute

// waitForSamples polls path until it answers with at least n samples; it
// fails the test after sampleWait.
func waitForSamples(t *testing.T, srv *serverproc.Server, path string, n int) cadvisorapi.ContainerInfo {
	t.Helper()
	var info cadvisorapi.ContainerInfo
	framework.Eventually(t, sampleWait, fmt.Sprintf("%d samples of %s", n, path), func() bool {
		if status, _ := request(t, srv, "POST", path, `{"num_stats":-1}`); status != http.StatusOK {
			return false
		}
		info = get[cadvisorapi.ContainerInfo](t, srv, "POST", path, `{"num_stats":-1}`)
		return len(info.Stats) >= n
	})
	return info
}

func timestamps(stats []*cadvisorapi.ContainerStats) []time.Time {
	out := make([]time.Time, len(stats))
	for i, s := range stats {
		out[i] = s.Timestamp
	}
	return out
}

func oldestFirst(times []time.Time) bool {
	for i := 1; i < len(times); i++ {
		if !times[i].After(times[i-1]) {
			return false
		}
	}
	return true
}

func TestLegacyEndpoints(t *testing.T) {
	c := framework.StartCluster(t, "kss-e2e-legacy")
	busy, web := twoPods(t, c)
	srv := serverproc.Start(t, serverBinary, c.ServerArgs()...)
	work := busy.Container("work")
	workPath := podContainerPath(busy, "work")
	// serverproc keeps 10 s of samples at a 1 s interval.
	waitForSamples(t, srv, workPath, 5)

	t.Run("each route answers with the right cgroup", func(t *testing.T) {
		root := get[cadvisorapi.ContainerInfo](t, srv, "GET", "/stats/", "")
		if root.Name != "/" || len(root.Stats) == 0 || !root.Spec.HasNetwork || root.Stats[len(root.Stats)-1].Network.Name == "" {
			t.Errorf("/stats/ = %q with %d samples, network %v", root.Name, len(root.Stats), root.Spec.HasNetwork)
		}
		info := get[cadvisorapi.ContainerInfo](t, srv, "GET", workPath, "")
		if info.Name != busy.CgroupPath(work) || info.Id != work.ID || !slices.Equal(info.Aliases, []string{work.ID, info.Name}) {
			t.Errorf("%s = %+v, want cgroup %s", workPath, info.ContainerReference, busy.CgroupPath(work))
		}
		if info.Spec.Image != framework.WorkImage || info.Spec.Labels["io.kubernetes.container.name"] != "work" ||
			info.Spec.Labels["io.kubernetes.pod.uid"] != busy.UID || info.Spec.CreationTime.IsZero() {
			t.Errorf("spec = %+v, want the CRI image, labels and creation time", info.Spec)
		}
		wantCPU := cadvisorapi.CpuSpec{Limit: framework.ReportedCPUShares(256), Quota: 50000, Period: 100000, Mask: info.Spec.Cpu.Mask}
		if !info.Spec.HasCpu || info.Spec.Cpu != wantCPU || info.Spec.Cpu.Mask == "" {
			t.Errorf("cpu spec = %+v, want %+v from the container's resources", info.Spec.Cpu, wantCPU)
		}
		if !info.Spec.HasMemory || info.Spec.Memory.Limit != busyLimitBytes {
			t.Errorf("memory spec = %+v, want limit %d", info.Spec.Memory, busyLimitBytes)
		}
		webApp := web.Container("app")
		short := get[cadvisorapi.ContainerInfo](t, srv, "GET", "/stats/web/app", "")
		if short.Name != web.CgroupPath(webApp) || short.Id != webApp.ID {
			t.Errorf("/stats/web/app (namespace default) = %+v, want %s", short.ContainerReference, web.CgroupPath(webApp))
		}
		byName := get[map[string]cadvisorapi.ContainerInfo](t, srv, "POST", "/stats/container",
			`{"containerName":"`+busy.CgroupPath(work)+`"}`)
		if len(byName) != 1 || byName[busy.CgroupPath(work)].Id != work.ID {
			t.Errorf("/stats/container by the container's cgroup = %v", keys(byName))
		}
		for _, tt := range []struct{ path, body string }{
			{"/stats/" + namespace + "/busy/" + web.UID + "/work", ""}, // another pod's uid
			{"/stats/busy/work", ""},                                   // namespace default
			{podContainerPath(busy, "nope"), ""},
			{"/stats/container", `{"containerName":"/no/such/cgroup"}`},
		} {
			if status, body := request(t, srv, "POST", tt.path, tt.body); status != http.StatusNotFound || string(body) != "no matching container" {
				t.Errorf("POST %s %s = %d %q, want 404 no matching container", tt.path, tt.body, status, body)
			}
		}
	})

	t.Run("sample count and order follow num_stats, start and end", func(t *testing.T) {
		all := get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, `{"num_stats":-1}`)
		times := timestamps(all.Stats)
		if len(times) < 5 || len(times) > 12 || !oldestFirst(times) {
			t.Fatalf("num_stats -1 gave samples at %v, want the 10 s retention at 1 s, oldest first", times)
		}
		if got := get[cadvisorapi.ContainerInfo](t, srv, "GET", workPath, ""); len(got.Stats) < 5 || !oldestFirst(timestamps(got.Stats)) {
			t.Errorf("the default (60) gave %d samples, want all of them", len(got.Stats))
		}
		three := timestamps(get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, `{"num_stats":3}`).Stats)
		if len(three) != 3 || !oldestFirst(three) || three[2].Before(times[len(times)-1]) {
			t.Errorf("num_stats 3 gave %v, want the newest 3 oldest first", three)
		}
		if none := get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, `{"num_stats":0}`); len(none.Stats) != 0 {
			t.Errorf("num_stats 0 gave %d samples", len(none.Stats))
		}
		start, end := times[2], times[len(times)-2]
		body := `{"num_stats":-1,"start":"` + start.Format(time.RFC3339Nano) + `","end":"` + end.Format(time.RFC3339Nano) + `"}`
		ranged := timestamps(get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, body).Stats)
		if len(ranged) == 0 || !oldestFirst(ranged) || ranged[0].Before(start) || ranged[len(ranged)-1].After(end) ||
			!ranged[len(ranged)-1].Equal(end) || len(ranged) > len(times)-3 {
			t.Errorf("[%v, %v] gave %v, want the samples in the range, inclusive", start, end, ranged)
		}
		body = `{"num_stats":2,"start":"` + start.Format(time.RFC3339Nano) + `","end":"` + end.Format(time.RFC3339Nano) + `"}`
		if two := timestamps(get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, body).Stats); len(two) != 2 || !two[1].Equal(end) {
			t.Errorf("num_stats 2 within [%v, %v] gave %v, want the newest 2 of the range", start, end, two)
		}
	})

	t.Run("cumulative cpu never decreases and matches the cgroup file", func(t *testing.T) {
		usage := func() uint64 {
			v, err := framework.CPUUsageNanos(busy.CgroupPath(work))
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		before, readAt := usage(), time.Now()
		var info cadvisorapi.ContainerInfo
		framework.Eventually(t, sampleWait, "a sample taken after the cgroup file was read", func() bool {
			info = get[cadvisorapi.ContainerInfo](t, srv, "POST", workPath, `{"num_stats":-1}`)
			return info.Stats[len(info.Stats)-1].Timestamp.After(readAt)
		})
		after := usage()
		for i := 1; i < len(info.Stats); i++ {
			if info.Stats[i].Cpu.Usage.Total < info.Stats[i-1].Cpu.Usage.Total {
				t.Errorf("cpu total went down from %d to %d", info.Stats[i-1].Cpu.Usage.Total, info.Stats[i].Cpu.Usage.Total)
			}
		}
		newest := info.Stats[len(info.Stats)-1]
		if newest.Cpu.Usage.Total < before || newest.Cpu.Usage.Total > after {
			t.Errorf("newest cpu total %d, want between the file's %d (before the sample) and %d (after)", newest.Cpu.Usage.Total, before, after)
		}
		if first := info.Stats[0]; newest.Cpu.Usage.Total-first.Cpu.Usage.Total == 0 {
			t.Error("a container burning 0.2 cores used no cpu across its samples")
		}
		// cgroup v2 has no per-CPU usage (cpuacct.usage_percpu is v1's).
		if (len(newest.Cpu.Usage.PerCpu) == 0) != framework.IsCgroupV2() || newest.Cpu.CFS.Periods == 0 {
			t.Errorf("cpu = %+v, want per-cpu usage on cgroup v1 only and cfs periods under a quota", newest.Cpu)
		}
		if mem := newest.Memory; mem.Usage < 20<<20 || mem.WorkingSet > mem.Usage || mem.RSS < 20<<20 || mem.ContainerData.Pgfault == 0 {
			t.Errorf("memory = %+v, want the 20 MiB the container holds", mem)
		}
		if newest.Processes.ProcessCount < 1 {
			t.Errorf("processes = %+v", newest.Processes)
		}
		if newest.Network.Name != "eth0" || newest.Network.TxBytes == 0 || !info.Spec.HasNetwork {
			t.Errorf("network = %+v, want the pod's eth0 with traffic", newest.Network.InterfaceStats)
		}
	})

	t.Run("subcontainers of a pod cgroup are exactly its containers' cgroups", func(t *testing.T) {
		want := []string{busy.CgroupParent, busy.SandboxCgroupPath()}
		for _, c := range busy.Containers {
			want = append(want, busy.CgroupPath(c))
		}
		sort.Strings(want)
		infos := get[map[string]cadvisorapi.ContainerInfo](t, srv, "POST", "/stats/container",
			`{"containerName":"`+busy.CgroupParent+`","subcontainers":true,"num_stats":1}`)
		if got := keys(infos); !slices.Equal(got, want) {
			t.Errorf("subcontainers of %s = %v, want %v", busy.CgroupParent, got, want)
		}
		var refs []string
		for _, ref := range infos[busy.CgroupParent].Subcontainers {
			refs = append(refs, ref.Name)
		}
		if !slices.Equal(refs, withoutItem(want, busy.CgroupParent)) {
			t.Errorf("subcontainer references of the pod = %v, want %v", refs, withoutItem(want, busy.CgroupParent))
		}
		for name, info := range infos {
			if len(info.Stats) != 1 || info.Name != name {
				t.Errorf("%s: name %q with %d samples, want itself with num_stats 1", name, info.Name, len(info.Stats))
			}
		}
	})

	t.Run("spec matches /proc and /sys", func(t *testing.T) {
		machine := get[cadvisorapi.MachineInfo](t, srv, "GET", "/spec/", "")
		if want := countProcessors(t); machine.NumCores != want {
			t.Errorf("num_cores = %d, /proc/cpuinfo lists %d", machine.NumCores, want)
		}
		if want := memTotalBytes(t); machine.MemoryCapacity != want {
			t.Errorf("memory_capacity = %d, /proc/meminfo says %d", machine.MemoryCapacity, want)
		}
		if want := readTrimmed(t, "/proc/sys/kernel/random/boot_id"); machine.BootID != want {
			t.Errorf("boot_id = %q, want %q", machine.BootID, want)
		}
		if want, err := os.ReadFile("/etc/machine-id"); err == nil && machine.MachineID != strings.TrimSpace(string(want)) {
			t.Errorf("machine_id = %q, want %q", machine.MachineID, want)
		}
		for _, dev := range machine.NetworkDevices {
			if mtu := readTrimmed(t, "/sys/class/net/"+dev.Name+"/mtu"); strconv.FormatInt(dev.Mtu, 10) != mtu {
				t.Errorf("network device %s mtu = %d, /sys says %s", dev.Name, dev.Mtu, mtu)
			}
		}
		for key, disk := range machine.DiskMap {
			if dev := readTrimmed(t, "/sys/block/"+disk.Name+"/dev"); dev != key {
				t.Errorf("disk %s is %s in /sys, keyed %s", disk.Name, dev, key)
			}
		}
	})
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func withoutItem(list []string, item string) []string {
	return slices.DeleteFunc(slices.Clone(list), func(s string) bool { return s == item })
}

func readTrimmed(t *testing.T, file string) string {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

func countProcessors(t *testing.T) int {
	t.Helper()
	n := 0
	for _, line := range strings.Split(readTrimmed(t, "/proc/cpuinfo"), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return n
}

func memTotalBytes(t *testing.T) uint64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}
