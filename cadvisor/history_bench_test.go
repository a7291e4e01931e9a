package cadvisor

import (
	"testing"
	"time"
)

// BenchmarkSampleHistory is the cost of keeping a sample compact: one
// encode, relative to the sample after it, when it becomes the third
// newest, one decode per legacy request that asks for it.
func BenchmarkSampleHistory(b *testing.B) {
	psi := &PSIStats{Some: PSIData{Total: 123456, Avg10: 0.12}, Full: PSIData{Total: 654321}}
	s := &Sample{
		Timestamp: time.Now(), CPUs: 2,
		CPU: CPUStats{UsageTotal: 123456789012, UsageUser: 60000000000, UsageSystem: 40000000000, PerCPU: []uint64{61728394506, 61728394506}, PSI: psi},
		Memory: MemoryStats{Usage: 1 << 27, MaxUsage: 1 << 28, WorkingSet: 1 << 26, RSS: 1 << 25, Cache: 1 << 25, Limit: 9223372036854771712,
			Reservation: 9223372036854771712, SwapLimit: 9223372036854771712, PageFaults: 123456, PSI: psi},
		IOPressure: psi,
		Processes:  ProcessStats{Count: 1, ThreadsCount: 1},
	}
	// The next tick of a busy container: every counter moved.
	next := *s
	nextPSI := &PSIStats{Some: PSIData{Total: 133456, Avg10: 0.15}, Full: PSIData{Total: 664321}}
	next.Timestamp = s.Timestamp.Add(10 * time.Second)
	next.CPU.UsageTotal += 5e9
	next.CPU.UsageUser += 3e9
	next.CPU.UsageSystem += 2e9
	next.CPU.PerCPU = []uint64{s.CPU.PerCPU[0] + 25e8, s.CPU.PerCPU[1] + 25e8}
	next.CPU.PSI, next.Memory.PSI, next.IOPressure = nextPSI, nextPSI, nextPSI
	next.Memory.Usage += 1 << 20
	next.Memory.WorkingSet += 1 << 20
	next.Memory.PageFaults += 1000
	var data []byte
	b.Run("encode", func(b *testing.B) {
		b.ReportAllocs()
		buf := make([]byte, 0, maxStackRecord)
		for b.Loop() {
			data = encodeSample(buf[:0], s, &next)
		}
		b.ReportMetric(float64(len(data)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := decodeSample(data, &next); err != nil {
				b.Fatal(err)
			}
		}
	})
}
