package collector

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// ioFiles is where a cgroup's per-device I/O is read on each tick: one file
// on v2, one or two on v1 (the second only when the first lists a device).
// They are in the cgroup's directory in the cgroup2 hierarchy (v2) or the
// blkio one (v1).
type ioFiles struct {
	// stat is whether v2's io.stat exists; false on v1 or when the io
	// controller is off.
	stat bool
	// blkio lists the v1 file pairs of blkioPairs that exist, in
	// cAdvisor's order of preference: the first pair whose io_serviced file
	// lists a device is used, as the library's BlkioGroup.GetStats does.
	blkio blkioChoice
}

type blkioFiles struct {
	serviced, serviceBytes string
}

// blkioPairs are the v1 blkio files cAdvisor (opencontainers/cgroups
// BlkioGroup.GetStats) takes its io_serviced and io_service_bytes from:
// bfq's own counters, which list only devices scheduled by bfq (so they are
// skipped when no disk uses it), then the throttle layer's recursive
// counters, or its flat ones on kernels without them. bfq's debug files and
// the cfq files of kernels before 5.0 are not read (docs/compatibility.md).
var blkioPairs = [...]blkioFiles{
	{"blkio.bfq.io_serviced_recursive", "blkio.bfq.io_service_bytes_recursive"},
	{"blkio.throttle.io_serviced_recursive", "blkio.throttle.io_service_bytes_recursive"},
	{"blkio.throttle.io_serviced", "blkio.throttle.io_service_bytes"},
}

const (
	blkioBFQ = iota
	blkioThrottleRecursive
	blkioThrottle
)

// blkioChoice is an ordered list of at most two pairs of blkioPairs, kept
// in the spec of every cgroup without an allocation.
type blkioChoice struct {
	pairs [2]uint8
	n     uint8
}

func (b *blkioChoice) add(pair int) {
	b.pairs[b.n] = uint8(pair)
	b.n++
}

// files returns the i-th pair of the choice.
func (b *blkioChoice) files(i int) *blkioFiles { return &blkioPairs[b.pairs[i]] }

// blkioCandidates chooses among blkioPairs those that exist in dir: bfq's
// when a disk uses bfq, then the throttle layer's recursive pair or its
// flat one.
func blkioCandidates(dir cgroupDir, bfq bool) blkioChoice {
	var out blkioChoice
	add := func(pair int) bool {
		if !fileExists(dir.file(blkioPairs[pair].serviced)) {
			return false
		}
		out.add(pair)
		return true
	}
	if bfq {
		add(blkioBFQ)
	}
	if !add(blkioThrottleRecursive) {
		add(blkioThrottle)
	}
	return out
}

// usesBFQ reports whether any disk's selected I/O scheduler is bfq.
func usesBFQ(disks map[string]cadvisor.Disk) bool {
	for _, disk := range disks {
		if disk.Scheduler == "bfq" {
			return true
		}
	}
	return false
}

// readDiskIO fills sample.DiskIO. A file that does not exist means no I/O
// data (the controller was turned off since the spec was read); a cgroup
// that vanished is noticed by the caller's cgroup.procs read.
func readDiskIO(sample *cadvisor.Sample, io *ioFiles, dir cgroupDir, buf *[]byte) error {
	if io.stat {
		data, err := readIOFile(buf, dir, "io.stat")
		if err != nil || data == nil {
			return err
		}
		devices, err := parseIOStat(data, nil)
		if err != nil {
			return fmt.Errorf("parse %s: %w", dir.file("io.stat"), err)
		}
		if len(devices) > 0 {
			sample.DiskIO = devices
		}
		return nil
	}
	for i := range int(io.blkio.n) {
		files := io.blkio.files(i)
		data, err := readIOFile(buf, dir, files.serviced)
		if err != nil {
			return err
		}
		devices, err := parseBlkio(data, nil, false)
		if err != nil {
			return fmt.Errorf("parse %s: %w", dir.file(files.serviced), err)
		}
		if len(devices) == 0 {
			continue
		}
		if data, err = readIOFile(buf, dir, files.serviceBytes); err != nil {
			return err
		}
		if devices, err = parseBlkio(data, devices, true); err != nil {
			return fmt.Errorf("parse %s: %w", dir.file(files.serviceBytes), err)
		}
		sample.DiskIO = devices
		return nil
	}
	return nil
}

// readIOFile reads dir/name into buf; nil data and no error when it does
// not exist.
func readIOFile(buf *[]byte, dir cgroupDir, name string) ([]byte, error) {
	data, err := readListAt(*buf, dir, name)
	*buf = data[:cap(data)]
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}

// parseIOStat parses cgroup2's io.stat ("8:0 rbytes=1 wbytes=2 rios=3
// wios=4 dbytes=0 dios=0 [cost.usage=...]") as the library's statIo maps it
// to v1's tables: rbytes/wbytes are io_service_bytes Read/Write, rios/wios
// io_serviced Read/Write, cost.* the iocost tables; other keys are ignored.
// Devices are appended to out in the file's order.
func parseIOStat(data []byte, out []cadvisor.DiskIO) ([]cadvisor.DiskIO, error) {
	if out == nil && len(data) > 0 {
		out = make([]cadvisor.DiskIO, 0, bytes.Count(data, []byte{'\n'})+1)
	}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		device, rest, ok := bytes.Cut(line, []byte{' '})
		if !ok {
			continue // a device with no stats, or an empty line
		}
		major, minor, err := parseMajorMinor(device)
		if err != nil {
			return nil, err
		}
		disk := cadvisor.DiskIO{Major: major, Minor: minor}
		for len(rest) > 0 {
			var field []byte
			field, rest, _ = bytes.Cut(rest, []byte{' '})
			key, value, ok := bytes.Cut(field, []byte{'='})
			if !ok {
				continue
			}
			if err := setIOStatKey(&disk, key, value); err != nil {
				return nil, fmt.Errorf("%s: %w", line, err)
			}
		}
		out = append(out, disk)
	}
	return out, nil
}

func setIOStatKey(disk *cadvisor.DiskIO, key, value []byte) error {
	var target *uint64
	switch string(key) {
	case "rbytes":
		target = &disk.Bytes[cadvisor.IORead]
		disk.HasBytes.Add(cadvisor.IORead)
	case "wbytes":
		target = &disk.Bytes[cadvisor.IOWrite]
		disk.HasBytes.Add(cadvisor.IOWrite)
	case "rios":
		target = &disk.IOs[cadvisor.IORead]
		disk.HasIOs.Add(cadvisor.IORead)
	case "wios":
		target = &disk.IOs[cadvisor.IOWrite]
		disk.HasIOs.Add(cadvisor.IOWrite)
	case "cost.usage", "cost.wait", "cost.indebt", "cost.indelay":
		target = costField(disk, string(key))
	default:
		return nil
	}
	v, ok := parseDecimal(value)
	if !ok {
		return fmt.Errorf("%s: not a counter: %q", key, value)
	}
	*target = v
	return nil
}

// parseDecimal parses an unsigned decimal counter without the allocation a
// string conversion for strconv costs (several per device and tick).
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		next := v*10 + uint64(c-'0')
		if next/10 != v {
			return 0, false // overflow
		}
		v = next
	}
	return v, true
}

func costField(disk *cadvisor.DiskIO, key string) *uint64 {
	if disk.Cost == nil {
		disk.Cost = &cadvisor.IOCost{}
	}
	switch key {
	case "cost.usage":
		return &disk.Cost.Usage
	case "cost.wait":
		return &disk.Cost.Wait
	case "cost.indebt":
		return &disk.Cost.Indebt
	}
	return &disk.Cost.Indelay
}

// parseBlkio parses a v1 blkio file ("8:0 Read 4096" lines, a closing
// "Total 4096"), into the devices of out (added in file order when new):
// the Bytes table when serviceBytes, else the IOs table.
func parseBlkio(data []byte, out []cadvisor.DiskIO, serviceBytes bool) ([]cadvisor.DiskIO, error) {
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		fields := bytes.Fields(line)
		if len(fields) == 0 || (len(fields) == 2 && string(fields[0]) == "Total") {
			continue
		}
		if len(fields) != 3 {
			return nil, fmt.Errorf("malformed line %q", line)
		}
		major, minor, err := parseMajorMinor(fields[0])
		if err != nil {
			return nil, err
		}
		op, ok := ioOpByName(fields[1])
		if !ok {
			continue // an operation cAdvisor's tables would carry but none of its metrics reads
		}
		value, ok := parseDecimal(fields[2])
		if !ok {
			return nil, fmt.Errorf("line %q: not a counter", line)
		}
		i := deviceIndex(out, major, minor)
		if i < 0 {
			out = append(out, cadvisor.DiskIO{Major: major, Minor: minor})
			i = len(out) - 1
		}
		if serviceBytes {
			out[i].Bytes[op] = value
			out[i].HasBytes.Add(op)
		} else {
			out[i].IOs[op] = value
			out[i].HasIOs.Add(op)
		}
	}
	return out, nil
}

func ioOpByName(name []byte) (cadvisor.IOOp, bool) {
	for op := range cadvisor.NumIOOps {
		if string(name) == op.String() {
			return op, true
		}
	}
	return 0, false
}

// deviceIndex finds a device in a short list (a node has a handful).
func deviceIndex(disks []cadvisor.DiskIO, major, minor uint64) int {
	for i := range disks {
		if disks[i].Major == major && disks[i].Minor == minor {
			return i
		}
	}
	return -1
}

func parseMajorMinor(device []byte) (uint64, uint64, error) {
	ma, mi, ok := bytes.Cut(device, []byte{':'})
	if !ok {
		return 0, 0, fmt.Errorf("device %q is not major:minor", device)
	}
	major, okMajor := parseDecimal(ma)
	minor, okMinor := parseDecimal(mi)
	if !okMajor || !okMinor {
		return 0, 0, fmt.Errorf("device %q is not major:minor", device)
	}
	return major, minor, nil
}
