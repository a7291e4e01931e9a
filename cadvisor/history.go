package cadvisor

import (
	"encoding/binary"
	"errors"
	"math"
	"time"
)

// A cgroup keeps its newest two samples as Samples (rates need both, and
// every endpoint but the legacy JSON reads only those) and the older ones,
// up to the retention, encoded: each as varints of its differences from the
// sample after it, in a fixed field order. From one tick to the next most
// counters of a cgroup move little or not at all, so a container's sample
// takes about 50 bytes against 530 for a Sample and its pressure stats (and
// 110 encoded whole). The records of a cgroup follow each other in one
// byte slice (a history), each behind its length, oldest first; the newest
// is relative to the sample before the newest, CgroupInfo.Samples[0].

// sample flags, in the encoding's second field.
const (
	hasCPUPSI = 1 << iota
	hasMemoryPSI
	hasIOPSI
	hasNetwork
	hasDiskIO
)

// maxStackRecord sizes the stack buffer a record is encoded into; a larger
// one (many devices or interfaces) spills to the heap.
const maxStackRecord = 512

// recordSize is how many bytes a record takes in a history: its length,
// then itself.
func recordSize(record []byte) int {
	var length [binary.MaxVarintLen64]byte
	return len(binary.AppendUvarint(length[:0], uint64(len(record)))) + len(record)
}

// nextRecord splits the first record off a history; ok is false at its end
// or when it is malformed.
func nextRecord(history []byte) (record, rest []byte, ok bool) {
	n, size := binary.Uvarint(history)
	if size <= 0 || n > uint64(len(history)-size) {
		return nil, nil, false
	}
	end := size + int(n)
	return history[size:end], history[end:], true
}

// splitHistory lists the records of a history, oldest first; nil when it is
// malformed anywhere (each record depends on the ones after it).
func splitHistory(history []byte) [][]byte {
	var records [][]byte
	for len(history) > 0 {
		record, rest, ok := nextRecord(history)
		if !ok {
			return nil
		}
		records = append(records, record)
		history = rest
	}
	return records
}

// countRecords counts the records of a history without decoding them.
func countRecords(history []byte) int {
	n := 0
	for len(history) > 0 {
		_, rest, ok := nextRecord(history)
		if !ok {
			break
		}
		history = rest
		n++
	}
	return n
}

// oldestTime is the timestamp of a history's oldest record: next's (the
// sample after its newest record) plus the offsets of every record to its
// successor. The ring's retention check, without decoding.
func oldestTime(history []byte, next *Sample) time.Time {
	nanos := next.Timestamp.UnixNano()
	for len(history) > 0 {
		record, rest, ok := nextRecord(history)
		if !ok {
			break
		}
		offset, _ := binary.Varint(record)
		nanos += offset
		history = rest
	}
	return time.Unix(0, nanos)
}

// decodeHistory decodes a history whose newest record is relative to next,
// oldest first, into a slice with room for extra more samples. A record
// that does not decode (only a bug could make one) is left out with every
// older one, rather than served wrong.
func decodeHistory(history []byte, next *Sample, extra int) []*Sample {
	records := splitHistory(history)
	out := make([]*Sample, len(records), len(records)+extra)
	for i := len(records) - 1; i >= 0; i-- {
		s, err := decodeSample(records[i], next)
		if err != nil {
			return append(out[:0], out[i+1:]...)
		}
		out[i], next = s, s
	}
	return out
}

// encodeSample appends s encoded relative to ref to dst. The timestamp is
// the difference to ref's; then come the flags and the number of CPUs, a
// bitmap of the fields that differ from ref's among the CPU, memory,
// pressure and process fields, and only those: counters as signed
// differences (zigzag varints, exact in uint64 arithmetic), pressure
// averages as they are. An idle container changes a handful of its 50 or
// so fields from one tick to the next. Devices and interfaces follow, each
// counter as its difference to the same device or interface of ref at the
// same position, or to zero.
func encodeSample(dst []byte, s, ref *Sample) []byte {
	b := binary.AppendVarint(dst, s.Timestamp.UnixNano()-ref.Timestamp.UnixNano())
	var flags uint64
	for i, present := range []bool{s.CPU.PSI != nil, s.Memory.PSI != nil, s.IOPressure != nil, s.Network != nil, len(s.DiskIO) > 0} {
		if present {
			flags |= 1 << i
		}
	}
	c, rc := &s.CPU, &ref.CPU
	b = appendUvarints(b, flags, uint64(len(c.PerCPU)))
	b, w := startSparse(b, sparseFields(flags, len(c.PerCPU)))
	b = w.delta(b, uint64(s.CPUs), uint64(ref.CPUs))
	b = w.deltas(b, c.UsageTotal, rc.UsageTotal, c.UsageUser, rc.UsageUser, c.UsageSystem, rc.UsageSystem,
		c.Periods, rc.Periods, c.ThrottledPeriods, rc.ThrottledPeriods, c.ThrottledTime, rc.ThrottledTime)
	for i, v := range c.PerCPU {
		b = w.delta(b, v, at(rc.PerCPU, i))
	}
	m, rm := &s.Memory, &ref.Memory
	b = w.deltas(b, m.Usage, rm.Usage, m.MaxUsage, rm.MaxUsage, m.WorkingSet, rm.WorkingSet, m.RSS, rm.RSS,
		m.Cache, rm.Cache, m.MappedFile, rm.MappedFile, m.ActiveFile, rm.ActiveFile, m.InactiveFile, rm.InactiveFile,
		m.Failcnt, rm.Failcnt, m.PageFaults, rm.PageFaults, m.MajorPageFaults, rm.MajorPageFaults, m.Limit, rm.Limit,
		m.Reservation, rm.Reservation, m.SwapUsage, rm.SwapUsage, m.SwapLimit, rm.SwapLimit, m.OOMKills, rm.OOMKills)
	refPSI := [...]*PSIStats{rc.PSI, rm.PSI, ref.IOPressure}
	for i, psi := range [...]*PSIStats{c.PSI, m.PSI, s.IOPressure} {
		if psi != nil {
			var r PSIStats
			if refPSI[i] != nil {
				r = *refPSI[i]
			}
			b = w.psi(b, &psi.Some, &r.Some)
			b = w.psi(b, &psi.Full, &r.Full)
		}
	}
	p, rp := &s.Processes, &ref.Processes
	b = w.deltas(b, p.Count, rp.Count, p.ThreadsCount, rp.ThreadsCount, p.ThreadsLimit, rp.ThreadsLimit)
	if len(s.DiskIO) > 0 {
		b = binary.AppendUvarint(b, uint64(len(s.DiskIO)))
		for i := range s.DiskIO {
			r := refDisk(ref, i, &s.DiskIO[i])
			b = appendDiskIO(b, &s.DiskIO[i], &r)
		}
	}
	if s.Network != nil {
		b = binary.AppendUvarint(b, uint64(len(s.Network.Interfaces)))
		for i := range s.Network.Interfaces {
			iface := &s.Network.Interfaces[i]
			r := refInterface(ref, i, iface.Name)
			b = binary.AppendUvarint(b, uint64(len(iface.Name)))
			b = append(b, iface.Name...)
			b = appendDeltas(b, iface.RxBytes, r.RxBytes, iface.RxPackets, r.RxPackets, iface.RxErrors, r.RxErrors,
				iface.RxDropped, r.RxDropped, iface.TxBytes, r.TxBytes, iface.TxPackets, r.TxPackets,
				iface.TxErrors, r.TxErrors, iface.TxDropped, r.TxDropped)
		}
	}
	return b
}

// Fields of the sparse part: the CPU count, six CPU counters and one per
// CPU, 16 of memory, 8 per pressure file (total and three averages for
// "some" and "full"), three of processes.
const (
	fixedSparseFields = 1 + 6 + 16 + 3
	psiSparseFields   = 8
)

// sparseFields is how many fields the sparse part of a sample with these
// flags and per-CPU counters has.
func sparseFields(flags uint64, perCPU int) int {
	n := fixedSparseFields + perCPU
	for i := range 3 {
		if flags&(1<<i) != 0 {
			n += psiSparseFields
		}
	}
	return n
}

// sparseWriter appends a bitmap of fields, then the fields whose code is
// not zero. It holds no slice: its methods take and return the one they
// append to, so that a caller's stack buffer stays on the stack.
type sparseWriter struct {
	bitmap int // where the bitmap starts
	field  int
}

// startSparse appends the zeroed bitmap of fields fields.
func startSparse(b []byte, fields int) ([]byte, sparseWriter) {
	w := sparseWriter{bitmap: len(b)}
	for range (fields + 7) / 8 {
		b = append(b, 0)
	}
	return b, w
}

// code writes the next field; 0 takes no byte.
func (w *sparseWriter) code(b []byte, c uint64) []byte {
	if c != 0 {
		b[w.bitmap+w.field/8] |= 1 << (w.field % 8)
		b = binary.AppendUvarint(b, c)
	}
	w.field++
	return b
}

// delta writes v-ref zigzag-encoded: 0 when v equals ref.
func (w *sparseWriter) delta(b []byte, v, ref uint64) []byte {
	d := int64(v - ref)
	return w.code(b, uint64(d<<1)^uint64(d>>63))
}

// deltas writes delta(v, ref) for each pair (v, ref).
func (w *sparseWriter) deltas(b []byte, pairs ...uint64) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		b = w.delta(b, pairs[i], pairs[i+1])
	}
	return b
}

// psi writes a pressure line: the total relative to ref's, the averages as
// hundredths times two when that is exact (the kernel prints two decimals,
// and float64(n)/100 is the float ParseFloat gives for them), else as 1
// followed by the float's bits.
func (w *sparseWriter) psi(b []byte, d, ref *PSIData) []byte {
	b = w.delta(b, d.Total, ref.Total)
	for _, avg := range [...]float64{d.Avg10, d.Avg60, d.Avg300} {
		hundredths := math.Round(avg * 100)
		if avg >= 0 && hundredths < 1<<52 && hundredths/100 == avg {
			b = w.code(b, uint64(hundredths)<<1)
			continue
		}
		b = w.code(b, 1)
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(avg))
	}
	return b
}

// appendDeltas appends, for each pair (value, reference), the difference
// value-reference as a zigzag varint.
func appendDeltas(b []byte, pairs ...uint64) []byte {
	for i := 0; i+1 < len(pairs); i += 2 {
		b = binary.AppendVarint(b, int64(pairs[i]-pairs[i+1]))
	}
	return b
}

// at is values[i], or 0 past its end.
func at(values []uint64, i int) uint64 {
	if i < len(values) {
		return values[i]
	}
	return 0
}

// refDisk is the device of ref at position i when it is the same device as
// d, else a zero device.
func refDisk(ref *Sample, i int, d *DiskIO) DiskIO {
	if i < len(ref.DiskIO) && ref.DiskIO[i].Major == d.Major && ref.DiskIO[i].Minor == d.Minor {
		return ref.DiskIO[i]
	}
	return DiskIO{}
}

// refInterface is the interface of ref at position i when it has the same
// name, else a zero one.
func refInterface(ref *Sample, i int, name string) InterfaceStats {
	if ref.Network != nil && i < len(ref.Network.Interfaces) && ref.Network.Interfaces[i].Name == name {
		return ref.Network.Interfaces[i]
	}
	return InterfaceStats{}
}

func appendUvarints(b []byte, values ...uint64) []byte {
	for _, v := range values {
		b = binary.AppendUvarint(b, v)
	}
	return b
}

func appendDiskIO(b []byte, d, ref *DiskIO) []byte {
	b = appendUvarints(b, d.Major, d.Minor, uint64(d.HasBytes), uint64(d.HasIOs))
	for op := range d.Bytes {
		b = appendDeltas(b, d.Bytes[op], ref.Bytes[op])
	}
	for op := range d.IOs {
		b = appendDeltas(b, d.IOs[op], ref.IOs[op])
	}
	if d.Cost == nil {
		return binary.AppendUvarint(b, 0)
	}
	var r IOCost
	if ref.Cost != nil {
		r = *ref.Cost
	}
	b = binary.AppendUvarint(b, 1)
	return appendDeltas(b, d.Cost.Usage, r.Usage, d.Cost.Wait, r.Wait, d.Cost.Indebt, r.Indebt, d.Cost.Indelay, r.Indelay)
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

// delta reads a difference to ref written by appendDeltas.
func (d *sampleDecoder) delta(ref uint64) uint64 {
	v, n := binary.Varint(d.data)
	if n <= 0 {
		d.err = errCorruptSample
		d.data = nil
		return 0
	}
	d.data = d.data[n:]
	return ref + uint64(v)
}

// deltas sets each target to its reference plus the next difference; the
// targets hold their references when called.
func (d *sampleDecoder) deltas(targets ...*uint64) {
	for _, t := range targets {
		*t = d.delta(*t)
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

// decodeSample is encodeSample's inverse: data encoded relative to ref.
// The timestamp comes back without a monotonic reading, in the local time
// zone like the clock's.
func decodeSample(data []byte, ref *Sample) (*Sample, error) {
	offset, n := binary.Varint(data)
	if n <= 0 {
		return nil, errCorruptSample
	}
	d := &sampleDecoder{data: data[n:]}
	block := &sampleBlock{}
	s := &block.Sample
	s.Timestamp = time.Unix(0, ref.Timestamp.UnixNano()+offset)
	flags := d.uvarint()
	perCPU := d.uvarint()
	if perCPU > uint64(len(d.data))*8 {
		return nil, errCorruptSample
	}
	r := d.sparse(sparseFields(flags, int(perCPU)))
	s.CPUs = int(r.delta(uint64(ref.CPUs)))
	c, rc := &s.CPU, &ref.CPU
	c.UsageTotal, c.UsageUser, c.UsageSystem = rc.UsageTotal, rc.UsageUser, rc.UsageSystem
	c.Periods, c.ThrottledPeriods, c.ThrottledTime = rc.Periods, rc.ThrottledPeriods, rc.ThrottledTime
	r.deltas(&c.UsageTotal, &c.UsageUser, &c.UsageSystem, &c.Periods, &c.ThrottledPeriods, &c.ThrottledTime)
	if perCPU > 0 {
		c.PerCPU = make([]uint64, perCPU)
		for i := range c.PerCPU {
			c.PerCPU[i] = r.delta(at(rc.PerCPU, i))
		}
	}
	m := &s.Memory
	*m = ref.Memory
	m.PSI = nil
	r.deltas(&m.Usage, &m.MaxUsage, &m.WorkingSet, &m.RSS, &m.Cache, &m.MappedFile, &m.ActiveFile, &m.InactiveFile,
		&m.Failcnt, &m.PageFaults, &m.MajorPageFaults, &m.Limit, &m.Reservation, &m.SwapUsage, &m.SwapLimit, &m.OOMKills)
	refPSI := [...]*PSIStats{rc.PSI, ref.Memory.PSI, ref.IOPressure}
	for i, target := range [...]**PSIStats{&c.PSI, &m.PSI, &s.IOPressure} {
		if flags&(1<<i) != 0 {
			if refPSI[i] != nil {
				block.psi[i] = *refPSI[i]
			}
			r.psi(&block.psi[i].Some)
			r.psi(&block.psi[i].Full)
			*target = &block.psi[i]
		}
	}
	s.Processes = ref.Processes
	r.deltas(&s.Processes.Count, &s.Processes.ThreadsCount, &s.Processes.ThreadsLimit)
	if flags&hasDiskIO != 0 {
		d.diskIO(s, ref)
	}
	if flags&hasNetwork != 0 {
		d.network(s, ref)
	}
	if d.err != nil || len(d.data) != 0 {
		return nil, errCorruptSample
	}
	return s, nil
}

// sparseReader reads what a sparseWriter wrote.
type sparseReader struct {
	d      *sampleDecoder
	bitmap []byte
	field  int
}

// sparse reads the bitmap of a sparse part of fields fields.
func (d *sampleDecoder) sparse(fields int) *sparseReader {
	return &sparseReader{d: d, bitmap: d.bytes(uint64(fields+7) / 8)}
}

// code reads the next field's code, 0 when the bitmap says it was not
// written.
func (r *sparseReader) code() uint64 {
	i := r.field
	r.field++
	if i/8 >= len(r.bitmap) || r.bitmap[i/8]&(1<<(i%8)) == 0 {
		return 0
	}
	return r.d.uvarint()
}

// delta reads a field written by sparseWriter.delta.
func (r *sparseReader) delta(ref uint64) uint64 {
	c := r.code()
	return ref + uint64(int64(c>>1)^-int64(c&1))
}

// deltas sets each target to its reference plus the next difference; the
// targets hold their references when called.
func (r *sparseReader) deltas(targets ...*uint64) {
	for _, t := range targets {
		*t = r.delta(*t)
	}
}

// psi reads a pressure line into out, which holds the reference's.
func (r *sparseReader) psi(out *PSIData) {
	out.Total = r.delta(out.Total)
	for _, avg := range [...]*float64{&out.Avg10, &out.Avg60, &out.Avg300} {
		c := r.code()
		if c&1 == 0 {
			*avg = float64(c>>1) / 100
			continue
		}
		if raw := r.d.bytes(8); raw != nil {
			*avg = math.Float64frombits(binary.LittleEndian.Uint64(raw))
		}
	}
}

func (d *sampleDecoder) diskIO(s, ref *Sample) {
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
		r := refDisk(ref, i, disk)
		for op := range disk.Bytes {
			disk.Bytes[op] = d.delta(r.Bytes[op])
		}
		for op := range disk.IOs {
			disk.IOs[op] = d.delta(r.IOs[op])
		}
		if d.uvarint() == 1 {
			disk.Cost = &IOCost{}
			if r.Cost != nil {
				*disk.Cost = *r.Cost
			}
			d.deltas(&disk.Cost.Usage, &disk.Cost.Wait, &disk.Cost.Indebt, &disk.Cost.Indelay)
		}
	}
}

func (d *sampleDecoder) network(s, ref *Sample) {
	n := d.uvarint()
	if n > uint64(len(d.data)) {
		d.err = errCorruptSample
		return
	}
	s.Network = &NetworkStats{Interfaces: make([]InterfaceStats, n)}
	for i := range s.Network.Interfaces {
		iface := &s.Network.Interfaces[i]
		name := string(d.bytes(d.uvarint()))
		*iface = refInterface(ref, i, name)
		iface.Name = name
		d.deltas(&iface.RxBytes, &iface.RxPackets, &iface.RxErrors, &iface.RxDropped,
			&iface.TxBytes, &iface.TxPackets, &iface.TxErrors, &iface.TxDropped)
	}
}

// sampleBlock is a sample and the pressure stats it points to, allocated
// as one object instead of four.
type sampleBlock struct {
	Sample
	psi [3]PSIStats
}
