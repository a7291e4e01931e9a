package collector

import (
	"reflect"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestFilterInterfaces(t *testing.T) {
	names := func(in []cadvisor.InterfaceStats) []string {
		var out []string
		for _, i := range in {
			out = append(out, i.Name)
		}
		return out
	}
	in := []cadvisor.InterfaceStats{
		{Name: "lo"}, {Name: "eth0", RxBytes: 1}, {Name: "veth1234"}, {Name: "Docker0"}, {Name: "nerdctl0"},
		{Name: "ens3"}, {Name: "LO2"}, {Name: "VETHx"}, {Name: "cni0"}, {Name: "flannel.1"}, {Name: "l"},
	}
	original := append([]cadvisor.InterfaceStats(nil), in...)
	got := FilterInterfaces(in)
	want := []string{"eth0", "ens3", "cni0", "flannel.1", "l"}
	if !reflect.DeepEqual(names(got), want) {
		t.Errorf("FilterInterfaces kept %q, want %q", names(got), want)
	}
	if cap(got) != len(got) {
		t.Errorf("FilterInterfaces kept %d in room for %d: samples hold the slice", len(got), cap(got))
	}
	if got[0].RxBytes != 1 {
		t.Errorf("counters not kept: %+v", got[0])
	}
	if !reflect.DeepEqual(in, original) {
		t.Errorf("input modified: %+v", in)
	}
	if got := FilterInterfaces(nil); len(got) != 0 {
		t.Errorf("FilterInterfaces(nil) = %v", got)
	}
}

func TestParseNetDev(t *testing.T) {
	const header = "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n"
	tests := []struct {
		name    string
		data    string
		want    []cadvisor.InterfaceStats
		wantErr bool
	}{
		{name: "headers only", data: header},
		{name: "empty file", data: ""},
		{
			name: "order kept",
			data: header +
				"    lo: 1660718    1289    0    0    0     0          0         0  1660718    1289    0    0    0     0       0          0\n" +
				"  eth0: 163189529   11547    3    4    0     0          0         0  1051492   10669    5    6    0     0       0          0\n" +
				"  ens3:       1       2    0    0    0     0          0         0        3       4    0    0    0     0       0          0\n",
			want: []cadvisor.InterfaceStats{
				{Name: "lo", RxBytes: 1660718, RxPackets: 1289, TxBytes: 1660718, TxPackets: 1289},
				{Name: "eth0", RxBytes: 163189529, RxPackets: 11547, RxErrors: 3, RxDropped: 4, TxBytes: 1051492, TxPackets: 10669, TxErrors: 5, TxDropped: 6},
				{Name: "ens3", RxBytes: 1, RxPackets: 2, TxBytes: 3, TxPackets: 4},
			},
		},
		{
			name: "no space after colon",
			data: header + "eth0:1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n",
			want: []cadvisor.InterfaceStats{{Name: "eth0", RxBytes: 1, RxPackets: 2, RxErrors: 3, RxDropped: 4, TxBytes: 9, TxPackets: 10, TxErrors: 11, TxDropped: 12}},
		},
		{name: "too few fields", data: header + "eth0: 1 2 3\n", wantErr: true},
		{name: "no colon", data: header + "eth0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
		{name: "not a number", data: header + "eth0: x 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseNetDev([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseNetDev = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
