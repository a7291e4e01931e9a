package snapshot

import (
	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// deviceKey is a block device's major and minor number.
type deviceKey struct{ major, minor uint64 }

// deviceNames is cAdvisor's MachineInfoNamer over the machine's disks:
// "/dev/<name>" of the disk with that major:minor, "" for others.
type deviceNames map[deviceKey]string

func newDeviceNames(disks map[string]cadvisor.Disk) deviceNames {
	out := make(deviceNames, len(disks))
	for _, disk := range disks {
		out[deviceKey{disk.Major, disk.Minor}] = "/dev/" + disk.Name
	}
	return out
}

// diskIoStats converts the collector's per-device I/O as cAdvisor's
// setDiskIoStats and diskStatsCopy do: one PerDiskStats per device in each
// table where the kernel listed it, keyed by operation name ("Read",
// "Write", ... v1 adds "Sync", "Async", "Discard", "Total"), the iocost
// tables keyed "Count"; devices named by AssignDeviceNamesToDiskStats.
func diskIoStats(disks []cadvisor.DiskIO, names deviceNames, pressure cadvisorapi.PSIStats) cadvisorapi.DiskIoStats {
	out := cadvisorapi.DiskIoStats{PSI: pressure}
	for i := range disks {
		d := &disks[i]
		name := names[deviceKey{d.Major, d.Minor}]
		perDisk := func(stats map[string]uint64) cadvisorapi.PerDiskStats {
			return cadvisorapi.PerDiskStats{Device: name, Major: d.Major, Minor: d.Minor, Stats: stats}
		}
		if d.HasBytes != 0 {
			out.IoServiceBytes = append(out.IoServiceBytes, perDisk(opStats(&d.Bytes, d.HasBytes)))
		}
		if d.HasIOs != 0 {
			out.IoServiced = append(out.IoServiced, perDisk(opStats(&d.IOs, d.HasIOs)))
		}
		if c := d.Cost; c != nil {
			out.IoCostUsage = append(out.IoCostUsage, perDisk(map[string]uint64{"Count": c.Usage}))
			out.IoCostWait = append(out.IoCostWait, perDisk(map[string]uint64{"Count": c.Wait}))
			out.IoCostIndebt = append(out.IoCostIndebt, perDisk(map[string]uint64{"Count": c.Indebt}))
			out.IoCostIndelay = append(out.IoCostIndelay, perDisk(map[string]uint64{"Count": c.Indelay}))
		}
	}
	return out
}

func opStats(values *[cadvisor.NumIOOps]uint64, listed cadvisor.IOOps) map[string]uint64 {
	out := make(map[string]uint64, cadvisor.NumIOOps)
	for op := range cadvisor.IOOp(cadvisor.NumIOOps) {
		if listed.Has(op) {
			out[op.String()] = values[op]
		}
	}
	return out
}
