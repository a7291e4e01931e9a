package framework

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Every harness takes a slot: a host-wide flock that gives it a bridge name
// and a /24 of its own, so harnesses in parallel test processes never share
// a bridge, an address range or a CNI network name.
const (
	firstSlot = 1
	lastSlot  = 250
	// subnetBase is the /16 the slot /24s are carved from. It is private
	// and exists only on this machine: the bridge is created by the harness
	// and nothing routes it anywhere.
	subnetBase = "10.217.0.0"
	// cniCacheDir is where libcni, inside containerd, caches ADD results
	// as <network>-<container>-<ifname>.
	cniCacheDir = "/var/lib/cni/results"
)

// netSlot is one harness's share of the host network configuration.
type netSlot struct {
	id      int
	unlock  func()
	bridge  string       // Linux bridge the pods attach to
	network string       // CNI network name
	subnet  netip.Prefix // pod addresses
	gateway netip.Addr   // the bridge's address, the pods' default gateway
}

// slotNetwork derives the names and addresses of slot id. It is pure.
func slotNetwork(id int) (bridge, network string, subnet netip.Prefix, gateway netip.Addr) {
	base := netip.MustParseAddr(subnetBase).As4()
	base[2] = byte(id)
	subnet = netip.PrefixFrom(netip.AddrFrom4(base), 24)
	base[3] = 1
	gateway = netip.AddrFrom4(base)
	return fmt.Sprintf("kss-e2e%d", id), fmt.Sprintf("kss-e2e-%d", id), subnet, gateway
}

// acquireSlot locks the first free slot whose subnet no host interface
// uses, removes what a crashed earlier owner may have left, and creates the
// bridge with the gateway address.
func acquireSlot(logf func(string, ...any)) (*netSlot, error) {
	hostPrefixes, err := hostAddresses()
	if err != nil {
		return nil, err
	}
	for id := firstSlot; id <= lastSlot; id++ {
		bridge, network, subnet, gateway := slotNetwork(id)
		if overlapsAny(subnet, hostPrefixes, bridge) {
			continue
		}
		unlock, ok, err := tryLockFile(slotLockPath(id))
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		s := &netSlot{id: id, unlock: unlock, bridge: bridge, network: network, subnet: subnet, gateway: gateway}
		// We hold the lock, so anything under these names is a leftover;
		// what cannot be removed makes createBridge fail, which says more.
		_ = s.removeHostState(logf)
		if err := s.createBridge(); err != nil {
			if cleanupErr := s.removeHostState(logf); cleanupErr != nil {
				err = errors.Join(err, cleanupErr)
			}
			unlock()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("no free network slot in %s/16 (slots %d-%d)", subnetBase, firstSlot, lastSlot)
}

func slotLockPath(id int) string {
	return filepath.Join(lockDir, fmt.Sprintf("slot-%d.lock", id))
}

// hostAddresses maps each interface name to its address prefixes.
func hostAddresses() (map[string][]netip.Prefix, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list host interfaces: %w", err)
	}
	out := map[string][]netip.Prefix{}
	for _, iface := range ifaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue // the interface went away
		}
		for _, a := range addrs {
			if ipnet, ok := a.(*net.IPNet); ok {
				if p, err := netip.ParsePrefix(ipnet.String()); err == nil {
					out[iface.Name] = append(out[iface.Name], p)
				}
			}
		}
	}
	return out, nil
}

// overlapsAny reports whether subnet collides with an address of an
// interface other than ownBridge (a leftover of this slot, removed later).
func overlapsAny(subnet netip.Prefix, host map[string][]netip.Prefix, ownBridge string) bool {
	for name, prefixes := range host {
		if name == ownBridge {
			continue
		}
		for _, p := range prefixes {
			if p.Overlaps(subnet) {
				return true
			}
		}
	}
	return false
}

func (s *netSlot) createBridge() error {
	cmds := [][]string{
		{"link", "add", "name", s.bridge, "type", "bridge"},
		{"addr", "add", netip.PrefixFrom(s.gateway, s.subnet.Bits()).String(), "dev", s.bridge},
		{"link", "set", s.bridge, "up"},
	}
	for _, args := range cmds {
		if err := runIP(args...); err != nil {
			return err
		}
	}
	return nil
}

// removeHostState deletes the bridge and libcni's cached results of this
// slot's network. Missing pieces are fine.
func (s *netSlot) removeHostState(logf func(string, ...any)) error {
	var errs []error
	if _, err := net.InterfaceByName(s.bridge); err == nil {
		if err := runIP("link", "delete", s.bridge); err != nil {
			errs = append(errs, err)
		}
	}
	cached, _ := filepath.Glob(filepath.Join(cniCacheDir, s.network+"-*"))
	for _, f := range cached {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		} else {
			logf("removed CNI cache entry %s", f)
		}
	}
	return errors.Join(errs...)
}

// removeCNICache deletes libcni's cached results for a sandbox, which a
// sandbox never torn down through CRI leaves behind (one per network,
// including containerd's built-in cni-loopback).
func removeCNICache(sandboxID string) error {
	cached, _ := filepath.Glob(filepath.Join(cniCacheDir, "*-"+sandboxID+"-*"))
	var errs []error
	for _, f := range cached {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *netSlot) release(logf func(string, ...any)) error {
	err := s.removeHostState(logf)
	s.unlock()
	return err
}

func runIP(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// cniConflist renders the CNI network of a slot: a bridge the harness has
// already created (so isGateway stays false and the plugin never touches
// the host's ip_forward), host-local addresses with a default route via the
// bridge, and loopback. No masquerading, no iptables: pod traffic can only
// reach the bridge.
func cniConflist(s *netSlot, ipamDataDir string) ([]byte, error) {
	type ipamRange struct {
		Subnet  string `json:"subnet"`
		Gateway string `json:"gateway"`
	}
	type route struct {
		Dst string `json:"dst"`
	}
	type ipam struct {
		Type    string        `json:"type"`
		DataDir string        `json:"dataDir"`
		Ranges  [][]ipamRange `json:"ranges"`
		Routes  []route       `json:"routes"`
	}
	type plugin struct {
		Type        string `json:"type"`
		Bridge      string `json:"bridge,omitempty"`
		IsGateway   *bool  `json:"isGateway,omitempty"`
		IPMasq      *bool  `json:"ipMasq,omitempty"`
		HairpinMode *bool  `json:"hairpinMode,omitempty"`
		IPAM        *ipam  `json:"ipam,omitempty"`
	}
	no := false
	conf := struct {
		CNIVersion string   `json:"cniVersion"`
		Name       string   `json:"name"`
		Plugins    []plugin `json:"plugins"`
	}{
		CNIVersion: "1.0.0",
		Name:       s.network,
		Plugins: []plugin{
			{
				Type: "bridge", Bridge: s.bridge, IsGateway: &no, IPMasq: &no, HairpinMode: &no,
				IPAM: &ipam{
					Type:    "host-local",
					DataDir: ipamDataDir,
					Ranges:  [][]ipamRange{{{Subnet: s.subnet.String(), Gateway: s.gateway.String()}}},
					Routes:  []route{{Dst: "0.0.0.0/0"}},
				},
			},
			{Type: "loopback"},
		},
	}
	return json.MarshalIndent(conf, "", "  ")
}
