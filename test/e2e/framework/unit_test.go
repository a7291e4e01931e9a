package framework

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

func TestSlotNetwork(t *testing.T) {
	seen := map[string]bool{}
	for id := firstSlot; id <= lastSlot; id++ {
		bridge, network, subnet, gw := slotNetwork(id)
		if len(bridge) > 15 {
			t.Errorf("slot %d: bridge name %q longer than IFNAMSIZ-1", id, bridge)
		}
		if !subnet.Contains(gw) || subnet.Bits() != 24 || !subnet.Addr().IsPrivate() {
			t.Errorf("slot %d: gateway %s not in private /24 %s", id, gw, subnet)
		}
		for _, k := range []string{bridge, network, subnet.String()} {
			if seen[k] {
				t.Errorf("slot %d: %q reused", id, k)
			}
			seen[k] = true
		}
	}
	bridge, network, subnet, gw := slotNetwork(7)
	if bridge != "kss-e2e7" || network != "kss-e2e-7" || subnet.String() != "10.217.7.0/24" || gw.String() != "10.217.7.1" {
		t.Errorf("slotNetwork(7) = %s %s %s %s", bridge, network, subnet, gw)
	}
}

func TestOverlapsAny(t *testing.T) {
	subnet := netip.MustParsePrefix("10.217.3.0/24")
	tests := []struct {
		name string
		host map[string][]netip.Prefix
		want bool
	}{
		{"unrelated", map[string][]netip.Prefix{"eth0": {netip.MustParsePrefix("192.0.2.2/24")}}, false},
		{"inside", map[string][]netip.Prefix{"eth1": {netip.MustParsePrefix("10.217.3.9/32")}}, true},
		{"covering", map[string][]netip.Prefix{"eth1": {netip.MustParsePrefix("10.0.0.5/8")}}, true},
		{"own leftover bridge", map[string][]netip.Prefix{"kss-e2e3": {netip.MustParsePrefix("10.217.3.1/24")}}, false},
	}
	for _, tt := range tests {
		if got := overlapsAny(subnet, tt.host, "kss-e2e3"); got != tt.want {
			t.Errorf("%s: overlapsAny = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestCNIConflist(t *testing.T) {
	bridge, network, subnet, gw := slotNetwork(4)
	data, err := cniConflist(&netSlot{bridge: bridge, network: network, subnet: subnet, gateway: gw}, "/w/ipam")
	if err != nil {
		t.Fatal(err)
	}
	var conf struct {
		Name    string `json:"name"`
		Plugins []struct {
			Type      string `json:"type"`
			Bridge    string `json:"bridge"`
			IsGateway *bool  `json:"isGateway"`
			IPMasq    *bool  `json:"ipMasq"`
			IPAM      struct {
				Type    string                `json:"type"`
				DataDir string                `json:"dataDir"`
				Ranges  [][]map[string]string `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(data, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Name != "kss-e2e-4" || len(conf.Plugins) != 2 || conf.Plugins[0].Type != "bridge" || conf.Plugins[1].Type != "loopback" {
		t.Fatalf("unexpected conflist:\n%s", data)
	}
	br := conf.Plugins[0]
	if br.Bridge != "kss-e2e4" || br.IsGateway == nil || *br.IsGateway || br.IPMasq == nil || *br.IPMasq {
		t.Errorf("bridge plugin must use the harness bridge without gateway or masquerade setup:\n%s", data)
	}
	if br.IPAM.Type != "host-local" || br.IPAM.DataDir != "/w/ipam" ||
		br.IPAM.Ranges[0][0]["subnet"] != "10.217.4.0/24" || br.IPAM.Ranges[0][0]["gateway"] != "10.217.4.1" {
		t.Errorf("unexpected ipam:\n%s", data)
	}
}

func TestContainerdConfig(t *testing.T) {
	p := containerdPaths{root: "/w/root", state: "/w/state", socket: "/w/c.sock", runcRoot: "/w/runc", opt: "/w/opt", cniConfDir: "/w/net.d"}
	cfg := containerdConfig(p, PauseImage, 0, false)
	for _, want := range []string{
		`version = 2`,
		`root = "/w/root"`,
		`state = "/w/state"`,
		`address = "/w/c.sock"`,
		`address = "/w/c.sock.ttrpc"`,
		`sandbox_image = "localhost/kss-e2e/pause:latest"`,
		`restrict_oom_score_adj = true`,
		`netns_mounts_under_state_dir = true`,
		`snapshotter = "overlayfs"`,
		`SystemdCgroup = false`,
		`Root = "/w/runc"`,
		`bin_dir = "/usr/lib/cni"`,
		`conf_dir = "/w/net.d"`,
	} {
		if !strings.Contains(cfg, want) {
			t.Errorf("config lacks %q:\n%s", want, cfg)
		}
	}
	if strings.Contains(cfg, "stats_collect_period") {
		t.Error("stats_collect_period set although the default was asked for")
	}
	if !strings.Contains(containerdConfig(p, PauseImage, 2*time.Second, false), "stats_collect_period = 2") {
		t.Error("stats_collect_period = 2 missing")
	}
}

func TestParseMountinfo(t *testing.T) {
	data := []byte(`22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /sys/fs/cgroup/cpu rw,relatime shared:9 - cgroup cgroup rw,cpu
31 22 0:27 / /sys/fs/cgroup/unified rw,relatime shared:10 - cgroup2 cgroup2 rw
40 22 0:4 net:[4026532300] /tmp/kss-e2e-1/state/netns/cni-x rw shared:20 - nsfs nsfs rw
41 22 0:50 / /tmp/with\040space rw - tmpfs tmpfs rw
garbage line
`)
	got := parseMountinfo(data)
	want := []mountEntry{
		{root: "/", mountpoint: "/", fstype: "ext4", options: "rw"},
		{root: "/", mountpoint: "/sys/fs/cgroup/cpu", fstype: "cgroup", options: "rw,cpu"},
		{root: "/", mountpoint: "/sys/fs/cgroup/unified", fstype: "cgroup2", options: "rw"},
		{root: "net:[4026532300]", mountpoint: "/tmp/kss-e2e-1/state/netns/cni-x", fstype: "nsfs", options: "rw"},
		{root: "/", mountpoint: "/tmp/with space", fstype: "tmpfs", options: "rw"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseMountinfo =\n%+v\nwant\n%+v", got, want)
	}
	if mps := cgroupMountpointsFrom(got); !reflect.DeepEqual(mps, []string{"/sys/fs/cgroup/cpu", "/sys/fs/cgroup/unified"}) {
		t.Errorf("cgroupMountpointsFrom = %v", mps)
	}
}

func TestMissingCgroupDirs(t *testing.T) {
	root := t.TempDir()
	hier := root + "/cpu"
	mustMkdir(t, hier+"/kubepods")
	got := missingCgroupDirs([]string{hier}, "/kubepods/burstable/x")
	want := []string{hier + "/kubepods/burstable", hier + "/kubepods/burstable/x"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("missingCgroupDirs = %v, want %v", got, want)
	}
}

func TestNormalizePodSpec(t *testing.T) {
	ok := PodSpec{Name: "p", EmptyDirs: []string{"data"}, Containers: []ContainerSpec{{Name: "c", Mounts: []VolumeMount{{Volume: "data", MountPath: "/data"}}}}}
	got, err := normalizePodSpec(ok, "/kubepods/burstable/")
	if err != nil {
		t.Fatal(err)
	}
	if got.Namespace != "default" || len(got.UID) != 36 || got.CgroupParent != "/kubepods/burstable" || got.Containers[0].Image != WorkImage {
		t.Errorf("defaults not applied: %+v", got)
	}
	if ok.Containers[0].Image != "" {
		t.Error("normalizePodSpec modified its input")
	}

	bad := map[string]PodSpec{
		"no name":          {Containers: []ContainerSpec{{Name: "c"}}},
		"no containers":    {Name: "p"},
		"underscore":       {Name: "a_b", Containers: []ContainerSpec{{Name: "c"}}},
		"duplicate":        {Name: "p", Containers: []ContainerSpec{{Name: "c"}, {Name: "c"}}},
		"undeclared mount": {Name: "p", Containers: []ContainerSpec{{Name: "c", Mounts: []VolumeMount{{Volume: "v", MountPath: "/v"}}}}},
		"relative mount":   {Name: "p", EmptyDirs: []string{"v"}, Containers: []ContainerSpec{{Name: "c", Mounts: []VolumeMount{{Volume: "v", MountPath: "v"}}}}},
		"relative parent":  {Name: "p", CgroupParent: "kubepods", Containers: []ContainerSpec{{Name: "c"}}},
		"host net traffic": {Name: "p", HostNetwork: true, Containers: []ContainerSpec{{Name: "c", Args: []string{"-net"}}}},
	}
	for name, spec := range bad {
		if _, err := normalizePodSpec(spec, DefaultCgroupParent); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSandboxAndContainerConfig(t *testing.T) {
	spec := PodSpec{Name: "p", Namespace: "ns", UID: "u1", Labels: map[string]string{"app": "x"}}
	cfg := sandboxConfig(spec, "/kubepods/burstable/podu1", "/var/log/pods/ns_p_u1")
	if cfg.Hostname != "p" || cfg.Linux.CgroupParent != "/kubepods/burstable/podu1" || cfg.LogDirectory != "/var/log/pods/ns_p_u1" {
		t.Errorf("sandbox config: %v", cfg)
	}
	wantLabels := map[string]string{"app": "x", LabelPodName: "p", LabelPodNamespace: "ns", LabelPodUID: "u1"}
	if !reflect.DeepEqual(cfg.Labels, wantLabels) {
		t.Errorf("labels = %v, want %v", cfg.Labels, wantLabels)
	}
	if cfg.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_POD {
		t.Error("pod network expected")
	}
	spec.HostNetwork = true
	hostCfg := sandboxConfig(spec, "/x", "/y")
	if hostCfg.Hostname != "" || hostCfg.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Errorf("host network sandbox must have NODE network and no hostname: %v", hostCfg)
	}

	pod := &Pod{Name: "p", Namespace: "ns", UID: "u1", HostNetwork: true, Volumes: map[string]string{"data": "/host/data"}}
	c := containerConfig(pod, ContainerSpec{
		Name: "c", Image: WorkImage, MemoryLimitBytes: 100 << 20, CPULimitMilli: 500, CPURequestMilli: 250,
		Mounts: []VolumeMount{{Volume: "data", MountPath: "/data"}},
	}, 3)
	res := c.Linux.Resources
	if c.Metadata.Attempt != 3 || c.LogPath != "c/3.log" || c.Annotations[annotationRestartCount] != "3" {
		t.Errorf("attempt bookkeeping: %v", c)
	}
	if res.CpuQuota != 50000 || res.CpuPeriod != 100000 || res.CpuShares != 256 || res.MemoryLimitInBytes != 100<<20 {
		t.Errorf("resources: %v", res)
	}
	if c.Labels[LabelContainerName] != "c" || c.Labels[LabelPodUID] != "u1" {
		t.Errorf("labels: %v", c.Labels)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].HostPath != "/host/data" || c.Mounts[0].ContainerPath != "/data" {
		t.Errorf("mounts: %v", c.Mounts)
	}
	if c.Linux.SecurityContext.NamespaceOptions.Network != runtimeapi.NamespaceMode_NODE {
		t.Error("containers of host-network pods must use the node network")
	}
	if idle := containerConfig(pod, ContainerSpec{Name: "i"}, 0).Linux.Resources; idle.CpuQuota != 0 || idle.CpuShares != minShares {
		t.Errorf("no limits: %v", idle)
	}
}

func TestParseVerboseInfo(t *testing.T) {
	tests := []struct {
		info      map[string]string
		wantPid   int
		wantNetns string
		wantErr   bool
	}{
		{info: map[string]string{"info": `{"pid": 42, "processStatus": "running"}`}, wantPid: 42},
		{
			info: map[string]string{"info": `{"pid": 7, "runtimeSpec": {"linux": {"namespaces": [
				{"type": "pid"}, {"type": "network", "path": "/w/state/netns/cni-1"}, {"type": "ipc"}]}}}`},
			wantPid: 7, wantNetns: "/w/state/netns/cni-1",
		},
		{info: map[string]string{}, wantErr: true},
		{info: map[string]string{"info": `{"pid": 0}`}, wantPid: 0}, // exited
		{info: map[string]string{"info": `not json`}, wantErr: true},
	}
	for _, tt := range tests {
		pid, netns, err := parseVerboseInfo(tt.info)
		if (err != nil) != tt.wantErr || pid != tt.wantPid || netns != tt.wantNetns {
			t.Errorf("parseVerboseInfo(%v) = %d, %q, %v", tt.info, pid, netns, err)
		}
	}
}

func TestSingleBinaryImage(t *testing.T) {
	img, err := singleBinaryImage("/work", []byte("#!binary"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.OS != "linux" || cfg.Architecture == "" || !reflect.DeepEqual(cfg.Config.Entrypoint, []string{"/work"}) {
		t.Errorf("config: os=%q arch=%q entrypoint=%v", cfg.OS, cfg.Architecture, cfg.Config.Entrypoint)
	}
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers = %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var body bytes.Buffer
		if _, err := io.Copy(&body, tr); err != nil {
			t.Fatal(err)
		}
		files[hdr.Name] = body.String()
		if hdr.Name == "work" && hdr.Mode&0o111 == 0 {
			t.Error("binary is not executable")
		}
	}
	if files["work"] != "#!binary" {
		t.Errorf("layer files = %v", files)
	}
	if _, ok := files["tmp/"]; !ok {
		t.Errorf("layer lacks /tmp: %v", files)
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/x\134y`: `/x\y`, `/trailing\04`: `/trailing\04`} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestMainWithoutRoot: an end-to-end package run without root must fail
// with the reason, never pass without running, unless the skip variable
// asks for a skip. The tests are not run either way.
func TestMainWithoutRoot(t *testing.T) {
	tests := []struct {
		name     string
		skip     string
		wantCode int
		wantText string
	}{
		{name: "asked for", skip: "", wantCode: 1, wantText: "need root"},
		{name: "other value", skip: "yes", wantCode: 1, wantText: skipEnv + "=1"},
		{name: "opted out", skip: "1", wantCode: 0, wantText: "skipping"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ran := false
			code := mainAs(1000, tt.skip, &stderr, func() int { ran = true; return 0 })
			if code != tt.wantCode || ran {
				t.Errorf("exit code %d, tests ran: %v; want %d without running them", code, ran, tt.wantCode)
			}
			if !strings.Contains(stderr.String(), tt.wantText) {
				t.Errorf("stderr %q does not say %q", stderr.String(), tt.wantText)
			}
		})
	}
}

// TestEventuallyEnds: a condition that never holds fails the test at the
// limit, with what was awaited.
func TestEventuallyEnds(t *testing.T) {
	rec := &fatalRecorder{TB: t}
	done := make(chan struct{})
	calls := 0
	go func() {
		defer close(done)
		Eventually(rec, 300*time.Millisecond, "the impossible", func() bool { calls++; return false })
	}()
	<-done
	if !strings.Contains(rec.msg, "gave up after 300ms waiting for the impossible") || calls < 2 {
		t.Errorf("Eventually failed with %q after %d calls", rec.msg, calls)
	}
	ok := 0
	Eventually(t, time.Minute, "the third call", func() bool { ok++; return ok == 3 })
}

// fatalRecorder records Fatalf and ends the goroutine like testing does.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
