package cadvisor

import (
	"bytes"
	"errors"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// readInto reads a small pseudo-file (cgroupfs, procfs) into buf, growing it
// when needed, and returns the filled part. Reusing buf across calls keeps
// the housekeeping pass free of per-file allocations. Errors are
// *os.PathError so that os.IsNotExist and errors.Is work.
func readInto(buf []byte, path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return buf[:0], &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for {
		if n == len(buf) {
			buf = append(buf[:n], make([]byte, max(len(buf), 4096))...)
		}
		m, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return buf[:0], &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return buf[:n], nil
		}
		n += m
	}
}

// isVanished reports whether err means the cgroup (or process) went away
// while we read it, which is routine and never worth an error log.
func isVanished(err error) bool {
	return errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ESRCH)
}

// parseTrimmedUint parses a one-value file such as "4096\n"; "max" is
// MaxUint64 and negative values (cfs_quota_us -1) are returned through ok=false.
func parseTrimmedUint(data []byte) (uint64, bool) {
	s := string(bytes.TrimSpace(data))
	if s == "max" {
		return ^uint64(0), true
	}
	v, err := strconv.ParseUint(s, 10, 64)
	return v, err == nil
}

// countProcs counts the lines of a cgroup.procs file and returns the first
// pid listed (0 when empty).
func countProcs(data []byte) (count uint64, first int) {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		if count == 0 {
			first, _ = strconv.Atoi(string(line))
		}
		count++
	}
	return count, first
}
