package server

import (
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"
)

const (
	benchPods       = 110 // the kubelet's default maxPods
	benchContainers = 3
)

// newBenchServer serves one snapshot of a synthetic 110-pod, 3-container
// node on loopback.
func newBenchServer(b *testing.B) (*httptest.Server, int) {
	b.Helper()
	src := &fakeSource{}
	full := syntheticSummary(benchPods, benchContainers)
	src.publish(1, full, full)
	srv := httptest.NewServer(NewReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{}))
	b.Cleanup(srv.Close)
	body, err := encodeSummary(full)
	if err != nil {
		b.Fatal(err)
	}
	return srv, len(body)
}

func fetch(b *testing.B, client *http.Client, url string, wantLen int) {
	resp, err := client.Get(url)
	if err != nil {
		b.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || n != int64(wantLen) {
		b.Fatalf("GET %s: %s, %d bytes, %v", url, resp.Status, n, err)
	}
}

// BenchmarkSummaryCached is one scrape of /stats/summary over a kept-alive
// loopback connection, client included, once the snapshot is encoded.
func BenchmarkSummaryCached(b *testing.B) {
	srv, size := newBenchServer(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
	url := srv.URL + "/stats/summary"
	fetch(b, client, url, size) // encode once, open the connection
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		fetch(b, client, url, size)
	}
}

// BenchmarkSummaryCachedParallel is BenchmarkSummaryCached with GOMAXPROCS
// clients at once, each on its own kept-alive connection.
func BenchmarkSummaryCachedParallel(b *testing.B) {
	srv, size := newBenchServer(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	url := srv.URL + "/stats/summary"
	fetch(b, client, url, size)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			fetch(b, client, url, size)
		}
	})
}

// BenchmarkSummaryCachedHandler is the server's share of a cached scrape:
// the handler chain alone, no socket and no client.
func BenchmarkSummaryCachedHandler(b *testing.B) {
	src := &fakeSource{}
	full := syntheticSummary(benchPods, benchContainers)
	src.publish(1, full, full)
	h := NewReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{})
	req := httptest.NewRequest("GET", "/stats/summary", nil)
	h.ServeHTTP(discardWriter{header: http.Header{}}, req)
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(discardWriter{header: http.Header{}}, req)
	}
}

// BenchmarkEncodeSummary is the one-time encoding of a synthetic 110-pod
// summary, paid once per housekeeping tick and mode.
func BenchmarkEncodeSummary(b *testing.B) {
	full := syntheticSummary(benchPods, benchContainers)
	body, err := encodeSummary(full)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := encodeSummary(full); err != nil {
			b.Fatal(err)
		}
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ header http.Header }

func (w discardWriter) Header() http.Header       { return w.header }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

// cpuMeter reports the process's CPU time (user+system) per op next to the
// wall time: on a shared machine wall time swings with other load, CPU time
// much less.
type cpuMeter struct {
	b     *testing.B
	start time.Duration
}

func startCPUMeter(b *testing.B) cpuMeter {
	b.ResetTimer()
	return cpuMeter{b: b, start: processCPUTime()}
}

func (m cpuMeter) report() {
	m.b.ReportMetric(float64((processCPUTime()-m.start).Nanoseconds())/float64(m.b.N), "cpu-ns/op")
}

func processCPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
