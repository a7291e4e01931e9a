package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// workEnv carries a worker's work as JSON; its presence makes the binary a
// worker.
const workEnv = "KSS_GOLDEN_WORK"

// work is what a container's process does once it is in its cgroups, so
// that the capture has something to show in every stat.
type work struct {
	// Comm renames the process (the kubelet's system container is found
	// by the name "kubelet").
	Comm      string `json:"comm,omitempty"`
	MemoryMiB int    `json:"memoryMiB,omitempty"`
	// SpinMillis is wall time spent spinning on a CPU (throttled under a
	// CPU quota).
	SpinMillis int `json:"spinMillis,omitempty"`
	// WriteMiB is written, and synced, to a file in WriteDir: page cache
	// and block I/O.
	WriteMiB int    `json:"writeMiB,omitempty"`
	WriteDir string `json:"writeDir,omitempty"`
	// Packets UDP datagrams go to UDPTarget (the host end of the pod's
	// veth, which answers with ICMP port unreachable).
	Packets   int    `json:"packets,omitempty"`
	UDPTarget string `json:"udpTarget,omitempty"`
}

// runWorker waits for "go" on stdin (the capture has moved it into its
// cgroups by then), does its work, says "ready" and holds everything until
// stdin closes.
func runWorker(spec string) error {
	var w work
	if err := json.Unmarshal([]byte(spec), &w); err != nil {
		return fmt.Errorf("parse %s: %w", workEnv, err)
	}
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return fmt.Errorf("wait for go: %w", err)
	}
	if w.Comm != "" {
		if err := os.WriteFile("/proc/self/comm", []byte(w.Comm), 0); err != nil {
			return fmt.Errorf("rename to %s: %w", w.Comm, err)
		}
	}
	held := touchMemory(w.MemoryMiB)
	spin(time.Duration(w.SpinMillis) * time.Millisecond)
	if err := writeScratch(w.WriteDir, w.WriteMiB); err != nil {
		return err
	}
	if err := sendPackets(w.UDPTarget, w.Packets); err != nil {
		return err
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, in)
	runtime.KeepAlive(held)
	return nil
}

// touchMemory allocates and writes every page so that it is resident.
func touchMemory(mebibytes int) []byte {
	buf := make([]byte, mebibytes<<20)
	for i := 0; i < len(buf); i += 4096 {
		buf[i] = 1
	}
	return buf
}

func spin(d time.Duration) {
	var sink uint64
	for start := time.Now(); time.Since(start) < d; {
		for i := 0; i < 1_000_000; i++ {
			sink += uint64(i) ^ sink
		}
	}
	runtime.KeepAlive(sink)
}

// writeScratch writes and syncs the file, drops it from the page cache and
// reads it back: block I/O both ways, and page cache charged to the cgroup.
func writeScratch(dir string, mebibytes int) error {
	if mebibytes == 0 {
		return nil
	}
	f, err := os.CreateTemp(dir, "write-")
	if err != nil {
		return err
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i)
	}
	for range mebibytes {
		if _, err := f.Write(chunk); err != nil {
			return fmt.Errorf("write %s: %w", f.Name(), err)
		}
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("drop %s from the page cache: %w", f.Name(), err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, f)
	return err
}

func sendPackets(target string, n int) error {
	if n == 0 {
		return nil
	}
	conn, err := net.Dial("udp", target)
	if err != nil {
		return fmt.Errorf("dial %s: %w", target, err)
	}
	defer conn.Close()
	for range n {
		// Refused answers (ICMP) are expected and counted as received.
		_, _ = conn.Write([]byte("kubelet-stats-server golden capture"))
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}
