package collector

import (
	"os"
	"path/filepath"
	"testing"
)

func TestParseMaxPID(t *testing.T) {
	ptr := func(v int64) *int64 { return &v }
	tests := []struct {
		name               string
		pidMax, threadsMax string
		want               *int64
	}{
		{name: "pid_max smaller", pidMax: "32768\n", threadsMax: "192730\n", want: ptr(32768)},
		{name: "threads-max smaller", pidMax: "4194304\n", threadsMax: "127247\n", want: ptr(127247)},
		{name: "only pid_max", pidMax: "32768\n", want: ptr(32768)},
		{name: "only threads-max", threadsMax: "100\n", want: ptr(100)},
		{name: "neither", want: nil},
		{name: "last byte is dropped even without newline", pidMax: "32768", want: ptr(3276)},
		{name: "garbage ignored", pidMax: "abc\n", threadsMax: "500\n", want: ptr(500)},
		{name: "negative ignored", pidMax: "-1\n", threadsMax: "500\n", want: ptr(500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMaxPID([]byte(tt.pidMax), []byte(tt.threadsMax))
			if (got == nil) != (tt.want == nil) || (got != nil && *got != *tt.want) {
				t.Errorf("parseMaxPID = %v, want %v", deref(got), deref(tt.want))
			}
		})
	}
}

func deref(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestParseLoadavgProcs(t *testing.T) {
	tests := []struct {
		data   string
		want   int64
		wantOK bool
	}{
		{data: "1.14 1.45 0.79 1/84 16674\n", want: 84, wantOK: true},
		{data: "0.00 0.00 0.00 2/3518 3715089", want: 3518, wantOK: true},
		{data: "0.00 0.00 0.00\n"},
		{data: "0.00 0.00 0.00 84 1\n"},
		{data: "0.00 0.00 0.00 1/x 1\n"},
		{data: ""},
	}
	for _, tt := range tests {
		got, ok := parseLoadavgProcs([]byte(tt.data))
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseLoadavgProcs(%q) = %d, %v; want %d, %v", tt.data, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestReadRlimit(t *testing.T) {
	proc := t.TempDir()
	writeFiles(t, proc, map[string]string{
		"sys/kernel/pid_max":     "4194304\n",
		"sys/kernel/threads-max": "95000\n",
		"loadavg":                "0.50 0.40 0.30 3/512 999\n",
	})
	got := ReadRlimit(proc)
	if got.MaxPID == nil || *got.MaxPID != 95000 {
		t.Errorf("MaxPID = %v, want 95000", deref(got.MaxPID))
	}
	if got.CurProc == nil || *got.CurProc != 512 {
		t.Errorf("CurProc = %v, want 512", deref(got.CurProc))
	}
	if got.Timestamp.IsZero() {
		t.Error("Timestamp is zero")
	}

	// Nothing readable: MaxPID nil, CurProc from sysinfo(2), no panic.
	empty := ReadRlimit(filepath.Join(proc, "missing"))
	if empty.MaxPID != nil {
		t.Errorf("MaxPID = %v without files, want nil", *empty.MaxPID)
	}
	if empty.CurProc == nil || *empty.CurProc <= 0 {
		t.Errorf("CurProc = %v, want the sysinfo count", deref(empty.CurProc))
	}
}

// writeFiles creates files (and their directories) under root.
func writeFiles(t testing.TB, root string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		path := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
