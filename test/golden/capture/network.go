package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
)

// Pods with a network of their own get 10.250.77.<4i+2>/30 on eth0 and the
// host end 10.250.77.<4i+1>, a range private to this capture; the host end
// is named veth* so that the server, like cAdvisor, ignores it.
func hostAddress(pod int) string { return "10.250.77." + strconv.Itoa(4*pod+1) }
func podAddress(pod int) string  { return "10.250.77." + strconv.Itoa(4*pod+2) }
func hostVeth(pod int) string    { return "vethkssgold" + strconv.Itoa(pod) }

// connect gives the network namespace of pid an eth0 paired with a veth in
// the host's. The peer is created with the kernel's name for it and
// renamed inside the namespace, which busybox's ip (the cgroup v2 VM's)
// can do as well as iproute2.
func (c *capturer) connect(pod, pid int) error {
	veth, ns := hostVeth(pod), "--net=/proc/"+strconv.Itoa(pid)+"/ns/net"
	if err := command("ip", "link", "add", veth, "type", "veth"); err != nil {
		return err
	}
	c.veths = append(c.veths, veth)
	peer, err := vethPeer(veth)
	if err != nil {
		return err
	}
	steps := [][]string{
		{"ip", "link", "set", peer, "netns", strconv.Itoa(pid)},
		{"ip", "addr", "add", hostAddress(pod) + "/30", "dev", veth},
		{"ip", "link", "set", veth, "up"},
		{"nsenter", ns, "--", "ip", "link", "set", peer, "name", "eth0"},
		{"nsenter", ns, "--", "ip", "addr", "add", podAddress(pod) + "/30", "dev", "eth0"},
		{"nsenter", ns, "--", "ip", "link", "set", "eth0", "up"},
		{"nsenter", ns, "--", "ip", "link", "set", "lo", "up"},
	}
	for _, step := range steps {
		if err := command(step[0], step[1:]...); err != nil {
			return err
		}
	}
	return nil
}

// vethPeer is the name of the other end of veth: the device whose ifindex
// is veth's iflink.
func vethPeer(veth string) (string, error) {
	iflink, err := os.ReadFile(filepath.Join("/sys/class/net", veth, "iflink"))
	if err != nil {
		return "", err
	}
	for _, dev := range listDir("/sys/class/net") {
		index, err := os.ReadFile(filepath.Join("/sys/class/net", dev, "ifindex"))
		if err == nil && dev != veth && bytes.Equal(bytes.TrimSpace(index), bytes.TrimSpace(iflink)) {
			return dev, nil
		}
	}
	return "", fmt.Errorf("no peer of %s (iflink %s) in /sys/class/net", veth, bytes.TrimSpace(iflink))
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}
