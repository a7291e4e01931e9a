package collector

import "testing"

// BenchmarkRescan is one full rescan of the bench tree (444 cgroups, one
// watch per directory and hierarchy): the safety net discovery runs every
// RescanInterval, including the check of every watch against its directory.
func BenchmarkRescan(b *testing.B) {
	lc := setupBenchTree(b)
	c := newBenchCollector(b, lc, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		rescanNow(c)
	}
	c.discovery.mu.Lock()
	b.ReportMetric(float64(len(c.discovery.watches)), "watches")
	c.discovery.mu.Unlock()
}
