package cadvisor

import (
	"time"
)

// Machine is what cAdvisor's info/v1 MachineInfo reports that is cheap to
// read; topology, cloud and NVM details are left out.
type Machine struct {
	// Timestamp is when the facts were read.
	Timestamp time.Time
	// BootTime is btime of /proc/stat.
	BootTime    time.Time
	CPUVendorID string
	// NumCores counts logical CPUs (processor entries of /proc/cpuinfo).
	NumCores int
	// NumPhysicalCores and NumSockets count distinct "core id" and
	// "physical id" values, as cAdvisor does.
	NumPhysicalCores int
	NumSockets       int
	// CPUFrequencyKHz is cpuinfo_max_freq of cpu0, else "cpu MHz" × 1000.
	CPUFrequencyKHz uint64
	// MemoryCapacity is MemTotal in bytes; SwapCapacity is SwapTotal.
	MemoryCapacity uint64
	SwapCapacity   uint64
	MachineID      string
	BootID         string
	SystemUUID     string
	HugePages      []HugePages
	// DiskMap is keyed "major:minor" like cAdvisor's.
	DiskMap        map[string]Disk
	NetworkDevices []NetDevice
	// KernelVersion is the running kernel's release (uname -r) and OSVersion
	// PRETTY_NAME of the host's os-release, as cAdvisor's VersionInfo has them.
	KernelVersion string
	OSVersion     string
}

// HugePages is one huge page pool.
type HugePages struct {
	PageSizeKB uint64
	NumPages   uint64
}

// Disk is one block device of /sys/block.
type Disk struct {
	Name      string
	Major     uint64
	Minor     uint64
	Size      uint64 // bytes
	Scheduler string
}

// NetDevice is one network device of /sys/class/net.
type NetDevice struct {
	Name       string
	MacAddress string
	// Speed is in Mbit/s; 0 when the device does not report one.
	Speed uint64
	MTU   int
}
