package cadvisor

import (
	"bytes"
	"fmt"
	"strconv"
)

// parsePSI parses a pressure file:
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=0
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// cpu.pressure had no "full" line before kernel 5.13; it stays zero then.
// Unknown lines and keys are ignored so newer kernels keep parsing.
func parsePSI(data []byte) (*PSIStats, error) {
	var out PSIStats
	for len(data) > 0 {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		fields := bytes.Fields(line)
		if len(fields) == 0 {
			continue
		}
		var target *PSIData
		switch string(fields[0]) {
		case "some":
			target = &out.Some
		case "full":
			target = &out.Full
		default:
			continue
		}
		for _, field := range fields[1:] {
			key, value, ok := bytes.Cut(field, []byte{'='})
			if !ok {
				return nil, fmt.Errorf("malformed pressure field %q", field)
			}
			if err := setPSIValue(target, string(key), string(value)); err != nil {
				return nil, err
			}
		}
	}
	return &out, nil
}

func setPSIValue(target *PSIData, key, value string) error {
	var avg *float64
	switch key {
	case "total":
		v, err := strconv.ParseUint(value, 10, 64)
		if err != nil {
			return fmt.Errorf("pressure total %q: %w", value, err)
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
	v, err := strconv.ParseFloat(value, 64)
	if err != nil {
		return fmt.Errorf("pressure %s %q: %w", key, value, err)
	}
	*avg = v
	return nil
}
