package server

import (
	"errors"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// limitedTestPort is a limited listener on loopback whose accepted
// connections the test receives.
type limitedTestPort struct {
	addr     string
	accepted chan net.Conn
	log      *logLines
}

func startLimited(t *testing.T, limits portLimits, fds *fdBudget) *limitedTestPort {
	t.Helper()
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &limitedTestPort{addr: inner.Addr().String(), accepted: make(chan net.Conn, 100), log: &logLines{}}
	ln := newLimitedListener(inner, "test", limits, fds, p.log.logger())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			p.accepted <- conn
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(p.accepted)
		for conn := range p.accepted {
			conn.Close()
		}
	})
	return p
}

// dial connects from the loopback address from and reports whether the
// port kept the connection (returning the server's end) or reset it.
func (p *limitedTestPort) dial(t *testing.T, from string) (server net.Conn, kept bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	client, err := d.Dial("tcp", p.addr)
	if errors.Is(err, syscall.ECONNRESET) {
		// Reset before the dial returned.
		return nil, false
	}
	if err != nil {
		t.Fatalf("dial from %s: %v", from, err)
	}
	t.Cleanup(func() { client.Close() })
	closed := make(chan struct{})
	go func() {
		// A kept connection never answers: this read ends at cleanup.
		_, _ = client.Read(make([]byte, 1))
		close(closed)
	}()
	select {
	case conn := <-p.accepted:
		return conn, true
	case <-closed:
		return nil, false
	case <-time.After(10 * time.Second):
		t.Fatalf("connection from %s neither accepted nor closed", from)
		return nil, false
	}
}

// fixedFDs counts open descriptors as whatever the test stores.
type fixedFDs struct {
	open  atomic.Int64
	calls atomic.Int64
}

func (f *fixedFDs) count() (int, error) {
	f.calls.Add(1)
	return int(f.open.Load()), nil
}

func TestListenerCapsThePort(t *testing.T) {
	fds := &fixedFDs{}
	fds.open.Store(10)
	p := startLimited(t, portLimits{maxConns: 3, maxPerClient: 3}, newFDBudget(1000, fds.count))
	var held []net.Conn
	for i := range 3 {
		conn, kept := p.dial(t, "127.0.0.1")
		if !kept {
			t.Fatalf("connection %d refused below the cap", i)
		}
		held = append(held, conn)
	}
	if _, kept := p.dial(t, "127.0.0.2"); kept {
		t.Fatal("a fourth connection was kept; the cap is 3")
	}
	held[0].Close()
	if _, kept := p.dial(t, "127.0.0.2"); !kept {
		t.Error("a closed connection did not give its place back")
	}
	if len(p.log.matching("Refused connections over the limits", `"port full"=1`)) != 1 {
		t.Errorf("the refusal is not logged: %q", p.log.lines)
	}
}

func TestListenerCapsAClient(t *testing.T) {
	fds := &fixedFDs{}
	fds.open.Store(10)
	p := startLimited(t, portLimits{maxConns: 10, maxPerClient: 2}, newFDBudget(1000, fds.count))
	for i := range 2 {
		if _, kept := p.dial(t, "127.0.0.1"); !kept {
			t.Fatalf("connection %d refused below the client's share", i)
		}
	}
	if _, kept := p.dial(t, "127.0.0.1"); kept {
		t.Error("a third connection from one client was kept; its share is 2")
	}
	if _, kept := p.dial(t, "127.0.0.3"); !kept {
		t.Error("another client was refused while the port has room")
	}
}

func TestListenerKeepsTheFDReserve(t *testing.T) {
	fds := &fixedFDs{}
	fds.open.Store(95)
	p := startLimited(t, portLimits{maxConns: 100, maxPerClient: 100, fdReserve: 10}, newFDBudget(100, fds.count))
	if _, kept := p.dial(t, "127.0.0.1"); kept {
		t.Error("kept a connection with 95 of 100 descriptors open and a reserve of 10")
	}
	fds.open.Store(50)
	if _, kept := p.dial(t, "127.0.0.1"); !kept {
		t.Error("refused a connection with 50 of 100 descriptors open and a reserve of 10")
	}
	if len(p.log.matching("file descriptor reserve reached")) != 1 {
		t.Errorf("the refusal is not logged: %q", p.log.lines)
	}
}

// TestFDBudgetCountsOnlyNearTheThreshold: far from the threshold the
// budget trusts its estimate; near it, it counts every time.
func TestFDBudgetCountsOnlyNearTheThreshold(t *testing.T) {
	fds := &fixedFDs{}
	fds.open.Store(20)
	b := newFDBudget(1000, fds.count)
	for i := range 50 {
		if ok, err := b.admit(100); !ok || err != nil {
			t.Fatalf("admit %d: %v, %v", i, ok, err)
		}
	}
	if n := fds.calls.Load(); n != 1 {
		t.Errorf("%d counts for 50 connections far below the threshold, want 1", n)
	}
	b = newFDBudget(100, fds.count)
	fds.calls.Store(0)
	fds.open.Store(86)
	for range 4 {
		if ok, _ := b.admit(10); !ok {
			t.Fatal("refused at 86 of 100 with a reserve of 10")
		}
	}
	if n := fds.calls.Load(); n != 4 {
		t.Errorf("%d counts for 4 connections near the threshold, want 4", n)
	}
	fds.open.Store(91)
	if ok, _ := b.admit(10); ok {
		t.Error("admitted at 91 of 100 with a reserve of 10")
	}
	b.release()
}

func TestCountOpenFDs(t *testing.T) {
	before, err := countOpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, err := countOpenFDs()
	if err != nil {
		t.Fatal(err)
	}
	if after != before+1 {
		t.Errorf("open descriptors %d, then %d after opening one file", before, after)
	}
}

func TestLimitsFor(t *testing.T) {
	tests := []struct {
		fdLimit          int
		serving, healthz portLimits
	}{
		// The usual limits: systemd's 1024 soft limit (Go raises it to the
		// hard one), 65536, a container runtime's 1048576.
		{1024, portLimits{448, 28, 128}, portLimits{64, 16, 32}},
		{65536, portLimits{1024, 64, 128}, portLimits{64, 16, 32}},
		{1 << 20, portLimits{1024, 64, 128}, portLimits{64, 16, 32}},
		{512, portLimits{192, 16, 128}, portLimits{64, 16, 32}},
		{64, portLimits{24, 16, 16}, portLimits{64, 16, 4}},
	}
	for _, tt := range tests {
		serving, healthz := limitsFor(tt.fdLimit)
		if serving != tt.serving || healthz != tt.healthz {
			t.Errorf("limitsFor(%d) = %+v, %+v; want %+v, %+v", tt.fdLimit, serving, healthz, tt.serving, tt.healthz)
		}
	}
}

func TestClientKey(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000":             "127.0.0.1",
		"[::ffff:10.0.0.1]:5000":     "10.0.0.1",
		"[2001:db8:1:2:3:4:5:6]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1]:443": "2001:db8:1:2::/64",
		"[2001:db8:1:3:3:4:5:6]:443": "2001:db8:1:3::/64",
	} {
		tcp, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := clientKey(tcp); got != want {
			t.Errorf("clientKey(%s) = %q, want %q", addr, got, want)
		}
	}
}
