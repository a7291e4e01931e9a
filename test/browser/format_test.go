package browser

import (
	"math"
	"strconv"
	"strings"
	"testing"
)

// The page's number formats (server/ui/page.js), written again here so
// that the test checks what a person reads, not only the data attributes.
// Both round the same float64 values the same way.

var byteUnits = []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}

// fixed writes scaled, a count of 10^-decimals, as a decimal.
func fixed(scaled int64, decimals int) string {
	s := strconv.FormatInt(scaled, 10)
	if decimals == 0 {
		return s
	}
	if len(s) < decimals+1 {
		s = strings.Repeat("0", decimals+1-len(s)) + s
	}
	return s[:len(s)-decimals] + "." + s[len(s)-decimals:]
}

func formatBytes(b *uint64) string {
	if b == nil {
		return "–"
	}
	if *b < 1024 {
		return strconv.FormatUint(*b, 10) + " B"
	}
	v, u := float64(*b), 0
	for v >= 1024 && u < len(byteUnits)-1 {
		v /= 1024
		u++
	}
	d := 0
	switch {
	case v < 10:
		d = 2
	case v < 100:
		d = 1
	}
	return fixed(int64(math.Round(v*math.Pow(10, float64(d)))), d) + " " + byteUnits[u]
}

func formatMillicores(n *uint64) string {
	if n == nil {
		return "–"
	}
	tenths := int64(math.Round(float64(*n) / 1e5))
	if tenths < 100 {
		return fixed(tenths, 1) + "m"
	}
	return strconv.FormatInt(int64(math.Round(float64(*n)/1e6)), 10) + "m"
}

func formatCores(n *uint64) string {
	if n == nil {
		return "–"
	}
	return fixed(int64(math.Round(float64(*n)/1e7)), 2)
}

func TestFormats(t *testing.T) {
	u := func(v uint64) *uint64 { return &v }
	for _, tt := range []struct{ got, want string }{
		{formatBytes(nil), "–"},
		{formatBytes(u(0)), "0 B"},
		{formatBytes(u(1023)), "1023 B"},
		{formatBytes(u(1024)), "1.00 KiB"},
		{formatBytes(u(52428800)), "50.0 MiB"},
		{formatBytes(u(123 << 20)), "123 MiB"},
		{formatBytes(u(25276059648)), "23.5 GiB"},
		{formatMillicores(u(0)), "0.0m"},
		{formatMillicores(u(250_000)), "0.3m"}, // half up, like Math.round
		{formatMillicores(u(9_949_999)), "9.9m"},
		{formatMillicores(u(9_950_000)), "10m"},
		{formatMillicores(u(1_234_567_890)), "1235m"},
		{formatCores(u(425_000_000)), "0.43"},
		{formatCores(u(2e9)), "2.00"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
