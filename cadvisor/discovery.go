package cadvisor

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"
	"sync"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// watchMask asks for directories appearing and disappearing. Renames count
// too: cgroup v1 allows renaming a cgroup within its parent.
const watchMask = unix.IN_CREATE | unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_ONLYDIR

// discovery keeps the store in line with the cgroup trees: inotify watches
// on every directory of the tracked trees, "pathway" watches on the nearest
// existing ancestor of a tracked root that does not exist yet, and a full
// rescan every RescanInterval (or after an inotify queue overflow).
//
// Everything runs under mu: the background event loop, the rescan, and the
// drains Housekeep does before and after a pass so that a cgroup created
// before Housekeep is called is part of that pass.
type discovery struct {
	c *Collector

	mu sync.Mutex
	// fd is the non-blocking inotify descriptor, -1 when inotify is
	// unavailable (discovery then relies on rescans) or after shutdown.
	fd      int
	watches map[int32]*watch
	byKey   map[watchKey]int32
	buf     []byte
	// watchFailureLogged limits the "out of watches" warning to one line.
	watchFailureLogged bool
}

type watchKey struct {
	tree int
	name string
}

type watch struct {
	watchKey
	// recursive watches are directories inside a tracked tree; the others
	// are pathways to tracked roots that do not exist yet.
	recursive bool
}

func newDiscovery(c *Collector) *discovery {
	return &discovery{
		c:       c,
		fd:      -1,
		watches: map[int32]*watch{},
		byKey:   map[watchKey]int32{},
		buf:     make([]byte, 64<<10),
	}
}

// start does the initial discovery and then runs the event loop and the
// periodic rescan until ctx ends.
func (d *discovery) start(ctx context.Context) error {
	logger := d.c.logger
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		logger.Info("Warning: inotify is unavailable; new cgroups are found by rescans only",
			"rescanInterval", d.c.cfg.RescanInterval, "err", err)
		fd = -1
	}
	wake, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		if fd >= 0 {
			unix.Close(fd)
		}
		return &os.SyscallError{Syscall: "eventfd", Err: err}
	}

	d.mu.Lock()
	d.fd = fd
	d.rescan()
	d.mu.Unlock()

	stop := context.AfterFunc(ctx, func() {
		var one [8]byte
		one[0] = 1
		_, _ = unix.Write(wake, one[:])
	})
	go func() {
		defer stop()
		d.eventLoop(wake)
	}()
	go d.rescanLoop(ctx)
	return nil
}

// eventLoop waits for inotify events (or the wake-up at shutdown) and
// drains them.
func (d *discovery) eventLoop(wake int) {
	defer unix.Close(wake)
	defer d.close()
	d.mu.Lock()
	fd := d.fd
	d.mu.Unlock()
	fds := []unix.PollFd{{Fd: int32(wake), Events: unix.POLLIN}}
	if fd >= 0 {
		fds = append(fds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
	}
	for {
		_, err := unix.Poll(fds, -1)
		if err != nil && err != unix.EINTR {
			d.c.logger.Error(err, "Polling inotify failed; new cgroups are found by rescans only")
			return
		}
		if fds[0].Revents != 0 {
			return
		}
		if len(fds) > 1 && fds[1].Revents != 0 {
			d.drain()
		}
	}
}

func (d *discovery) rescanLoop(ctx context.Context) {
	ticker := time.NewTicker(d.c.cfg.RescanInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
			d.mu.Lock()
			d.rescan()
			d.mu.Unlock()
		}
	}
}

func (d *discovery) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
	clear(d.watches)
	clear(d.byKey)
}

// rescan walks every tracked tree, (re)adds missing watches, adds and
// re-specs every cgroup found and drops the ones that are gone.
func (d *discovery) rescan() {
	c := d.c
	seen := map[string]bool{"/": true}
	for ti, t := range c.trees {
		for _, root := range c.tracked {
			if !isDir(filepath.Join(t.dir, root)) {
				d.watchPathway(ti, root)
				continue
			}
			d.walk(ti, root, func(name string) {
				if t.primary {
					seen[name] = true
				}
			})
		}
	}
	for name := range seen {
		c.refresh(name, true)
	}
	for _, name := range c.store.names() {
		if !seen[name] {
			c.refresh(name, false)
		}
	}
}

// walk watches dir name of tree ti and everything below it, calling visit
// for each directory.
func (d *discovery) walk(ti int, name string, visit func(string)) {
	d.addWatch(ti, name, true)
	visit(name)
	dirEntries, err := os.ReadDir(filepath.Join(d.c.trees[ti].dir, name))
	if err != nil {
		return // vanished meanwhile: its removal event or the rescan cleans up
	}
	for _, de := range dirEntries {
		if de.IsDir() {
			d.walk(ti, childName(name, de.Name()), visit)
		}
	}
}

// watchPathway watches the nearest existing ancestor of a tracked root that
// does not exist yet, so that its creation is noticed.
func (d *discovery) watchPathway(ti int, root string) {
	dir := d.c.trees[ti].dir
	for ancestor := path.Dir(root); ; ancestor = path.Dir(ancestor) {
		if isDir(filepath.Join(dir, ancestor)) {
			d.addWatch(ti, ancestor, false)
			return
		}
		if ancestor == "/" {
			return
		}
	}
}

func (d *discovery) addWatch(ti int, name string, recursive bool) {
	if d.fd < 0 {
		return
	}
	key := watchKey{tree: ti, name: name}
	if wd, ok := d.byKey[key]; ok {
		if recursive {
			d.watches[wd].recursive = true
		}
		return
	}
	wd, err := unix.InotifyAddWatch(d.fd, filepath.Join(d.c.trees[ti].dir, name), watchMask)
	if err != nil {
		if !isVanished(err) && !errors.Is(err, unix.ENOTDIR) && !d.watchFailureLogged {
			d.watchFailureLogged = true
			d.c.logger.Info("Warning: cannot add an inotify watch; cgroups below it are found by rescans only (raise fs.inotify.max_user_watches?)",
				"cgroup", name, "err", err)
		}
		return
	}
	if _, taken := d.watches[int32(wd)]; taken {
		return // same inode reached under another name; keep the first
	}
	d.watches[int32(wd)] = &watch{watchKey: key, recursive: recursive}
	d.byKey[key] = int32(wd)
}

// maxReadsPerDrain bounds one drain, so that a storm of cgroup churn cannot
// keep Housekeep (or the event loop) draining forever; what is left is
// picked up by the next drain.
const maxReadsPerDrain = 4

// pendingWork is what a batch of events asks for. Events are coalesced
// before anything is done: a burst of mkdir/rmdir of the same few cgroups
// across five hierarchies costs one refresh per name, not one per event.
type pendingWork struct {
	// walks are new directories to watch and walk.
	walks map[watchKey]bool
	// refresh are names to re-check; refreshBelow also re-checks their
	// tracked descendants (renamed-away directories).
	refresh      map[string]bool
	refreshBelow map[string]bool
	// resolve are trees whose tracked roots need re-resolving.
	resolve map[int]bool
	rescan  bool
}

func newPendingWork() pendingWork {
	return pendingWork{
		walks:        map[watchKey]bool{},
		refresh:      map[string]bool{},
		refreshBelow: map[string]bool{},
		resolve:      map[int]bool{},
	}
}

// drain reads the queued inotify events without blocking and applies them.
func (d *discovery) drain() {
	d.mu.Lock()
	defer d.mu.Unlock()
	work := newPendingWork()
	for reads := 0; d.fd >= 0 && reads < maxReadsPerDrain; reads++ {
		n, err := unix.Read(d.fd, d.buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			if err != nil && err != unix.EAGAIN {
				d.c.logger.Error(err, "Reading inotify events failed; scheduling a rescan")
				work.rescan = true
			}
			break
		}
		d.collectEvents(d.buf[:n], &work)
	}
	d.apply(&work)
}

func (d *discovery) collectEvents(buf []byte, work *pendingWork) {
	for off := 0; off+unix.SizeofInotifyEvent <= len(buf); {
		ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
		nameStart := off + unix.SizeofInotifyEvent
		nameEnd := min(nameStart+int(ev.Len), len(buf))
		name := string(bytes.TrimRight(buf[nameStart:nameEnd], "\x00"))
		d.collect(ev.Wd, ev.Mask, name, work)
		off = nameEnd
	}
}

// collect turns one event into pending work. Only watch bookkeeping that
// later events depend on (dropping dead or stale watches) happens here.
func (d *discovery) collect(wd int32, mask uint32, name string, work *pendingWork) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		work.rescan = true
		return
	}
	w := d.watches[wd]
	if w == nil {
		return
	}
	if mask&unix.IN_IGNORED != 0 {
		// The directory is gone. If it was a tracked root or a pathway, the
		// way back to it must be watched again.
		delete(d.watches, wd)
		if d.byKey[w.watchKey] == wd {
			delete(d.byKey, w.watchKey)
		}
		work.resolve[w.tree] = true
		return
	}
	if mask&unix.IN_ISDIR == 0 || name == "" {
		return
	}
	child := childName(w.name, name)
	switch {
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		if w.recursive || d.c.inScope(child) {
			work.walks[watchKey{tree: w.tree, name: child}] = true
		} else if d.leadsToTrackedRoot(child) {
			work.resolve[w.tree] = true
		}
	case mask&unix.IN_MOVED_FROM != 0:
		d.unwatchBelow(w.tree, child)
		work.refreshBelow[child] = true
	case mask&unix.IN_DELETE != 0:
		work.refresh[child] = true
	}
}

// apply does the coalesced work: watch and walk new directories, then
// refresh every affected name once, parents first.
func (d *discovery) apply(work *pendingWork) {
	if work.rescan {
		d.rescan()
		return
	}
	for ti := range work.resolve {
		d.resolveRoots(ti, work.refresh)
	}
	for key := range work.walks {
		d.walk(key.tree, key.name, func(n string) { work.refresh[n] = true })
	}
	if len(work.refreshBelow) > 0 {
		for _, n := range d.c.store.names() {
			for moved := range work.refreshBelow {
				if isAncestorOrSelf(moved, n) {
					work.refresh[n] = true
				}
			}
		}
	}
	names := make([]string, 0, len(work.refresh))
	for n := range work.refresh {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		d.c.refresh(n, false)
	}
}

// unwatchBelow drops the watches of a renamed-away directory and its
// descendants; their names are stale.
func (d *discovery) unwatchBelow(ti int, name string) {
	for key, wd := range d.byKey {
		if key.tree == ti && isAncestorOrSelf(name, key.name) {
			_, _ = unix.InotifyRmWatch(d.fd, uint32(wd))
			delete(d.byKey, key)
			delete(d.watches, wd)
		}
	}
}

func (d *discovery) leadsToTrackedRoot(name string) bool {
	for _, root := range d.c.tracked {
		if isAncestorOrSelf(name, root) {
			return true
		}
	}
	return false
}

// resolveRoots makes sure every tracked root of tree ti is either watched
// as a tree (walking it, and adding what it finds to refresh, when it just
// appeared) or has a pathway watch.
func (d *discovery) resolveRoots(ti int, refresh map[string]bool) {
	dir := d.c.trees[ti].dir
	for _, root := range d.c.tracked {
		if !isDir(filepath.Join(dir, root)) {
			d.watchPathway(ti, root)
			continue
		}
		if wd, ok := d.byKey[watchKey{tree: ti, name: root}]; ok && d.watches[wd].recursive {
			continue
		}
		d.walk(ti, root, func(n string) { refresh[n] = true })
	}
}

// refreshNames re-checks cgroups a pass found vanished.
func (d *discovery) refreshNames(names []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, name := range names {
		d.c.refresh(name, false)
	}
}
