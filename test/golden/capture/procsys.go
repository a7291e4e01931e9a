package main

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/golden"
)

// Identities of the captured machine are replaced by these, so that a tree
// names no real machine.
const (
	fakeMachineID   = "0f0e0d0c0b0a09080706050403020100"
	fakeBootID      = "b007b007-0000-4000-8000-000000000000"
	fakeProductUUID = "00000000-0000-4000-8000-00000000cafe"
)

// procFiles are the /proc files ReadMachine, ReadRlimit and the root's
// memory read; each must exist.
var procFiles = []string{"stat", "meminfo", "cpuinfo", "loadavg",
	"sys/kernel/pid_max", "sys/kernel/threads-max", "sys/kernel/osrelease"}

// copyProc copies the machine-wide files, pid 1's network (the node's),
// each worker's network, and what DiscoverKubelet reads of the kubelet.
func (c *capturer) copyProc(out string, _ *golden.Manifest) error {
	for _, file := range procFiles {
		if err := copyFile(filepath.Join("/proc", file), out, filepath.Join("proc", file), true); err != nil {
			return err
		}
	}
	if err := writeFile(out, "proc/sys/kernel/random/boot_id", []byte(fakeBootID+"\n")); err != nil {
		return err
	}
	pids := []int{1}
	for _, list := range c.pids {
		pids = append(pids, list...)
	}
	for _, pid := range pids {
		if err := copyNetDev(pid, out); err != nil {
			return err
		}
	}
	return c.copyKubelet(out)
}

// copyNetDev copies /proc/<pid>/net/dev without this project's test
// bridges (kss*), which come and go with other tests on the machine.
func copyNetDev(pid int, out string) error {
	rel := filepath.Join(strconv.Itoa(pid), "net", "dev")
	data, err := os.ReadFile(filepath.Join("/proc", rel))
	if err != nil {
		return err
	}
	var kept [][]byte
	for _, line := range bytes.SplitAfter(data, []byte("\n")) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("kss")) {
			kept = append(kept, line)
		}
	}
	return writeFile(out, filepath.Join("proc", rel), bytes.Join(kept, nil))
}

// copyKubelet copies the kubelet worker's comm, stat and cgroup file, its
// cgroup paths without the capture's parent.
func (c *capturer) copyKubelet(out string) error {
	dir := filepath.Join("/proc", strconv.Itoa(c.kubelet))
	rel := filepath.Join("proc", strconv.Itoa(c.kubelet))
	for _, file := range []string{"comm", "stat"} {
		if err := copyFile(filepath.Join(dir, file), out, filepath.Join(rel, file), true); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(filepath.Join(dir, "cgroup"))
	if err != nil {
		return err
	}
	return writeFile(out, filepath.Join(rel, "cgroup"), []byte(strings.ReplaceAll(string(data), ":"+c.parent+"/", ":/")))
}

// copySys copies what ReadMachine reads of /sys: network devices (those
// cAdvisor lists), block devices, huge pages and the CPU's frequency.
func copySys(out string, _ *golden.Manifest) error {
	var files []string
	for _, dev := range listDir("/sys/class/net") {
		if ignoredNetDevice(dev) {
			continue
		}
		for _, f := range []string{"address", "mtu", "speed"} {
			files = append(files, path.Join("class/net", dev, f))
		}
	}
	for _, dev := range listDir("/sys/block") {
		if strings.HasPrefix(dev, "loop") || strings.HasPrefix(dev, "ram") || strings.HasPrefix(dev, "dm-") {
			continue
		}
		for _, f := range []string{"dev", "size", "queue/scheduler"} {
			files = append(files, path.Join("block", dev, f))
		}
	}
	for _, pool := range listDir("/sys/kernel/mm/hugepages") {
		files = append(files, path.Join("kernel/mm/hugepages", pool, "nr_hugepages"))
	}
	files = append(files, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
	for _, f := range files {
		if err := copyFile(filepath.Join("/sys", f), out, filepath.Join("sys", f), false); err != nil {
			return err
		}
	}
	if fileExists("/sys/class/dmi/id/product_uuid") {
		return writeFile(out, "sys/class/dmi/id/product_uuid", []byte(fakeProductUUID+"\n"))
	}
	return nil
}

// ignoredNetDevice is cAdvisor's list plus this project's test bridges
// (kss*), which come and go with other tests on the machine.
func ignoredNetDevice(name string) bool {
	return cadvisorIgnoredNetDevice(name) || strings.HasPrefix(strings.ToLower(name), "kss")
}

// cadvisorIgnoredNetDevice is cAdvisor's list: lo, veth, docker, nerdctl.
func cadvisorIgnoredNetDevice(name string) bool {
	for _, prefix := range []string{"lo", "veth", "docker", "nerdctl"} {
		if strings.HasPrefix(strings.ToLower(name), prefix) {
			return true
		}
	}
	return false
}

// writeEtc writes what ReadMachine reads next to /proc.
func writeEtc(out string, _ *golden.Manifest) error {
	src := "/etc/os-release"
	if !fileExists(src) {
		src = "/usr/lib/os-release"
	}
	if err := copyFile(src, out, "etc/os-release", true); err != nil {
		return err
	}
	return writeFile(out, "etc/machine-id", []byte(fakeMachineID+"\n"))
}

// writePodFiles writes the kubelet's log layout for the named pods (the
// server's source of names without a runtime) and their etc-hosts. Every
// file is empty: du counts allocated blocks, which for a non-empty file
// depend on the filesystem the tree is checked out on.
func writePodFiles(out string, _ *golden.Manifest) error {
	for _, pod := range pods {
		if !pod.named {
			continue
		}
		podDir := pod.namespace + "_" + pod.name + "_" + pod.uid
		files := []string{path.Join("var/lib/kubelet/pods", pod.uid, "etc-hosts")}
		for _, ctr := range pod.containers {
			if ctr.name == "" {
				continue
			}
			files = append(files,
				path.Join("var/log/pods", podDir, ctr.name, "0.log"),
				path.Join("var/log/containers", pod.name+"_"+pod.namespace+"_"+ctr.name+"-"+pod.containerID(ctr)+".log"))
		}
		for _, f := range files {
			if err := writeFile(out, f, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// listDir lists a directory's names, sorted; nothing when it is missing.
func listDir(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return names
}
