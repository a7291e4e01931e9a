package app

import (
	"strings"
	"testing"
	"time"

	statsapi "k8s.io/kubelet/pkg/apis/stats/v1alpha1"

	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

func resolvedForTest(kubelet, runtime, misc, pods string) []provider.SystemCgroup {
	return []provider.SystemCgroup{
		{Name: statsapi.SystemContainerKubelet, Cgroup: kubelet},
		{Name: statsapi.SystemContainerRuntime, Cgroup: runtime},
		{Name: statsapi.SystemContainerMisc, Cgroup: misc},
		{Name: statsapi.SystemContainerPods, Cgroup: pods},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		modify  func(*Options)
		wantErr string
	}{
		{"defaults", func(*Options) {}, ""},
		{"zero interval", func(o *Options) { o.HousekeepingInterval = 0 }, "--housekeeping-interval"},
		{"retention below interval", func(o *Options) { o.StatsRetention = time.Second }, "--stats-retention"},
		{"bad driver", func(o *Options) { o.CgroupDriver = "openrc" }, "--cgroup-driver"},
		{"relative cgroup root", func(o *Options) { o.CgroupRoot = "kube" }, "--cgroup-root"},
		{"bad address", func(o *Options) { o.Address = "localhost" }, "--address"},
		{"port out of range", func(o *Options) { o.ReadOnlyPort = 65536 }, "--read-only-port"},
		{"bad stats source", func(o *Options) { o.StatsSource = "cadvisor" }, "--stats-source"},
		{"negative runtime stats period", func(o *Options) { o.RuntimeStatsPeriod = -time.Second }, "--runtime-stats-period"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := NewOptions()
			opts.NodeName = "node"
			tt.modify(opts)
			err := opts.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error naming %s", err, tt.wantErr)
			}
		})
	}
}

func TestValidateDefaultsNodeNameToHostname(t *testing.T) {
	opts := NewOptions()
	if err := opts.Validate(); err != nil {
		t.Fatal(err)
	}
	if opts.NodeName == "" {
		t.Error("node name stays empty")
	}
}
