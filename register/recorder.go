package register

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"
)

// client-go's tools/record limits: events queued before they are dropped,
// identical events remembered for their count, tries to post one and the
// wait between tries.
const (
	eventQueueLength  = 1000
	eventCacheEntries = 4096
	eventTries        = 12
	eventRetryDelay   = 10 * time.Second
)

// recorder posts core/v1 Events as client-go's tools/record recorder does
// for the kubelet, with the same fields: queued so that no caller waits
// for the API server, posted one after the other by run, retried while
// the API server cannot be reached, and a repeat of an identical event
// (same source, involved object, type, reason and message) counted by
// patching count and lastTimestamp of the first, as its EventCorrelator
// does. Its spam filter (25 events per object, then one per 5 minutes) and
// its aggregation of similar events are left out.
type recorder struct {
	client     Client
	source     corev1.EventSource
	now        func() time.Time
	logger     klog.Logger
	queue      chan *corev1.Event
	retryDelay time.Duration
	// seen maps an event's key to what the API server has of it. It is
	// only touched by the goroutine that posts: run, then drain.
	seen *lru.Cache
	// lastName is the time (unix nanoseconds) in the newest event's name.
	lastName atomic.Int64
}

// eventLog is what a repeat of an event needs of the one posted.
type eventLog struct {
	count           int32
	firstTimestamp  metav1.Time
	name            string
	resourceVersion string
}

func newRecorder(client Client, source corev1.EventSource, now func() time.Time, logger klog.Logger) *recorder {
	return &recorder{
		client: client, source: source, now: now, logger: logger,
		queue:      make(chan *corev1.Event, eventQueueLength),
		retryDelay: eventRetryDelay,
		seen:       lru.New(eventCacheEntries),
	}
}

// Eventf queues an event about ref; it never blocks, and drops the event
// when the queue is full.
func (r *recorder) Eventf(ref *corev1.ObjectReference, eventType, reason, messageFmt string, args ...any) {
	event := r.makeEvent(ref, eventType, reason, fmt.Sprintf(messageFmt, args...))
	select {
	case r.queue <- event:
	default:
		r.logger.Error(nil, "Unable to record event: too many queued events, dropped event", "object", klog.KRef(ref.Namespace, ref.Name), "reason", reason)
	}
}

// makeEvent is tools/record's: named after the object and the time, in
// the object's namespace (default for a node).
func (r *recorder) makeEvent(ref *corev1.ObjectReference, eventType, reason, message string) *corev1.Event {
	t := metav1.Time{Time: r.now()}
	namespace := ref.Namespace
	if namespace == "" {
		namespace = metav1.NamespaceDefault
	}
	return &corev1.Event{
		ObjectMeta:          metav1.ObjectMeta{Name: eventName(ref.Name, r.nameTime(t.Time)), Namespace: namespace},
		InvolvedObject:      *ref,
		Reason:              reason,
		Message:             message,
		FirstTimestamp:      t,
		LastTimestamp:       t,
		Count:               1,
		Type:                eventType,
		Source:              r.source,
		ReportingController: r.source.Component,
		ReportingInstance:   r.source.Host,
	}
}

// nameTime is t for an event's name, or the nanosecond after the newest
// name's when the clock has not moved past it: tools/record names events
// by the clock alone, so two events about one object in the same clock
// tick collide, and the API server refuses the second.
func (r *recorder) nameTime(t time.Time) int64 {
	for {
		last := r.lastName.Load()
		next := max(t.UnixNano(), last+1)
		if r.lastName.CompareAndSwap(last, next) {
			return next
		}
	}
}

// eventName is the object's name and the time in hex, or a UUID where
// that is no valid name.
func eventName(object string, unixNano int64) string {
	name := fmt.Sprintf("%s.%x", object, unixNano)
	if len(validation.IsDNS1123Subdomain(name)) > 0 {
		return uuid.NewString()
	}
	return name
}

// run posts the queued events until ctx ends.
func (r *recorder) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case event := <-r.queue:
			r.write(ctx, event, eventTries)
		}
	}
}

// drain posts the events still queued, one try each, once run returned:
// the NodeNotReady of the shutdown among them.
func (r *recorder) drain(ctx context.Context) {
	for {
		select {
		case event := <-r.queue:
			r.write(ctx, event, 1)
		default:
			return
		}
	}
}

// write counts event among those seen and posts it, trying up to tries
// times while the API server cannot be reached; the first wait is random,
// so that servers do not come back all at once.
func (r *recorder) write(ctx context.Context, event *corev1.Event, tries int) {
	event, patch := r.observe(event)
	for try := 1; ; try++ {
		err := r.post(ctx, event, patch)
		var status apierrors.APIStatus
		switch {
		case err == nil:
			return
		case errors.As(err, &status):
			r.logger.Error(err, "Server rejected event (will not retry!)", "event", klog.KObj(event), "reason", event.Reason)
			return
		case try >= tries:
			r.logger.Error(err, "Unable to write event (retry limit exceeded!)", "event", klog.KObj(event), "reason", event.Reason)
			return
		}
		delay := r.retryDelay
		if try == 1 {
			delay = time.Duration(rand.Float64() * float64(delay))
		}
		r.logger.Error(err, "Unable to write event (may retry after sleeping)", "event", klog.KObj(event), "retryIn", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// observe is the EventCorrelator's: a repeat of an event takes the first's
// name, first timestamp and the next count, and comes with the patch that
// counts it.
func (r *recorder) observe(event *corev1.Event) (*corev1.Event, []byte) {
	key := eventKey(event)
	var patch []byte
	if value, ok := r.seen.Get(key); ok {
		last := value.(eventLog)
		event.Name, event.ResourceVersion = last.name, last.resourceVersion
		event.FirstTimestamp, event.Count = last.firstTimestamp, last.count+1
		patch = countPatch(event)
	}
	r.remember(event)
	return event, patch
}

func (r *recorder) remember(event *corev1.Event) {
	r.seen.Add(eventKey(event), eventLog{count: event.Count, firstTimestamp: event.FirstTimestamp, name: event.Name, resourceVersion: event.ResourceVersion})
}

// eventKey is what makes two events identical.
func eventKey(e *corev1.Event) string {
	ref := e.InvolvedObject
	return strings.Join([]string{e.Source.Component, e.Source.Host, ref.Kind, ref.Namespace, ref.Name, ref.FieldPath,
		string(ref.UID), ref.APIVersion, e.Type, e.Reason, e.Message}, "")
}

// countPatch is the strategic merge patch the EventCorrelator sends for a
// repeat: the fields it diffs from a copy without them.
func countPatch(event *corev1.Event) []byte {
	patch, _ := json.Marshal(struct {
		Count         int32       `json:"count"`
		LastTimestamp metav1.Time `json:"lastTimestamp"`
		Message       string      `json:"message,omitempty"`
	}{event.Count, event.LastTimestamp, event.Message})
	return patch
}

// post creates event, or patches the one it repeats; one deleted since
// (events expire after an hour) is created again.
func (r *recorder) post(ctx context.Context, event *corev1.Event, patch []byte) error {
	events := r.client.Events(event.Namespace)
	var (
		result *corev1.Event
		err    error
	)
	if event.Count > 1 {
		result, err = events.Patch(ctx, event.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
	}
	if event.Count <= 1 || apierrors.IsNotFound(err) {
		event.ResourceVersion = ""
		result, err = events.Create(ctx, event, metav1.CreateOptions{})
	}
	if err != nil {
		return fmt.Errorf("post event %s/%s: %w", event.Namespace, event.Name, err)
	}
	r.remember(result)
	return nil
}
