package app

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

func TestEventOptions(t *testing.T) {
	tests := []struct {
		eventLimit, ageLimit string
		want                 cadvisor.EventLimits
		err                  string
	}{
		{eventLimit: "default=10000", ageLimit: "default=24h", want: cadvisor.EventLimits{DefaultCount: 10000, DefaultAge: 24 * time.Hour}},
		{eventLimit: "default=5, oomKill=100,creation=0,containerDeletion=7", ageLimit: "oom=1h,default=0,deletion=30m",
			want: cadvisor.EventLimits{DefaultCount: 5, Count: map[cadvisor.EventType]int{
				cadvisor.EventOOMKill: 100, cadvisor.EventContainerCreation: 0, cadvisor.EventContainerDeletion: 7,
			}, Age: map[cadvisor.EventType]time.Duration{cadvisor.EventOOM: time.Hour, cadvisor.EventContainerDeletion: 30 * time.Minute}}},
		{eventLimit: "default=-1", ageLimit: "default=1h", err: `--event-storage-event-limit "default=-1": default: "-1" is not a count`},
		{eventLimit: "default=10", ageLimit: "default=1d", err: `--event-storage-age-limit "default=1d": default: "1d" is not a duration`},
		{eventLimit: "oomkill=10", ageLimit: "default=1h", err: `unknown event type "oomkill"`},
		{eventLimit: "10", ageLimit: "default=1h", err: `"10" is not type=value`},
		{eventLimit: "default=10", ageLimit: "", err: `"" is not type=value`},
	}
	for _, tt := range tests {
		o := EventOptions{EventLimit: tt.eventLimit, AgeLimit: tt.ageLimit}
		err := o.Validate()
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q %q: error %v, want %q", tt.eventLimit, tt.ageLimit, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q %q: %v", tt.eventLimit, tt.ageLimit, err)
			continue
		}
		if len(tt.want.Count) == 0 {
			tt.want.Count = map[cadvisor.EventType]int{}
		}
		if len(tt.want.Age) == 0 {
			tt.want.Age = map[cadvisor.EventType]time.Duration{}
		}
		if !reflect.DeepEqual(o.limits, tt.want) {
			t.Errorf("%q %q: limits %+v, want %+v", tt.eventLimit, tt.ageLimit, o.limits, tt.want)
		}
	}
}

// TestEventOptionsDefaultsValidate: the defaults parse, and Options
// validates them.
func TestEventOptionsDefaultsValidate(t *testing.T) {
	o := NewOptions()
	o.NodeName = "n"
	if err := o.Validate(); err != nil {
		t.Fatal(err)
	}
	if o.Events.limits.DefaultCount != 10000 || o.Events.limits.DefaultAge != 24*time.Hour {
		t.Errorf("default limits %+v", o.Events.limits)
	}
}
