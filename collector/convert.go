package collector

import (
	"fmt"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// memoryStat holds the memory.stat keys a sample uses; which of them land
// where is cAdvisor's choice (applyV1, applyV2). The other keys, two thirds
// of the file, are skipped unparsed.
type memoryStat struct {
	// v1, this cgroup only.
	cache, rss, mappedFile, swap uint64
	// v1, hierarchical.
	totalCache, totalRSS, totalMappedFile, totalSwap, totalActiveFile, totalInactiveFile uint64
	// v2 (always hierarchical).
	anon, file, fileMapped, activeFile, inactiveFile uint64
	// Both: this cgroup only on v1, hierarchical on v2.
	pgfault, pgmajfault uint64
}

// parseMemoryStat reads memory.stat ("key value" lines). A used key with a
// value that is not a counter is an error, as it is for the library;
// negative values read as 0.
func parseMemoryStat(data []byte) (memoryStat, error) {
	var m memoryStat
	for {
		key, value, rest, ok := nextKeyValue(data)
		if !ok {
			return m, nil
		}
		data = rest
		target := m.field(string(key))
		if target == nil {
			continue
		}
		v, err := parseCounter(value)
		if err != nil {
			return m, fmt.Errorf("memory.stat %s: %w", key, err)
		}
		*target = v
	}
}

func (m *memoryStat) field(key string) *uint64 {
	switch key {
	case "cache":
		return &m.cache
	case "rss":
		return &m.rss
	case "mapped_file":
		return &m.mappedFile
	case "swap":
		return &m.swap
	case "total_cache":
		return &m.totalCache
	case "total_rss":
		return &m.totalRSS
	case "total_mapped_file":
		return &m.totalMappedFile
	case "total_swap":
		return &m.totalSwap
	case "total_active_file":
		return &m.totalActiveFile
	case "total_inactive_file":
		return &m.totalInactiveFile
	case "anon":
		return &m.anon
	case "file":
		return &m.file
	case "file_mapped":
		return &m.fileMapped
	case "active_file":
		return &m.activeFile
	case "inactive_file":
		return &m.inactiveFile
	case "pgfault":
		return &m.pgfault
	case "pgmajfault":
		return &m.pgmajfault
	}
	return nil
}

// applyV1 follows cAdvisor's setMemoryStats (container/libcontainer/
// handler.go) on v1: the hierarchical total_* keys when
// memory.use_hierarchy is on, the cgroup's own otherwise; the file LRU
// sizes from the total_ keys either way, as cAdvisor reads them. The
// working set is left to the caller, which knows the usage.
func (m *memoryStat) applyV1(out *cadvisor.MemoryStats, useHierarchy bool) {
	if useHierarchy {
		out.Cache, out.RSS, out.MappedFile, out.SwapUsage = m.totalCache, m.totalRSS, m.totalMappedFile, m.totalSwap
	} else {
		out.Cache, out.RSS, out.MappedFile, out.SwapUsage = m.cache, m.rss, m.mappedFile, m.swap
	}
	out.ActiveFile, out.InactiveFile = m.totalActiveFile, m.totalInactiveFile
	out.PageFaults, out.MajorPageFaults = m.pgfault, m.pgmajfault
}

// applyV2 is setMemoryStats on cgroup2's flat keys.
func (m *memoryStat) applyV2(out *cadvisor.MemoryStats) {
	out.Cache, out.RSS, out.MappedFile = m.file, m.anon, m.fileMapped
	out.ActiveFile, out.InactiveFile = m.activeFile, m.inactiveFile
	out.PageFaults, out.MajorPageFaults = m.pgfault, m.pgmajfault
}

// unifiedRootUsage is the cgroup2 root's usage, which has no memory.current:
// anon + file, comparable to v1's usage_in_bytes (the library's
// rootStatsFromMeminfo).
func (m *memoryStat) unifiedRootUsage() uint64 {
	return m.anon + m.file
}

// cpuStat holds cpu.stat's keys: v1 has the CFS counters only (throttled
// time in ns), v2 the usage too (all times in µs).
type cpuStat struct {
	usageUsec, userUsec, systemUsec uint64
	periods, throttledPeriods       uint64
	// throttled is throttled_time (v1, ns) or throttled_usec (v2, µs).
	throttled uint64
}

func parseCPUStat(data []byte) (cpuStat, error) {
	var s cpuStat
	for {
		key, value, rest, ok := nextKeyValue(data)
		if !ok {
			return s, nil
		}
		data = rest
		var target *uint64
		switch string(key) {
		case "usage_usec":
			target = &s.usageUsec
		case "user_usec":
			target = &s.userUsec
		case "system_usec":
			target = &s.systemUsec
		case "nr_periods":
			target = &s.periods
		case "nr_throttled":
			target = &s.throttledPeriods
		case "throttled_time", "throttled_usec":
			target = &s.throttled
		default:
			continue
		}
		v, err := parseCounter(value)
		if err != nil {
			return s, fmt.Errorf("cpu.stat %s: %w", key, err)
		}
		*target = v
	}
}

// valueOfKey returns the value of key in a flat-keyed file (memory.events,
// memory.oom_control), 0 when the key is absent, as the library's
// GetValueByKey.
func valueOfKey(data []byte, key string) (uint64, error) {
	for {
		k, value, rest, ok := nextKeyValue(data)
		if !ok {
			return 0, nil
		}
		data = rest
		if string(k) == key {
			v, err := parseCounter(value)
			if err != nil {
				return 0, fmt.Errorf("%s: %w", key, err)
			}
			return v, nil
		}
	}
}

// clockTicks is USER_HZ, the unit of v1's cpuacct.stat: 100 on every Linux
// architecture (the library's system.GetClockTicks).
const clockTicks = 100

// parseCPUAcctStat reads v1's cpuacct.stat ("user <ticks>\nsystem
// <ticks>") into nanoseconds, as the library's getCpuUsageBreakdown.
func parseCPUAcctStat(data []byte) (user, system uint64, err error) {
	var found int
	for {
		key, value, rest, ok := nextKeyValue(data)
		if !ok {
			break
		}
		data = rest
		var target *uint64
		switch string(key) {
		case "user":
			target = &user
		case "system":
			target = &system
		default:
			continue
		}
		ticks, err := parseCounter(value)
		if err != nil {
			return 0, 0, fmt.Errorf("cpuacct.stat %s: %w", key, err)
		}
		*target = ticks * 1e9 / clockTicks
		found++
	}
	if found != 2 {
		return 0, 0, fmt.Errorf("cpuacct.stat: want user and system, got %d of them", found)
	}
	return user, system, nil
}

// parsePerCPU reads v1's cpuacct.usage_percpu (one counter per possible
// CPU, space separated) into out, reusing its array.
func parsePerCPU(data []byte, out []uint64) ([]uint64, error) {
	out = out[:0]
	for len(data) > 0 {
		i := 0
		for i < len(data) && (data[i] == ' ' || data[i] == '\n') {
			i++
		}
		data = data[i:]
		j := 0
		for j < len(data) && data[j] != ' ' && data[j] != '\n' {
			j++
		}
		if j == 0 {
			break
		}
		v, err := parseCounter(data[:j])
		if err != nil {
			return nil, fmt.Errorf("cpuacct.usage_percpu: %w", err)
		}
		out = append(out, v)
		data = data[j:]
	}
	return out, nil
}
