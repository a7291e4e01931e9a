// Package golden is the golden tier: cgroupfs, procfs and sysfs trees
// captured from real machines (testdata/trees), the collector, provider and
// read-only server run over them as a normal user, and /stats/summary,
// /metrics/resource and /metrics/cadvisor diffed against checked-in answers
// (testdata/golden), in node_exporter's end-to-end style.
//
// A tree is the capture of one machine: cgroup/ (the --cgroup-mount), proc/
// (--proc-root), sys/ (the sysfs root), etc/ (os-release and machine-id,
// read next to proc/ as the server does), var/log/pods and
// var/log/containers (the pods' names, without a runtime), var/lib/kubelet
// (--root-dir), and capture.json, the Manifest: what a regular file cannot
// carry (cgroup creation times, statfs of the node's filesystem) and the
// flags the capture implies. capture/ creates the pods on a real machine and
// writes a tree (make golden-capture).
package golden

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ManifestFile is the manifest's name at the top of a tree.
const ManifestFile = "capture.json"

// Manifest describes a captured tree.
type Manifest struct {
	// Hierarchy is the captured machine's cgroup layout: "v1", "hybrid"
	// or "v2".
	Hierarchy string `json:"hierarchy"`
	// Kernel is the captured machine's kernel release, for the reader.
	Kernel string `json:"kernel"`
	// NodeName is the name the server is given (--node-name).
	NodeName string `json:"nodeName"`
	// CgroupDriver is the pods' layout ("cgroupfs" or "systemd").
	CgroupDriver string `json:"cgroupDriver"`
	// KubeletCgroups, RuntimeCgroups and SystemCgroups are the flags of
	// the same names; without KubeletCgroups the kubelet's cgroup is found
	// from proc/, as the server does.
	KubeletCgroups string `json:"kubeletCgroups,omitempty"`
	RuntimeCgroups string `json:"runtimeCgroups,omitempty"`
	SystemCgroups  string `json:"systemCgroups,omitempty"`
	// RootFs is statfs of the captured node's kubelet filesystem: the tree
	// lives on whatever filesystem checks it out.
	RootFs RootFs `json:"rootFs"`
	// ModTimes are the modification times, in unix nanoseconds, of the
	// cgroup directories and files the collector derives creation times
	// from, by slash-separated path relative to the tree; git keeps none.
	ModTimes map[string]int64 `json:"modTimes"`
}

// RootFs is the statfs figures the server reports for node.fs.
type RootFs struct {
	Capacity   uint64 `json:"capacity"`
	Available  uint64 `json:"available"`
	Usage      uint64 `json:"usage"`
	Inodes     uint64 `json:"inodes"`
	InodesFree uint64 `json:"inodesFree"`
}

// ReadManifest reads the manifest of the tree at dir.
func ReadManifest(dir string) (*Manifest, error) {
	data, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, fmt.Errorf("read the tree's manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, ManifestFile), err)
	}
	return &m, nil
}

// WriteManifest writes m into the tree at dir.
func WriteManifest(dir string, m *Manifest) error {
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode the manifest: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ManifestFile), append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("write the manifest: %w", err)
	}
	return nil
}
