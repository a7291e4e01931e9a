package collector

import (
	"bytes"
	"fmt"
	"strconv"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// parsePSI parses a pressure file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// cpu.pressure had no "full" line before kernel 5.13; it stays zero then.
// Unknown lines and keys are ignored so newer kernels keep parsing.
func parsePSI(data []byte) (*cadvisor.PSIStats, error) {
	var out cadvisor.PSIStats
	if err := parsePSIInto(data, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// parsePSIInto is parsePSI into a caller's struct, splitting fields by
// hand: a pass parses three pressure files per cgroup, and bytes.Fields
// allocates a slice per line.
func parsePSIInto(data []byte, out *cadvisor.PSIStats) error {
	*out = cadvisor.PSIStats{}
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		kind, fields := nextPSIField(line)
		var target *cadvisor.PSIData
		switch string(kind) {
		case "some":
			target = &out.Some
		case "full":
			target = &out.Full
		default:
			continue
		}
		for len(fields) > 0 {
			var field []byte
			field, fields = nextPSIField(fields)
			if len(field) == 0 {
				break
			}
			key, value, ok := bytes.Cut(field, []byte{'='})
			if !ok {
				return fmt.Errorf("malformed pressure field %q", field)
			}
			if err := setPSIValue(target, key, value); err != nil {
				return err
			}
		}
	}
	return nil
}

// nextPSIField returns the first space-separated field of line and the rest.
func nextPSIField(line []byte) (field, rest []byte) {
	line = bytes.TrimLeft(line, " \t")
	end := bytes.IndexAny(line, " \t")
	if end < 0 {
		return line, nil
	}
	return line[:end], line[end:]
}

// setPSIValue sets one key=value field. The values are parsed from the
// bytes: a string conversion for strconv would escape into its error and
// allocate, six times per file.
func setPSIValue(target *cadvisor.PSIData, key, value []byte) error {
	var avg *float64
	switch string(key) {
	case "total":
		v, ok := parseDecimal(value)
		if !ok {
			return fmt.Errorf("pressure total %q: not a counter", value)
		}
		target.Total = v
		return nil
	case "avg10":
		avg = &target.Avg10
	case "avg60":
		avg = &target.Avg60
	case "avg300":
		avg = &target.Avg300
	default:
		return nil
	}
	if v, ok := parseHundredths(value); ok {
		*avg = v
		return nil
	}
	v, err := strconv.ParseFloat(string(value), 64)
	if err != nil {
		return fmt.Errorf("pressure %s %q: %w", key, value, err)
	}
	*avg = v
	return nil
}

// parseHundredths parses the kernel's "%lu.%02lu" averages. float64(n)/100
// is the float nearest to n/100, which is what strconv.ParseFloat returns
// for the same digits.
func parseHundredths(value []byte) (float64, bool) {
	whole, frac, ok := bytes.Cut(value, []byte{'.'})
	if !ok || len(frac) != 2 || len(whole) > 12 {
		return 0, false
	}
	w, okWhole := parseDecimal(whole)
	f, okFrac := parseDecimal(frac)
	if !okWhole || !okFrac {
		return 0, false
	}
	return float64(w*100+f) / 100, true
}
