package collector

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// kernelWatchCount counts the watches the kernel holds on the collector's
// inotify descriptor ("inotify wd:" lines of its fdinfo); the collector
// runs in this process. It also checks that the collector's bookkeeping
// agrees, since a watch the collector forgot but the kernel kept leaks just
// the same.
func kernelWatchCount(t *testing.T, c *Collector) int {
	t.Helper()
	d := c.discovery
	d.mu.Lock()
	fd, known := d.fd, len(d.watches)
	d.mu.Unlock()
	if fd < 0 {
		t.Fatal("the collector has no inotify descriptor")
	}
	data, err := os.ReadFile(fmt.Sprintf("/proc/self/fdinfo/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	n := strings.Count(string(data), "inotify wd:")
	if n != known {
		t.Errorf("the kernel holds %d watches, the collector knows %d", n, known)
	}
	return n
}

func rescanNow(c *Collector) {
	c.discovery.mu.Lock()
	defer c.discovery.mu.Unlock()
	c.discovery.rescan()
}

// TestLiveWatchChurn runs 1,000 pod lifecycles (a pod cgroup with a
// container cgroup, each name used once, like pod UIDs) and checks that the
// inotify watch count returns to its baseline: the kernel sends no
// IN_IGNORED for a removed cgroup directory, so a watch the collector does
// not remove itself stays forever.
func TestLiveWatchChurn(t *testing.T) {
	for _, withRescan := range []bool{false, true} {
		t.Run(fmt.Sprintf("rescan=%v", withRescan), func(t *testing.T) {
			lc := newLiveCgroups(t)
			c, sink := startLiveCollector(t, lc.parent)
			ctx := context.Background()
			c.Housekeep(ctx)
			baseline := kernelWatchCount(t, c)
			const rounds, podsPerRound = 20, 50
			for round := 0; round < rounds; round++ {
				pods := make([]string, podsPerRound)
				for i := range pods {
					pods[i] = lc.name(fmt.Sprintf("pod-%d-%d", round, i))
					lc.mkdir(pods[i] + "/ctr")
				}
				view := c.Housekeep(ctx)
				// Every directory must have been watched, or the test proves
				// nothing.
				if view.Get(pods[0]+"/ctr") == nil {
					t.Fatalf("round %d: %s/ctr not discovered", round, pods[0])
				}
				if got, want := kernelWatchCount(t, c), baseline+2*podsPerRound*len(c.trees); got != want {
					t.Fatalf("round %d: %d watches with %d pods, want %d", round, got, podsPerRound, want)
				}
				if withRescan {
					rescanNow(c)
				}
				for _, pod := range pods {
					lc.rmdir(pod + "/ctr")
					lc.rmdir(pod)
				}
				view = c.Housekeep(ctx)
				if view.Get(pods[0]) != nil {
					t.Fatalf("round %d: %s removed but still in the view", round, pods[0])
				}
				if withRescan {
					rescanNow(c)
				}
				if got := kernelWatchCount(t, c); got != baseline {
					t.Fatalf("round %d: %d inotify watches after removing every pod, baseline %d", round, got, baseline)
				}
			}
			assertNoErrorsLogged(t, sink)
		})
	}
}

// TestLiveRecreatedCgroup removes a static pod's cgroup (fixed UID) and
// creates it again: the new directory, and a container created inside it
// afterwards, are found at the next Housekeep without a rescan. The same
// for a tracked root that existed at Start.
func TestLiveRecreatedCgroup(t *testing.T) {
	lc := newLiveCgroups(t)
	root := lc.name("kubepods")
	pod := root + "/podstatic"
	lc.mkdir(pod + "/ctr-1")
	c, sink := startLiveCollector(t, root)
	ctx := context.Background()
	if c.Housekeep(ctx).Get(pod+"/ctr-1") == nil {
		t.Fatal("container not tracked at start")
	}

	lc.rmdir(pod + "/ctr-1")
	lc.rmdir(pod)
	if c.Housekeep(ctx).Get(pod) != nil {
		t.Fatal("removed pod still in the view")
	}
	lc.mkdir(pod)
	if c.Housekeep(ctx).Get(pod) == nil {
		t.Fatal("re-created pod not in the view")
	}
	lc.mkdir(pod + "/ctr-2")
	if c.Housekeep(ctx).Get(pod+"/ctr-2") == nil {
		t.Error("container created in a re-created pod cgroup not found by the next Housekeep")
	}

	lc.rmdir(pod + "/ctr-2")
	lc.rmdir(pod)
	lc.rmdir(root)
	if c.Housekeep(ctx).Get(root) != nil {
		t.Fatal("removed tracked root still in the view")
	}
	lc.mkdir(root)
	if c.Housekeep(ctx).Get(root) == nil {
		t.Fatal("re-created tracked root not found by the next Housekeep")
	}
	lc.mkdir(root + "/child")
	if c.Housekeep(ctx).Get(root+"/child") == nil {
		t.Error("cgroup created in a re-created tracked root not found by the next Housekeep")
	}
	assertNoErrorsLogged(t, sink)
}

// TestLiveRescanPrunesWatches loses every inotify event (as after a queue
// overflow) while a cgroup is removed and another is removed and created
// again under its name: the rescan drops the dead watch and watches the new
// directory.
func TestLiveRescanPrunesWatches(t *testing.T) {
	lc := newLiveCgroups(t)
	pod := lc.name("pod")
	logger, sink := newErrorCountingLogger(t)
	c, err := New(Config{Tracked: []string{lc.parent}, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	// Discovery as Start does it, but without the event loop, so that the
	// test decides which events are seen.
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	c.discovery.fd = fd
	rescanNow(c)
	baseline := kernelWatchCount(t, c)

	lc.mkdir(pod + "/ctr")
	rescanNow(c)
	if got, want := kernelWatchCount(t, c), baseline+2*len(c.trees); got != want {
		t.Fatalf("%d watches with a pod and a container, want %d", got, want)
	}
	lc.rmdir(pod + "/ctr")
	lc.rmdir(pod)
	lc.mkdir(pod)
	discardEvents(t, fd)
	rescanNow(c)
	if got, want := kernelWatchCount(t, c), baseline+len(c.trees); got != want {
		t.Errorf("%d watches after the rescan, want %d (the pod only)", got, want)
	}

	// The re-created pod directory itself is watched: a container created
	// in it is found from its event alone.
	lc.mkdir(pod + "/ctr-2")
	c.discovery.drain()
	if c.store.get(pod+"/ctr-2") == nil {
		t.Error("container in the re-created pod not found from inotify after the rescan")
	}
	assertNoErrorsLogged(t, sink)
}

// discardEvents reads the queued inotify events and throws them away.
func discardEvents(t *testing.T, fd int) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for {
		_, err := unix.Read(fd, buf)
		if err == unix.EAGAIN {
			return
		}
		if err != nil && err != unix.EINTR {
			t.Fatalf("read inotify events: %v", err)
		}
	}
}

// TestLiveNamesShared: a cgroup's name is one string for the store, the
// view and discovery's record of its directories in every hierarchy,
// whether the cgroup was found by the first walk, by an inotify event or
// walked again by a rescan.
func TestLiveNamesShared(t *testing.T) {
	lc := newLiveCgroups(t)
	lc.mkdir(lc.name("kubepods/pod0/ctr"))
	c, sink := startLiveCollector(t, lc.parent)
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		view := c.Housekeep(ctx)
		c.discovery.mu.Lock()
		defer c.discovery.mu.Unlock()
		for _, e := range c.store.list() {
			if e.name == "/" {
				continue // not walked: "/" is tracked without its tree
			}
			w := c.discovery.dirs[e.name]
			if w == nil {
				t.Errorf("%s: %s is tracked but not watched", when, e.name)
				continue
			}
			if unsafe.StringData(w.name) != unsafe.StringData(e.name) {
				t.Errorf("%s: %s is two strings, the store's and the watches'", when, e.name)
			}
			if info := view.Get(e.name); info == nil || unsafe.StringData(info.Name) != unsafe.StringData(e.name) {
				t.Errorf("%s: the view does not share the name of %s", when, e.name)
			}
		}
	}
	check("first walk")
	lc.mkdir(lc.name("kubepods/pod1/ctr"))
	c.discovery.drain()
	if c.store.get(lc.name("kubepods/pod1/ctr")) == nil {
		t.Fatal("a new container not found from its inotify events")
	}
	check("inotify")
	rescanNow(c)
	check("rescan")
	assertNoErrorsLogged(t, sink)
}
