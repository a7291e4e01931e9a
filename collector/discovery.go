package collector

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
// existing ancestor of every tracked root (its parent once it exists, so
// that its removal and re-creation are seen), and a full rescan every
// RescanInterval (or after an inotify queue overflow).
//
// The kernel sends no IN_IGNORED (nor IN_DELETE_SELF) when a cgroup
// directory is removed, and the watch keeps the dead directory's inode: a
// watch is removed by discovery itself when the parent reports the
// directory gone (IN_DELETE, IN_MOVED_FROM), and a rescan removes every
// watch whose directory no longer exists or is another inode now.
//
// Everything runs under mu: the background event loop, the rescan, and the
// drains Housekeep does before and after a pass so that a cgroup created
// before Housekeep is called is part of that pass.
type discovery struct {
	c *Collector

	mu sync.Mutex
	// fd is the non-blocking inotify descriptor, -1 when inotify is
	// unavailable (discovery then relies on rescans) or after shutdown.
	fd int
	// watches maps each inotify watch to the record of its directory's
	// name; dirs maps names to their records.
	watches map[int32]*watchedDir
	dirs    map[string]*watchedDir
	buf     []byte
	// dirents is walk's getdents buffer.
	dirents []byte
	// watchFailureLogged limits the "out of watches" warning to one line.
	watchFailureLogged bool
}

// watchKey is a directory of one tree.
type watchKey struct {
	tree int
	name string
}

// watchedDir is what discovery knows of one directory name: its watch in
// each tree, and how many watches there are below it. One record per name,
// rather than one per tree and name (and a map key for each), is a third of
// the bookkeeping for the five trees of a hybrid host.
type watchedDir struct {
	name string
	// wd is the name's watch in each tree, 0 for none (the kernel numbers
	// watches from 1).
	wd [numHierarchies]int32
	// below counts, per tree, the watches strictly below name, so that
	// removing a directory's watch looks for descendants only when there
	// are some. A record may exist for that count alone.
	below [numHierarchies]int32
	// recursive has a bit for each tree where the directory is inside a
	// tracked tree; its other watches are pathways to tracked roots.
	recursive uint8
	// dev and ino identify each directory watched, so that a rescan tells
	// one re-created under the same name (uint64: Stat_t's types vary by
	// architecture).
	dev, ino [numHierarchies]uint64
}

// tree is the tree whose watch wd is, -1 if none.
func (w *watchedDir) tree(wd int32) int {
	for ti, x := range w.wd {
		if x == wd {
			return ti
		}
	}
	return -1
}

func (w *watchedDir) isRecursive(ti int) bool { return w.recursive&(1<<ti) != 0 }

func (w *watchedDir) unused() bool {
	return w.wd == [numHierarchies]int32{} && w.below == [numHierarchies]int32{}
}

func newDiscovery(c *Collector) *discovery {
	return &discovery{
		c:       c,
		fd:      -1,
		watches: map[int32]*watchedDir{},
		dirs:    map[string]*watchedDir{},
		buf:     make([]byte, 64<<10),
		dirents: make([]byte, 16<<10),
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
	clear(d.dirs)
}

// rescan drops the watches of directories that are gone, walks every
// tracked tree, (re)adds missing watches, adds and re-specs every cgroup
// found and drops the ones that are gone.
func (d *discovery) rescan() {
	c := d.c
	d.prune()
	seen := map[string]bool{"/": true}
	for ti, t := range c.trees {
		for _, root := range c.tracked {
			d.watchPathway(ti, root)
			if !isDir(filepath.Join(t.dir, root)) {
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
	name = d.intern(name)
	d.addWatch(ti, name, true)
	visit(name)
	// The children are listed before any is walked: walking reuses the
	// buffer they were read into.
	children, err := appendSubdirs(nil, filepath.Join(d.c.trees[ti].dir, name), d.dirents)
	if err != nil {
		return // vanished meanwhile: its removal event or the rescan cleans up
	}
	for _, child := range children {
		d.walk(ti, childName(name, child), visit)
	}
}

// intern returns the string the collector already holds for name: the
// store's, or the one a watch in another tree keeps. A cgroup's name is then
// kept once, not once per hierarchy it is watched in and once more in the
// store (five copies on a hybrid host; a sixth of the collector's live heap
// at 2,000 cgroups).
func (d *discovery) intern(name string) string {
	if e := d.c.store.get(name); e != nil {
		return e.name
	}
	if w := d.dirs[name]; w != nil {
		return w.name
	}
	return name
}

// watchPathway watches the nearest existing ancestor of a tracked root (its
// parent when it exists), so that its creation and removal are noticed.
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
	w := d.dirs[name]
	if w != nil && w.wd[ti] != 0 {
		if recursive {
			w.recursive |= 1 << ti
		}
		return
	}
	dir := filepath.Join(d.c.trees[ti].dir, name)
	// Stat before adding: should the directory be replaced in between, the
	// watch is on the new one and the next rescan, seeing the old inode
	// recorded, watches it once more, which is harmless. The other order
	// could record the new inode for a watch on the old one.
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return // vanished: nothing to watch
	}
	wd, err := unix.InotifyAddWatch(d.fd, dir, watchMask)
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
	if w == nil {
		w = &watchedDir{name: name}
		d.dirs[name] = w
	}
	w.wd[ti], w.dev[ti], w.ino[ti] = int32(wd), uint64(st.Dev), uint64(st.Ino)
	if recursive {
		w.recursive |= 1 << ti
	}
	d.watches[int32(wd)] = w
	d.countBelow(ti, name, 1)
}

// countBelow adds delta to the descendant count in tree ti of every
// ancestor of name.
func (d *discovery) countBelow(ti int, name string, delta int32) {
	for name != "/" {
		name = path.Dir(name)
		ancestor := d.dirs[name]
		if ancestor == nil {
			if delta < 0 {
				continue
			}
			ancestor = &watchedDir{name: name}
			d.dirs[name] = ancestor
		}
		ancestor.below[ti] = max(ancestor.below[ti]+delta, 0)
		d.dropIfUnused(ancestor)
	}
}

// dropIfUnused forgets a record that holds no watch and counts none.
func (d *discovery) dropIfUnused(w *watchedDir) {
	if w.unused() && d.dirs[w.name] == w {
		delete(d.dirs, w.name)
	}
}

// forget removes a watch from the kernel (unless it is gone already) and
// from the bookkeeping. inotify_rm_watch may fail for a directory that is
// gone (EINVAL once the kernel dropped the watch itself); the bookkeeping
// goes regardless. The IN_IGNORED that a successful removal queues finds
// no watch and is skipped.
func (d *discovery) forget(wd int32, inKernel bool) {
	w := d.watches[wd]
	if w == nil {
		return
	}
	if inKernel {
		_, _ = unix.InotifyRmWatch(d.fd, uint32(wd))
	}
	delete(d.watches, wd)
	if ti := w.tree(wd); ti >= 0 {
		w.wd[ti], w.dev[ti], w.ino[ti] = 0, 0, 0
		w.recursive &^= 1 << ti
		d.countBelow(ti, w.name, -1)
	}
	d.dropIfUnused(w)
}

// unwatchBelow drops the watches of a removed or renamed-away directory and
// its descendants.
func (d *discovery) unwatchBelow(ti int, name string) {
	w := d.dirs[name]
	if w == nil {
		return
	}
	if wd := w.wd[ti]; wd != 0 {
		d.forget(wd, true)
	}
	if w.below[ti] == 0 {
		return
	}
	for wd, x := range d.watches {
		if x.tree(wd) == ti && isAncestorOrSelf(name, x.name) {
			d.forget(wd, true)
		}
	}
}

// prune drops every watch whose directory is gone or is another directory
// now (re-created under the same name), which no event reported.
func (d *discovery) prune() {
	var st unix.Stat_t
	for wd, w := range d.watches {
		ti := w.tree(wd)
		if ti < 0 {
			d.forget(wd, true) // only a bookkeeping bug gets here
			continue
		}
		err := unix.Stat(filepath.Join(d.c.trees[ti].dir, w.name), &st)
		if err != nil || uint64(st.Dev) != w.dev[ti] || uint64(st.Ino) != w.ino[ti] {
			d.forget(wd, true)
		}
	}
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
	ti := w.tree(wd)
	if ti < 0 {
		return // only a bookkeeping bug gets here; the next rescan repairs it
	}
	if mask&unix.IN_IGNORED != 0 {
		// The kernel dropped the watch (its directory is gone, on a
		// filesystem that says so). If it was a tracked root or a pathway,
		// the way back to it must be watched again.
		d.forget(wd, false)
		work.resolve[ti] = true
		return
	}
	if mask&unix.IN_ISDIR == 0 || name == "" {
		return
	}
	child := childName(w.name, name)
	switch {
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		if w.isRecursive(ti) || d.c.inScope(child) {
			work.walks[watchKey{tree: ti, name: child}] = true
		} else if d.leadsToTrackedRoot(child) {
			work.resolve[ti] = true
		}
	case mask&(unix.IN_MOVED_FROM|unix.IN_DELETE) != 0:
		// Dropped now, not in apply: a CREATE of the same name later in
		// this batch must find the name unwatched.
		d.unwatchBelow(ti, child)
		if mask&unix.IN_MOVED_FROM != 0 {
			work.refreshBelow[child] = true
		} else {
			work.refresh[child] = true
		}
		if d.leadsToTrackedRoot(child) {
			work.resolve[ti] = true
		}
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

func (d *discovery) leadsToTrackedRoot(name string) bool {
	for _, root := range d.c.tracked {
		if isAncestorOrSelf(name, root) {
			return true
		}
	}
	return false
}

// resolveRoots makes sure every tracked root of tree ti has a pathway
// watch and, when it exists, is watched as a tree (walking it, and adding
// what it finds to refresh, when it just appeared).
func (d *discovery) resolveRoots(ti int, refresh map[string]bool) {
	dir := d.c.trees[ti].dir
	for _, root := range d.c.tracked {
		d.watchPathway(ti, root)
		if !isDir(filepath.Join(dir, root)) {
			continue
		}
		if w := d.dirs[root]; w != nil && w.wd[ti] != 0 && w.isRecursive(ti) {
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
