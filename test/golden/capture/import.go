package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/kubelet-stats-server/kubelet-stats-server/test/golden"
)

// vmRootFs stands in for statfs of the VM's disk, which the VM's archive
// does not carry.
var vmRootFs = golden.RootFs{Capacity: 8 << 30, Available: 6 << 30, Usage: 2 << 30,
	Inodes: 524288, InodesFree: 500000}

// vmCapture is what the cgroup v2 VM's archive (test/v2vm/guest
// TestCaptureTree) says in its CAPTURE.txt.
type vmCapture struct {
	kernel string
	flags  map[string]string
	pods   []vmPod
}

type vmPod struct {
	namespace, name, uid string
	containers           [][2]string // name, id
}

// importArchive turns the VM's archive (paths relative to /) into a tree:
// the cgroup files (sys/fs/cgroup becomes cgroup/), /proc and /sys files
// the server reads, the log layout that names the pods it lists, and a
// manifest. The archive has no modification times, so every cgroup's
// creation time is the boot time, and no statfs (vmRootFs).
func importArchive(archive string, trees, out string) error {
	files, err := readArchive(archive)
	if err != nil {
		return err
	}
	info, err := parseCaptureText(files["CAPTURE.txt"])
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(trees, "v2")
		if info.flags["cgroup-driver"] == "systemd" {
			out += "-systemd"
		}
	}
	if err := prepareOut(out); err != nil {
		return err
	}
	m := &golden.Manifest{
		Hierarchy: "v2", Kernel: info.kernel, NodeName: "golden-node",
		CgroupDriver:   info.flags["cgroup-driver"],
		KubeletCgroups: info.flags["kubelet-cgroups"],
		RuntimeCgroups: info.flags["runtime-cgroups"],
		SystemCgroups:  info.flags["system-cgroups"],
		RootFs:         vmRootFs,
		ModTimes:       map[string]int64{},
	}
	kept := keptFromArchive(files, podsRootOf(m.CgroupDriver))
	for rel, data := range kept {
		if err := writeFile(out, rel, data); err != nil {
			return err
		}
		if strings.HasPrefix(rel, "cgroup/") {
			m.ModTimes[path.Dir(rel)] = 0
			if path.Base(rel) == "cgroup.events" {
				m.ModTimes[rel] = 0
			}
		}
	}
	if err := writeVMPodFiles(out, info.pods); err != nil {
		return err
	}
	fmt.Printf("imported a v2 tree of %d files from %s into %s\n", len(kept), archive, out)
	return golden.WriteManifest(out, m)
}

// readArchive reads the regular files of a .tar.gz.
func readArchive(archive string) (map[string][]byte, error) {
	f, err := os.Open(archive)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", archive, err)
	}
	files := map[string][]byte{}
	r := tar.NewReader(gz)
	for {
		hdr, err := r.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", archive, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		data, err := io.ReadAll(r)
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", archive, hdr.Name, err)
		}
		files[path.Clean(hdr.Name)] = data
	}
}

// parseCaptureText reads "kernel: ...", "server flags: --a=b ...",
// "pod <ns>/<name> uid <uid> ..." and "  container <name> id <id> ...".
func parseCaptureText(text []byte) (*vmCapture, error) {
	if text == nil {
		return nil, errors.New("the archive has no CAPTURE.txt")
	}
	info := &vmCapture{flags: map[string]string{}}
	scanner := bufio.NewScanner(strings.NewReader(string(text)))
	for scanner.Scan() {
		line := scanner.Text()
		fields := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "kernel: "):
			info.kernel = strings.TrimPrefix(line, "kernel: ")
		case strings.HasPrefix(line, "server flags: "):
			for _, flag := range fields[2:] {
				name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
				info.flags[name] = value
			}
		case len(fields) >= 4 && fields[0] == "pod" && fields[2] == "uid":
			namespace, name, _ := strings.Cut(fields[1], "/")
			info.pods = append(info.pods, vmPod{namespace: namespace, name: name, uid: fields[3]})
		case len(fields) >= 4 && fields[0] == "container" && fields[2] == "id" && len(info.pods) > 0:
			pod := &info.pods[len(info.pods)-1]
			pod.containers = append(pod.containers, [2]string{fields[1], fields[3]})
		}
	}
	if root := info.flags["cgroup-root"]; root != "" && root != "/" {
		return nil, fmt.Errorf("CAPTURE.txt: --cgroup-root=%s; the golden tier assumes /", root)
	}
	return info, scanner.Err()
}

func podsRootOf(driver string) string {
	if driver == "systemd" {
		return "kubepods.slice"
	}
	return "kubepods"
}

// keptFromArchive picks what the server reads, by tree path: the kept
// files of every cgroup, the machine-wide /proc files, pid 1's network
// and the network of the pods' processes, /sys as copySys takes it, and
// /etc's two files.
func keptFromArchive(files map[string][]byte, podsRoot string) map[string][]byte {
	kept := map[string][]byte{}
	netPIDs := map[string]bool{"1": true}
	for name, data := range files {
		if rest, ok := strings.CutPrefix(name, "sys/fs/cgroup/"); ok && path.Base(rest) == "cgroup.procs" &&
			strings.HasPrefix(rest, podsRoot+"/") {
			for _, pid := range strings.Fields(string(data)) {
				netPIDs[pid] = true
			}
		}
	}
	for name, data := range files {
		if rel, ok := keptArchivePath(name, netPIDs); ok {
			kept[rel] = data
		}
	}
	return kept
}

func keptArchivePath(name string, netPIDs map[string]bool) (string, bool) {
	parts := strings.Split(name, "/")
	switch {
	case strings.HasPrefix(name, "sys/fs/cgroup/"):
		return "cgroup/" + strings.TrimPrefix(name, "sys/fs/cgroup/"), keepFile("", path.Base(name))
	case name == "etc/machine-id" || name == "etc/os-release":
		return name, true
	case parts[0] == "proc" && len(parts) == 4 && parts[2] == "net" && parts[3] == "dev":
		return name, netPIDs[parts[1]]
	case parts[0] == "proc":
		rest := strings.TrimPrefix(name, "proc/")
		return name, rest == "sys/kernel/random/boot_id" || slices.Contains(procFiles, rest)
	case parts[0] == "sys":
		return name, keptSysFile(parts[1:])
	}
	return "", false
}

// keptSysFile is copySys's selection for a path below /sys.
func keptSysFile(parts []string) bool {
	joined := strings.Join(parts, "/")
	switch {
	case len(parts) == 4 && parts[0] == "class" && parts[1] == "net":
		// The VM's kss-e2e1 bridge is there for good, unlike this host's.
		return !cadvisorIgnoredNetDevice(parts[2])
	case len(parts) >= 3 && parts[0] == "block":
		dev := parts[1]
		return !strings.HasPrefix(dev, "loop") && !strings.HasPrefix(dev, "ram") && !strings.HasPrefix(dev, "dm-")
	case len(parts) == 5 && strings.HasPrefix(joined, "kernel/mm/hugepages/"):
		return parts[4] == "nr_hugepages"
	}
	return joined == "class/dmi/id/product_uuid" || joined == "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"
}

// writeVMPodFiles writes the log layout that names the VM's pods and their
// containers, as writePodFiles does for the capture's own pods.
func writeVMPodFiles(out string, pods []vmPod) error {
	for _, pod := range pods {
		podDir := pod.namespace + "_" + pod.name + "_" + pod.uid
		for _, ctr := range pod.containers {
			name, id := ctr[0], ctr[1]
			for _, f := range []string{
				path.Join("var/log/pods", podDir, name, "0.log"),
				path.Join("var/log/containers", pod.name+"_"+pod.namespace+"_"+name+"-"+id+".log"),
			} {
				if err := writeFile(out, f, nil); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
