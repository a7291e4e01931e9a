package collector

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/cgroups"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestParseIOStat(t *testing.T) {
	data := "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n" +
		"7:0 rbytes=1 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 cost.usage=11 cost.wait=12 cost.indebt=13 cost.indelay=14\n" +
		"253:0 \n"
	got, err := parseIOStat([]byte(data), nil)
	if err != nil {
		t.Fatal(err)
	}
	rw := cadvisor.IOOps(1<<cadvisor.IORead | 1<<cadvisor.IOWrite)
	want := []cadvisor.DiskIO{
		{Major: 254, Minor: 0, Bytes: [cadvisor.NumIOOps]uint64{4096, 8192}, IOs: [cadvisor.NumIOOps]uint64{1, 2}, HasBytes: rw, HasIOs: rw},
		{Major: 7, Minor: 0, Bytes: [cadvisor.NumIOOps]uint64{1, 0}, IOs: [cadvisor.NumIOOps]uint64{1, 0}, HasBytes: rw, HasIOs: rw,
			Cost: &cadvisor.IOCost{Usage: 11, Wait: 12, Indebt: 13, Indelay: 14}},
		{Major: 253, Minor: 0},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseIOStat\n got %+v\nwant %+v", got, want)
	}
	for _, bad := range []string{"8 rbytes=1\n", "8:x rbytes=1\n", "8:0 rbytes=-1\n", "8:0 wios=1e3\n"} {
		if _, err := parseIOStat([]byte(bad), nil); err == nil {
			t.Errorf("parseIOStat(%q) did not fail", bad)
		}
	}
	if got, err := parseIOStat(nil, nil); err != nil || got != nil {
		t.Errorf("empty io.stat: %v, %v", got, err)
	}
}

func TestParseBlkio(t *testing.T) {
	serviced := "8:0 Read 3\n8:0 Write 4\n8:0 Sync 5\n8:0 Async 2\n8:0 Discard 0\n8:0 Total 7\n" +
		"8:16 Read 1\n8:16 Write 0\n8:16 Sync 1\n8:16 Async 0\n8:16 Discard 0\n8:16 Total 1\nTotal 8\n"
	bytes := "8:16 Read 512\n8:16 Total 512\n8:0 Read 12288\n8:0 Write 16384\n8:0 Total 28672\n8:32 Read 1\nTotal 29185\n"
	devices, err := parseBlkio([]byte(serviced), nil, false)
	if err != nil {
		t.Fatal(err)
	}
	devices, err = parseBlkio([]byte(bytes), devices, true)
	if err != nil {
		t.Fatal(err)
	}
	all := cadvisor.IOOps(1<<cadvisor.IORead | 1<<cadvisor.IOWrite | 1<<cadvisor.IOSync | 1<<cadvisor.IOAsync | 1<<cadvisor.IODiscard | 1<<cadvisor.IOTotal)
	want := []cadvisor.DiskIO{
		{Major: 8, Minor: 0, IOs: [cadvisor.NumIOOps]uint64{3, 4, 5, 2, 0, 7}, HasIOs: all,
			Bytes: [cadvisor.NumIOOps]uint64{12288, 16384, 0, 0, 0, 28672}, HasBytes: 1<<cadvisor.IORead | 1<<cadvisor.IOWrite | 1<<cadvisor.IOTotal},
		{Major: 8, Minor: 16, IOs: [cadvisor.NumIOOps]uint64{1, 0, 1, 0, 0, 1}, HasIOs: all,
			Bytes: [cadvisor.NumIOOps]uint64{512, 0, 0, 0, 0, 512}, HasBytes: 1<<cadvisor.IORead | 1<<cadvisor.IOTotal},
		{Major: 8, Minor: 32, Bytes: [cadvisor.NumIOOps]uint64{1}, HasBytes: 1 << cadvisor.IORead},
	}
	if !reflect.DeepEqual(devices, want) {
		t.Errorf("parseBlkio\n got %+v\nwant %+v", devices, want)
	}
	if got, err := parseBlkio([]byte("Total 0\n"), nil, false); err != nil || got != nil {
		t.Errorf("no devices: %v, %v", got, err)
	}
	for _, bad := range []string{"8:0 Read\n", "8:0 Read x\n", "80 Read 1\n"} {
		if _, err := parseBlkio([]byte(bad), nil, false); err == nil {
			t.Errorf("parseBlkio(%q) did not fail", bad)
		}
	}
}

func TestIOOpString(t *testing.T) {
	for op, want := range map[cadvisor.IOOp]string{cadvisor.IORead: "Read", cadvisor.IOTotal: "Total", cadvisor.NumIOOps: "IOOp(6)"} {
		if got := op.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", op, got, want)
		}
	}
}

// TestV2FixtureDiskIO: the collector reads io.stat of each cgroup that has
// one, and none of a cgroup without it (io controller off).
func TestV2FixtureDiskIO(t *testing.T) {
	cgroups.TestMode = true
	t.Cleanup(func() { cgroups.TestMode = false })
	root := t.TempDir()
	copyTree(t, "testdata/v2", root)
	ioStat := "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
	for _, name := range []string{"/", fixturePod, fixtureContainer} {
		writeTestFile(t, filepath.Join(root, "cgroup", name, "io.stat"), ioStat)
	}
	c, err := New(Config{CgroupMount: filepath.Join(root, "cgroup"), ProcRoot: filepath.Join(root, "proc"),
		SysRoot: filepath.Join(root, "sys"), Tracked: []string{"/kubepods"}, RescanInterval: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	view := c.Housekeep(ctx)
	rw := cadvisor.IOOps(1<<cadvisor.IORead | 1<<cadvisor.IOWrite)
	want := []cadvisor.DiskIO{{Major: 254, Bytes: [cadvisor.NumIOOps]uint64{4096, 8192}, IOs: [cadvisor.NumIOOps]uint64{1, 2}, HasBytes: rw, HasIOs: rw}}
	for _, name := range []string{"/", fixturePod, fixtureContainer} {
		info := view.Get(name)
		if got := info.Latest().DiskIO; !reflect.DeepEqual(got, want) {
			t.Errorf("%s: DiskIO %+v, want %+v", name, got, want)
		}
		if !info.Spec.HasDiskIO {
			t.Errorf("%s: spec without disk I/O; cAdvisor has it for every cgroup2 cgroup", name)
		}
	}
	if got := view.Get(fixtureContainer2).Latest().DiskIO; got != nil {
		t.Errorf("a cgroup without io.stat has DiskIO %+v", got)
	}
	// The io controller turned off between rescans: no data, no error.
	if err := os.Remove(filepath.Join(root, "cgroup", fixtureContainer, "io.stat")); err != nil {
		t.Fatal(err)
	}
	if s := c.Housekeep(ctx).Get(fixtureContainer).Latest(); s.DiskIO != nil {
		t.Errorf("after io.stat went away: DiskIO %+v", s.DiskIO)
	}
}

// TestBlkioCandidates: bfq's files only when a disk uses bfq; the throttle
// layer's recursive files, or its flat ones on kernels without them.
func TestBlkioCandidates(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"blkio.bfq.io_serviced_recursive", "blkio.throttle.io_serviced", "blkio.throttle.io_serviced_recursive"} {
		writeTestFile(t, filepath.Join(dir, f), "Total 0\n")
	}
	names := func(choice blkioChoice) string {
		var out []string
		for i := range int(choice.n) {
			p := choice.files(i)
			out = append(out, filepath.Base(p.serviced)+"+"+filepath.Base(p.serviceBytes))
		}
		return strings.Join(out, ",")
	}
	if got, want := names(blkioCandidates(plainDir(dir), true)),
		"blkio.bfq.io_serviced_recursive+blkio.bfq.io_service_bytes_recursive,"+
			"blkio.throttle.io_serviced_recursive+blkio.throttle.io_service_bytes_recursive"; got != want {
		t.Errorf("with bfq: %s, want %s", got, want)
	}
	if got, want := names(blkioCandidates(plainDir(dir), false)), "blkio.throttle.io_serviced_recursive+blkio.throttle.io_service_bytes_recursive"; got != want {
		t.Errorf("without bfq: %s, want %s", got, want)
	}
	if err := os.Remove(filepath.Join(dir, "blkio.throttle.io_serviced_recursive")); err != nil {
		t.Fatal(err)
	}
	if got, want := names(blkioCandidates(plainDir(dir), false)), "blkio.throttle.io_serviced+blkio.throttle.io_service_bytes"; got != want {
		t.Errorf("old kernel: %s, want %s", got, want)
	}
	if !usesBFQ(map[string]cadvisor.Disk{"8:0": {Scheduler: "mq-deadline"}, "8:16": {Scheduler: "bfq"}}) || usesBFQ(map[string]cadvisor.Disk{"8:0": {Scheduler: "none"}}) {
		t.Error("usesBFQ")
	}
}

// TestReadDiskIOBlkio: the first pair whose io_serviced lists a device is
// used, as the library's BlkioGroup.GetStats does; a pair listing none
// costs one read.
func TestReadDiskIOBlkio(t *testing.T) {
	dir := t.TempDir()
	bfq, throttle := blkioPairs[blkioBFQ], blkioPairs[blkioThrottleRecursive]
	files := map[string]string{
		bfq.serviced: "Total 0\n", bfq.serviceBytes: "8:0 Read 999\nTotal 999\n",
		throttle.serviced: "8:0 Read 2\n8:0 Total 2\nTotal 2\n", throttle.serviceBytes: "8:0 Read 8192\n8:0 Total 8192\nTotal 8192\n",
	}
	for name, content := range files {
		writeTestFile(t, filepath.Join(dir, name), content)
	}
	io := ioFiles{blkio: blkioChoice{pairs: [2]uint8{blkioBFQ, blkioThrottleRecursive}, n: 2}}
	var sample cadvisor.Sample
	buf := make([]byte, 16)
	if err := readDiskIO(&sample, &io, plainDir(dir), &buf); err != nil {
		t.Fatal(err)
	}
	ops := cadvisor.IOOps(1<<cadvisor.IORead | 1<<cadvisor.IOTotal)
	want := []cadvisor.DiskIO{{Major: 8, IOs: [cadvisor.NumIOOps]uint64{2, 0, 0, 0, 0, 2}, Bytes: [cadvisor.NumIOOps]uint64{8192, 0, 0, 0, 0, 8192}, HasIOs: ops, HasBytes: ops}}
	if !reflect.DeepEqual(sample.DiskIO, want) {
		t.Errorf("DiskIO %+v, want %+v", sample.DiskIO, want)
	}
	// A directory that lost its blkio files reads as no data.
	missing := ioFiles{blkio: blkioChoice{pairs: [2]uint8{blkioThrottleRecursive}, n: 1}}
	sample = cadvisor.Sample{}
	if err := readDiskIO(&sample, &missing, plainDir(filepath.Join(dir, "gone")), &buf); err != nil || sample.DiskIO != nil {
		t.Errorf("missing files: %+v, %v", sample.DiskIO, err)
	}
}

func writeTestFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkReadDiskIO is the per-cgroup cost of I/O stats on each tick: one
// io.stat of three devices (v2), or an idle v1 cgroup's io_serviced.
func BenchmarkReadDiskIO(b *testing.B) {
	dir := b.TempDir()
	ioStat := filepath.Join(dir, "io.stat")
	idle := filepath.Join(dir, blkioPairs[blkioThrottleRecursive].serviced)
	if err := os.WriteFile(ioStat, []byte("254:0 rbytes=1219145728 wbytes=3317760 rios=297635 wios=810 dbytes=0 dios=0\n"+
		"253:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n7:0 rbytes=0 wbytes=0 rios=0 wios=0 dbytes=0 dios=0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(idle, []byte("Total 0\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 16<<10)
	for _, bc := range []struct {
		name string
		io   ioFiles
	}{
		{"v2 io.stat", ioFiles{stat: true}},
		{"v1 idle", ioFiles{blkio: blkioChoice{pairs: [2]uint8{blkioThrottleRecursive}, n: 1}}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var s cadvisor.Sample
				if err := readDiskIO(&s, &bc.io, plainDir(dir), &buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
