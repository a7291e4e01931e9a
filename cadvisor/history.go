package cadvisor

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// A cgroup keeps its newest two samples as Samples (rates need both, and
// every endpoint but the legacy JSON reads only those) and the older ones,
// up to the retention, encoded: unsigned varints in a fixed field order,
// about 130 bytes for a container against 530 for a Sample and its
// pressure stats. At 2,000 cgroups and a 2-minute retention that is the
// difference between 6 and 25 MB of live heap, which the Go collector
// doubles into resident memory.

// sample flags, in the encoding's second field.
const (
	hasCPUPSI = 1 << iota
	hasMemoryPSI
	hasIOPSI
	hasNetwork
	hasDiskIO
)

// encodeSample returns s in its compact form (an exact-size slice).
func encodeSample(s *Sample) []byte {
	var scratch [512]byte
	b := binary.AppendVarint(scratch[:0], s.Timestamp.UnixNano())
	var flags uint64
	for i, present := range []bool{s.CPU.PSI != nil, s.Memory.PSI != nil, s.IOPressure != nil, s.Network != nil, len(s.DiskIO) > 0} {
		if present {
			flags |= 1 << i
		}
	}
	b = appendUvarints(b, flags, uint64(s.cpus))
	c := &s.CPU
	b = appendUvarints(b, c.UsageTotal, c.UsageUser, c.UsageSystem, c.Periods, c.ThrottledPeriods, c.ThrottledTime, uint64(len(c.PerCPU)))
	b = appendUvarints(b, c.PerCPU...)
	m := &s.Memory
	b = appendUvarints(b, m.Usage, m.MaxUsage, m.WorkingSet, m.RSS, m.Cache, m.MappedFile, m.ActiveFile, m.InactiveFile,
		m.Failcnt, m.PageFaults, m.MajorPageFaults, m.Limit, m.Reservation, m.SwapUsage, m.SwapLimit, m.OOMKills)
	for _, psi := range []*PSIStats{c.PSI, m.PSI, s.IOPressure} {
		if psi != nil {
			b = appendPSI(appendPSI(b, &psi.Some), &psi.Full)
		}
	}
	p := &s.Processes
	b = appendUvarints(b, p.Count, p.ThreadsCount, p.ThreadsLimit)
	if len(s.DiskIO) > 0 {
		b = binary.AppendUvarint(b, uint64(len(s.DiskIO)))
		for i := range s.DiskIO {
			b = appendDiskIO(b, &s.DiskIO[i])
		}
	}
	if s.Network != nil {
		b = binary.AppendUvarint(b, uint64(len(s.Network.Interfaces)))
		for i := range s.Network.Interfaces {
			iface := &s.Network.Interfaces[i]
			b = binary.AppendUvarint(b, uint64(len(iface.Name)))
			b = append(b, iface.Name...)
			b = appendUvarints(b, iface.RxBytes, iface.RxPackets, iface.RxErrors, iface.RxDropped,
				iface.TxBytes, iface.TxPackets, iface.TxErrors, iface.TxDropped)
		}
	}
	return append([]byte(nil), b...)
}

func appendUvarints(b []byte, values ...uint64) []byte {
	for _, v := range values {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

// appendPSI writes the averages as hundredths when that is exact (the
// kernel prints two decimals, and float64(n)/100 is the float ParseFloat
// gives for them), as raw bits otherwise.
func appendPSI(b []byte, d *PSIData) []byte {
	b = binary.AppendUvarint(b, d.Total)
	for _, avg := range []float64{d.Avg10, d.Avg60, d.Avg300} {
		hundredths := math.Round(avg * 100)
		if avg >= 0 && hundredths < 1<<52 && hundredths/100 == avg {
			b = binary.AppendUvarint(b, uint64(hundredths)<<1)
			continue
		}
		b = binary.AppendUvarint(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(avg))
	}
	return b
}

func appendDiskIO(b []byte, d *DiskIO) []byte {
	b = appendUvarints(b, d.Major, d.Minor, uint64(d.HasBytes), uint64(d.HasIOs))
	b = appendUvarints(b, d.Bytes[:]...)
	b = appendUvarints(b, d.IOs[:]...)
	if d.Cost == nil {
		return binary.AppendUvarint(b, 0)
	}
	return appendUvarints(b, 1, d.Cost.Usage, d.Cost.Wait, d.Cost.Indebt, d.Cost.Indelay)
}

// encodedTime is the timestamp of an encoded sample, read without decoding
// the rest (the ring's retention check).
func encodedTime(data []byte) time.Time {
	nanos, _ := binary.Varint(data)
	return time.Unix(0, nanos)
}

var errCorruptSample = errors.New("corrupt encoded sample")

// sampleDecoder reads an encoded sample field by field; the first error
// sticks.
type sampleDecoder struct {
	data []byte
	err  error
}

func (d *sampleDecoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.data)
	if n <= 0 {
		d.err = errCorruptSample
		d.data = nil
		return 0
	}
	d.data = d.data[n:]
	return v
}

func (d *sampleDecoder) uvarints(targets ...*uint64) {
	for _, t := range targets {
		*t = d.uvarint()
	}
}

func (d *sampleDecoder) bytes(n uint64) []byte {
	if uint64(len(d.data)) < n {
		d.err = errCorruptSample
		d.data = nil
		return nil
	}
	out := d.data[:n]
	d.data = d.data[n:]
	return out
}

// decodeSample is encodeSample's inverse. The timestamp comes back without
// a monotonic reading, in the local time zone like the clock's.
func decodeSample(data []byte) (*Sample, error) {
	nanos, n := binary.Varint(data)
	if n <= 0 {
		return nil, errCorruptSample
	}
	d := &sampleDecoder{data: data[n:]}
	block := &sampleBlock{}
	s := &block.Sample
	s.Timestamp = time.Unix(0, nanos)
	flags := d.uvarint()
	s.cpus = int(d.uvarint())
	c := &s.CPU
	var perCPU uint64
	d.uvarints(&c.UsageTotal, &c.UsageUser, &c.UsageSystem, &c.Periods, &c.ThrottledPeriods, &c.ThrottledTime, &perCPU)
	if perCPU > uint64(len(d.data)) {
		return nil, errCorruptSample
	}
	if perCPU > 0 {
		c.PerCPU = make([]uint64, perCPU)
		for i := range c.PerCPU {
			c.PerCPU[i] = d.uvarint()
		}
	}
	m := &s.Memory
	d.uvarints(&m.Usage, &m.MaxUsage, &m.WorkingSet, &m.RSS, &m.Cache, &m.MappedFile, &m.ActiveFile, &m.InactiveFile,
		&m.Failcnt, &m.PageFaults, &m.MajorPageFaults, &m.Limit, &m.Reservation, &m.SwapUsage, &m.SwapLimit, &m.OOMKills)
	for i, target := range []**PSIStats{&c.PSI, &m.PSI, &s.IOPressure} {
		if flags&(1<<i) != 0 {
			d.psi(&block.psi[i].Some)
			d.psi(&block.psi[i].Full)
			*target = &block.psi[i]
		}
	}
	d.uvarints(&s.Processes.Count, &s.Processes.ThreadsCount, &s.Processes.ThreadsLimit)
	if flags&hasDiskIO != 0 {
		d.diskIO(s)
	}
	if flags&hasNetwork != 0 {
		d.network(s)
	}
	if d.err != nil || len(d.data) != 0 {
		return nil, errCorruptSample
	}
	return s, nil
}

func (d *sampleDecoder) psi(out *PSIData) {
	out.Total = d.uvarint()
	for _, avg := range []*float64{&out.Avg10, &out.Avg60, &out.Avg300} {
		v := d.uvarint()
		if v&1 == 0 {
			*avg = float64(v>>1) / 100
			continue
		}
		if raw := d.bytes(8); raw != nil {
			*avg = math.Float64frombits(binary.LittleEndian.Uint64(raw))
		}
	}
}

func (d *sampleDecoder) diskIO(s *Sample) {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.err = errCorruptSample
		return
	}
	s.DiskIO = make([]DiskIO, n)
	for i := range s.DiskIO {
		disk := &s.DiskIO[i]
		var hasBytes, hasIOs uint64
		d.uvarints(&disk.Major, &disk.Minor, &hasBytes, &hasIOs)
		disk.HasBytes, disk.HasIOs = IOOps(hasBytes), IOOps(hasIOs)
		for op := range disk.Bytes {
			disk.Bytes[op] = d.uvarint()
		}
		for op := range disk.IOs {
			disk.IOs[op] = d.uvarint()
		}
		if d.uvarint() == 1 {
			disk.Cost = &IOCost{}
			d.uvarints(&disk.Cost.Usage, &disk.Cost.Wait, &disk.Cost.Indebt, &disk.Cost.Indelay)
		}
	}
}

func (d *sampleDecoder) network(s *Sample) {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.err = errCorruptSample
		return
	}
	s.Network = &NetworkStats{Interfaces: make([]InterfaceStats, n)}
	for i := range s.Network.Interfaces {
		iface := &s.Network.Interfaces[i]
		iface.Name = string(d.bytes(d.uvarint()))
		d.uvarints(&iface.RxBytes, &iface.RxPackets, &iface.RxErrors, &iface.RxDropped,
			&iface.TxBytes, &iface.TxPackets, &iface.TxErrors, &iface.TxDropped)
	}
}
