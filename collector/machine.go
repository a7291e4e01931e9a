package collector

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/procfs"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// ReadMachine reads the machine facts once at start. /proc/meminfo and
// btime of /proc/stat are required; anything else that is missing is left
// zero. Files outside /proc and /sys (/etc/machine-id) are looked up under
// the parent of procRoot, so "/host/proc" reads "/host/etc/machine-id".
func ReadMachine(procRoot, sysRoot string) (*cadvisor.Machine, error) {
	fs, err := procfs.NewFS(procRoot)
	if err != nil {
		return nil, fmt.Errorf("open procfs at %s: %w", procRoot, err)
	}
	stat, err := fs.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(procRoot, "stat"), err)
	}
	if stat.BootTime == 0 {
		return nil, fmt.Errorf("read %s: no btime", filepath.Join(procRoot, "stat"))
	}
	meminfo, err := fs.Meminfo()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(procRoot, "meminfo"), err)
	}
	if meminfo.MemTotal == nil {
		return nil, fmt.Errorf("read %s: no MemTotal", filepath.Join(procRoot, "meminfo"))
	}
	rootDir := filepath.Dir(filepath.Clean(procRoot))
	m := &cadvisor.Machine{
		Timestamp:      time.Now(),
		BootTime:       time.Unix(int64(stat.BootTime), 0),
		MemoryCapacity: *meminfo.MemTotal * 1024,
		MachineID:      firstFileContent(filepath.Join(rootDir, "etc/machine-id"), filepath.Join(rootDir, "var/lib/dbus/machine-id")),
		BootID:         firstFileContent(filepath.Join(procRoot, "sys/kernel/random/boot_id")),
		SystemUUID:     firstFileContent(filepath.Join(sysRoot, "class/dmi/id/product_uuid")),
		HugePages:      readHugePages(filepath.Join(sysRoot, "kernel/mm/hugepages")),
		DiskMap:        readDisks(filepath.Join(sysRoot, "block")),
		NetworkDevices: readNetDevices(filepath.Join(sysRoot, "class/net")),
		KernelVersion:  firstFileContent(filepath.Join(procRoot, "sys/kernel/osrelease")),
		OSVersion:      osVersion(rootDir),
	}
	if meminfo.SwapTotal != nil {
		m.SwapCapacity = *meminfo.SwapTotal * 1024
	}
	if cpus, err := fs.CPUInfo(); err == nil {
		applyCPUInfo(m, cpus)
	}
	if khz, ok := parseTrimmedUint(readFileOrNil(filepath.Join(sysRoot, "devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq"))); ok {
		m.CPUFrequencyKHz = khz
	}
	return m, nil
}

// applyCPUInfo derives the CPU counts like cAdvisor's machine package.
func applyCPUInfo(m *cadvisor.Machine, cpus []procfs.CPUInfo) {
	cores := map[string]bool{}
	sockets := map[string]bool{}
	for _, cpu := range cpus {
		if m.CPUVendorID == "" {
			m.CPUVendorID = cpu.VendorID
		}
		if cpu.CoreID != "" {
			cores[cpu.CoreID] = true
		}
		if cpu.PhysicalID != "" {
			sockets[cpu.PhysicalID] = true
		}
	}
	m.NumCores = len(cpus)
	m.NumPhysicalCores = len(cores)
	m.NumSockets = len(sockets)
	if len(cpus) > 0 && cpus[0].CPUMHz > 0 {
		m.CPUFrequencyKHz = uint64(cpus[0].CPUMHz * 1000)
	}
}

// readNetDevices lists /sys/class/net like cAdvisor: every device except
// lo, veth*, docker* and nerdctl*.
func readNetDevices(dir string) []cadvisor.NetDevice {
	dirEntries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []cadvisor.NetDevice
	for _, de := range dirEntries {
		name := de.Name()
		if !isDir(filepath.Join(dir, name)) || isIgnoredInterface(name) {
			continue
		}
		dev := cadvisor.NetDevice{
			Name:       name,
			MacAddress: string(bytes.TrimSpace(readFileOrNil(filepath.Join(dir, name, "address")))),
		}
		if mtu, err := strconv.Atoi(string(bytes.TrimSpace(readFileOrNil(filepath.Join(dir, name, "mtu"))))); err == nil {
			dev.MTU = mtu
		}
		// Virtual devices report -1 or fail with EINVAL.
		if speed, ok := parseTrimmedUint(readFileOrNil(filepath.Join(dir, name, "speed"))); ok {
			dev.Speed = speed
		}
		out = append(out, dev)
	}
	return out
}

func readHugePages(dir string) []cadvisor.HugePages {
	dirEntries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []cadvisor.HugePages
	for _, de := range dirEntries {
		size, ok := strings.CutPrefix(de.Name(), "hugepages-")
		if !ok {
			continue
		}
		kb, err := strconv.ParseUint(strings.TrimSuffix(size, "kB"), 10, 64)
		if err != nil {
			continue
		}
		pages, _ := parseTrimmedUint(readFileOrNil(filepath.Join(dir, de.Name(), "nr_hugepages")))
		out = append(out, cadvisor.HugePages{PageSizeKB: kb, NumPages: pages})
	}
	return out
}

// readDisks lists /sys/block like cAdvisor's sysinfo.GetBlockDeviceInfo,
// skipping loop, ram and device-mapper devices.
func readDisks(dir string) map[string]cadvisor.Disk {
	dirEntries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := map[string]cadvisor.Disk{}
	for _, de := range dirEntries {
		name := de.Name()
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "ram") || strings.HasPrefix(name, "dm-") {
			continue
		}
		major, minor, ok := strings.Cut(string(bytes.TrimSpace(readFileOrNil(filepath.Join(dir, name, "dev")))), ":")
		if !ok {
			continue
		}
		disk := cadvisor.Disk{Name: name, Scheduler: "none"}
		disk.Major, _ = strconv.ParseUint(major, 10, 64)
		disk.Minor, _ = strconv.ParseUint(minor, 10, 64)
		if sectors, ok := parseTrimmedUint(readFileOrNil(filepath.Join(dir, name, "size"))); ok {
			disk.Size = sectors * 512
		}
		disk.Scheduler = selectedScheduler(readFileOrNil(filepath.Join(dir, name, "queue/scheduler")))
		out[major+":"+minor] = disk
	}
	return out
}

// selectedScheduler picks the bracketed entry of "mq-deadline [none]".
func selectedScheduler(data []byte) string {
	for _, field := range strings.Fields(string(data)) {
		if strings.HasPrefix(field, "[") && strings.HasSuffix(field, "]") {
			return strings.Trim(field, "[]")
		}
	}
	return "none"
}

func readFileOrNil(path string) []byte {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return data
}

func firstFileContent(paths ...string) string {
	for _, path := range paths {
		if data, err := os.ReadFile(path); err == nil {
			return string(bytes.TrimSpace(data))
		}
	}
	return ""
}

// osVersion is cAdvisor's ContainerOsVersion read below rootDir.
func osVersion(rootDir string) string {
	for _, path := range []string{"etc/os-release", "usr/lib/os-release"} {
		if data, err := os.ReadFile(filepath.Join(rootDir, path)); err == nil {
			return osPrettyName(data)
		}
	}
	return "Unknown"
}

// osPrettyName is PRETTY_NAME of an os-release file, unquoted; "Linux" when
// there is none, as cAdvisor's getContainerOsVersion answers.
func osPrettyName(osRelease []byte) string {
	for _, line := range strings.Split(string(osRelease), "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), "PRETTY_NAME="); ok {
			if unquoted, err := strconv.Unquote(value); err == nil {
				return unquoted
			}
			return strings.Trim(value, `"'`)
		}
	}
	return "Linux"
}
