package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// benchResult is one line of `go test -bench` output.
type benchResult struct {
	Name    string // without the Benchmark prefix and the -GOMAXPROCS suffix
	Pkg     string // from the preceding "pkg:" line, if any
	N       int
	Metrics map[string]float64 // unit -> value: "ns/op", "B/op", "lines/s", ...
}

var benchLineRE = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+(\d+)\s+(.+)$`)

// parseGoBench reads benchmark result lines, in order, ignoring everything
// else (test logs, PASS, ok lines). A result line whose metrics do not come
// in value-unit pairs is an error: a truncated or interleaved output would
// otherwise yield wrong figures.
func parseGoBench(r io.Reader) ([]benchResult, error) {
	var out []benchResult
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		l := strings.TrimSpace(sc.Text())
		if p, ok := strings.CutPrefix(l, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		m := benchLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := strings.Fields(m[3])
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %d: metrics are not value-unit pairs: %q", line, l)
		}
		n, err := strconv.Atoi(m[2])
		if err != nil {
			return nil, fmt.Errorf("line %d: iterations %q: %w", line, m[2], err)
		}
		res := benchResult{Name: m[1], Pkg: pkg, N: n, Metrics: map[string]float64{}}
		for i := 0; i < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: metric %q: not a number", line, f[i])
			}
			res.Metrics[f[i+1]] = v
		}
		out = append(out, res)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	return out, nil
}

// byName groups results by benchmark name, keeping the order of first
// appearance.
func byName(rs []benchResult) ([]string, map[string][]benchResult) {
	var names []string
	m := map[string][]benchResult{}
	for _, r := range rs {
		if _, ok := m[r.Name]; !ok {
			names = append(names, r.Name)
		}
		m[r.Name] = append(m[r.Name], r)
	}
	return names, m
}

// spread is the smallest and largest value of a metric over runs; ok is
// false when no run reported it.
func spread(rs []benchResult, unit string) (lo, hi float64, ok bool) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, r := range rs {
		if v, has := r.Metrics[unit]; has {
			lo, hi, ok = min(lo, v), max(hi, v), true
		}
	}
	return lo, hi, ok
}

// decimals gives about three significant digits for values up to hi, and
// at most two decimals: 166–178, 21.6–22.5, 0.61–0.87.
func decimals(hi float64) int {
	if hi <= 0 {
		return 0
	}
	return max(0, min(2, 2-int(math.Floor(math.Log10(hi)))))
}

// numRange writes lo–hi, or one number when both print the same.
func numRange(lo, hi float64, d int) string {
	a, b := strconv.FormatFloat(lo, 'f', d, 64), strconv.FormatFloat(hi, 'f', d, 64)
	if a == b {
		return a
	}
	return a + "–" + b
}

// durRange formats a range of nanoseconds in the largest unit the top
// reaches half of: 0.89–0.95 s reads better than 890–953 ms.
func durRange(lo, hi float64) string {
	units := []struct {
		name string
		ns   float64
	}{{"s", 1e9}, {"ms", 1e6}, {"µs", 1e3}}
	for _, u := range units {
		if hi >= u.ns/2 {
			return numRange(lo/u.ns, hi/u.ns, decimals(hi/u.ns)) + " " + u.name
		}
	}
	return numRange(lo, hi, decimals(hi)) + " ns"
}

// rateRange formats a range of counts per second: 860k–887k, 5.6–5.7 M.
func rateRange(lo, hi float64) string {
	switch {
	case hi >= 1e6:
		return numRange(lo/1e6, hi/1e6, 1) + " M"
	case hi >= 1e3:
		a, b := fmt.Sprintf("%.0fk", lo/1e3), fmt.Sprintf("%.0fk", hi/1e3)
		if a == b {
			return a
		}
		return a + "–" + b
	default:
		return numRange(lo, hi, decimals(hi))
	}
}

// bytesRange formats a range of bytes in MB (10^6, as go test's MB/s).
func bytesRange(lo, hi float64) string {
	if hi >= 1e6 {
		return numRange(lo/1e6, hi/1e6, decimals(hi/1e6)) + " MB"
	}
	if hi >= 1e3 {
		return numRange(lo/1e3, hi/1e3, decimals(hi/1e3)) + " kB"
	}
	return numRange(lo, hi, 0) + " B"
}

// metric formats one metric's range with f, or "?" when no run has it.
func metric(rs []benchResult, unit string, f func(lo, hi float64) string) string {
	lo, hi, ok := spread(rs, unit)
	if !ok {
		return "?"
	}
	return f(lo, hi)
}

func plain(d int) func(lo, hi float64) string {
	return func(lo, hi float64) string { return numRange(lo, hi, d) }
}

// microRow is one row of the speed and memory table: the benchmark, what
// it stands for, the target, and how its figures read best.
type microRow struct {
	bench, what, target, where string
	cell                       func(rs []benchResult) string
}

// microRows is the table of BENCHMARKS.md's first section. The rows with a
// target put the figure the target is about in bold.
var microRows = []microRow{
	{"Ingest", "NDJSON ingest, pass 1, one core", "≥ 300,000 lines/s",
		"`sources/file BenchmarkIngest` (383-byte ECS lines, half nested, half dotted, 2% errors)",
		func(rs []benchResult) string {
			return fmt.Sprintf("**%s lines/s** (%s ns/line, %s MB/s, %s allocs/line)", metric(rs, "lines/s", rateRange),
				metric(rs, "ns/op", plain(0)), metric(rs, "MB/s", plain(0)), metric(rs, "allocs/op", plain(0)))
		}},
	{"Correlate10kSeries", "correlator, 10,000 series × 360 buckets, one core", "≤ 1 s",
		"`correlate BenchmarkCorrelate10kSeries` (100 services × 100 signatures, one step per service)",
		func(rs []benchResult) string {
			return fmt.Sprintf("**%s** per run (%s allocated)", metric(rs, "ns/op", durRange), metric(rs, "B/op", bytesRange))
		}},
	{"ChangepointsCLI100k", "`culprit changepoints` on a 100k-row CSV", "< 1 s", "`cmd/culprit BenchmarkChangepointsCLI100k`",
		func(rs []benchResult) string {
			return fmt.Sprintf("**%s** end to end (CSV parse + detection)", metric(rs, "ns/op", durRange))
		}},
	{"MeanShift100k", "MeanShift alone, 100k values", "", "`correlate/changepoint BenchmarkMeanShift100k`",
		func(rs []benchResult) string { return metric(rs, "ns/op", durRange) }},
	{"PELTPoisson360", "PELT, Poisson cost, 360 buckets, full resolution", "", "`correlate/changepoint BenchmarkPELTPoisson360`",
		func(rs []benchResult) string { return metric(rs, "ns/op", durRange) }},
	{"Mask", "masking error messages", "", "`correlate/template BenchmarkMask`",
		func(rs []benchResult) string {
			return fmt.Sprintf("%s messages/s (%s, %s allocs)", metric(rs, "msgs/s", rateRange), metric(rs, "ns/op", durRange),
				metric(rs, "allocs/op", plain(0)))
		}},
	{"Group", "Drain over 5,000 masked messages", "", "`correlate/template BenchmarkGroup`",
		func(rs []benchResult) string { return metric(rs, "ns/op", durRange) }},
	{"WriteFiles", "simulator, 6 h Friday (≈420k docs) to gzip files", "", "`sources/simulate BenchmarkWriteFiles`",
		func(rs []benchResult) string { return metric(rs, "ns/op", durRange) }},
}

// formatMicro writes the speed and memory table from go test -bench
// output. A benchmark of the table that is missing from the output gets a
// row saying so rather than no row; benchmarks the table does not know get
// a plain row of their own, so nothing measured is dropped.
func formatMicro(in io.Reader, out io.Writer) error {
	rs, err := parseGoBench(in)
	if err != nil {
		return err
	}
	if len(rs) == 0 {
		return fmt.Errorf("no benchmark results in the input")
	}
	names, by := byName(rs)
	runs := 0
	for _, n := range names {
		runs = max(runs, len(by[n]))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| what | target | measured (%s) | benchmark |\n| --- | --- | --- | --- |\n", plural(runs, "run"))
	for _, row := range microRows {
		cell := "not measured"
		if rs := by[row.bench]; len(rs) > 0 {
			cell = row.cell(rs)
		}
		b.WriteString(mdRow(row.what, row.target, cell, row.where))
	}
	for _, n := range names {
		if slices.ContainsFunc(microRows, func(r microRow) bool { return r.bench == n }) {
			continue
		}
		rs := by[n]
		b.WriteString(mdRow(n, "", metric(rs, "ns/op", durRange), fmt.Sprintf("`%s Benchmark%s`", shortPkg(rs[0].Pkg), n)))
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// shortPkg drops the module path: sources/file, not github.com/…/sources/file.
func shortPkg(p string) string {
	if _, rest, ok := strings.Cut(p, "culprithq/culprit/"); ok {
		return rest
	}
	return p
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// mdRow is one Markdown table row; an empty cell prints as "| |".
func mdRow(cells ...string) string {
	var b strings.Builder
	b.WriteString("|")
	for _, c := range cells {
		if c == "" {
			b.WriteString(" |")
			continue
		}
		b.WriteString(" " + c + " |")
	}
	b.WriteString("\n")
	return b.String()
}
