package register

import (
	"context"
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/klog/v2/ktesting"
)

var testRef = &corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: "team", Name: "web", UID: "api-web"}

// testRecorder is a recorder over client whose clock the test moves.
func testRecorder(t *testing.T, client *fake.Clientset, now *time.Time) *recorder {
	r := newRecorder(typedClient{client}, corev1.EventSource{Component: eventComponent, Host: testNode},
		func() time.Time { return *now }, ktesting.NewLogger(t, ktesting.NewConfig()))
	r.retryDelay = time.Millisecond
	return r
}

func listEvents(t *testing.T, client *fake.Clientset) []corev1.Event {
	t.Helper()
	events, err := client.CoreV1().Events("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return events.Items
}

func TestRecorderCountsRepeats(t *testing.T) {
	client := newClient()
	first := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := first
	r := testRecorder(t, client, &now)
	ctx := context.Background()
	for range 3 {
		r.Eventf(testRef, corev1.EventTypeWarning, "OOMKilling", "killed process %d", 42)
		r.drain(ctx)
		now = now.Add(time.Minute)
	}
	r.Eventf(testRef, corev1.EventTypeWarning, "OOMKilling", "killed process %d", 43)
	r.drain(ctx)

	events := listEvents(t, client)
	if len(events) != 2 {
		t.Fatalf("%d events, want 2: one counted three times, one with another message", len(events))
	}
	e := events[0]
	if e.Message != "killed process 42" {
		e = events[1]
	}
	if e.Count != 3 || !e.FirstTimestamp.Time.Equal(first) || !e.LastTimestamp.Time.Equal(first.Add(2*time.Minute)) {
		t.Errorf("repeated event count %d, first %v, last %v; want 3, %v, %v", e.Count, e.FirstTimestamp, e.LastTimestamp, first, first.Add(2*time.Minute))
	}
	if e.Source.Component != eventComponent || e.Source.Host != testNode || e.ReportingController != eventComponent ||
		e.ReportingInstance != testNode || e.InvolvedObject != *testRef || e.Namespace != "team" || e.Type != corev1.EventTypeWarning {
		t.Errorf("event %+v", e)
	}
	if creates, patches := countActions(client, "create", "events", ""), countActions(client, "patch", "events", ""); creates != 2 || patches != 2 {
		t.Errorf("%d creates and %d patches, want 2 and 2", creates, patches)
	}
}

func TestRecorderCreatesARepeatOfAnExpiredEvent(t *testing.T) {
	client := newClient()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := testRecorder(t, client, &now)
	ctx := context.Background()
	r.Eventf(testRef, corev1.EventTypeNormal, "Started", "started")
	r.drain(ctx)
	gone := listEvents(t, client)[0]
	if err := client.CoreV1().Events("team").Delete(ctx, gone.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	r.Eventf(testRef, corev1.EventTypeNormal, "Started", "started")
	r.drain(ctx)
	if events := listEvents(t, client); len(events) != 1 || events[0].Count != 2 {
		t.Errorf("events %+v, want the repeat created again with count 2", events)
	}
}

func TestRecorderRetriesOnlyWhatTheServerDidNotRefuse(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		wantCreates int
		wantEvents  int
	}{
		{"unreachable twice", errors.New("connection refused"), 3, 1},
		{"refused", apierrors.NewForbidden(corev1.Resource("events"), "", errors.New("no")), 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := newClient()
			failures := 2
			client.PrependReactor("create", "events", func(k8stesting.Action) (bool, runtime.Object, error) {
				if failures == 0 {
					return false, nil, nil
				}
				failures--
				return true, nil, tt.err
			})
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			r := testRecorder(t, client, &now)
			r.Eventf(testRef, corev1.EventTypeNormal, "Started", "started")
			r.write(context.Background(), <-r.queue, eventTries)
			if n := countActions(client, "create", "events", ""); n != tt.wantCreates {
				t.Errorf("%d tries, want %d", n, tt.wantCreates)
			}
			if n := len(listEvents(t, client)); n != tt.wantEvents {
				t.Errorf("%d events, want %d", n, tt.wantEvents)
			}
		})
	}
}

func TestRecorderDropsWhenTheQueueIsFull(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := testRecorder(t, newClient(), &now)
	for range eventQueueLength + 10 {
		r.Eventf(testRef, corev1.EventTypeNormal, "Started", "started")
	}
	if n := len(r.queue); n != eventQueueLength {
		t.Errorf("%d queued, want the queue's %d", n, eventQueueLength)
	}
}

func TestEventNameIsValid(t *testing.T) {
	if got := eventName("node-a", 0x18a2b3c4d5e6f7a8); got != "node-a.18a2b3c4d5e6f7a8" {
		t.Errorf("eventName = %q, want the object's name and the time in hex", got)
	}
	if got := eventName("Not_A_Name", 1); len(got) != 36 {
		t.Errorf("eventName of an invalid name = %q, want a UUID", got)
	}
}

// TestEventNamesUnique: two events about one object in the same clock
// tick (a coarse clock, or a busy machine) get different names; with one
// name the API server refuses the second ("already exists"), and the
// kubelet's recorder then drops it.
func TestEventNamesUnique(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	r := testRecorder(t, fake.NewClientset(), &now)
	first := r.makeEvent(testRef, corev1.EventTypeWarning, "OOMKilling", "one")
	second := r.makeEvent(testRef, corev1.EventTypeWarning, "OOMKilling", "two")
	if first.Name == second.Name {
		t.Errorf("two events in one clock tick are both named %q", first.Name)
	}
	if !first.FirstTimestamp.Equal(&second.FirstTimestamp) {
		t.Errorf("timestamps %v and %v, want the clock's", first.FirstTimestamp, second.FirstTimestamp)
	}
}
