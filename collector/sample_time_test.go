package collector

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// busyManager is a controllerReader for a cgroup that keeps `cores` CPUs
// busy: its cpu usage is cores × the wall time since start, at the moment
// the CPU controller is read. Memory is read before CPU, as the real
// readers do, and takes memoryDelay (memory.stat under load is slow; on the
// root it sums up the whole machine).
type busyManager struct {
	start       time.Time
	cores       float64
	memoryDelay time.Duration
	cpuReadAt   time.Time
}

func (m *busyManager) readBeforeCPU(*[]byte, *cadvisor.Sample) error {
	time.Sleep(m.memoryDelay)
	return nil
}

func (m *busyManager) readCPU(_ *[]byte, s *cadvisor.Sample) error {
	m.cpuReadAt = time.Now()
	s.CPU.UsageTotal = uint64(m.cores * float64(m.cpuReadAt.Sub(m.start)))
	return nil
}

// newBusyReader returns a collector on a machine with numCores CPUs and the
// state of one cgroup read through m.
func newBusyReader(t *testing.T, numCores int, m *busyManager) (*Collector, *entryState) {
	t.Helper()
	mount := t.TempDir()
	if err := os.Mkdir(filepath.Join(mount, "busy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mount, "busy", "cgroup.procs"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &Collector{mounts: mounts{hierarchy: HierarchyV1}, machine: &cadvisor.Machine{NumCores: numCores}}
	c.mounts.dirs[hMemory] = mount
	st := &entryState{reader: m}
	st.dirs.add(hMemory)
	return c, st
}

func readBusySample(t *testing.T, c *Collector, st *entryState) *cadvisor.Sample {
	t.Helper()
	buf := make([]byte, 4096)
	s, _, err := c.readSample("/busy", st, &buf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestSampleTimestampAtCPURead: a sample's timestamp is taken after its cpu
// usage is read, with no slow read in between.
func TestSampleTimestampAtCPURead(t *testing.T) {
	m := &busyManager{start: time.Now(), cores: 1, memoryDelay: 20 * time.Millisecond}
	c, st := newBusyReader(t, 1, m)
	s := readBusySample(t, c, st)
	if s.Timestamp.Before(m.cpuReadAt) {
		t.Errorf("timestamp %v before the cpu usage was read; the read came %v later",
			s.Timestamp.Format(time.StampMicro), m.cpuReadAt.Sub(s.Timestamp))
	}
}

// TestNanoCoresUnderSlowReads: a slow memory read in the second sample only
// must not inflate the rate of a cgroup that keeps two cores busy. With the
// timestamp taken before the reads, the rate came out at about 4 cores.
func TestNanoCoresUnderSlowReads(t *testing.T) {
	m := &busyManager{start: time.Now(), cores: 2}
	// No CPU count: no clamp, this checks the timestamps alone.
	c, st := newBusyReader(t, 0, m)
	prev := readBusySample(t, c, st)
	time.Sleep(50 * time.Millisecond)
	m.memoryDelay = 50 * time.Millisecond
	cur := readBusySample(t, c, st)
	rate, ok := cadvisor.NanoCores(prev, cur)
	if !ok {
		t.Fatal("no rate")
	}
	if math.Abs(float64(rate)-2e9) > 0.05*2e9 {
		t.Errorf("rate %d nanocores for two busy cores", rate)
	}
}

// TestNanoCoresCappedAtMachine: whatever the counters say, a rate never
// exceeds the machine's CPUs × 1e9.
func TestNanoCoresCappedAtMachine(t *testing.T) {
	// Three cores' worth of usage on a two-core machine: impossible, which
	// is what the clamp is for.
	m := &busyManager{start: time.Now(), cores: 3}
	c, st := newBusyReader(t, 2, m)
	prev := readBusySample(t, c, st)
	time.Sleep(20 * time.Millisecond)
	cur := readBusySample(t, c, st)
	if rate, ok := cadvisor.NanoCores(prev, cur); !ok || rate != 2e9 {
		t.Errorf("NanoCores = %d, %v; want 2e9 (2 cores), true", rate, ok)
	}
}
