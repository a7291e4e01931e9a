package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"testing"
	"time"

	cadvisorclient "github.com/google/cadvisor/client"
	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

var eventTime = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// newEventStore holds the events of a pod whose container was OOM-killed,
// and one of the node's root; they age by the real clock, so they are
// dated now-ish.
func newEventStore(t testing.TB) *cadvisor.EventStore {
	t.Helper()
	store := cadvisor.NewEventStore(cadvisor.EventLimits{DefaultCount: 100, DefaultAge: 1000000 * time.Hour})
	pod := snapshot.EventPod{Namespace: "shop", Name: "web", UID: "0a1b2c3d-0000-4000-8000-000000000001"}
	app := pod
	app.Container = "app"
	for _, e := range []snapshot.Event{
		{Type: snapshot.EventContainerCreation, Cgroup: "/", Time: eventTime},
		{Type: snapshot.EventContainerCreation, Cgroup: "/kubepods/pod1", Time: eventTime.Add(1 * time.Second), Pod: pod},
		{Type: snapshot.EventContainerCreation, Cgroup: "/kubepods/pod1/app", Time: eventTime.Add(2 * time.Second), Pod: app},
		{Type: snapshot.EventOOM, Cgroup: "/kubepods/pod1/app", Time: eventTime.Add(3 * time.Second), Pod: app},
		{Type: snapshot.EventOOMKill, Cgroup: "/kubepods/pod1/app", Time: eventTime.Add(3 * time.Second), Pod: app, PID: 42, ProcessName: "hog"},
		{Type: snapshot.EventContainerDeletion, Cgroup: "/kubepods/pod1/app", Time: eventTime.Add(4 * time.Second), Pod: app, ExitCode: 137},
	} {
		store.Add(e)
	}
	return store
}

func TestParseEventRequest(t *testing.T) {
	all := []snapshot.EventType{snapshot.EventOOM, snapshot.EventOOMKill, snapshot.EventContainerCreation, snapshot.EventContainerDeletion}
	tests := []struct {
		query, cgroup string
		want          snapshot.EventQuery
		stream        bool
		err           string
	}{
		{query: "", want: snapshot.EventQuery{Max: 10, Cgroup: "/"}},
		{query: "all_events=true&subcontainers=1&max_events=-1", cgroup: "kubepods/pod1",
			want: snapshot.EventQuery{Types: all, Max: -1, Cgroup: "/kubepods/pod1", Subcontainers: true}},
		{query: "oom_kill_events=true&deletion_events=T&oom_events=false&max_events=0",
			want: snapshot.EventQuery{Types: []snapshot.EventType{snapshot.EventOOMKill, snapshot.EventContainerDeletion}, Max: 0, Cgroup: "/"}},
		// The first of repeated values counts, as in cAdvisor.
		{query: "creation_events=true&creation_events=false",
			want: snapshot.EventQuery{Types: []snapshot.EventType{snapshot.EventContainerCreation}, Max: 10, Cgroup: "/"}},
		{query: "all_events=true&oom_events=false&start_time=2026-03-01T12:00:01Z&end_time=2026-03-01T13:00:00.5%2B01:00",
			want: snapshot.EventQuery{Types: all, Max: 10, Cgroup: "/",
				Start: eventTime.Truncate(time.Second).Add(time.Second), End: time.Date(2026, 3, 1, 12, 0, 0, 5e8, time.UTC)}},
		{query: "stream=true&all_events=true&max_events=3", cgroup: "/kubepods/",
			want: snapshot.EventQuery{Types: all, Max: 3, Cgroup: "/kubepods"}, stream: true},
		{query: "stream=yes", err: `stream "yes": want true or false`},
		{query: "stream", err: `stream "": want true or false`},
		{query: "subcontainers=2", err: `subcontainers "2"`},
		{query: "all_events=on", err: `all_events "on"`},
		{query: "oom_events=x", err: `oom_events "x"`},
		{query: "max_events=ten", err: `max_events "ten": want a count, or -1 for all`},
		{query: "max_events=-2", err: `max_events "-2"`},
		{query: "start_time=1700000000", err: `start_time "1700000000": want an RFC 3339 time`},
		{query: "end_time=yesterday", err: `end_time "yesterday"`},
		{query: "stream=true&start_time=2026-03-01T12:00:01Z", err: "a stream (stream=true) takes neither"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			values, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			got, stream, err := parseEventRequest(values, tt.cgroup)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if stream != tt.stream {
				t.Errorf("stream %v, want %v", stream, tt.stream)
			}
			if !got.Start.Equal(tt.want.Start) || !got.End.Equal(tt.want.End) {
				t.Errorf("times %v..%v, want %v..%v", got.Start, got.End, tt.want.Start, tt.want.End)
			}
			got.Start, got.End, tt.want.Start, tt.want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("query %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestEventsQueryShape checks the JSON of each event type: cAdvisor's
// info/v1 Event plus the pod fields.
func TestEventsQueryShape(t *testing.T) {
	ts := newTestServer(t, Config{Events: newEventStore(t)}, nil)
	resp, body := do(t, http.MethodGet, ts.URL+"/api/v1.3/events/kubepods/pod1/app?all_events=true", "", "")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q: %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	const identity = `"namespace":"shop","pod":"web","pod_uid":"0a1b2c3d-0000-4000-8000-000000000001","container":"app"`
	want := `[` +
		`{"container_name":"/kubepods/pod1/app","timestamp":"2026-03-01T12:00:02.123456789Z","event_type":"containerCreation","event_data":{},` + identity + `},` +
		`{"container_name":"/kubepods/pod1/app","timestamp":"2026-03-01T12:00:03.123456789Z","event_type":"oom","event_data":{},` + identity + `},` +
		`{"container_name":"/kubepods/pod1/app","timestamp":"2026-03-01T12:00:03.123456789Z","event_type":"oomKill","event_data":{"oom":{"pid":42,"process_name":"hog"}},` + identity + `},` +
		`{"container_name":"/kubepods/pod1/app","timestamp":"2026-03-01T12:00:04.123456789Z","event_type":"containerDeletion","event_data":{"container_deletion":{"exit_code":137}},` + identity + `}` +
		`]`
	if body != want {
		t.Errorf("body\n got %s\nwant %s", body, want)
	}
	_, body = do(t, http.MethodGet, ts.URL+"/api/v2.0/events?creation_events=true", "", "")
	if want := `[{"container_name":"/","timestamp":"2026-03-01T12:00:00.123456789Z","event_type":"containerCreation","event_data":{}}]`; body != want {
		t.Errorf("the root's events:\n got %s\nwant %s (no pod fields outside pods)", body, want)
	}
	_, body = do(t, http.MethodGet, ts.URL+"/api/v2.1/events/nowhere?all_events=true", "", "")
	if body != "[]" {
		t.Errorf("no events: %s, want []", body)
	}
}

// TestEventsCadvisorClient reads the API with cAdvisor's own Go client,
// which speaks v1.3 and puts the query in the name it is given.
func TestEventsCadvisorClient(t *testing.T) {
	ts := newTestServer(t, Config{Events: newEventStore(t)}, nil)
	client, err := cadvisorclient.NewClient(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	events, err := client.EventStaticInfo("kubepods?subcontainers=true&oom_kill_events=true&deletion_events=true")
	if err != nil {
		t.Fatal(err)
	}
	want := []*cadvisorapi.Event{
		{ContainerName: "/kubepods/pod1/app", Timestamp: eventTime.Add(3 * time.Second), EventType: cadvisorapi.EventOomKill,
			EventData: cadvisorapi.EventData{OomKill: &cadvisorapi.OomKillEventData{Pid: 42, ProcessName: "hog"}}},
		{ContainerName: "/kubepods/pod1/app", Timestamp: eventTime.Add(4 * time.Second), EventType: cadvisorapi.EventContainerDeletion,
			EventData: cadvisorapi.EventData{ContainerDeletion: &cadvisorapi.ContainerDeletionEventData{ExitCode: 137}}},
	}
	if !reflect.DeepEqual(events, want) {
		t.Errorf("events %s, want %s", jsonString(events), jsonString(want))
	}
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestEventsRoutes(t *testing.T) {
	ts := newTestServer(t, Config{Events: newEventStore(t)}, nil)
	tests := []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/api/v1.3/events", 200, "[]"}, // no types asked for, as in cAdvisor
		{"GET", "/api/v1.3/events/", 200, "[]"},
		{"GET", "/api/v2.0/events/?all_events=true&max_events=1", 200, `"container_name":"/"`},
		{"GET", "/api/v2.1/events/kubepods/pod1?all_events=true", 200, `"container_name":"/kubepods/pod1"`},
		{"GET", "/api/v2.1/events?max_events=x", 400, `max_events "x": want a count, or -1 for all`},
		{"GET", "/api/v1.2/events", 404, "404: Page Not Found"},
		{"GET", "/api/v1.3/containers", 404, "404: Page Not Found"},
		{"POST", "/api/v1.3/events", 405, "405: Method Not Allowed"},
	}
	for _, tt := range tests {
		resp, body := do(t, tt.method, ts.URL+tt.path, "", "")
		if resp.StatusCode != tt.status || !strings.Contains(body, tt.body) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tt.method, tt.path, resp.StatusCode, body, tt.status, tt.body)
		}
	}
}

func TestEventsAbsentWithoutSource(t *testing.T) {
	ts := newTestServer(t, Config{}, nil)
	if resp, _ := do(t, http.MethodGet, ts.URL+"/api/v1.3/events", "", ""); resp.StatusCode != http.StatusNotFound {
		t.Errorf("status %d, want 404 without an event source", resp.StatusCode)
	}
}

// eventStream is an open stream=true response.
type eventStream struct {
	resp   *http.Response
	dec    *json.Decoder
	cancel context.CancelFunc
}

func openEventStream(t *testing.T, client *http.Client, url string) *eventStream {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return openEventStreamRequest(t, client, req)
}

func openEventStreamRequest(t *testing.T, client *http.Client, req *http.Request) *eventStream {
	t.Helper()
	ctx, cancel := context.WithCancel(req.Context())
	t.Cleanup(cancel)
	req = req.WithContext(ctx)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("stream: status %d: %s", resp.StatusCode, b)
	}
	return &eventStream{resp: resp, dec: json.NewDecoder(resp.Body), cancel: cancel}
}

// next decodes the next event, failing the test after a deadline.
func (s *eventStream) next(t *testing.T) eventJSON {
	t.Helper()
	type result struct {
		ev  eventJSON
		err error
	}
	got := make(chan result, 1)
	go func() {
		var r result
		r.err = s.dec.Decode(&r.ev)
		got <- r
	}()
	select {
	case r := <-got:
		if r.err != nil {
			t.Fatalf("decode the stream: %v", r.err)
		}
		return r.ev
	case <-time.After(10 * time.Second):
		s.cancel()
		t.Fatal("no event on the stream within 10s")
	}
	return eventJSON{}
}

// end reads the stream to its end and returns how it ended: nil for a
// clean end, the read error otherwise.
func (s *eventStream) end(t *testing.T) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(io.Discard, s.resp.Body)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		s.cancel()
		t.Fatal("the stream did not end within 10s")
	}
	return nil
}

func TestEventsStream(t *testing.T) {
	store := cadvisor.NewEventStore(cadvisor.EventLimits{})
	ts := newTestServer(t, Config{Events: store}, nil)
	stream := openEventStream(t, http.DefaultClient, ts.URL+"/api/v2.0/events/kubepods?stream=true&subcontainers=true&oom_kill_events=true&deletion_events=true")
	if ct := stream.resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	now := time.Now()
	store.Add(snapshot.Event{Type: snapshot.EventOOMKill, Cgroup: "/system.slice/x", Time: now})            // another cgroup
	store.Add(snapshot.Event{Type: snapshot.EventContainerCreation, Cgroup: "/kubepods/pod1/a", Time: now}) // another type
	store.Add(snapshot.Event{Type: snapshot.EventOOMKill, Cgroup: "/kubepods/pod1/a", Time: now, PID: 1, ProcessName: "a"})
	store.Add(snapshot.Event{Type: snapshot.EventContainerDeletion, Cgroup: "/kubepods/pod1/a", Time: now.Add(time.Second), ExitCode: -1})
	first, second := stream.next(t), stream.next(t)
	if first.EventType != cadvisorapi.EventOomKill || first.EventData.OomKill == nil || first.EventData.OomKill.ProcessName != "a" ||
		second.EventType != cadvisorapi.EventContainerDeletion || second.ContainerName != "/kubepods/pod1/a" {
		t.Errorf("streamed %s then %s, want the kill then the deletion", jsonString(first), jsonString(second))
	}
	// Shutdown: the store's Close ends the stream like a response, so
	// that cAdvisor's client (which exits on a decode error) returns.
	store.Close()
	if err := stream.end(t); err != nil {
		t.Errorf("the stream ended with %v at Close, want a clean end", err)
	}
}

// TestEventsStreamEndsWithItsClient checks that a client going away stops
// its watch: the store then has room for as many new watches as before.
func TestEventsStreamEndsWithItsClient(t *testing.T) {
	store := cadvisor.NewEventStore(cadvisor.EventLimits{})
	ts := newTestServer(t, Config{Events: store}, nil)
	for range 3 {
		stream := openEventStream(t, http.DefaultClient, ts.URL+"/api/v1.3/events?stream=true&all_events=true")
		stream.cancel()
		stream.resp.Body.Close()
	}
	// Fill the store's watch limit from here: every slot must come free.
	deadline := time.Now().Add(10 * time.Second)
	var watches []*snapshot.EventWatch
	for {
		w, err := store.Watch(snapshot.EventQuery{})
		if err == nil {
			watches = append(watches, w)
			continue
		}
		if !errors.Is(err, snapshot.ErrTooManyWatches) {
			t.Fatal(err)
		}
		if len(watches) == 128 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d watches free, want 128: the streams' watches outlived their clients", len(watches))
		}
		time.Sleep(10 * time.Millisecond)
	}
	// And with them all taken, a stream is refused.
	resp, body := do(t, http.MethodGet, ts.URL+"/api/v1.3/events?stream=true&all_events=true", "", "")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "too many event watches") {
		t.Errorf("a stream beyond the limit: %d %q, want 503", resp.StatusCode, body)
	}
}

// smallBuffers keeps a connection's socket buffers small, so that a client
// that does not read blocks the server's writes after a few kilobytes.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetWriteBuffer(4096)
	}
	return conn, err
}

// TestEventsStreamSlowClientIsDropped: a client that stops reading is
// dropped promptly (its connection cut, a line logged) while events keep
// being added without waiting for it, and a client that reads gets them
// all.
func TestEventsStreamSlowClientIsDropped(t *testing.T) {
	store := cadvisor.NewEventStore(cadvisor.EventLimits{})
	log := &logLines{}
	srv := httptest.NewUnstartedServer(NewReadOnlyHandler(Config{Events: store, Logger: log.logger()}, &fakeSource{}, nil))
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	smallClient := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if tcp, ok := conn.(*net.TCPConn); ok {
			_ = tcp.SetReadBuffer(4096)
		}
		return conn, err
	}}}
	const query = "/api/v1.3/events?stream=true&all_events=true&subcontainers=true"
	slow := openEventStream(t, smallClient, srv.URL+query)
	fast := openEventStream(t, http.DefaultClient, srv.URL+query)

	// The events come in batches the reading client keeps up with, so
	// only the other one falls behind.
	const n, batch = 20000, 100
	batchRead := make(chan int)
	go func() {
		defer close(batchRead)
		for i := range n {
			var ev eventJSON
			if err := fast.dec.Decode(&ev); err != nil || ev.ContainerName != fmt.Sprintf("/kubepods/pod%d", i) {
				t.Errorf("the reading client's event %d: %s, %v", i, jsonString(ev), err)
				return
			}
			if (i+1)%batch == 0 {
				batchRead <- i + 1
			}
		}
	}()
	for i := range n {
		store.Add(snapshot.Event{Type: snapshot.EventContainerCreation, Cgroup: fmt.Sprintf("/kubepods/pod%d", i), Time: time.Now()})
		if (i+1)%batch != 0 {
			continue
		}
		select {
		case read, ok := <-batchRead:
			if !ok || read != i+1 {
				t.Fatalf("the reading client stopped at batch %d", i+1)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the reading client did not get batch %d within 10s", i+1)
		}
	}
	// Promptly: without the cut, the write the dropped stream is blocked
	// in would hold it until its 10 s deadline.
	deadline := time.Now().Add(5 * time.Second)
	for len(log.matching("Dropped an event stream that fell behind")) != 1 {
		if time.Now().After(deadline) {
			t.Fatal("the drop was not logged within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}

	// What reached the slow client is whole events, then the cut.
	read := 0
	reader := bufio.NewReader(slow.resp.Body)
	var err error
	for {
		var line string
		if line, err = reader.ReadString('\n'); err != nil {
			break
		}
		var ev eventJSON
		if jsonErr := json.Unmarshal([]byte(line), &ev); jsonErr != nil {
			t.Fatalf("event %d: %v", read, jsonErr)
		}
		read++
	}
	if errors.Is(err, io.EOF) || read >= n {
		t.Errorf("the slow client read %d of %d events and then %v; want fewer and a cut connection, not a clean end", read, n, err)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestEventsStreamShutdown checks that http.Server.Shutdown, which waits
// for streaming handlers without ending them, returns once the event
// source is closed, and that no goroutine is left behind.
func TestEventsStreamShutdown(t *testing.T) {
	before := runtime.NumGoroutine()
	store := cadvisor.NewEventStore(cadvisor.EventLimits{})
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewHTTPServer(listener.Addr().String(), NewReadOnlyHandler(Config{Events: store, Logger: discardLogger()}, &fakeSource{}, nil))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(listener) }()
	transport := &http.Transport{}
	client := &http.Client{Transport: transport}
	var streams []*eventStream
	for range 3 {
		streams = append(streams, openEventStream(t, client, "http://"+listener.Addr().String()+"/api/v1.3/events?stream=true&all_events=true"))
	}
	store.Add(snapshot.Event{Type: snapshot.EventOOM, Cgroup: "/", Time: time.Now()})
	for _, s := range streams {
		s.next(t)
	}

	shutdownDone := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdownDone <- srv.Shutdown(ctx)
	}()
	store.Close() // what the binary does when its context ends
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		t.Fatalf("Serve: %v", err)
	}
	for i, s := range streams {
		if err := s.end(t); err != nil {
			t.Errorf("stream %d ended with %v, want a clean end", i, err)
		}
		s.resp.Body.Close()
	}
	transport.CloseIdleConnections()
	waitFor(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}
