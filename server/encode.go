package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// summaryEncoder turns a Summary into a response body.
type summaryEncoder func(*statsapi.Summary) ([]byte, error)

// encodeSummary encodes like the kubelet's response.WriteAsJson with
// go-restful's default PrettyPrintResponses: one-space indentation and no
// trailing newline.
func encodeSummary(s *statsapi.Summary) ([]byte, error) {
	return json.MarshalIndent(s, "", " ")
}

// summaryBodies caches the encoded bodies of the newest snapshot a request
// has asked for, so that every request for one snapshot shares one encoding
// per mode. Older snapshots' bodies are dropped when a newer one is asked for.
type summaryBodies struct {
	encode summaryEncoder
	newest atomic.Pointer[snapshotBodies]
}

// snapshotBodies holds one snapshot's bodies, each encoded on first use,
// and its Prometheus metrics, built and encoded on first use.
type snapshotBodies struct {
	snapshot        *provider.Snapshot
	full            lazyBody
	cpuAndMemory    lazyBody
	resourceMetrics metricsResponses
	cadvisorMetrics metricsResponses
}

type lazyBody struct {
	once sync.Once
	body []byte
	err  error
}

var errNoSummary = errors.New("summary missing")

func newSummaryBodies(encode summaryEncoder) *summaryBodies {
	return &summaryBodies{encode: encode}
}

// body returns the encoded full or CPU-and-memory summary of snap. The
// returned slice is shared: callers must not modify it.
func (b *summaryBodies) body(snap *provider.Snapshot, onlyCPUAndMemory bool) ([]byte, error) {
	bodies := b.bodiesFor(snap)
	if onlyCPUAndMemory {
		return bodies.cpuAndMemory.get(b.encode, bodies.snapshot.CPUAndMemory)
	}
	return bodies.full.get(b.encode, bodies.snapshot.Summary)
}

// bodiesFor returns the cache entry for snap's generation. A request still
// holding an older snapshot than the cached one gets a private entry, so that
// a slow request cannot evict the newer bodies.
func (b *summaryBodies) bodiesFor(snap *provider.Snapshot) *snapshotBodies {
	for {
		cached := b.newest.Load()
		switch {
		case cached != nil && cached.snapshot.Generation == snap.Generation:
			return cached
		case cached != nil && cached.snapshot.Generation > snap.Generation:
			return &snapshotBodies{snapshot: snap}
		}
		fresh := &snapshotBodies{snapshot: snap}
		if b.newest.CompareAndSwap(cached, fresh) {
			return fresh
		}
		// Another request installed an entry meanwhile; it may be ours.
	}
}

func (l *lazyBody) get(encode summaryEncoder, s *statsapi.Summary) ([]byte, error) {
	l.once.Do(func() {
		if s == nil {
			l.err = errNoSummary
			return
		}
		body, err := encode(s)
		if err != nil {
			l.err = fmt.Errorf("encode summary: %w", err)
			return
		}
		l.body = body
	})
	return l.body, l.err
}
