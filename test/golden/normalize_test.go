package golden

import (
	"regexp"
	"strings"
	"testing"
)

// What legitimately differs from one run over the same tree to the next:
// the time a sample was taken (the sampling clock, not a file, sets it),
// Prometheus sample timestamps, and container_last_seen, which is the time
// of the scrape. Start times are not here: they come from the captured
// modification times.
var (
	jsonTime         = regexp.MustCompile(`"time": "[^"]*"`)
	sampleTimestamp  = regexp.MustCompile(`(?m)^([a-z_:][^ ]*(?:\{.*\})? \S+) \d+$`)
	lastSeen         = regexp.MustCompile(`(?m)^(container_last_seen\{.*\}) \S+$`)
	normalizedMarker = "<normalized>"
)

func normalizeJSON(body string) string {
	return jsonTime.ReplaceAllString(body, `"time": "`+normalizedMarker+`"`)
}

func normalizeMetrics(body string) string {
	body = sampleTimestamp.ReplaceAllString(body, "$1")
	body = lastSeen.ReplaceAllString(body, "$1 "+normalizedMarker)
	if !strings.HasSuffix(body, "\n") {
		body += "\n"
	}
	return body
}

func TestNormalizeMetrics(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"# HELP a_total A.\na_total 3 1796013659211\n", "# HELP a_total A.\na_total 3\n"},
		{`b{x="1 2"} 4.5e+06 1796013659211` + "\n", `b{x="1 2"} 4.5e+06` + "\n"},
		// No timestamp: a label value with spaces is no reason to drop the value.
		{`v{os="Debian GNU/Linux 12 (bookworm)"} 1` + "\n", `v{os="Debian GNU/Linux 12 (bookworm)"} 1` + "\n"},
		{"scrape_error 0", "scrape_error 0\n"},
		{`container_last_seen{id="/"} 1.796e+09 1796013659213` + "\n", `container_last_seen{id="/"} <normalized>` + "\n"},
	} {
		if got := normalizeMetrics(tc.in); got != tc.want {
			t.Errorf("normalizeMetrics(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestNormalizeJSON(t *testing.T) {
	in := `{"startTime": "2026-11-30T04:49:15Z", "cpu": {"time": "2026-11-30T05:00:00Z"}}`
	want := `{"startTime": "2026-11-30T04:49:15Z", "cpu": {"time": "<normalized>"}}`
	if got := normalizeJSON(in); got != want {
		t.Errorf("normalizeJSON = %q, want %q", got, want)
	}
}
