package main

import (
	"reflect"
	"testing"
)

func TestKeepFile(t *testing.T) {
	for _, tc := range []struct {
		hierarchy, file string
		want            bool
	}{
		{"memory", "memory.stat", true},
		{"memory", "cgroup.procs", true},
		{"memory", "memory.kmem.slabinfo", false},
		{"memory", "notify_on_release", false},
		{"cpu,cpuacct", "cpuacct.usage_percpu", true},
		{"cpu,cpuacct", "cpu.cfs_quota_us", true},
		{"cpuset", "cgroup.procs", false},
		{"cpuset", "cgroup.clone_children", true},
		{"blkio", "blkio.throttle.io_serviced_recursive", true},
		{"unified", "memory.pressure", true},
		{"unified", "cgroup.procs", false},
		{"unified", "cgroup.events", true},
		{"", "io.stat", true},
		{"", "cgroup.kill", false},
		{"", "cgroup.procs", true},
	} {
		if got := keepFile(tc.hierarchy, tc.file); got != tc.want {
			t.Errorf("keepFile(%q, %q) = %v, want %v", tc.hierarchy, tc.file, got, tc.want)
		}
	}
}

// The kubelet's CpuSharesToCpuWeight: 2 -> 1, 1024 -> 39, 262144 -> 10000.
func TestV2Limits(t *testing.T) {
	got := v2Limits(limits{shares: 1024, quotaUs: 25000, memoryBytes: 64 << 20})
	want := map[string]string{"cpu.weight": "39", "cpu.max": "25000 100000", "memory.max": "67108864"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("v2Limits = %v, want %v", got, want)
	}
	for shares, weight := range map[uint64]string{2: "1", 262144: "10000"} {
		if got := v2Limits(limits{shares: shares})["cpu.weight"]; got != weight {
			t.Errorf("cpu.weight for %d shares = %s, want %s", shares, got, weight)
		}
	}
}

func TestParseCaptureText(t *testing.T) {
	text := `A cgroup v2 node in the systemd layout, captured by test/v2vm.
kernel: 6.1.0-48-cloud-amd64
server flags: --cgroup-driver=systemd --cgroup-root=/ --kubelet-cgroups=/system.slice/kubelet.service --system-cgroups=/system.slice
pod root: /kubepods.slice
pod v2vm/idle uid f747 cgroup /kubepods.slice/x
  container main id 9c50 cgroup /kubepods.slice/x/y
  container sidecar id 92d3 cgroup /kubepods.slice/x/z
pod v2vm/busy uid e180 cgroup /kubepods.slice/w
`
	got, err := parseCaptureText([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	want := &vmCapture{
		kernel: "6.1.0-48-cloud-amd64",
		flags: map[string]string{"cgroup-driver": "systemd", "cgroup-root": "/",
			"kubelet-cgroups": "/system.slice/kubelet.service", "system-cgroups": "/system.slice"},
		pods: []vmPod{
			{namespace: "v2vm", name: "idle", uid: "f747", containers: [][2]string{{"main", "9c50"}, {"sidecar", "92d3"}}},
			{namespace: "v2vm", name: "busy", uid: "e180"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCaptureText =\n%+v\nwant\n%+v", got, want)
	}
	if _, err := parseCaptureText([]byte("server flags: --cgroup-root=/custom\n")); err == nil {
		t.Error("a --cgroup-root other than / was accepted")
	}
}
