package main

import (
	"fmt"
	"os/exec"
	"strconv"
)

// Pods with a network of their own get 10.250.77.<4i+2>/30 on eth0 and the
// host end 10.250.77.<4i+1>, a range private to this capture; the host end
// is named veth* so that the server, like cAdvisor, ignores it.
func hostAddress(pod int) string { return "10.250.77." + strconv.Itoa(4*pod+1) }
func podAddress(pod int) string  { return "10.250.77." + strconv.Itoa(4*pod+2) }
func hostVeth(pod int) string    { return "vethkssgold" + strconv.Itoa(pod) }

// connect gives the network namespace of pid an eth0 paired with a veth in
// the host's.
func (c *capturer) connect(pod, pid int) error {
	veth, ns := hostVeth(pod), strconv.Itoa(pid)
	if err := command("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns); err != nil {
		return err
	}
	c.veths = append(c.veths, veth)
	steps := [][]string{
		{"ip", "addr", "add", hostAddress(pod) + "/30", "dev", veth},
		{"ip", "link", "set", veth, "up"},
		{"nsenter", "--net=/proc/" + ns + "/ns/net", "--", "ip", "addr", "add", podAddress(pod) + "/30", "dev", "eth0"},
		{"nsenter", "--net=/proc/" + ns + "/ns/net", "--", "ip", "link", "set", "eth0", "up"},
		{"nsenter", "--net=/proc/" + ns + "/ns/net", "--", "ip", "link", "set", "lo", "up"},
	}
	for _, step := range steps {
		if err := command(step[0], step[1:]...); err != nil {
			return err
		}
	}
	return nil
}

func command(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %v: %w: %s", name, args, err, out)
	}
	return nil
}
