package framework

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	goruntime "runtime"

	"golang.org/x/sys/unix"
)

// InterfaceAddrs returns the addresses of interface ifname in the network
// namespace of process pid (for a pod, its Pid).
func InterfaceAddrs(pid int, ifname string) ([]netip.Prefix, error) {
	type result struct {
		addrs []netip.Prefix
		err   error
	}
	done := make(chan result, 1)
	go func() {
		goruntime.LockOSThread()
		restored := false
		defer func() {
			// A thread left in the pod's namespace must never run other
			// goroutines: staying locked makes Go retire it (or, for the
			// main thread, park it) when this goroutine ends.
			if restored {
				goruntime.UnlockOSThread()
			}
		}()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			restored = true // never left
			done <- result{err: err}
			return
		}
		defer own.Close()
		addrs, err := addrsInNetns(pid, ifname)
		restored = unix.Setns(int(own.Fd()), unix.CLONE_NEWNET) == nil
		done <- result{addrs, err}
	}()
	res := <-done
	return res.addrs, res.err
}

func addrsInNetns(pid int, ifname string) ([]netip.Prefix, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
		return nil, fmt.Errorf("enter netns of %d: %w", pid, err)
	}
	iface, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("netns of %d: %w", pid, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return nil, fmt.Errorf("netns of %d: %s addresses: %w", pid, ifname, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		if ipnet, ok := a.(*net.IPNet); ok {
			if p, err := netip.ParsePrefix(ipnet.String()); err == nil {
				out = append(out, p)
			}
		}
	}
	return out, nil
}
