package collector

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

const testCPUInfo = `processor	: 0
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R)
cpu MHz		: 2000.123
physical id	: 0
core id		: 0
cpu cores	: 2

processor	: 1
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R)
cpu MHz		: 2000.123
physical id	: 0
core id		: 0
cpu cores	: 2

processor	: 2
vendor_id	: GenuineIntel
cpu family	: 6
model		: 85
model name	: Intel(R) Xeon(R)
cpu MHz		: 2000.123
physical id	: 1
core id		: 1
cpu cores	: 2

`

// machineFixture writes a fake root with proc, sys and etc and returns it.
func machineFixture(t *testing.T, extra map[string]string) string {
	t.Helper()
	root := t.TempDir()
	files := map[string]string{
		"proc/stat":                                                "cpu  1 2 3 4 5 6 7 8 9 10\nbtime 1700000000\nprocesses 10\n",
		"proc/meminfo":                                             "MemTotal:       24683620 kB\nMemFree:        24119772 kB\nSwapTotal:       1048576 kB\nSwapFree:         524288 kB\n",
		"proc/cpuinfo":                                             testCPUInfo,
		"proc/sys/kernel/random/boot_id":                           "b00710a1-0000-4000-8000-000000000001\n",
		"etc/machine-id":                                           "0123456789abcdef0123456789abcdef\n",
		"sys/class/dmi/id/product_uuid":                            "EC2A0000-1111-2222-3333-444455556666\n",
		"sys/class/net/eth0/address":                               "02:42:ac:11:00:02\n",
		"sys/class/net/eth0/mtu":                                   "1500\n",
		"sys/class/net/eth0/speed":                                 "10000\n",
		"sys/class/net/ifb0/address":                               "aa:bb:cc:dd:ee:ff\n",
		"sys/class/net/ifb0/mtu":                                   "1500\n",
		"sys/class/net/ifb0/speed":                                 "-1\n",
		"sys/class/net/lo/address":                                 "00:00:00:00:00:00\n",
		"sys/class/net/lo/mtu":                                     "65536\n",
		"sys/class/net/veth12/mtu":                                 "1500\n",
		"sys/class/net/docker0/mtu":                                "1500\n",
		"sys/class/net/bonding_masters":                            "\n",
		"sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages":    "16\n",
		"sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages": "0\n",
		"sys/block/vda/dev":                                        "254:0\n",
		"sys/block/vda/size":                                       "528424168\n",
		"sys/block/vda/queue/scheduler":                            "[mq-deadline] none\n",
		"sys/block/loop0/dev":                                      "7:0\n",
		"sys/block/loop0/size":                                     "0\n",
	}
	for k, v := range extra {
		files[k] = v
	}
	writeFiles(t, root, files)
	return root
}

func TestReadMachine(t *testing.T) {
	root := machineFixture(t, nil)
	m, err := ReadMachine(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		field     string
		got, want any
	}{
		{"BootTime", m.BootTime, time.Unix(1700000000, 0)},
		{"MemoryCapacity", m.MemoryCapacity, uint64(24683620 * 1024)},
		{"SwapCapacity", m.SwapCapacity, uint64(1048576 * 1024)},
		{"NumCores", m.NumCores, 3},
		{"NumPhysicalCores", m.NumPhysicalCores, 2},
		{"NumSockets", m.NumSockets, 2},
		{"CPUVendorID", m.CPUVendorID, "GenuineIntel"},
		{"CPUFrequencyKHz", m.CPUFrequencyKHz, uint64(2000123)},
		{"MachineID", m.MachineID, "0123456789abcdef0123456789abcdef"},
		{"BootID", m.BootID, "b00710a1-0000-4000-8000-000000000001"},
		{"SystemUUID", m.SystemUUID, "EC2A0000-1111-2222-3333-444455556666"},
		{"HugePages", m.HugePages, []cadvisor.HugePages{{PageSizeKB: 1048576, NumPages: 0}, {PageSizeKB: 2048, NumPages: 16}}},
		{"DiskMap", m.DiskMap, map[string]cadvisor.Disk{"254:0": {Name: "vda", Major: 254, Minor: 0, Size: 528424168 * 512, Scheduler: "mq-deadline"}}},
		{"NetworkDevices", m.NetworkDevices, []cadvisor.NetDevice{
			{Name: "eth0", MacAddress: "02:42:ac:11:00:02", Speed: 10000, MTU: 1500},
			{Name: "ifb0", MacAddress: "aa:bb:cc:dd:ee:ff", Speed: 0, MTU: 1500},
		}},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %+v, want %+v", c.field, c.got, c.want)
		}
	}
}

func TestReadMachinePrefersMaxFrequency(t *testing.T) {
	root := machineFixture(t, map[string]string{"sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq": "3500000\n"})
	m, err := ReadMachine(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	if m.CPUFrequencyKHz != 3500000 {
		t.Errorf("CPUFrequencyKHz = %d, want cpuinfo_max_freq 3500000", m.CPUFrequencyKHz)
	}
}

func TestReadMachineOptionalFilesMissing(t *testing.T) {
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"proc/stat":    "btime 1700000000\n",
		"proc/meminfo": "MemTotal: 1024 kB\n",
	})
	m, err := ReadMachine(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
	if err != nil {
		t.Fatal(err)
	}
	if m.MemoryCapacity != 1024*1024 || m.SwapCapacity != 0 || m.NumCores != 0 || m.MachineID != "" || len(m.NetworkDevices) != 0 {
		t.Errorf("unexpected machine %+v", m)
	}
}

func TestReadMachineRequiredFiles(t *testing.T) {
	tests := []struct {
		name    string
		files   map[string]string
		wantErr string
	}{
		{name: "no meminfo", files: map[string]string{"proc/stat": "btime 1700000000\n"}, wantErr: "meminfo"},
		{name: "no stat", files: map[string]string{"proc/meminfo": "MemTotal: 1 kB\n"}, wantErr: "stat"},
		{name: "no btime", files: map[string]string{"proc/stat": "cpu 1 2 3 4\n", "proc/meminfo": "MemTotal: 1 kB\n"}, wantErr: "btime"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFiles(t, root, tt.files)
			_, err := ReadMachine(filepath.Join(root, "proc"), filepath.Join(root, "sys"))
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %v, want one mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadMachineLive(t *testing.T) {
	m, err := ReadMachine("/proc", "/sys")
	if err != nil {
		t.Fatal(err)
	}
	if m.NumCores < 1 || m.MemoryCapacity == 0 || m.BootTime.IsZero() || m.BootTime.After(time.Now()) {
		t.Errorf("implausible machine: %+v", m)
	}
}
