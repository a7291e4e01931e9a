package collector

import (
	"reflect"
	"testing"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestParsePSI(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    *cadvisor.PSIStats
		wantErr bool
	}{
		{
			name: "some and full",
			data: "some avg10=1.50 avg60=0.25 avg300=0.01 total=123456\nfull avg10=0.50 avg60=0.00 avg300=0.00 total=789\n",
			want: &cadvisor.PSIStats{
				Some: cadvisor.PSIData{Avg10: 1.5, Avg60: 0.25, Avg300: 0.01, Total: 123456},
				Full: cadvisor.PSIData{Avg10: 0.5, Total: 789},
			},
		},
		{
			name: "cpu.pressure before 5.13 has no full line",
			data: "some avg10=0.00 avg60=0.00 avg300=0.00 total=42\n",
			want: &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 42}},
		},
		{name: "empty", data: "", want: &cadvisor.PSIStats{}},
		{
			name: "unknown keys and lines ignored",
			data: "some avg10=0.00 avg60=0.00 avg300=0.00 total=1 avg5=9.9\nfuture x=1\n",
			want: &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 1}},
		},
		{name: "bad total", data: "some avg10=0.00 avg60=0.00 avg300=0.00 total=-1\n", wantErr: true},
		{name: "bad avg", data: "some avg10=x avg60=0.00 avg300=0.00 total=1\n", wantErr: true},
		{name: "no equals", data: "some avg10\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parsePSI([]byte(tt.data))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parsePSI = %+v, want %+v", got, tt.want)
			}
		})
	}
}
