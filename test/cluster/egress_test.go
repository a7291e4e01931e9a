package cluster

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"
)

// egressProxy is the API server's "cluster" egress: HTTP CONNECT on a unix
// socket (and Prometheus's proxy on TCP), tunnelling exactly the targets in routes to their loopback
// address and refusing every other one, so that the API server's traffic
// to nodes and aggregated API servers stays on this machine.
type egressProxy struct {
	listener net.Listener
	mu       sync.Mutex
	routes   map[string]string
	// conns are the open client connections, closed at cleanup.
	conns map[net.Conn]bool
	// refused counts CONNECTs to targets without a route.
	refused int
}

// startEgressProxy listens on network and address (a unix socket for the
// API server, TCP for Prometheus's proxy_url).
func startEgressProxy(t *testing.T, network, address string) *egressProxy {
	t.Helper()
	listener, err := net.Listen(network, address)
	if err != nil {
		t.Fatalf("egress proxy: %v", err)
	}
	p := &egressProxy{listener: listener, routes: map[string]string{}, conns: map[net.Conn]bool{}}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			p.track(conn, true)
			wg.Go(func() {
				defer p.track(conn, false)
				p.serve(conn)
			})
		}
	})
	t.Cleanup(func() {
		_ = listener.Close()
		p.mu.Lock()
		for conn := range p.conns {
			_ = conn.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *egressProxy) track(conn net.Conn, open bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if open {
		p.conns[conn] = true
	} else {
		delete(p.conns, conn)
	}
}

// route tunnels CONNECTs to target (host:port) to loopback (host:port).
func (p *egressProxy) route(target, loopback string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.routes[target] = loopback
}

func (p *egressProxy) lookup(target string) (string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	to, ok := p.routes[target]
	if !ok {
		p.refused++
	}
	return to, ok
}

func (p *egressProxy) serve(conn net.Conn) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	reader := bufio.NewReader(conn)
	req, err := http.ReadRequest(reader)
	if err != nil {
		return
	}
	if req.Method != http.MethodConnect {
		_, _ = io.WriteString(conn, "HTTP/1.1 405 Method Not Allowed\r\n\r\n")
		return
	}
	to, ok := p.lookup(req.Host)
	if !ok {
		_, _ = io.WriteString(conn, "HTTP/1.1 403 Forbidden\r\n\r\n")
		return
	}
	upstream, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		_, _ = io.WriteString(conn, "HTTP/1.1 502 Bad Gateway\r\n\r\n")
		return
	}
	defer upstream.Close()
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		return
	}
	_ = conn.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() {
		// What the client sent after its CONNECT is in reader's buffer.
		_, _ = io.Copy(upstream, reader)
		closeWrite(upstream)
		done <- struct{}{}
	}()
	go func() {
		_, _ = io.Copy(conn, upstream)
		closeWrite(conn)
		done <- struct{}{}
	}()
	<-done
	<-done
}

// closeWrite passes an end of stream on, keeping the other direction open.
func closeWrite(conn net.Conn) {
	if c, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = c.CloseWrite()
	}
}
