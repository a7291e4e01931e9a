package collector

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/kubelet-stats-server/kubelet-stats-server/cadvisor"
)

// ignoredInterfacePrefixes are the interfaces cAdvisor leaves out of network
// stats: loopback and the host ends of container veth pairs and bridges.
var ignoredInterfacePrefixes = []string{"lo", "veth", "docker", "nerdctl"}

// FilterInterfaces drops lo*, veth*, docker* and nerdctl* (case-insensitive
// prefixes, like cAdvisor) and keeps the order of the rest. It returns a new
// slice, sized to what it keeps (samples hold it for their lifetime), and
// never modifies in.
func FilterInterfaces(in []cadvisor.InterfaceStats) []cadvisor.InterfaceStats {
	kept := 0
	for _, iface := range in {
		if !isIgnoredInterface(iface.Name) {
			kept++
		}
	}
	out := make([]cadvisor.InterfaceStats, 0, kept)
	for _, iface := range in {
		if !isIgnoredInterface(iface.Name) {
			out = append(out, iface)
		}
	}
	return out
}

func isIgnoredInterface(name string) bool {
	for _, prefix := range ignoredInterfacePrefixes {
		if len(name) >= len(prefix) && strings.EqualFold(name[:len(prefix)], prefix) {
			return true
		}
	}
	return false
}

// parseNetDev parses /proc/<pid>/net/dev keeping the file's interface order,
// which procfs's map-based NetDev cannot. Malformed lines are an error.
func parseNetDev(data []byte) ([]cadvisor.InterfaceStats, error) {
	var out []cadvisor.InterfaceStats
	for lineNo := 0; len(data) > 0; lineNo++ {
		var line []byte
		line, data, _ = bytes.Cut(data, []byte{'\n'})
		if lineNo < 2 || len(bytes.TrimSpace(line)) == 0 {
			continue // two header lines
		}
		colon := bytes.LastIndexByte(line, ':')
		if colon < 0 {
			return nil, fmt.Errorf("net/dev line %d: no colon in %q", lineNo+1, line)
		}
		name := string(bytes.TrimSpace(line[:colon]))
		fields := bytes.Fields(line[colon+1:])
		if name == "" || len(fields) < 16 {
			return nil, fmt.Errorf("net/dev line %d: malformed %q", lineNo+1, line)
		}
		var values [16]uint64
		for i := range values {
			v, err := strconv.ParseUint(string(fields[i]), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("net/dev line %d field %d: %w", lineNo+1, i+1, err)
			}
			values[i] = v
		}
		out = append(out, cadvisor.InterfaceStats{
			Name:      name,
			RxBytes:   values[0],
			RxPackets: values[1],
			RxErrors:  values[2],
			RxDropped: values[3],
			TxBytes:   values[8],
			TxPackets: values[9],
			TxErrors:  values[10],
			TxDropped: values[11],
		})
	}
	return out, nil
}
