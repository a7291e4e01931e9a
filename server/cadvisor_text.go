package server

import (
	"bufio"
	"cmp"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	cadvisorapi "github.com/google/cadvisor/info/v1"
)

// baseLabelNames are the labels the kubelet puts on every container series
// (containerPrometheusLabelsFunc), in name order.
var baseLabelNames = [...]string{"container", "id", "image", "name", "namespace", "pod"}

const (
	containerLabel = iota
	idLabel
	imageLabel
	nameLabel
	namespaceLabel
	podLabel
	numBaseLabels
)

// machineLabelNames are the machine collector's labels, in name order.
var machineLabelNames = [...]string{"boot_id", "machine_id", "system_uuid"}

// cadvisorSnapshot is what one /metrics/cadvisor exposition is written
// from: the collectors' inputs.
type cadvisorSnapshot struct {
	containers map[string]*cadvisorapi.ContainerInfo
	labels     func(*cadvisorapi.ContainerInfo) [numBaseLabels]string
	// version and machine are nil when unknown (their scrape error is 1).
	version *cadvisorapi.VersionInfo
	machine *cadvisorapi.MachineInfo
	// now is the scrape time: container_last_seen.
	now time.Time
	psi bool
}

// textContainer is one container with its label values.
type textContainer struct {
	labels [numBaseLabels]string
	// escaped are the label values as written; prefix is all six pairs,
	// `{container="…",…,pod="…"`, which most families write as they are.
	escaped [numBaseLabels]string
	prefix  string
	info    *cadvisorapi.ContainerInfo
	// stats is the newest sample, nil when there is none.
	stats *cadvisorapi.ContainerStats
}

// textSeries is one series of a family being written.
type textSeries struct {
	container int
	seriesValue
}

// labelRef names a label of a series: a base label (< numBaseLabels) or
// extra label ref-numBaseLabels.
type labelRef int

// cadvisorTextWriter writes the text exposition format exactly as
// client_golang's registry and expfmt write cAdvisor's collectors: families
// sorted by name, series by label values in label-name order, each once,
// labels sorted by name, floats as strconv's shortest 'g', timestamps in
// milliseconds.
type cadvisorTextWriter struct {
	w          *bufio.Writer
	in         *cadvisorSnapshot
	containers []textContainer
	series     []textSeries
	values     []seriesValue
	num        []byte
}

// writeCadvisorText writes the exposition of in to w.
func writeCadvisorText(w io.Writer, in *cadvisorSnapshot) error {
	tw := &cadvisorTextWriter{w: bufio.NewWriterSize(w, 64<<10), in: in, num: make([]byte, 0, 32)}
	tw.containers = make([]textContainer, 0, len(in.containers))
	// Room for the largest common family (container_tasks_state, five
	// series per container): append's growth would allocate four times it.
	tw.series = make([]textSeries, 0, 5*len(in.containers))
	for _, info := range in.containers {
		c := textContainer{labels: in.labels(info), info: info}
		if len(info.Stats) > 0 {
			c.stats = info.Stats[0]
		}
		var prefix strings.Builder
		for i, value := range c.labels {
			c.escaped[i] = escapeLabelValue(value)
			if i == 0 {
				prefix.WriteByte('{')
			} else {
				prefix.WriteByte(',')
			}
			prefix.WriteString(baseLabelNames[i])
			prefix.WriteString(`="`)
			prefix.WriteString(c.escaped[i])
			prefix.WriteByte('"')
		}
		c.prefix = prefix.String()
		tw.containers = append(tw.containers, c)
	}
	// By (container, id): with id unique, the order of every family whose
	// other labels before "id" are equal.
	slices.SortFunc(tw.containers, func(a, b textContainer) int {
		return cmp.Or(strings.Compare(a.labels[containerLabel], b.labels[containerLabel]), strings.Compare(a.labels[idLabel], b.labels[idLabel]))
	})
	for _, family := range sortedFamilyWriters(in.psi) {
		family.write(tw)
	}
	return tw.w.Flush()
}

// familyWriter writes one family; the list is sorted by name.
type familyWriter struct {
	name  string
	write func(*cadvisorTextWriter)
}

func sortedFamilyWriters(psi bool) []familyWriter {
	var out []familyWriter
	for _, f := range containerFamilies(psi) {
		out = append(out, familyWriter{f.name, func(tw *cadvisorTextWriter) { tw.containerFamily(&f) }})
	}
	for _, f := range machineFamilies() {
		out = append(out, familyWriter{f.name, func(tw *cadvisorTextWriter) { tw.machineFamily(&f) }})
	}
	out = append(out,
		familyWriter{"cadvisor_version_info", (*cadvisorTextWriter).versionInfo},
		familyWriter{"container_scrape_error", func(tw *cadvisorTextWriter) {
			tw.scrapeError("container_scrape_error", "1 if there was an error while getting container metrics, 0 otherwise", tw.in.version == nil)
		}},
		familyWriter{"machine_scrape_error", func(tw *cadvisorTextWriter) {
			tw.scrapeError("machine_scrape_error", "1 if there was an error while getting machine metrics, 0 otherwise.", tw.in.machine == nil)
		}},
	)
	slices.SortFunc(out, func(a, b familyWriter) int { return strings.Compare(a.name, b.name) })
	return out
}

// layout merges the base label names with a family's extra ones in name
// order.
func layout(base []string, extra []string) []labelRef {
	refs := make([]labelRef, 0, len(base)+len(extra))
	names := make([]string, 0, len(base)+len(extra))
	for i, name := range base {
		refs, names = append(refs, labelRef(i)), append(names, name)
	}
	for i, name := range extra {
		refs, names = append(refs, labelRef(numBaseLabels+i)), append(names, name)
	}
	order := make([]int, len(refs))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(names[a], names[b]) })
	out := make([]labelRef, len(order))
	for i, j := range order {
		out[i] = refs[j]
	}
	return out
}

func (tw *cadvisorTextWriter) containerFamily(f *containerFamily) {
	tw.series = tw.series[:0]
	for i := range tw.containers {
		c := &tw.containers[i]
		switch {
		case f.spec:
			tw.values = f.values(tw.values[:0], c.info, nil)
		case c.stats == nil:
			continue
		case f.stamp == stampNow:
			tw.values = one(tw.values[:0], float64(tw.in.now.Unix()))
		default:
			tw.values = f.values(tw.values[:0], c.info, c.stats)
		}
		for _, v := range tw.values {
			tw.series = append(tw.series, textSeries{container: i, seriesValue: v})
		}
	}
	if len(tw.series) == 0 {
		return // the registry drops families without metrics
	}
	refs := layout(baseLabelNames[:], f.extra)
	slices.SortStableFunc(tw.series, func(a, b textSeries) int { return tw.compare(refs, &a, &b) })
	tw.header(f.name, f.help, f.counter)
	for i := range tw.series {
		s := &tw.series[i]
		if i > 0 && tw.compare(refs, &tw.series[i-1], s) == 0 {
			continue // a duplicate: the registry keeps the first one collected
		}
		tw.w.WriteString(f.name)
		if len(f.extra) == 0 {
			tw.w.WriteString(tw.containers[s.container].prefix)
		} else {
			for j, ref := range refs {
				tw.escapedLabel(j, labelName(baseLabelNames[:], f.extra, ref), tw.escapedValue(s, ref))
			}
		}
		tw.w.WriteByte('}')
		tw.value(s.value)
		switch f.stamp {
		case stampStats:
			tw.timestamp(tw.containers[s.container].stats.Timestamp)
		case stampNow:
			tw.timestamp(tw.in.now)
		}
		tw.w.WriteByte('\n')
	}
}

// compare orders two series by their label values in label-name order.
// Containers are sorted by (container, id) and id is unique, so at the id
// label the container index decides, and the base labels after it are
// equal whenever the containers are.
func (tw *cadvisorTextWriter) compare(refs []labelRef, a, b *textSeries) int {
	for _, ref := range refs {
		if ref >= numBaseLabels {
			if c := strings.Compare(a.extra[ref-numBaseLabels], b.extra[ref-numBaseLabels]); c != 0 {
				return c
			}
			continue
		}
		if a.container == b.container {
			continue
		}
		if ref == idLabel {
			return cmp.Compare(a.container, b.container)
		}
		if c := strings.Compare(tw.containers[a.container].labels[ref], tw.containers[b.container].labels[ref]); c != 0 {
			return c
		}
	}
	return 0
}

func labelName(base, extra []string, ref labelRef) string {
	if int(ref) < len(base) {
		return base[ref]
	}
	return extra[ref-numBaseLabels]
}

func (tw *cadvisorTextWriter) escapedValue(s *textSeries, ref labelRef) string {
	if ref >= numBaseLabels {
		return escapeLabelValue(s.extra[ref-numBaseLabels])
	}
	return tw.containers[s.container].escaped[ref]
}

func (tw *cadvisorTextWriter) machineFamily(f *machineFamily) {
	m := tw.in.machine
	if m == nil {
		return
	}
	tw.values = f.values(tw.values[:0], m)
	if len(tw.values) == 0 {
		return
	}
	// The machine labels are the same for every series: the extra ones
	// decide the order.
	slices.SortStableFunc(tw.values, func(a, b seriesValue) int { return slices.Compare(a.extra[:], b.extra[:]) })
	base := [...]string{m.BootID, m.MachineID, m.SystemUUID}
	names := make([]string, 0, len(machineLabelNames)+len(f.extra))
	names = append(append(names, machineLabelNames[:]...), f.extra...)
	slices.Sort(names)
	tw.header(f.name, f.help, false)
	for i, v := range tw.values {
		if i > 0 && v.extra == tw.values[i-1].extra {
			continue
		}
		tw.w.WriteString(f.name)
		for j, name := range names {
			value := ""
			if k := slices.Index(machineLabelNames[:], name); k >= 0 {
				value = base[k]
			} else {
				value = v.extra[slices.Index(f.extra, name)]
			}
			tw.label(j, name, value)
		}
		tw.w.WriteByte('}')
		tw.value(v.value)
		if !m.Timestamp.IsZero() {
			tw.timestamp(m.Timestamp)
		}
		tw.w.WriteByte('\n')
	}
}

func (tw *cadvisorTextWriter) versionInfo() {
	v := tw.in.version
	if v == nil {
		return
	}
	tw.header("cadvisor_version_info", "A metric with a constant '1' value labeled by kernel version, OS version, docker version, cadvisor version & cadvisor revision.", false)
	tw.w.WriteString("cadvisor_version_info")
	for i, l := range [...]struct{ name, value string }{
		{"cadvisorRevision", v.CadvisorRevision}, {"cadvisorVersion", v.CadvisorVersion}, {"dockerVersion", v.DockerVersion},
		{"kernelVersion", v.KernelVersion}, {"osVersion", v.ContainerOsVersion},
	} {
		tw.label(i, l.name, l.value)
	}
	tw.w.WriteString("} 1\n")
}

func (tw *cadvisorTextWriter) scrapeError(name, help string, failed bool) {
	tw.header(name, help, false)
	tw.w.WriteString(name)
	if failed {
		tw.w.WriteString(" 1\n")
	} else {
		tw.w.WriteString(" 0\n")
	}
}

// header writes the HELP and TYPE lines (expfmt escapes \ and newlines in
// help).
func (tw *cadvisorTextWriter) header(name, help string, counter bool) {
	tw.w.WriteString("# HELP ")
	tw.w.WriteString(name)
	tw.w.WriteByte(' ')
	_, _ = helpEscaper.WriteString(tw.w, help) // sticky in tw.w, checked at Flush
	tw.w.WriteString("\n# TYPE ")
	tw.w.WriteString(name)
	if counter {
		tw.w.WriteString(" counter\n")
	} else {
		tw.w.WriteString(" gauge\n")
	}
}

var (
	helpEscaper  = strings.NewReplacer("\\", `\\`, "\n", `\n`)
	valueEscaper = strings.NewReplacer("\\", `\\`, "\n", `\n`, "\"", `\"`)
)

// label writes the i-th label pair, opening the braces for the first.
func (tw *cadvisorTextWriter) label(i int, name, value string) {
	tw.escapedLabel(i, name, escapeLabelValue(value))
}

func (tw *cadvisorTextWriter) escapedLabel(i int, name, escaped string) {
	if i == 0 {
		tw.w.WriteByte('{')
	} else {
		tw.w.WriteByte(',')
	}
	tw.w.WriteString(name)
	tw.w.WriteString(`="`)
	tw.w.WriteString(escaped)
	tw.w.WriteByte('"')
}

// escapeLabelValue escapes \, newlines and " as expfmt does.
func escapeLabelValue(value string) string {
	if !strings.ContainsAny(value, "\\\n\"") {
		return value
	}
	return valueEscaper.Replace(value)
}

// value writes " <value>" as expfmt's writeFloat does.
func (tw *cadvisorTextWriter) value(f float64) {
	tw.w.WriteByte(' ')
	switch {
	case f == 1:
		tw.w.WriteByte('1')
	case f == 0:
		tw.w.WriteByte('0')
	case f == -1:
		tw.w.WriteString("-1")
	case math.IsNaN(f):
		tw.w.WriteString("NaN")
	case math.IsInf(f, +1):
		tw.w.WriteString("+Inf")
	case math.IsInf(f, -1):
		tw.w.WriteString("-Inf")
	default:
		tw.num = strconv.AppendFloat(tw.num[:0], f, 'g', -1, 64)
		tw.w.Write(tw.num)
	}
}

// timestamp writes " <ms>" as client_golang's NewMetricWithTimestamp
// computes it.
func (tw *cadvisorTextWriter) timestamp(t time.Time) {
	tw.w.WriteByte(' ')
	tw.num = strconv.AppendInt(tw.num[:0], t.Unix()*1000+int64(t.Nanosecond()/1000000), 10)
	tw.w.Write(tw.num)
}
