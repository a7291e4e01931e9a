package server

import (
	"errors"
	"fmt"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

// summaryEncoder turns a Summary into a response body.
type summaryEncoder func(*statsapi.Summary) ([]byte, error)

// encodeSummary encodes like the kubelet (snapshot.EncodeSummary).
func encodeSummary(s *statsapi.Summary) ([]byte, error) { return snapshot.EncodeSummary(s) }

// summaryBodies caches the encoded bodies of the newest snapshot a request
// has asked for, so that every request for one snapshot shares one encoding
// per mode, and the snapshot's metrics responses.
type summaryBodies struct {
	encode summaryEncoder
	cache  newestCache[snapshotBodies]
}

// snapshotBodies holds one snapshot's bodies, each encoded on first use,
// and its Prometheus metrics in the formats other than what is cached for
// them elsewhere, built and encoded on first use.
type snapshotBodies struct {
	full            lazyBody
	cpuAndMemory    lazyBody
	resourceMetrics metricsResponses
	cadvisorMetrics metricsResponses
}

var errNoSummary = errors.New("summary missing")

func newSummaryBodies(encode summaryEncoder) *summaryBodies {
	return &summaryBodies{encode: encode}
}

// body returns the encoded full or CPU-and-memory summary of snap: the
// full one as the tick encoded it where it did. The returned slice is
// shared: callers must not modify it.
func (b *summaryBodies) body(snap *snapshot.Snapshot, onlyCPUAndMemory bool) ([]byte, error) {
	if !onlyCPUAndMemory && snap.SummaryBody != nil {
		return snap.SummaryBody, nil
	}
	bodies := b.cache.entry(snap.Generation)
	if onlyCPUAndMemory {
		return bodies.cpuAndMemory.get(b.encoder(snap.CPUAndMemory))
	}
	return bodies.full.get(b.encoder(snap.Summary))
}

// encoder encodes s when called.
func (b *summaryBodies) encoder(s *statsapi.Summary) func() ([]byte, error) {
	return func() ([]byte, error) {
		if s == nil {
			return nil, errNoSummary
		}
		body, err := b.encode(s)
		if err != nil {
			return nil, fmt.Errorf("encode summary: %w", err)
		}
		return body, nil
	}
}
