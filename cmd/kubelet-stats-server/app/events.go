package app

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/provider"
)

// EventOptions are the event store's flags: cAdvisor's
// --event_storage_event_limit and --event_storage_age_limit (which the
// kubelet still registers, deprecated), with their value syntax.
type EventOptions struct {
	EventLimit string
	AgeLimit   string

	// limits is what Validate parsed.
	limits cadvisor.EventLimits
}

// NewEventOptions returns the defaults: cAdvisor's age limit, a tenth of
// its count limit (an event takes about 200 bytes: 100,000 per type would
// let the store grow to 80 MB on a node with heavy pod churn).
func NewEventOptions() EventOptions {
	return EventOptions{EventLimit: "default=10000", AgeLimit: "default=24h"}
}

// AddFlags registers the flags on fs.
func (o *EventOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.EventLimit, "event-storage-event-limit", o.EventLimit,
		"Max number of events kept per type for the events API (/api/v1.3/events), like cAdvisor's --event_storage_event_limit: comma-separated type=count, the types oom, oomKill, containerCreation (or creation), containerDeletion (or deletion), and default for the types not named. 0 keeps none of a type; streams still see them.")
	fs.StringVar(&o.AgeLimit, "event-storage-age-limit", o.AgeLimit,
		"Max age of the events kept per type for the events API, like cAdvisor's --event_storage_age_limit: comma-separated type=duration, types as for --event-storage-event-limit. 0 keeps none of a type.")
}

// Validate parses the limits.
func (o *EventOptions) Validate() error {
	limits := cadvisor.EventLimits{Count: map[cadvisor.EventType]int{}, Age: map[cadvisor.EventType]time.Duration{}}
	err := parseEventLimit(o.EventLimit, func(t cadvisor.EventType, value string) error {
		n, err := strconv.Atoi(value)
		if err != nil || n < 0 {
			return fmt.Errorf("%q is not a count", value)
		}
		if t == "" {
			limits.DefaultCount = n
		} else {
			limits.Count[t] = n
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("--event-storage-event-limit %q: %w", o.EventLimit, err)
	}
	err = parseEventLimit(o.AgeLimit, func(t cadvisor.EventType, value string) error {
		d, err := time.ParseDuration(value)
		if value == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			return fmt.Errorf("%q is not a duration", value)
		}
		if t == "" {
			limits.DefaultAge = d
		} else {
			limits.Age[t] = d
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("--event-storage-age-limit %q: %w", o.AgeLimit, err)
	}
	o.limits = limits
	return nil
}

// parseEventLimit calls set for each type=value of spec, with the type ""
// for default. Unlike cAdvisor, which logs and skips what it cannot parse
// (and takes "creation" from its own help text for a type name, so that it
// limits nothing), every part must parse.
func parseEventLimit(spec string, set func(cadvisor.EventType, string) error) error {
	for _, part := range strings.Split(spec, ",") {
		key, value, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found {
			return fmt.Errorf("%q is not type=value", part)
		}
		t, err := eventLimitType(key)
		if err != nil {
			return err
		}
		if err := set(t, value); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
	return nil
}

func eventLimitType(key string) (cadvisor.EventType, error) {
	switch key {
	case "default":
		return "", nil
	case "creation":
		return cadvisor.EventContainerCreation, nil
	case "deletion":
		return cadvisor.EventContainerDeletion, nil
	}
	for _, t := range cadvisor.EventTypes() {
		if key == string(t) {
			return t, nil
		}
	}
	return "", fmt.Errorf("unknown event type %q (want default, oom, oomKill, containerCreation or containerDeletion)", key)
}

// newEventFeed builds the events API's feed; it is closed when ctx ends,
// which ends the event streams so that the ports can shut down.
func newEventFeed(ctx context.Context, logger klog.Logger, opts *Options) *provider.EventFeed {
	feed := provider.NewEventFeed(provider.EventFeedConfig{
		Limits:   opts.Events.limits,
		Interval: opts.HousekeepingInterval,
		Logger:   logger.WithName("events"),
	})
	context.AfterFunc(ctx, feed.Close)
	return feed
}

// recordOOMKills hands each kernel log OOM kill to every recorder.
func recordOOMKills(recorders ...func(cadvisor.OOMKill)) func(cadvisor.OOMKill) {
	return func(kill cadvisor.OOMKill) {
		for _, record := range recorders {
			record(kill)
		}
	}
}
