package cadvisor

import (
	"fmt"
	"runtime"
	"testing"
	"time"
)

// BenchmarkEventStoreAdd adds events to a full store (each add evicts the
// oldest) with four watches that keep up.
func BenchmarkEventStoreAdd(b *testing.B) {
	s := NewEventStore(EventLimits{DefaultCount: 10000, DefaultAge: time.Hour})
	for range 4 {
		w, err := s.Watch(EventQuery{Types: EventTypes(), Cgroup: "/kubepods", Subcontainers: true})
		if err != nil {
			b.Fatal(err)
		}
		go func() {
			for range w.Events() {
			}
		}()
	}
	b.Cleanup(s.Close)
	cgroups := make([]string, 1000)
	for i := range cgroups {
		cgroups[i] = fmt.Sprintf("/kubepods/burstable/pod%08d-0000-4000-8000-000000000000/%064d", i, i)
	}
	pod := EventPod{Namespace: "default", Name: "web", UID: "0a1b2c3d-0000-4000-8000-000000000001", Container: "app"}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Add(Event{Type: EventContainerCreation, Cgroup: cgroups[i%len(cgroups)], Time: time.Now(), Pod: pod})
	}
}

// BenchmarkEventStoreMemory reports the heap a full store of one type
// holds per event, the cgroup names and identities shared with the
// collector as they are in the server.
func BenchmarkEventStoreMemory(b *testing.B) {
	const n = 10000
	cgroups := make([]string, n)
	for i := range cgroups {
		cgroups[i] = fmt.Sprintf("/kubepods/burstable/pod%08d-0000-4000-8000-000000000000/%064d", i, i)
	}
	pod := EventPod{Namespace: "default", Name: "web", UID: "0a1b2c3d-0000-4000-8000-000000000001", Container: "app"}
	var perEvent float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		s := NewEventStore(EventLimits{DefaultCount: n, DefaultAge: time.Hour})
		for i := range 2 * n {
			s.Add(Event{Type: EventContainerCreation, Cgroup: cgroups[i%n], Time: time.Now(), Pod: pod})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perEvent = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(s)
	}
	b.ReportMetric(perEvent, "B/stored-event")
}
