package collector

import (
	"bytes"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// ReadRlimit reads the node's process limits like the kubelet's pidlimit
// package: MaxPID is min(kernel.pid_max, kernel.threads-max), CurProc the
// number of scheduling entities from /proc/loadavg, falling back to
// sysinfo(2). It never fails; what cannot be read stays nil.
func ReadRlimit(procRoot string) cadvisor.Rlimit {
	out := cadvisor.Rlimit{Timestamp: time.Now()}
	out.MaxPID = parseMaxPID(
		readFileOrNil(filepath.Join(procRoot, "sys/kernel/pid_max")),
		readFileOrNil(filepath.Join(procRoot, "sys/kernel/threads-max")),
	)
	if procs, ok := parseLoadavgProcs(readFileOrNil(filepath.Join(procRoot, "loadavg"))); ok {
		out.CurProc = &procs
	} else {
		var info unix.Sysinfo_t
		if err := unix.Sysinfo(&info); err == nil {
			procs := int64(info.Procs)
			out.CurProc = &procs
		}
	}
	return out
}

// parseMaxPID mirrors pidlimit_linux.go: each file's content minus its last
// byte (the newline) is parsed; the smaller readable value wins.
func parseMaxPID(pidMax, threadsMax []byte) *int64 {
	var out *int64
	for _, data := range [][]byte{pidMax, threadsMax} {
		if len(data) == 0 {
			continue
		}
		v, err := strconv.ParseInt(string(data[:len(data)-1]), 10, 64)
		if err != nil || v < 0 {
			continue
		}
		if out == nil || v < *out {
			out = &v
		}
	}
	return out
}

// parseLoadavgProcs returns the total after the '/' of the fourth field of
// /proc/loadavg ("0.10 0.20 0.30 1/123 4567" -> 123).
func parseLoadavgProcs(data []byte) (int64, bool) {
	fields := bytes.Fields(data)
	if len(fields) < 4 {
		return 0, false
	}
	_, total, ok := bytes.Cut(fields[3], []byte{'/'})
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseInt(string(total), 10, 64)
	return v, err == nil
}
