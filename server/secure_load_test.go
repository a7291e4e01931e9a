package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/secure/authtest"
)

const (
	loadConnections = 32
	loadRequests    = 2000
)

// loadClient is one keep-alive connection's worth of client: half present
// a client certificate, half a bearer token.
type loadClient struct {
	http  *http.Client
	token string
}

// TestSecurePortLoad sends rounds of 2,000 authenticated summary requests
// over 32 keep-alive connections (x509 and token authentication, webhook
// authorization) and checks that none fails, that the connections are
// reused, and that neither goroutines nor the heap grow across rounds.
func TestSecurePortLoad(t *testing.T) {
	ca := authtest.NewCA(t, "cluster-ca")
	api := authtest.NewAPIServer(t)
	cfg := webhookAuthConfig(t, api)
	cfg.ClientCAFile = writeCA(t, t.TempDir(), ca)
	// Errors only: recording 6,000 access log lines would be the heap growth.
	serverLog := &logLines{}
	ts := startSecurePortWith(t, Config{Logger: serverLog.loggerAt(0)}, cfg, TLSConfig{})

	var dials atomic.Int64
	clients := make([]loadClient, loadConnections)
	for i := range clients {
		conf := &tls.Config{RootCAs: ts.servingPool}
		if i%2 == 0 {
			cert := ca.ClientCert(t, fmt.Sprintf("scraper-%d", i), "scrapers")
			conf.Certificates = []tls.Certificate{cert}
		} else {
			clients[i].token = fmt.Sprintf("token-%d", i)
			api.SetToken(clients[i].token, authenticationv1.UserInfo{Username: fmt.Sprintf("sa-%d", i)})
		}
		dialer := &net.Dialer{}
		clients[i].http = &http.Client{Transport: &http.Transport{
			TLSClientConfig: conf,
			MaxConnsPerHost: 1,
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				return dialer.DialContext(ctx, network, addr)
			},
		}}
	}
	wantBody, err := encodeSummary(craftedSummary())
	if err != nil {
		t.Fatal(err)
	}

	round := func() time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		var failures atomic.Int64
		for i, c := range clients {
			wg.Go(func() {
				for n := i; n < loadRequests; n += loadConnections {
					if err := loadRequest(ts.URL, c, len(wantBody)); err != nil {
						if failures.Add(1) <= 5 {
							t.Errorf("request %d: %v", n, err)
						}
					}
				}
			})
		}
		wg.Wait()
		if n := failures.Load(); n > 0 {
			t.Fatalf("%d of %d requests failed", n, loadRequests)
		}
		return time.Since(start)
	}

	// Warm up: connections, caches, the encoded body.
	round()
	closeIdle(clients)
	goroutines := settledGoroutines(0)
	heap := settledHeap()
	dials.Store(0)
	logged := len(serverLog.matching(""))

	var elapsed time.Duration
	const rounds = 3
	for range rounds {
		elapsed += round()
	}
	// Keep-alive works if the connections are reused: without it there
	// would be one per request (thousands). A client may redial once in a
	// while on a loaded machine (seen once at load average 10: 33 for 32),
	// which is not what this checks.
	if got := dials.Load(); got < loadConnections || got > 2*loadConnections {
		t.Errorf("%d connections for %d rounds over %d clients, want %d to %d (keep-alive)", got, rounds, loadConnections, loadConnections, 2*loadConnections)
	} else if got != loadConnections {
		t.Logf("%d connections for %d clients: %d redialled", got, loadConnections, got-loadConnections)
	}
	closeIdle(clients)
	after := settledGoroutines(goroutines)
	if after > goroutines {
		t.Errorf("goroutines: %d before the rounds, %d after", goroutines, after)
	}
	heapAfter := settledHeap()
	const slack = 1 << 20
	if heapAfter > heap+slack {
		t.Errorf("heap: %d KiB before %d rounds, %d KiB after", heap>>10, rounds, heapAfter>>10)
	}
	t.Logf("%d requests over %d connections in %v (%.0f req/s); token reviews %d, access reviews %d; goroutines %d -> %d; heap %d KiB -> %d KiB",
		rounds*loadRequests, loadConnections, elapsed, float64(rounds*loadRequests)/elapsed.Seconds(),
		api.TokenReviews(), api.AccessReviews(), goroutines, after, heap>>10, heapAfter>>10)
	if lines := serverLog.matching(""); len(lines) > logged {
		t.Errorf("server logged %d lines during the rounds, first %q", len(lines)-logged, lines[logged])
	}
	if n := api.TokenReviews(); n != loadConnections/2 {
		t.Errorf("token reviews %d, want one per token (%d)", n, loadConnections/2)
	}
	if n := api.AccessReviews(); n != loadConnections {
		t.Errorf("access reviews %d, want one per user (%d)", n, loadConnections)
	}
}

func loadRequest(base string, c loadClient, wantLen int) error {
	req, err := http.NewRequest("GET", base+"/stats/summary", nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || n != int64(wantLen) {
		return fmt.Errorf("status %d, %d bytes; want 200, %d bytes", resp.StatusCode, n, wantLen)
	}
	return nil
}

func closeIdle(clients []loadClient) {
	for _, c := range clients {
		c.http.CloseIdleConnections()
	}
}

// settledGoroutines polls until the goroutine count is at most target (or,
// with target 0, stops changing), since connection goroutines end only
// after the peer's close is read.
func settledGoroutines(target int) int {
	last := -1
	for polls := 0; polls < 200; polls++ {
		n := runtime.NumGoroutine()
		if (target > 0 && n <= target) || (target == 0 && n == last) {
			return n
		}
		last = n
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	return runtime.NumGoroutine()
}

func settledHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
