package collector

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// maxStackPath bounds the paths openFile NUL-terminates on the stack;
// longer ones take unix.Openat's heap copy.
const maxStackPath = 512

// cgroupDir is a cgroup's directory in one hierarchy, kept as the
// hierarchy's mount and the cgroup's name: the mount is shared by every
// cgroup and the name by everything that refers to the cgroup, and the path
// is put together on the stack when a file in it is opened. Joined paths,
// one per cgroup and hierarchy, were a fifth of the collector's live heap at
// 2,000 cgroups.
type cgroupDir struct {
	mount string
	// name is the cgroup's name, "/" for the root; "" makes mount a plain
	// path (plainDir).
	name string
}

// plainDir is the directory (or file) at path, outside any hierarchy.
func plainDir(path string) cgroupDir { return cgroupDir{mount: path} }

// appendPath appends the directory's path, as filepath.Join(mount, name)
// spells it (both are clean).
func (d cgroupDir) appendPath(p []byte) []byte {
	p = append(p, d.mount...)
	if len(d.name) > 1 {
		if strings.HasSuffix(d.mount, "/") {
			return append(p, d.name[1:]...)
		}
		return append(p, d.name...)
	}
	return p
}

// String is the directory's path, for errors and discovery; the pass never
// needs it.
func (d cgroupDir) String() string {
	var buf [maxStackPath]byte
	return string(d.appendPath(buf[:0]))
}

// file is the path of a file in the directory.
func (d cgroupDir) file(name string) string {
	var buf [maxStackPath]byte
	p := d.appendPath(buf[:0])
	if name != "" {
		p = append(append(p, '/'), name...)
	}
	return string(p)
}

// readInto reads a small pseudo-file (cgroupfs, procfs) into buf, growing it
// when needed, and returns the filled part. Reusing buf across calls keeps
// the housekeeping pass free of per-file allocations. Errors are
// *os.PathError so that os.IsNotExist and errors.Is work.
func readInto(buf []byte, path string) ([]byte, error) {
	return readFile(buf, unix.AT_FDCWD, plainDir(path), "", false)
}

// readListAt reads dir/name, a file listed record by record, like readInto.
func readListAt(buf []byte, dir cgroupDir, name string) ([]byte, error) {
	return readFile(buf, unix.AT_FDCWD, dir, name, false)
}

// readFileAt reads the cgroup control file dir/name into buf like
// readInto. With dirfd from openDir, name is opened relative to it: a pass
// reads most of a cgroup's files from one or two directories, and looking
// the directory up once instead of once per file takes a sixth off the
// kernel's cost on v1's memory controller (its path has a 64-character
// container ID). With unix.AT_FDCWD the path is dir/name.
//
// A control file (and a pressure file) is generated in one piece: kernfs
// shows it in a single record, so a read that does not fill buf returned
// all of it, and the read that would return 0 is skipped. Files listed
// record by record (cgroup.procs, /proc/<pid>/net/dev) go through readInto
// or readListAt, which read to the end: their short reads stop at a page.
func readFileAt(buf []byte, dirfd int, dir cgroupDir, name string) ([]byte, error) {
	return readFile(buf, dirfd, dir, name, true)
}

func readFile(buf []byte, dirfd int, dir cgroupDir, name string, onePiece bool) ([]byte, error) {
	fd, err := openFile(dirfd, dir, name, unix.O_RDONLY|unix.O_CLOEXEC)
	if err != nil {
		return buf[:0], &os.PathError{Op: "open", Path: dir.file(name), Err: err}
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
			return buf[:0], &os.PathError{Op: "read", Path: dir.file(name), Err: err}
		}
		n += m
		if m == 0 || (onePiece && n < len(buf)) {
			return buf[:n], nil
		}
	}
}

// openDir opens a directory for readFileAt (O_PATH: no open of the
// directory's contents, only the lookup). The caller closes it.
func openDir(dir cgroupDir) (int, error) {
	fd, err := openFile(unix.AT_FDCWD, dir, "", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: dir.String(), Err: err}
	}
	return fd, nil
}

// openFile opens dir/name (name relative to dirfd when dirfd is a
// directory descriptor, see readFileAt) with openat(2). The NUL-terminated
// path the kernel needs is assembled on the stack, so that opening
// allocates nothing: unix.Openat copies every path to the heap, a few
// hundred thousand small allocations per pass on a large node.
func openFile(dirfd int, dir cgroupDir, name string, flags int) (int, error) {
	var path [maxStackPath]byte
	p := path[:0]
	if dirfd == unix.AT_FDCWD {
		p = dir.appendPath(p)
		if name != "" {
			p = append(append(p, '/'), name...)
		}
	} else {
		p = append(p, name...)
	}
	if len(p) >= len(path) || bytes.IndexByte(p, 0) >= 0 {
		return unix.Openat(dirfd, string(p), flags, 0)
	}
	p = append(p, 0)
	for {
		fd, _, errno := syscall.Syscall6(unix.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&p[0])), uintptr(flags), 0, 0, 0)
		switch errno {
		case 0:
			return int(fd), nil
		case unix.EINTR:
			continue
		}
		return -1, errno
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

// parseCgroupValue parses a one-value cgroup file as opencontainers/cgroups'
// GetCgroupParamUint does: "max" is MaxUint64, and a negative number is 0
// (some memory counters go negative through kernel bugs).
func parseCgroupValue(data []byte) (uint64, error) {
	value := bytes.TrimSpace(data)
	if string(value) == "max" {
		return math.MaxUint64, nil
	}
	return parseCounter(value)
}

// parseCounter parses an unsigned decimal the library's way (a negative
// number is 0) without the string conversion strconv needs.
func parseCounter(value []byte) (uint64, error) {
	if v, ok := parseDecimal(value); ok {
		return v, nil
	}
	if len(value) > 1 && value[0] == '-' && allDigits(value[1:]) {
		return 0, nil
	}
	return 0, fmt.Errorf("not a counter: %q", value)
}

func allDigits(b []byte) bool {
	for _, c := range b {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(b) > 0
}

// nextKeyValue splits the first "key value" line off a flat-keyed cgroup
// file (memory.stat, cpu.stat, memory.events, ...). Empty lines are
// skipped; ok is false at the end of data.
func nextKeyValue(data []byte) (key, value, rest []byte, ok bool) {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if len(line) == 0 {
			continue
		}
		key, value, _ = bytes.Cut(line, []byte{' '})
		return key, value, data, true
	}
	return nil, nil, nil, false
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
			if pid, ok := parseDecimal(line); ok && pid <= math.MaxInt32 {
				first = int(pid)
			}
		}
		count++
	}
	return count, first
}

// appendSubdirs appends the names of dir's subdirectories to names, in the
// order the kernel lists them. It reads the directory with getdents64 into
// buf and takes the type from each entry (cgroupfs reports it; an entry of
// unknown type is looked up with fstatat), so that it allocates only the
// names it returns: os.ReadDir allocates and sorts an entry for each of the
// thirty to seventy files of every cgroup directory, which made up most of
// a rescan's garbage.
func appendSubdirs(names []string, dir string, buf []byte) ([]string, error) {
	fd, err := openFile(unix.AT_FDCWD, plainDir(dir), "", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return names, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return names, &os.PathError{Op: "getdents", Path: dir, Err: err}
		}
		if n <= 0 {
			return names, nil
		}
		names = appendDirents(names, fd, buf[:n])
	}
}

// appendDirents parses linux_dirent64 records (inode, offset, record
// length, type, NUL-terminated name) and appends the directories' names.
func appendDirents(names []string, fd int, records []byte) []string {
	const nameOffset = 19 // 8 inode + 8 offset + 2 length + 1 type
	for len(records) >= nameOffset {
		length := int(binary.NativeEndian.Uint16(records[16:18]))
		if length < nameOffset || length > len(records) {
			return names
		}
		kind := records[18]
		name := records[nameOffset:length]
		if end := bytes.IndexByte(name, 0); end >= 0 {
			name = name[:end]
		}
		records = records[length:]
		if string(name) == "." || string(name) == ".." {
			continue
		}
		if kind == unix.DT_UNKNOWN {
			var st unix.Stat_t
			if unix.Fstatat(fd, string(name), &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
				continue
			}
		} else if kind != unix.DT_DIR {
			continue
		}
		names = append(names, string(name))
	}
	return names
}
