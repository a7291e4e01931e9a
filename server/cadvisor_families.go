package server

import (
	"fmt"
	"strconv"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
)

// The families of cAdvisor v0.56.2's Prometheus collectors
// (metrics/prometheus.go, prometheus_machine.go) for the kubelet's metric
// set, with their names, help, types, label names and values exactly as
// cAdvisor computes them from a ContainerInfo. TestCadvisorTextMatchesCollectors
// compares the text written from this table with the collectors' own output
// byte for byte. Families of metric kinds the kubelet does not include
// (schedstat, hugetlb, NUMA, perf, resctrl, TCP/UDP, referenced memory,
// cpuset) and application metrics (never in a ContainerInfo built here) are
// left out.

// stampKind is the timestamp a family's samples carry.
type stampKind uint8

const (
	// stampNone: the spec families and the scrape error gauges.
	stampNone stampKind = iota //nolint:unused // the zero value the spec families leave unset
	// stampStats: the newest sample's time.
	stampStats
	// stampNow: container_last_seen, the scrape's time.
	stampNow
)

// containerFamily is one family of the container collector.
type containerFamily struct {
	name, help string
	counter    bool
	// extra are the labels after the base ones, in the order values
	// returns them.
	extra []string
	stamp stampKind
	// spec families are written for every container, from its spec; the
	// others only for containers with a sample.
	spec bool
	// values appends the family's values of one container (stats is nil
	// for spec families).
	values func(out []seriesValue, info *cadvisorapi.ContainerInfo, stats *cadvisorapi.ContainerStats) []seriesValue
}

// seriesValue is one sample of a family for one container: its extra label
// values (as many as the family's extra names) and its value.
type seriesValue struct {
	extra [4]string
	value float64
}

func one(out []seriesValue, value float64, extra ...string) []seriesValue {
	v := seriesValue{value: value}
	copy(v.extra[:], extra)
	return append(out, v)
}

// statValue is a family with one value from the newest sample.
func statValue(name, help string, counter bool, value func(*cadvisorapi.ContainerStats) float64) containerFamily {
	return containerFamily{name: name, help: help, counter: counter, stamp: stampStats,
		values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
			return one(out, value(s))
		}}
}

// cfsValue is a CFS family: only for containers with a CPU quota.
func cfsValue(name, help string, value func(*cadvisorapi.CpuCFS) float64) containerFamily {
	return containerFamily{name: name, help: help, counter: true, stamp: stampStats,
		values: func(out []seriesValue, info *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
			if info.Spec.Cpu.Quota == 0 {
				return out
			}
			return one(out, value(&s.Cpu.CFS))
		}}
}

func seconds(ns uint64) float64 { return float64(ns) / float64(time.Second) }

// microseconds is cAdvisor's asMicrosecondsToSeconds.
func microseconds(us uint64) float64 { return float64(us) / 1e6 }

// ioValues is cAdvisor's ioValues: one value per device of the per-disk
// table (the key's value, 0 when absent) and then per filesystem.
func ioValues(out []seriesValue, disks []cadvisorapi.PerDiskStats, key string, convert func(uint64) float64,
	fs []cadvisorapi.FsStats, fsValue func(*cadvisorapi.FsStats) float64) []seriesValue {
	for _, disk := range disks {
		out = one(out, convert(disk.Stats[key]), disk.Device)
	}
	if fsValue == nil {
		return out
	}
	for i := range fs {
		out = one(out, fsValue(&fs[i]), fs[i].Device)
	}
	return out
}

func diskIOFamily(name, help string, counter bool, table func(*cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats, key string,
	convert func(uint64) float64, fsValue func(*cadvisorapi.FsStats) float64) containerFamily {
	return containerFamily{name: name, help: help, counter: counter, extra: []string{"device"}, stamp: stampStats,
		values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
			var disks []cadvisorapi.PerDiskStats
			if table != nil {
				disks = table(&s.DiskIo)
			}
			return ioValues(out, disks, key, convert, s.Filesystem, fsValue)
		}}
}

func fsFamily(name, help string, value func(*cadvisorapi.FsStats) float64) containerFamily {
	return diskIOFamily(name, help, false, nil, "", nil, value)
}

func networkFamily(name, help string, value func(*cadvisorapi.InterfaceStats) uint64) containerFamily {
	return containerFamily{name: name, help: help, counter: true, extra: []string{"interface"}, stamp: stampStats,
		values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
			for i := range s.Network.Interfaces {
				out = one(out, float64(value(&s.Network.Interfaces[i])), s.Network.Interfaces[i].Name)
			}
			return out
		}}
}

func specFamily(name, help string, value func(*cadvisorapi.ContainerSpec) (float64, bool)) containerFamily {
	return containerFamily{name: name, help: help, spec: true,
		values: func(out []seriesValue, info *cadvisorapi.ContainerInfo, _ *cadvisorapi.ContainerStats) []seriesValue {
			if v, ok := value(&info.Spec); ok {
				return one(out, v)
			}
			return out
		}}
}

// maxMemorySize is cAdvisor's "unlimited" threshold for memory specs.
const maxMemorySize = uint64(1 << 62)

func specMemoryValue(v uint64) float64 {
	if v > maxMemorySize {
		return 0
	}
	return float64(v)
}

// containerFamilies returns the container collector's families for the
// kubelet's metric set, plus the pressure families when psi.
func containerFamilies(psi bool) []containerFamily {
	families := []containerFamily{
		{name: "container_last_seen", help: "Last time a container was seen by the exporter", stamp: stampNow,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, _ *cadvisorapi.ContainerStats) []seriesValue {
				return out // filled in by the writer, which knows the scrape time
			}},
		statValue("container_health_state", "The result of the container's health check", false, func(s *cadvisorapi.ContainerStats) float64 {
			switch s.Health.Status {
			case "healthy":
				return 1
			case "":
				return -1
			}
			return 0
		}),
		specFamily("container_start_time_seconds", "Start time of the container since unix epoch in seconds.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return float64(s.CreationTime.Unix()), true
		}),
		specFamily("container_spec_cpu_period", "CPU period of the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return float64(s.Cpu.Period), s.HasCpu
		}),
		specFamily("container_spec_cpu_quota", "CPU quota of the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return float64(s.Cpu.Quota), s.HasCpu && s.Cpu.Quota != 0
		}),
		specFamily("container_spec_cpu_shares", "CPU share of the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return float64(s.Cpu.Limit), s.HasCpu
		}),
		specFamily("container_spec_memory_limit_bytes", "Memory limit for the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return specMemoryValue(s.Memory.Limit), s.HasMemory
		}),
		specFamily("container_spec_memory_swap_limit_bytes", "Memory swap limit for the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return specMemoryValue(s.Memory.SwapLimit), s.HasMemory
		}),
		specFamily("container_spec_memory_reservation_limit_bytes", "Memory reservation limit for the container.", func(s *cadvisorapi.ContainerSpec) (float64, bool) {
			return specMemoryValue(s.Memory.Reservation), s.HasMemory
		}),

		// CpuUsageMetrics
		statValue("container_cpu_user_seconds_total", "Cumulative user cpu time consumed in seconds.", true, func(s *cadvisorapi.ContainerStats) float64 {
			return seconds(s.Cpu.Usage.User)
		}),
		statValue("container_cpu_system_seconds_total", "Cumulative system cpu time consumed in seconds.", true, func(s *cadvisorapi.ContainerStats) float64 {
			return seconds(s.Cpu.Usage.System)
		}),
		{name: "container_cpu_usage_seconds_total", help: "Cumulative cpu time consumed in seconds.", counter: true,
			extra: []string{"cpu"}, stamp: stampStats,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
				if len(s.Cpu.Usage.PerCpu) == 0 {
					if s.Cpu.Usage.Total > 0 {
						out = one(out, seconds(s.Cpu.Usage.Total), "total")
					}
					return out
				}
				for i, v := range s.Cpu.Usage.PerCpu {
					if v > 0 {
						out = one(out, seconds(v), fmt.Sprintf("cpu%02d", i))
					}
				}
				return out
			}},
		cfsValue("container_cpu_cfs_periods_total", "Number of elapsed enforcement period intervals.", func(c *cadvisorapi.CpuCFS) float64 {
			return float64(c.Periods)
		}),
		cfsValue("container_cpu_cfs_throttled_periods_total", "Number of throttled period intervals.", func(c *cadvisorapi.CpuCFS) float64 {
			return float64(c.ThrottledPeriods)
		}),
		cfsValue("container_cpu_cfs_throttled_seconds_total", "Total time duration the container has been throttled.", func(c *cadvisorapi.CpuCFS) float64 {
			return seconds(c.ThrottledTime)
		}),
		cfsValue("container_cpu_cfs_burst_periods_total", "Number of periods when burst occurs.", func(c *cadvisorapi.CpuCFS) float64 {
			return float64(c.BurstsPeriods)
		}),
		cfsValue("container_cpu_cfs_burst_seconds_total", "Total time duration the container has been bursted.", func(c *cadvisorapi.CpuCFS) float64 {
			return seconds(c.BurstTime)
		}),

		// CpuLoadMetrics
		statValue("container_cpu_load_average_10s", "Value of container cpu load average over the last 10 seconds.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Cpu.LoadAverage)
		}),
		statValue("container_cpu_load_d_average_10s", "Value of container cpu load.d average over the last 10 seconds.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Cpu.LoadDAverage)
		}),
		{name: "container_tasks_state", help: "Number of tasks in given state", extra: []string{"state"}, stamp: stampStats,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
				t := &s.TaskStats
				out = one(out, float64(t.NrSleeping), "sleeping")
				out = one(out, float64(t.NrRunning), "running")
				out = one(out, float64(t.NrStopped), "stopped")
				out = one(out, float64(t.NrUninterruptible), "uninterruptible")
				return one(out, float64(t.NrIoWait), "iowaiting")
			}},

		// MemoryUsageMetrics
		statValue("container_memory_cache", "Number of bytes of page cache memory.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.Cache)
		}),
		statValue("container_memory_rss", "Size of RSS in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.RSS)
		}),
		statValue("container_memory_kernel_usage", "Size of kernel memory allocated in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.KernelUsage)
		}),
		statValue("container_memory_mapped_file", "Size of memory mapped files in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.MappedFile)
		}),
		statValue("container_memory_swap", "Container swap usage in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.Swap)
		}),
		statValue("container_memory_failcnt", "Number of memory usage hits limits", true, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.Failcnt)
		}),
		statValue("container_memory_usage_bytes", "Current memory usage in bytes, including all memory regardless of when it was accessed", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.Usage)
		}),
		statValue("container_memory_max_usage_bytes", "Maximum memory usage recorded in bytes", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.MaxUsage)
		}),
		statValue("container_memory_working_set_bytes", "Current working set in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.WorkingSet)
		}),
		statValue("container_memory_total_active_file_bytes", "Current total active file in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.TotalActiveFile)
		}),
		statValue("container_memory_total_inactive_file_bytes", "Current total inactive file in bytes.", false, func(s *cadvisorapi.ContainerStats) float64 {
			return float64(s.Memory.TotalInactiveFile)
		}),
		{name: "container_memory_failures_total", help: "Cumulative count of memory allocation failures.", counter: true,
			extra: []string{"failure_type", "scope"}, stamp: stampStats,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
				out = one(out, float64(s.Memory.ContainerData.Pgfault), "pgfault", "container")
				out = one(out, float64(s.Memory.ContainerData.Pgmajfault), "pgmajfault", "container")
				out = one(out, float64(s.Memory.HierarchicalData.Pgfault), "pgfault", "hierarchy")
				return one(out, float64(s.Memory.HierarchicalData.Pgmajfault), "pgmajfault", "hierarchy")
			}},

		// DiskUsageMetrics
		fsFamily("container_fs_inodes_free", "Number of available Inodes", func(fs *cadvisorapi.FsStats) float64 { return float64(fs.InodesFree) }),
		fsFamily("container_fs_inodes_total", "Number of Inodes", func(fs *cadvisorapi.FsStats) float64 { return float64(fs.Inodes) }),
		fsFamily("container_fs_limit_bytes", "Number of bytes that can be consumed by the container on this filesystem.", func(fs *cadvisorapi.FsStats) float64 { return float64(fs.Limit) }),
		fsFamily("container_fs_usage_bytes", "Number of bytes that are consumed by the container on this filesystem.", func(fs *cadvisorapi.FsStats) float64 { return float64(fs.Usage) }),
	}
	families = append(families, diskIOFamilies()...)
	families = append(families, networkFamilies()...)
	families = append(families, processFamilies()...)
	families = append(families, statValue("container_oom_events_total", "Count of out of memory events observed for the container", true,
		func(s *cadvisorapi.ContainerStats) float64 { return float64(s.OOMEvents) }))
	if psi {
		families = append(families, pressureFamilies()...)
	}
	return families
}

func diskIOFamilies() []containerFamily {
	serviceBytes := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoServiceBytes }
	serviced := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoServiced }
	sectors := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.Sectors }
	merged := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoMerged }
	serviceTime := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoServiceTime }
	queued := func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoQueued }
	count := func(v uint64) float64 { return float64(v) }
	costFamily := func(name, help string, table func(*cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats) containerFamily {
		return diskIOFamily(name, help, true, table, "Count", microseconds, nil)
	}
	return []containerFamily{
		diskIOFamily("container_fs_reads_bytes_total", "Cumulative count of bytes read", true, serviceBytes, "Read", count, nil),
		diskIOFamily("container_fs_reads_total", "Cumulative count of reads completed", true, serviced, "Read", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.ReadsCompleted) }),
		diskIOFamily("container_fs_sector_reads_total", "Cumulative count of sector reads completed", true, sectors, "Read", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.SectorsRead) }),
		diskIOFamily("container_fs_reads_merged_total", "Cumulative count of reads merged", true, merged, "Read", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.ReadsMerged) }),
		diskIOFamily("container_fs_read_seconds_total", "Cumulative count of seconds spent reading", true, serviceTime, "Read", seconds,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.ReadTime) / float64(time.Second) }),
		diskIOFamily("container_fs_writes_bytes_total", "Cumulative count of bytes written", true, serviceBytes, "Write", count, nil),
		diskIOFamily("container_fs_writes_total", "Cumulative count of writes completed", true, serviced, "Write", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.WritesCompleted) }),
		diskIOFamily("container_fs_sector_writes_total", "Cumulative count of sector writes completed", true, sectors, "Write", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.SectorsWritten) }),
		diskIOFamily("container_fs_writes_merged_total", "Cumulative count of writes merged", true, merged, "Write", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.WritesMerged) }),
		diskIOFamily("container_fs_write_seconds_total", "Cumulative count of seconds spent writing", true, serviceTime, "Write", seconds,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.WriteTime) / float64(time.Second) }),
		diskIOFamily("container_fs_io_current", "Number of I/Os currently in progress", false, queued, "Total", count,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.IoInProgress) }),
		diskIOFamily("container_fs_io_time_seconds_total", "Cumulative count of seconds spent doing I/Os", true, serviceTime, "Total", seconds,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.IoTime) / float64(time.Second) }),
		diskIOFamily("container_fs_io_time_weighted_seconds_total", "Cumulative weighted I/O time in seconds", true, nil, "", nil,
			func(fs *cadvisorapi.FsStats) float64 { return float64(fs.WeightedIoTime) / float64(time.Second) }),
		costFamily("container_fs_io_cost_usage_seconds_total", "Cumulative IOCost usage in seconds",
			func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoCostUsage }),
		costFamily("container_fs_io_cost_wait_seconds_total", "Cumulative IOCost wait in seconds",
			func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoCostWait }),
		costFamily("container_fs_io_cost_indebt_seconds_total", "Cumulative IOCost debt in seconds",
			func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoCostIndebt }),
		costFamily("container_fs_io_cost_indelay_seconds_total", "Cumulative IOCost delay in seconds",
			func(d *cadvisorapi.DiskIoStats) []cadvisorapi.PerDiskStats { return d.IoCostIndelay }),
		{name: "container_blkio_device_usage_total", help: "Blkio Device bytes usage", counter: true,
			extra: []string{"device", "major", "minor", "operation"}, stamp: stampStats,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
				for _, disk := range s.DiskIo.IoServiceBytes {
					major, minor := strconv.Itoa(int(disk.Major)), strconv.Itoa(int(disk.Minor))
					for operation, value := range disk.Stats {
						out = one(out, float64(value), disk.Device, major, minor, operation)
					}
				}
				return out
			}},
	}
}

func networkFamilies() []containerFamily {
	return []containerFamily{
		networkFamily("container_network_receive_bytes_total", "Cumulative count of bytes received",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.RxBytes }),
		networkFamily("container_network_receive_packets_total", "Cumulative count of packets received",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.RxPackets }),
		networkFamily("container_network_receive_packets_dropped_total", "Cumulative count of packets dropped while receiving",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.RxDropped }),
		networkFamily("container_network_receive_errors_total", "Cumulative count of errors encountered while receiving",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.RxErrors }),
		networkFamily("container_network_transmit_bytes_total", "Cumulative count of bytes transmitted",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.TxBytes }),
		networkFamily("container_network_transmit_packets_total", "Cumulative count of packets transmitted",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.TxPackets }),
		networkFamily("container_network_transmit_packets_dropped_total", "Cumulative count of packets dropped while transmitting",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.TxDropped }),
		networkFamily("container_network_transmit_errors_total", "Cumulative count of errors encountered while transmitting",
			func(i *cadvisorapi.InterfaceStats) uint64 { return i.TxErrors }),
	}
}

func processFamilies() []containerFamily {
	return []containerFamily{
		statValue("container_processes", "Number of processes running inside the container.", false,
			func(s *cadvisorapi.ContainerStats) float64 { return float64(s.Processes.ProcessCount) }),
		statValue("container_file_descriptors", "Number of open file descriptors for the container.", false,
			func(s *cadvisorapi.ContainerStats) float64 { return float64(s.Processes.FdCount) }),
		statValue("container_sockets", "Number of open sockets for the container.", false,
			func(s *cadvisorapi.ContainerStats) float64 { return float64(s.Processes.SocketCount) }),
		statValue("container_threads_max", "Maximum number of threads allowed inside the container, infinity if value is zero", false,
			func(s *cadvisorapi.ContainerStats) float64 { return float64(s.Processes.ThreadsMax) }),
		statValue("container_threads", "Number of threads running inside the container", false,
			func(s *cadvisorapi.ContainerStats) float64 { return float64(s.Processes.ThreadsCurrent) }),
		{name: "container_ulimits_soft", help: "Soft ulimit values for the container root process. Unlimited if -1, except priority and nice",
			extra: []string{"ulimit"}, stamp: stampStats,
			values: func(out []seriesValue, _ *cadvisorapi.ContainerInfo, s *cadvisorapi.ContainerStats) []seriesValue {
				for _, u := range s.Processes.Ulimits {
					out = one(out, float64(u.SoftLimit), u.Name)
				}
				return out
			}},
	}
}

func pressureFamilies() []containerFamily {
	return []containerFamily{
		statValue("container_pressure_cpu_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to CPU congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.Cpu.PSI.Full.Total) }),
		statValue("container_pressure_cpu_waiting_seconds_total", "Total time duration tasks in the container have waited due to CPU congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.Cpu.PSI.Some.Total) }),
		statValue("container_pressure_memory_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to memory congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.Memory.PSI.Full.Total) }),
		statValue("container_pressure_memory_waiting_seconds_total", "Total time duration tasks in the container have waited due to memory congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.Memory.PSI.Some.Total) }),
		statValue("container_pressure_io_stalled_seconds_total", "Total time duration no tasks in the container could make progress due to IO congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.DiskIo.PSI.Full.Total) }),
		statValue("container_pressure_io_waiting_seconds_total", "Total time duration tasks in the container have waited due to IO congestion.", true,
			func(s *cadvisorapi.ContainerStats) float64 { return microseconds(s.DiskIo.PSI.Some.Total) }),
	}
}

// machineFamily is one family of the machine collector: labels boot_id,
// machine_id, system_uuid and extra.
type machineFamily struct {
	name, help string
	extra      []string
	values     func(out []seriesValue, m *cadvisorapi.MachineInfo) []seriesValue
}

func machineValue(name, help string, value func(*cadvisorapi.MachineInfo) float64) machineFamily {
	return machineFamily{name: name, help: help, values: func(out []seriesValue, m *cadvisorapi.MachineInfo) []seriesValue {
		return one(out, value(m))
	}}
}

func machineFamilies() []machineFamily {
	byType := func(value func(cadvisorapi.MemoryInfo) float64) func([]seriesValue, *cadvisorapi.MachineInfo) []seriesValue {
		return func(out []seriesValue, m *cadvisorapi.MachineInfo) []seriesValue {
			for memoryType, info := range m.MemoryByType {
				out = one(out, value(*info), memoryType)
			}
			return out
		}
	}
	return []machineFamily{
		machineValue("machine_cpu_physical_cores", "Number of physical CPU cores.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NumPhysicalCores) }),
		machineValue("machine_cpu_cores", "Number of logical CPU cores.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NumCores) }),
		machineValue("machine_cpu_sockets", "Number of CPU sockets.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NumSockets) }),
		machineValue("machine_cpu_books", "Number of CPU books.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NumBooks) }),
		machineValue("machine_cpu_drawers", "Number of CPU drawers.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NumDrawers) }),
		machineValue("machine_memory_bytes", "Amount of memory installed on the machine.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.MemoryCapacity) }),
		machineValue("machine_swap_bytes", "Amount of swap memory available on the machine.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.SwapCapacity) }),
		{name: "machine_dimm_count", help: "Number of RAM DIMM (all types memory modules) value labeled by dimm type.", extra: []string{"type"},
			values: byType(func(i cadvisorapi.MemoryInfo) float64 { return float64(i.DimmCount) })},
		{name: "machine_dimm_capacity_bytes", help: "Total RAM DIMM capacity (all types memory modules) value labeled by dimm type.", extra: []string{"type"},
			values: byType(func(i cadvisorapi.MemoryInfo) float64 { return float64(i.Capacity) })},
		{name: "machine_nvm_capacity", help: "NVM capacity value labeled by NVM mode (memory mode or app direct mode).", extra: []string{"mode"},
			values: func(out []seriesValue, m *cadvisorapi.MachineInfo) []seriesValue {
				out = one(out, float64(m.NVMInfo.MemoryModeCapacity), "memory_mode")
				return one(out, float64(m.NVMInfo.AppDirectModeCapacity), "app_direct_mode")
			}},
		machineValue("machine_nvm_avg_power_budget_watts", "NVM power budget.", func(m *cadvisorapi.MachineInfo) float64 { return float64(m.NVMInfo.AvgPowerBudget) }),
	}
}
