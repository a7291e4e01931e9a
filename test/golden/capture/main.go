// Command capture writes a golden tree (see package golden) from this
// machine: it creates the pods of the scenario as cgroups in the kubelet's
// cgroupfs layout under a parent of its own, with real processes that use
// memory, CPU, disk and network, copies the files the server reads (the
// cgroups' directories, the root's, the /proc and /sys files) with the
// parent taken out of every name, and removes everything it created.
//
// It needs root and runs on cgroup v1, hybrid and v2 machines; the tree is
// named after the machine's layout:
//
//	go run ./test/golden/capture -trees test/golden/testdata/trees
//
// writes trees/hybrid on this project's test machine (make golden-capture);
// -out names the directory instead. The same binary, started with the
// workEnv environment variable, is the process put in each container's
// cgroup. With -import it makes a tree of the archive the cgroup v2 VM
// captures instead (test/v2vm, KSS_V2VM_CAPTURE), without root.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if spec, ok := os.LookupEnv(workEnv); ok {
		if err := runWorker(spec); err != nil {
			fmt.Fprintln(os.Stderr, "capture worker:", err)
			os.Exit(1)
		}
		return
	}
	trees := flag.String("trees", "", "write the tree to <trees>/<layout> (v1, hybrid or v2), replacing a tree there")
	out := flag.String("out", "", "write the tree to this directory instead, replacing a tree there")
	mount := flag.String("cgroup-mount", "/sys/fs/cgroup", "where the cgroup hierarchies are mounted")
	archive := flag.String("import", "", "instead of capturing, import the cgroup v2 VM's capture-<layout>.tar.gz (tree v2 or v2-systemd)")
	flag.Parse()
	if (*trees == "") == (*out == "") {
		fmt.Fprintln(os.Stderr, "capture: give one of -trees and -out")
		os.Exit(2)
	}
	var err error
	if *archive != "" {
		err = importArchive(*archive, *trees, *out)
	} else {
		err = run(*mount, *trees, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "capture:", err)
		os.Exit(1)
	}
}

func run(mount, trees, out string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("creating cgroups and network namespaces needs root")
	}
	h, err := detectHost(mount)
	if err != nil {
		return err
	}
	if out == "" {
		out = filepath.Join(trees, h.layout)
	}
	if err := prepareOut(out); err != nil {
		return err
	}
	// Not /tmp, which may be a tmpfs: the scratch files make block I/O.
	scratch, err := os.MkdirTemp("/var/tmp", "kss-golden-capture-")
	if err != nil {
		return err
	}
	h.ioDevice = diskOf(scratch)
	c := &capturer{host: h, parent: fmt.Sprintf("/kss-golden-%d", os.Getpid()), scratch: scratch}
	defer func() { err = errors.Join(err, c.cleanup(), os.RemoveAll(scratch)) }()
	if err := c.startScenario(); err != nil {
		return err
	}
	if err := c.writeTree(out); err != nil {
		return err
	}
	fmt.Printf("captured a %s tree of %d cgroups into %s\n", h.layout, len(c.created), out)
	return nil
}

// prepareOut empties out when it holds a previous tree (and nothing else
// would be deleted: a directory without a manifest is refused).
func prepareOut(out string) error {
	entries, err := os.ReadDir(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return os.MkdirAll(out, 0o755)
	case err != nil:
		return err
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(out, "capture.json")); err != nil {
		return fmt.Errorf("%s is not empty and holds no capture.json: refusing to replace it", out)
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	return os.MkdirAll(out, 0o755)
}
