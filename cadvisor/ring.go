package cadvisor

import (
	"encoding/binary"
	"slices"
	"time"
)

// SampleRing keeps the newest samples of one cgroup, bounded in count and
// age: the newest two as Samples, the older ones as a history (history.go).
type SampleRing struct {
	latest, previous *Sample
	// log[start:] is the history of the n samples before previous, at
	// most limit. Records are only ever appended, never written over, so
	// the part a view published stays as it was; when the array is full
	// the live records move to a new one, half as large again, so that
	// one move serves several ticks.
	log      []byte
	start    int
	n, limit int
}

// NewSampleRing keeps capacity samples: two Samples and capacity-2
// encoded ones.
func NewSampleRing(capacity int) SampleRing {
	return SampleRing{limit: max(capacity-2, 0)}
}

// Push adds s as the newest sample and evicts what falls out of capacity
// or retention, but never one of the last two samples: usageNanoCores
// needs both, and with a retention close to the interval a tick that comes
// a little late would otherwise leave one sample and no rate every other
// tick.
func (r *SampleRing) Push(s *Sample, retention time.Duration) {
	if r.previous != nil && r.limit > 0 {
		if r.n == r.limit {
			r.dropOldest()
		}
		r.appendOlder(r.previous, r.latest)
	}
	r.previous, r.latest = r.latest, s
	for r.n > 0 && s.Timestamp.Sub(oldestTime(r.log[r.start:], r.previous)) > retention {
		r.dropOldest()
	}
}

// appendOlder appends s, which next follows, to the history.
func (r *SampleRing) appendOlder(s, next *Sample) {
	var scratch [maxStackRecord]byte
	record := encodeSample(scratch[:0], s, next)
	size := recordSize(record)
	if cap(r.log)-len(r.log) < size {
		live := r.log[r.start:]
		moved := slices.Grow([]byte(nil), (len(live)+size)*3/2)
		r.log, r.start = append(moved, live...), 0
	}
	r.log = binary.AppendUvarint(r.log, uint64(len(record)))
	r.log = append(r.log, record...)
	r.n++
}

func (r *SampleRing) dropOldest() {
	_, rest, _ := nextRecord(r.log[r.start:])
	r.start = len(r.log) - len(rest)
	r.n--
}

// Len is the number of samples kept.
func (r *SampleRing) Len() int {
	switch {
	case r.latest == nil:
		return 0
	case r.previous == nil:
		return 1
	}
	return 2 + r.n
}

// AppendNewest appends the newest two samples (or one), oldest first.
func (r *SampleRing) AppendNewest(dst []*Sample) []*Sample {
	if r.previous != nil {
		dst = append(dst, r.previous)
	}
	if r.latest != nil {
		dst = append(dst, r.latest)
	}
	return dst
}

// History is the history of the samples before the newest two, relative
// to the previous one; nil when there are none. It is never written
// again, so it can be published.
func (r *SampleRing) History() History {
	if r.n == 0 {
		return History{}
	}
	return History{records: r.log[r.start:len(r.log):len(r.log)]}
}
