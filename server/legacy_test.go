package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
	"github.com/kubelet-stats-server/kubelet-stats-server/snapshot"
)

const (
	legacyPodUID    = "6f1c2a4e-0000-4000-8000-000000000001"
	legacyPodCgroup = "/kubepods/burstable/pod" + legacyPodUID
	legacySamples   = 5
)

// legacySampleTime is the newest sample of the legacy fixture; the others
// are one second apart before it.
var legacySampleTime = sampleTime.UTC().Truncate(time.Second)

// legacyView is a node with the root, the pod root, one pod with network
// and two containers, and its sandbox, each with legacySamples samples
// whose cpu total is the sample's index+1 in seconds.
func legacyView() *cadvisor.View {
	view := &cadvisor.View{Time: legacySampleTime, Cgroups: map[string]*cadvisor.CgroupInfo{}}
	for _, name := range []string{"/", "/kubepods", "/kubepods/burstable", legacyPodCgroup,
		legacyPodCgroup + "/ctr-app", legacyPodCgroup + "/ctr-side", legacyPodCgroup + "/sandbox"} {
		info := &cadvisor.CgroupInfo{Name: name, Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, CPUShares: 1024,
			CreationTime: legacySampleTime.Add(-time.Hour)}}
		for i := range legacySamples {
			sample := &cadvisor.Sample{
				Timestamp: legacySampleTime.Add(time.Duration(i-legacySamples+1) * time.Second),
				CPU:       cadvisor.CPUStats{UsageTotal: uint64(i+1) * 1e9, PerCPU: []uint64{uint64(i+1) * 1e9, 0}},
				Memory:    cadvisor.MemoryStats{Usage: 1 << 20, WorkingSet: 1 << 19, Limit: 1 << 30},
			}
			if name == legacyPodCgroup || name == "/" {
				sample.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{{Name: "eth0", RxBytes: uint64(i)}}}
			}
			info.Samples = append(info.Samples, sample)
		}
		view.Cgroups[name] = info
	}
	return view
}

func legacySnapshot(gen uint64) *snapshot.Snapshot {
	pods := []snapshot.Pod{{
		Namespace: "default", Name: "web", UID: legacyPodUID, Cgroup: legacyPodCgroup,
		Containers: []snapshot.Container{
			{Name: "app", ID: "ctr-app", Cgroup: legacyPodCgroup + "/ctr-app", Image: "registry.local/app:1",
				Labels: map[string]string{"io.kubernetes.container.name": "app"}},
			{Name: "side", ID: "ctr-side", Cgroup: legacyPodCgroup + "/ctr-side"},
		},
	}, {
		Namespace: "kube-system", Name: "dns", UID: "6f1c2a4e-0000-4000-8000-000000000002",
		Containers: []snapshot.Container{{Name: "dns", ID: "ctr-dns"}}, // not tracked
	}}
	machine := &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30, BootID: "boot"}
	return &snapshot.Snapshot{Generation: gen, Time: legacySampleTime, Summary: craftedSummary(),
		CPUAndMemory: cpuAndMemorySummary(), Cgroups: snapshot.NewCgroups(legacyView(), machine, pods)}
}

func newLegacyTestServer(t testing.TB) *testServer {
	t.Helper()
	src := &fakeSource{}
	src.snapshot.Store(legacySnapshot(1))
	return newTestServer(t, Config{}, src)
}

func TestParseStatsRequest(t *testing.T) {
	start := time.Date(2026, 11, 22, 13, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		body    string
		want    statsRequest
		wantErr string
	}{
		{"empty body means defaults", "", statsRequest{NumStats: 60}, ""},
		{"whitespace is empty", " \n\t", statsRequest{NumStats: 60}, ""},
		{"null leaves defaults", "null", statsRequest{NumStats: 60}, ""},
		{"empty object leaves defaults", "{}", statsRequest{NumStats: 60}, ""},
		{"explicit 0 stays 0", `{"num_stats":0}`, statsRequest{NumStats: 0}, ""},
		{"-1 means all", `{"num_stats":-1}`, statsRequest{NumStats: -1}, ""},
		{"every key", `{"containerName":"/kubepods","num_stats":5,"start":"2026-11-22T13:00:00Z","end":"2026-11-22T14:00:00+01:00","subcontainers":true}`,
			statsRequest{ContainerName: "/kubepods", NumStats: 5, Start: start, End: start, Subcontainers: true}, ""},
		{"snake_case containerName is not the key", `{"container_name":"/x"}`, statsRequest{NumStats: 60}, ""},
		{"only the first value counts, like the kubelet", `{"num_stats":3} trailing`, statsRequest{NumStats: 3}, ""},
		{"below -1", `{"num_stats":-2}`, statsRequest{}, errNumStats.Error()},
		{"truncated", `{"num_stats":`, statsRequest{}, "unexpected EOF"},
		{"not JSON", `num_stats=3`, statsRequest{}, "invalid character 'm' in literal null (expecting 'l')"},
		{"wrong type", `{"num_stats":"3"}`, statsRequest{}, "json: cannot unmarshal string into Go struct field statsRequest.num_stats of type int"},
		{"bad time", `{"start":"yesterday"}`, statsRequest{}, `parsing time "yesterday"`},
		{"overflow", `{"num_stats":1e30}`, statsRequest{}, "cannot unmarshal number 1e30"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStatsRequest([]byte(tt.body))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.ContainerName != tt.want.ContainerName || got.NumStats != tt.want.NumStats || !got.Start.Equal(tt.want.Start) ||
				!got.End.Equal(tt.want.End) || got.Subcontainers != tt.want.Subcontainers {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestLegacyStatusCodes covers every status code of the legacy routes.
func TestLegacyStatusCodes(t *testing.T) {
	ts := newLegacyTestServer(t)
	tooLarge := `{"containerName":"` + strings.Repeat("x", 1<<20) + `"}`
	tests := []struct {
		name, method, path, body string
		header                   []string
		wantStatus               int
		wantBody                 string // exact for errors; "" to skip
	}{
		{"root", "GET", "/stats/", "", nil, 200, ""},
		{"root by POST", "POST", "/stats/", `{"num_stats":1}`, nil, 200, ""},
		{"root without the slash redirects", "GET", "/stats", "", nil, 307, ""},
		{"container", "POST", "/stats/container", `{"containerName":"/kubepods"}`, nil, 200, ""},
		{"container by GET with a body", "GET", "/stats/container", `{"containerName":"kubepods"}`, nil, 200, ""},
		{"pod container in default", "GET", "/stats/web/app", "", nil, 200, ""},
		{"pod container with namespace and uid", "GET", "/stats/default/web/" + legacyPodUID + "/app", "", nil, 200, ""},
		{"spec", "GET", "/spec/", "", nil, 200, ""},

		{"unknown cgroup", "POST", "/stats/container", `{"containerName":"/nope"}`, nil, 404, "no matching container"},
		{"unknown pod", "GET", "/stats/db/app", "", nil, 404, "no matching container"},
		{"unknown container", "GET", "/stats/web/db", "", nil, 404, "no matching container"},
		{"pod in another namespace", "GET", "/stats/dns/dns", "", nil, 404, "no matching container"},
		{"container without a cgroup", "GET", "/stats/kube-system/dns/6f1c2a4e-0000-4000-8000-000000000002/dns", "", nil, 404, "no matching container"},
		{"uid mismatch", "GET", "/stats/default/web/6f1c2a4e-0000-4000-8000-000000000009/app", "", nil, 404, "no matching container"},
		{"container/x is the pod route (kubelet quirk)", "GET", "/stats/container/app", "", nil, 404, "no matching container"},
		{"five segments", "GET", "/stats/default/x/y/z/w", "", nil, 404, "404: Page Not Found"},
		{"three segments", "GET", "/stats/default/x/y", "", nil, 404, "404: Page Not Found"},

		// net/http cleans "//" before routing, so empty names never reach
		// the handler over HTTP (TestLegacyEmptyNames goes past it).
		{"empty segment redirects to the clean path", "GET", "/stats//app", "", nil, 307, ""},
		{"trailing slash drops the container segment", "GET", "/stats/default/web/" + legacyPodUID + "/", "", nil, 404, "404: Page Not Found"},
		{"blank container name", "GET", "/stats/default/web/" + legacyPodUID + "/%20", "", nil, 404, "no matching container"},
		{"malformed body", "POST", "/stats/", `{"num_stats":`, nil, 400, "Invalid stats request: unexpected EOF"},
		{"malformed body on the pod route", "POST", "/stats/web/app", `[`, nil, 400, "Invalid stats request: unexpected EOF"},
		{"wrong type", "POST", "/stats/container", `{"subcontainers":"yes"}`, nil, 400,
			"Invalid stats request: json: cannot unmarshal string into Go struct field statsRequest.subcontainers of type bool"},
		{"num_stats below -1", "POST", "/stats/", `{"num_stats":-5}`, nil, 400, "Invalid stats request: " + errNumStats.Error()},
		{"body over 1 MiB", "POST", "/stats/container", tooLarge, nil, 413, "request body too large: the limit is 1048576 bytes"},

		{"DELETE", "DELETE", "/stats/", "", nil, 405, "405: Method Not Allowed"},
		{"POST /spec/", "POST", "/spec/", "", nil, 405, "405: Method Not Allowed"},
		{"not acceptable", "GET", "/stats/web/app", "", []string{"Accept", "text/plain"}, 406,
			"406: Not Acceptable\n\nAvailable representations: application/json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			req, err := http.NewRequest(tt.method, ts.URL+tt.path, strings.NewReader(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i+1 < len(tt.header); i += 2 {
				req.Header.Set(tt.header[i], tt.header[i+1])
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body bytes.Buffer
			if _, err := body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("%s %s = %d %q, want %d", tt.method, tt.path, resp.StatusCode, body.String(), tt.wantStatus)
			}
			if tt.wantBody != "" && body.String() != tt.wantBody {
				t.Errorf("body = %q, want %q", body.String(), tt.wantBody)
			}
			if tt.wantStatus == 200 {
				if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
					t.Errorf("Content-Type = %q", ct)
				}
				if !json.Valid(body.Bytes()) || bytes.ContainsAny(body.Bytes(), "\n") {
					t.Errorf("body is not compact JSON: %.80q", body.String())
				}
			}
		})
	}
}

// TestLegacyEmptyNames dispatches past net/http's path cleaning, which
// otherwise redirects a path with an empty segment, to reach the kubelet's
// 400 for an empty pod or container name.
func TestLegacyEmptyNames(t *testing.T) {
	src := &fakeSource{}
	src.snapshot.Store(legacySnapshot(1))
	c := newContainer(discardLogger())
	installSummary(c, newSummaryHandler(Config{}.withDefaults(), src, encodeSummary))
	for _, tt := range []struct{ path, want string }{
		{"/stats//app", "Invalid pod container request: map[containerName:app namespace:default podName: uid:]"},
		{"/stats/web/", ""}, // one segment: no route
		{"/stats/default//uid/app", "Invalid pod container request: map[containerName:app namespace:default podName: uid:uid]"},
		{"/stats/default/web/uid//", ""},
	} {
		rec := httptest.NewRecorder()
		c.Dispatch(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
		switch {
		case tt.want != "" && (rec.Code != http.StatusBadRequest || rec.Body.String() != tt.want):
			t.Errorf("GET %s = %d %q, want 400 %q", tt.path, rec.Code, rec.Body.String(), tt.want)
		case tt.want == "" && rec.Code == http.StatusBadRequest:
			t.Errorf("GET %s = 400 %q", tt.path, rec.Body.String())
		}
	}
	rec := httptest.NewRecorder()
	c.Dispatch(rec, httptest.NewRequest(http.MethodGet, "/stats/default/web//app", nil))
	if rec.Code != http.StatusOK {
		t.Errorf("GET /stats/default/web//app = %d %q, want 200: an empty uid matches any", rec.Code, rec.Body.String())
	}
}

func TestLegacyBeforeFirstSnapshot(t *testing.T) {
	ts := newTestServer(t, Config{}, &fakeSource{})
	for _, path := range []string{"/stats/", "/stats/container", "/stats/web/app", "/stats/default/web/uid/app", "/spec/"} {
		resp, body := do(t, http.MethodGet, ts.URL+path, "", "")
		if resp.StatusCode != http.StatusServiceUnavailable || body != notReadyMessage || resp.Header.Get("Retry-After") != "10" {
			t.Errorf("GET %s = %d %q (Retry-After %q), want 503 %q", path, resp.StatusCode, body, resp.Header.Get("Retry-After"), notReadyMessage)
		}
	}
	// A malformed body is still a 400 before the first snapshot: the body is
	// read first, as in the kubelet.
	if resp, _ := do(t, http.MethodPost, ts.URL+"/stats/", "", "{"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("malformed body before the first snapshot = %d, want 400", resp.StatusCode)
	}
}

func TestLegacyWithoutLegacyView(t *testing.T) {
	ts := newTestServer(t, Config{}, nil) // a snapshot built without a legacy view
	resp, body := do(t, http.MethodGet, ts.URL+"/spec/", "", "")
	if resp.StatusCode != http.StatusInternalServerError || body != "Internal Error: snapshot 1 has no legacy view" {
		t.Errorf("GET /spec/ = %d %q", resp.StatusCode, body)
	}
}

// getLegacy does a request that must answer 200 and decodes the body into
// the upstream cAdvisor type T.
func getLegacy[T any](t *testing.T, ts *testServer, method, path, body string) T {
	t.Helper()
	resp, text := do(t, method, ts.URL+path, "", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s %s = %d %q", method, path, body, resp.StatusCode, text)
	}
	var out T
	dec := json.NewDecoder(strings.NewReader(text))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("decode %s %s into %T: %v", method, path, out, err)
	}
	return out
}

func sampleSeconds(stats []*cadvisorapi.ContainerStats) []int {
	var out []int
	for _, s := range stats {
		out = append(out, int(s.Timestamp.Sub(legacySampleTime)/time.Second))
	}
	return out
}

func TestLegacyResponses(t *testing.T) {
	ts := newLegacyTestServer(t)

	t.Run("root", func(t *testing.T) {
		root := getLegacy[cadvisorapi.ContainerInfo](t, ts, "GET", "/stats/", "")
		if root.Name != "/" || !slices.Equal(sampleSeconds(root.Stats), []int{-4, -3, -2, -1, 0}) {
			t.Errorf("root = %q with samples at %v, want / with all 5 oldest first", root.Name, sampleSeconds(root.Stats))
		}
		if root.Stats[4].Cpu.Usage.Total != 5e9 || root.Stats[4].Network.Name != "eth0" || root.Spec.Cpu.Limit != 1024 {
			t.Errorf("root newest sample = %+v, spec %+v", root.Stats[4], root.Spec)
		}
	})

	t.Run("num_stats and time range", func(t *testing.T) {
		at := func(s int) string { return legacySampleTime.Add(time.Duration(s) * time.Second).Format(time.RFC3339) }
		for _, tt := range []struct {
			body string
			want []int
		}{
			{`{"num_stats":2}`, []int{-1, 0}},
			{`{"num_stats":0}`, nil},
			{`{"num_stats":-1}`, []int{-4, -3, -2, -1, 0}},
			{`{"num_stats":60,"start":"` + at(-3) + `","end":"` + at(-2) + `"}`, []int{-3, -2}},
			{`{"num_stats":1,"start":"` + at(-3) + `","end":"` + at(-1) + `"}`, []int{-1}},
			{`{"start":"` + at(1) + `"}`, nil},
		} {
			info := getLegacy[cadvisorapi.ContainerInfo](t, ts, "POST", "/stats/web/app", tt.body)
			if got := sampleSeconds(info.Stats); !slices.Equal(got, tt.want) {
				t.Errorf("%s: samples at %v, want %v", tt.body, got, tt.want)
			}
		}
	})

	t.Run("pod container carries CRI identity and the pod's network", func(t *testing.T) {
		for _, path := range []string{"/stats/web/app", "/stats/default/web/" + legacyPodUID + "/app"} {
			app := getLegacy[cadvisorapi.ContainerInfo](t, ts, "GET", path, "")
			if app.Name != legacyPodCgroup+"/ctr-app" || app.Id != "ctr-app" || app.Spec.Image != "registry.local/app:1" ||
				app.Spec.Labels["io.kubernetes.container.name"] != "app" {
				t.Errorf("%s = %+v", path, app.ContainerReference)
			}
			if len(app.Stats) != legacySamples || app.Stats[legacySamples-1].Network.RxBytes != legacySamples-1 {
				t.Errorf("%s network = %+v, want the pod's", path, app.Stats[len(app.Stats)-1].Network)
			}
		}
	})

	t.Run("container with and without subcontainers", func(t *testing.T) {
		one := getLegacy[map[string]cadvisorapi.ContainerInfo](t, ts, "POST", "/stats/container", `{"containerName":"kubepods/burstable/pod`+legacyPodUID+`/"}`)
		if len(one) != 1 || one[legacyPodCgroup].Name != legacyPodCgroup {
			t.Errorf("container = %v, want only the pod cgroup keyed by its clean name", keysOf(one))
		}
		var refs []string
		for _, ref := range one[legacyPodCgroup].Subcontainers {
			refs = append(refs, ref.Name)
		}
		wantChildren := []string{legacyPodCgroup + "/ctr-app", legacyPodCgroup + "/ctr-side", legacyPodCgroup + "/sandbox"}
		if !slices.Equal(refs, wantChildren) {
			t.Errorf("subcontainer references = %v, want %v", refs, wantChildren)
		}
		all := getLegacy[map[string]cadvisorapi.ContainerInfo](t, ts, "POST", "/stats/container", `{"containerName":"/kubepods","subcontainers":true,"num_stats":1}`)
		if want := append([]string{"/kubepods", "/kubepods/burstable", legacyPodCgroup}, wantChildren...); !slices.Equal(keysOf(all), want) {
			t.Errorf("subcontainers of /kubepods = %v, want %v", keysOf(all), want)
		}
		for name, info := range all {
			if len(info.Stats) != 1 {
				t.Errorf("%s has %d samples, want num_stats 1", name, len(info.Stats))
			}
		}
		root := getLegacy[map[string]cadvisorapi.ContainerInfo](t, ts, "GET", "/stats/container", "")
		if !slices.Equal(keysOf(root), []string{"/"}) {
			t.Errorf("default containerName = %v, want /", keysOf(root))
		}
	})

	t.Run("spec", func(t *testing.T) {
		machine := getLegacy[cadvisorapi.MachineInfo](t, ts, "GET", "/spec/", "")
		if machine.NumCores != 2 || machine.MemoryCapacity != 8<<30 || machine.BootID != "boot" || !machine.Timestamp.Equal(legacySampleTime) {
			t.Errorf("machine = %+v", machine)
		}
	})
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// FuzzLegacyRequest feeds arbitrary paths below /stats/ and bodies to the
// handler. Nothing may panic (which the recovery would turn into a 500),
// every status must be one the routes document, and a 200 must decode into
// the upstream types with samples that honour the request.
func FuzzLegacyRequest(f *testing.F) {
	for _, seed := range []struct{ path, body string }{
		{"", ""},
		{"", `{"num_stats":2}`},
		{"container", `{"containerName":"/kubepods","subcontainers":true,"num_stats":-1}`},
		{"container", `{"containerName":"../../kubepods/./burstable"}`},
		{"web/app", `{"start":"2026-11-22T13:22:31Z","end":"2026-11-22T13:22:33Z"}`},
		{"default/web/" + legacyPodUID + "/app", `{"num_stats":0}`},
		{"default//x/app", ""},
		{"container/x", "{"},
		{"summary", ""},
		{"a/b/c/d/e", ""},
		{"web/app", `{"num_stats":-2}`},
		{"web/app", "\x00\xff"},
		{"%2e%2e/web", `null`},
	} {
		f.Add(seed.path, []byte(seed.body))
	}
	src := &fakeSource{}
	src.snapshot.Store(legacySnapshot(1))
	handler := newReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{}, encodeSummary)
	allowed := map[int]bool{200: true, 307: true, 400: true, 404: true, 413: true}
	f.Fuzz(func(t *testing.T, path string, body []byte) {
		req := &http.Request{
			Method: http.MethodPost, URL: &url.URL{Path: "/stats/" + path}, RequestURI: "/stats/" + path,
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1, Header: http.Header{},
			Body: httpBody(body), ContentLength: int64(len(body)), Host: "kubelet",
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("POST /stats/%q with %q = %d %q", path, body, rec.Code, rec.Body.String())
		}
		if rec.Code != http.StatusOK || strings.HasPrefix(path, "summary") {
			return
		}
		query, err := parseStatsRequest(body)
		if err != nil {
			t.Fatalf("200 for a body that does not parse: %v", err)
		}
		var infos map[string]cadvisorapi.ContainerInfo
		if json.Unmarshal(rec.Body.Bytes(), &infos) != nil {
			var one cadvisorapi.ContainerInfo
			if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil {
				t.Fatalf("200 body decodes into neither ContainerInfo nor a map of them: %v", err)
			}
			infos = map[string]cadvisorapi.ContainerInfo{one.Name: one}
		}
		for name, info := range infos {
			checkSamples(t, name, info.Stats, query)
		}
	})
}

// checkSamples asserts what a request promises about the samples: oldest
// first, within [start, end], at most num_stats.
func checkSamples(t *testing.T, name string, stats []*cadvisorapi.ContainerStats, query statsRequest) {
	t.Helper()
	if query.NumStats >= 0 && len(stats) > query.NumStats {
		t.Errorf("%s: %d samples for num_stats %d", name, len(stats), query.NumStats)
	}
	for i, s := range stats {
		if i > 0 && !s.Timestamp.After(stats[i-1].Timestamp) {
			t.Errorf("%s: samples not oldest first at %d", name, i)
		}
		if (!query.Start.IsZero() && s.Timestamp.Before(query.Start)) || (!query.End.IsZero() && s.Timestamp.After(query.End)) {
			t.Errorf("%s: sample at %v outside [%v, %v]", name, s.Timestamp, query.Start, query.End)
		}
	}
}

func httpBody(b []byte) *readCloser { return &readCloser{Reader: bytes.NewReader(b)} }

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

// syntheticLegacySnapshot is a node with pods×containers container cgroups
// (plus each pod's cgroup and sandbox), every cgroup holding samples
// samples with every collected field set: 12 is the default 2 min
// retention at the kubelet's 10 s housekeeping.
func syntheticLegacySnapshot(pods, containers, samples int) *snapshot.Snapshot {
	view := &cadvisor.View{Time: legacySampleTime, Cgroups: map[string]*cadvisor.CgroupInfo{}}
	psi := &cadvisor.PSIStats{Some: cadvisor.PSIData{Total: 123456, Avg10: 0.5}, Full: cadvisor.PSIData{Total: 23456}}
	add := func(name string, network bool) {
		info := &cadvisor.CgroupInfo{Name: name, Spec: cadvisor.Spec{HasCPU: true, HasMemory: true, HasProcesses: true,
			CPUShares: 102, CPUPeriod: 100000, CPUQuota: 50000, CPUMask: "0-1", CreationTime: legacySampleTime.Add(-time.Hour)}}
		for i := range samples {
			sample := &cadvisor.Sample{
				Timestamp: legacySampleTime.Add(time.Duration(i-samples+1) * 10 * time.Second),
				CPU: cadvisor.CPUStats{UsageTotal: uint64(i) * 1e9, UsageUser: 1e8, UsageSystem: 1e8, PerCPU: []uint64{1e9, 2e9},
					Periods: 100, ThrottledPeriods: 3, ThrottledTime: 4e6, PSI: psi},
				Memory: cadvisor.MemoryStats{Usage: 50 << 20, MaxUsage: 60 << 20, WorkingSet: 40 << 20, RSS: 30 << 20, Cache: 10 << 20,
					MappedFile: 1 << 20, ActiveFile: 5 << 20, InactiveFile: 5 << 20, PageFaults: 4242, MajorPageFaults: 3,
					Limit: 100 << 20, SwapLimit: 100 << 20, PSI: psi},
				IOPressure: psi,
				Processes:  cadvisor.ProcessStats{Count: 2, ThreadsCount: 9},
			}
			if network {
				sample.Network = &cadvisor.NetworkStats{Interfaces: []cadvisor.InterfaceStats{{Name: "eth0", RxBytes: 123456789, TxBytes: 98765432}}}
			}
			info.Samples = append(info.Samples, sample)
		}
		view.Cgroups[name] = info
	}
	add("/", true)
	add("/kubepods", false)
	add("/kubepods/burstable", false)
	legacyPods := make([]snapshot.Pod, 0, pods)
	for p := range pods {
		uid := fmt.Sprintf("6f1c2a4e-0000-4000-8000-%012d", p)
		podCgroup := "/kubepods/burstable/pod" + uid
		add(podCgroup, true)
		add(podCgroup+"/sandbox", false)
		pod := snapshot.Pod{Namespace: "default", Name: fmt.Sprintf("pod-%03d", p), UID: uid, Cgroup: podCgroup}
		for c := range containers {
			id := fmt.Sprintf("%064d", p*100+c)
			add(podCgroup+"/"+id, false)
			pod.Containers = append(pod.Containers, snapshot.Container{Name: fmt.Sprintf("container-%d", c), ID: id,
				Cgroup: podCgroup + "/" + id, Image: "registry.local/app:1", Labels: map[string]string{
					"io.kubernetes.container.name": fmt.Sprintf("container-%d", c), "io.kubernetes.pod.name": pod.Name,
					"io.kubernetes.pod.namespace": "default", "io.kubernetes.pod.uid": uid}})
		}
		legacyPods = append(legacyPods, pod)
	}
	machine := &cadvisor.Machine{Timestamp: legacySampleTime, NumCores: 2, MemoryCapacity: 8 << 30,
		NetworkDevices: []cadvisor.NetDevice{{Name: "eth0", MTU: 1500}}}
	return &snapshot.Snapshot{Generation: 1, Time: legacySampleTime, Summary: craftedSummary(), CPUAndMemory: cpuAndMemorySummary(),
		Cgroups: snapshot.NewCgroups(view, machine, legacyPods)}
}

// BenchmarkLegacyHandler is the server's share of one legacy request on a
// 110-pod node with 12 samples per cgroup: the handler chain alone, no
// socket and no client. Each request converts and encodes afresh.
func BenchmarkLegacyHandler(b *testing.B) {
	src := &fakeSource{}
	src.snapshot.Store(syntheticLegacySnapshot(benchPods, benchContainers, 12))
	h := NewReadOnlyHandler(Config{Logger: discardLogger()}, src, &fakeHealth{})
	for _, bench := range []struct{ name, method, path, body string }{
		{"root", "GET", "/stats/", ""},
		{"pod container", "GET", "/stats/default/pod-042/6f1c2a4e-0000-4000-8000-000000000042/container-1", ""},
		{"pod container num_stats 1", "POST", "/stats/pod-042/container-1", `{"num_stats":1}`},
		{"container", "POST", "/stats/container", `{"containerName":"/kubepods/burstable"}`},
		{"subcontainers of kubepods", "POST", "/stats/container", `{"containerName":"/kubepods","subcontainers":true}`},
		{"spec", "GET", "/spec/", ""},
	} {
		b.Run(bench.name, func(b *testing.B) {
			serve := func() int {
				rec := &countingWriter{header: http.Header{}}
				h.ServeHTTP(rec, httptest.NewRequest(bench.method, bench.path, strings.NewReader(bench.body)))
				if rec.status != http.StatusOK {
					b.Fatalf("%s %s = %d", bench.method, bench.path, rec.status)
				}
				return rec.written
			}
			b.SetBytes(int64(serve()))
			b.ReportAllocs()
			for b.Loop() {
				serve()
			}
		})
	}
}

// countingWriter is a ResponseWriter that keeps the status and the size.
type countingWriter struct {
	header  http.Header
	status  int
	written int
}

func (w *countingWriter) Header() http.Header { return w.header }
func (w *countingWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}
func (w *countingWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.written += len(p)
	return len(p), nil
}
