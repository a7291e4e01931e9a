package server

import (
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"k8s.io/klog/v2"
)

// The caps on connections, derived from the process's open-file limit
// (RLIMIT_NOFILE) at start; docs/secure-port.md explains the choice.
const (
	// maxFDReserve is how many file descriptors the serving ports leave to
	// the rest of the process (the collector's cgroup files, its inotify and
	// /dev/kmsg descriptors, the runtime and API server clients, the healthz
	// port), a quarter of the limit when that is less.
	maxFDReserve = 128
	// maxConnsPerPort bounds a serving port's connections whatever the
	// limit: each costs a goroutine and buffers (tens of KiB with TLS).
	maxConnsPerPort = 1024
	// clientShare is the part of a port one client address may hold:
	// 1/clientShare of the port's connections, at least minConnsPerClient.
	clientShare       = 16
	minConnsPerClient = 16
	// The healthz port answers one prober at a time; these are generous.
	healthzMaxConns          = 64
	healthzMaxConnsPerClient = 16
	// fdRecountInterval is how stale the count of descriptors other than
	// connections may grow before it is taken again.
	fdRecountInterval = time.Second
	// refusalLogInterval spaces the log lines about refused connections.
	refusalLogInterval = 10 * time.Second
)

// Listeners limits the connections of a process's ports. Every port holds at
// most its own cap of connections, a client address at most a share of it,
// and no port takes a connection that would leave fewer than a reserve of
// the process's file descriptors free: serving can never starve sampling,
// and a flood on one port leaves the others answering. A refused connection
// is reset at once, without a response.
type Listeners struct {
	logger klog.Logger
	fds    *fdBudget
	// serving are the limits of the secure and read-only ports, healthz
	// those of the healthz port, which may go further into the reserve.
	serving, healthz portLimits
}

// portLimits are the caps of one port.
type portLimits struct {
	maxConns, maxPerClient int
	// fdReserve is how many descriptors must stay free after a new
	// connection.
	fdReserve int
}

// NewListeners derives the limits from the process's RLIMIT_NOFILE.
func NewListeners(logger klog.Logger) (*Listeners, error) {
	var rlimit unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rlimit); err != nil {
		return nil, fmt.Errorf("read the open-file limit (RLIMIT_NOFILE): %w", err)
	}
	limit := int(min(rlimit.Cur, 1<<30))
	l := &Listeners{logger: logger, fds: newFDBudget(limit, countOpenFDs)}
	l.serving, l.healthz = limitsFor(limit)
	logger.Info("Connection limits", "openFileLimit", limit, "fdReserve", l.serving.fdReserve,
		"maxConnsPerPort", l.serving.maxConns, "maxConnsPerClient", l.serving.maxPerClient)
	return l, nil
}

// limitsFor derives the serving and healthz ports' limits from the
// open-file limit.
func limitsFor(fdLimit int) (serving, healthz portLimits) {
	reserve := min(maxFDReserve, fdLimit/4)
	// Two serving ports each at their cap still leave the reserve.
	perPort := max(1, min(maxConnsPerPort, (fdLimit-reserve)/2))
	serving = portLimits{maxConns: perPort, maxPerClient: max(minConnsPerClient, perPort/clientShare), fdReserve: reserve}
	healthz = portLimits{maxConns: healthzMaxConns, maxPerClient: healthzMaxConnsPerClient, fdReserve: max(1, reserve/4)}
	return serving, healthz
}

// Serving limits ln as the secure or read-only port called name.
func (l *Listeners) Serving(ln net.Listener, name string) net.Listener {
	return newLimitedListener(ln, name, l.serving, l.fds, l.logger)
}

// Healthz limits ln as the healthz port, which may use a part of the
// serving ports' reserve, so that it answers while they are full.
func (l *Listeners) Healthz(ln net.Listener) net.Listener {
	return newLimitedListener(ln, "healthz", l.healthz, l.fds, l.logger)
}

// fdBudget tells whether the process may open one more connection. Counting
// /proc/self/fd costs a directory read, so it is done only when the cheap
// estimate (connections held now plus the other descriptors at the last
// count) comes near a threshold, or the last count is stale.
type fdBudget struct {
	limit int
	count func() (int, error)
	conns atomic.Int64

	mu      sync.Mutex
	others  int
	counted time.Time
}

func newFDBudget(limit int, count func() (int, error)) *fdBudget {
	return &fdBudget{limit: limit, count: count}
}

// admit reports whether a connection just accepted (so already counted
// among the open descriptors) may be kept with reserve descriptors free,
// and if so counts it as held. An error counting is no reason to refuse.
func (b *fdBudget) admit(reserve int) (bool, error) {
	threshold := b.limit - reserve
	b.mu.Lock()
	defer b.mu.Unlock()
	estimate := int(b.conns.Load()) + 1 + b.others
	if estimate+reserve/2 < threshold && time.Since(b.counted) < fdRecountInterval {
		b.conns.Add(1)
		return true, nil
	}
	open, err := b.count()
	if err != nil {
		b.conns.Add(1)
		return true, err
	}
	b.others, b.counted = max(0, open-int(b.conns.Load())-1), time.Now()
	if open > threshold {
		return false, nil
	}
	b.conns.Add(1)
	return true, nil
}

// release forgets a held connection.
func (b *fdBudget) release() { b.conns.Add(-1) }

// countOpenFDs counts the process's open file descriptors.
func countOpenFDs() (int, error) {
	dir, err := os.Open("/proc/self/fd")
	if err != nil {
		return 0, fmt.Errorf("count open files: %w", err)
	}
	defer dir.Close()
	n := 0
	for {
		names, err := dir.Readdirnames(1024)
		n += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	// Less the descriptor reading the directory.
	return n - 1, nil
}

// limitedListener enforces one port's limits.
type limitedListener struct {
	net.Listener
	name    string
	limits  portLimits
	fds     *fdBudget
	refused *refusalLog

	mu        sync.Mutex
	conns     int
	perClient map[string]int
}

func newLimitedListener(ln net.Listener, name string, limits portLimits, fds *fdBudget, logger klog.Logger) *limitedListener {
	return &limitedListener{
		Listener: ln, name: name, limits: limits, fds: fds,
		refused:   &refusalLog{logger: logger, port: name},
		perClient: map[string]int{},
	}
}

// Accept returns the next connection within the limits, resetting those
// beyond them.
func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		conn, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		client := clientKey(conn.RemoteAddr())
		if reason := l.admit(client); reason != "" {
			reset(conn)
			l.refused.add(reason)
			continue
		}
		return &limitedConn{Conn: conn, release: func() { l.release(client) }}, nil
	}
}

// admit takes a place for a connection from client, or says why there is
// none.
func (l *limitedListener) admit(client string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.conns >= l.limits.maxConns:
		return "port full"
	case l.perClient[client] >= l.limits.maxPerClient:
		return "client's share full"
	}
	ok, err := l.fds.admit(l.limits.fdReserve)
	if err != nil {
		l.refused.logger.Error(err, "Cannot count open files; accepting the connection", "port", l.name)
	}
	if !ok {
		return "file descriptor reserve reached"
	}
	l.conns++
	l.perClient[client]++
	return ""
}

func (l *limitedListener) release(client string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conns--
	if l.perClient[client]--; l.perClient[client] <= 0 {
		delete(l.perClient, client)
	}
	l.fds.release()
}

// clientKey is what a client's share is counted by: its IPv4 address, or
// its IPv6 /64, which one host commonly holds whole.
func clientKey(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return addr.String()
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// reset closes a refused connection with a TCP reset: the client learns at
// once, and no TIME_WAIT state is left behind.
func reset(conn net.Conn) {
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = conn.Close()
}

// limitedConn gives its place back once, when it is first closed.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

// CloseWrite half-closes TCP, which net/http does before closing a
// connection whose request it did not read whole, so that the client reads
// the response before a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// refusalLog logs refused connections: a reason at once the first time it
// comes up in a refusalLogInterval, otherwise at most one line per
// interval, each with how many were refused why since the line before.
type refusalLog struct {
	logger klog.Logger
	port   string

	mu     sync.Mutex
	counts map[string]int
	// seen are the reasons logged in the current interval.
	seen map[string]bool
	last time.Time
}

func (r *refusalLog) add(reason string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.counts == nil || time.Since(r.last) >= refusalLogInterval {
		if r.counts == nil {
			r.counts = map[string]int{}
		}
		r.seen = map[string]bool{}
	}
	r.counts[reason]++
	if r.seen[reason] && time.Since(r.last) < refusalLogInterval {
		return
	}
	r.logger.Info("Refused connections over the limits", "port", r.port, "refusedByReason", r.counts, "logEvery", refusalLogInterval)
	r.seen[reason] = true
	r.counts, r.last = map[string]int{}, time.Now()
}
