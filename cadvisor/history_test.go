package cadvisor

import (
	"math"
	"reflect"
	"testing"
	"time"
)

// TestEncodedSampleRoundTrip: a sample with every field set comes back from
// its compact form, relative to the sample after it, equal: pressure
// averages that are not two-decimal numbers, counters that went down
// (resets) and devices and interfaces that the sample after it lists
// differently or not at all included.
func TestEncodedSampleRoundTrip(t *testing.T) {
	psi := func(base uint64, avg float64) *PSIStats {
		return &PSIStats{Some: PSIData{Total: base, Avg10: avg, Avg60: 0.29, Avg300: 100},
			Full: PSIData{Total: base + 1, Avg10: math.Pi, Avg60: 1e-9, Avg300: 0}}
	}
	full := &Sample{
		Timestamp: time.Unix(1700000000, 123456789),
		CPU: CPUStats{UsageTotal: 1 << 40, UsageUser: 3, UsageSystem: 4, PerCPU: []uint64{5, 1 << 63},
			Periods: 6, ThrottledPeriods: 7, ThrottledTime: 8, PSI: psi(9, 0.5)},
		Memory: MemoryStats{Usage: 10, MaxUsage: 11, WorkingSet: 12, RSS: 13, Cache: 14, MappedFile: 15, ActiveFile: 16,
			InactiveFile: 17, Failcnt: 18, PageFaults: 19, MajorPageFaults: 20, Limit: math.MaxUint64, Reservation: 21,
			SwapUsage: 22, SwapLimit: 23, OOMKills: 24, PSI: psi(25, 12.34)},
		IOPressure: psi(26, 99.99),
		DiskIO: []DiskIO{
			{Major: 8, Minor: 0, Bytes: [NumIOOps]uint64{1, 2, 3, 4, 5, 6}, IOs: [NumIOOps]uint64{7, 8, 9, 10, 11, 12},
				HasBytes: 0x3f, HasIOs: 0x3f},
			{Major: 254, Minor: 1, Bytes: [NumIOOps]uint64{100, 200}, HasBytes: 3, Cost: &IOCost{Usage: 1, Wait: 2, Indebt: 3, Indelay: 4}},
		},
		Processes: ProcessStats{Count: 27, ThreadsCount: 28, ThreadsLimit: 29},
		Network: &NetworkStats{Interfaces: []InterfaceStats{
			{Name: "eth0", RxBytes: 30, RxPackets: 31, RxErrors: 32, RxDropped: 33, TxBytes: 34, TxPackets: 35, TxErrors: 36, TxDropped: 37},
			{Name: "net1"},
		}},
		CPUs: 2,
	}
	// The sample after full: one CPU fewer, counters up and down, the
	// first device and interface the same, the second ones different.
	after := &Sample{
		Timestamp: time.Unix(1700000010, 0),
		CPU:       CPUStats{UsageTotal: 1<<40 + 5e9, UsageUser: 1, PerCPU: []uint64{1 << 62}, PSI: psi(1<<40, 0.25)},
		Memory:    MemoryStats{Usage: math.MaxUint64, Limit: 1 << 30, SwapLimit: 23, OOMKills: 25, PSI: psi(0, 0)},
		DiskIO: []DiskIO{
			{Major: 8, Minor: 0, Bytes: [NumIOOps]uint64{10, 2, 3, 4, 5, 60}, HasBytes: 0x3f, Cost: &IOCost{Usage: 9}},
			{Major: 259, Minor: 0, Bytes: [NumIOOps]uint64{7}},
		},
		Processes: ProcessStats{Count: 26, ThreadsCount: 28},
		Network: &NetworkStats{Interfaces: []InterfaceStats{
			{Name: "eth0", RxBytes: 300, RxPackets: 310, TxBytes: 1},
			{Name: "net2", RxBytes: 5},
		}},
		CPUs: 4,
	}
	bare := &Sample{Timestamp: time.Unix(-5, 0), Network: &NetworkStats{Interfaces: []InterfaceStats{}}}
	empty := &Sample{Timestamp: time.Unix(0, 0)}
	for name, tt := range map[string]struct{ s, ref *Sample }{
		"every field, after itself": {full, full}, "every field, after another": {full, after},
		"every field, after nothing": {full, empty}, "another, after every field": {after, full},
		"bare": {bare, full}, "empty": {empty, empty},
	} {
		got, err := decodeSample(encodeSample(nil, tt.s, tt.ref), tt.ref)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(got, tt.s) {
			t.Errorf("%s: round trip\n got %+v\nwant %+v", name, got, tt.s)
		}
	}
	if n := len(encodeSample(nil, full, empty)); n > 300 {
		t.Errorf("a full sample takes %d bytes encoded", n)
	}
	// What a container keeps: two-decimal pressure, no devices.
	container := &Sample{Timestamp: full.Timestamp, CPU: full.CPU, Memory: full.Memory, Processes: full.Processes, CPUs: 2}
	container.CPU.PSI, container.Memory.PSI = psi(9, 0.5), psi(25, 12.34)
	container.CPU.PSI.Full.Avg10, container.CPU.PSI.Full.Avg60 = 0, 0
	container.Memory.PSI.Full.Avg10, container.Memory.PSI.Full.Avg60 = 0, 0
	if n := len(encodeSample(nil, container, container)); n > 64 {
		t.Errorf("a container's sample takes %d bytes encoded after an equal one", n)
	}
	data := encodeSample(nil, full, after)
	for _, corrupt := range [][]byte{nil, data[:len(data)-1], append(append([]byte(nil), data...), 0)} {
		if _, err := decodeSample(corrupt, after); err == nil {
			t.Errorf("decoding %d of %d bytes: no error", len(corrupt), len(data))
		}
	}
}
