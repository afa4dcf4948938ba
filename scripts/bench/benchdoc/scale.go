package main

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// scaleRows are the lookbacks of the largest-setting benchmark
// (correlate/scale_bench_test.go, and the cache's), in the order the table lists them, with
// the targets of issue 17 on the week.
var scaleRows = []struct {
	bench, lookback, buckets string
	week                     bool
}{
	{"LargestSetting6h", "6 h", "360", false},
	{"LargestSetting12h", "12 h", "720", false},
	{"LargestSetting7d", "7 days", "10,080", true},
	{"LargestSetting7dQuiet", "7 days, 90% of classes quiet", "10,080", false},
	// The week as the daemon runs it: through the incremental cache
	// (correlate/largest_incremental_bench_test.go), whose memory the rows above
	// leave out.
	{"LargestSetting7dIncremental", "7 days, the daemon: through the incremental cache, GOMEMLIMIT=400MiB", "10,080", true},
}

// formatScale writes the memory and CPU table of one evaluation of 10,000
// series by lookback, from go test -bench output of BenchmarkLargestSetting*
// (each run in its own process, so each peak RSS is its own).
func formatScale(in io.Reader, out io.Writer) error {
	rs, err := parseGoBench(in)
	if err != nil {
		return err
	}
	_, by := byName(rs)
	var b strings.Builder
	b.WriteString("| lookback | buckets per series | counts held | peak RSS | CPU per evaluation | wall per evaluation | findings |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	n := 0
	for _, row := range scaleRows {
		rs := by[row.bench]
		if len(rs) == 0 {
			b.WriteString(mdRow(row.lookback, row.buckets, "not measured", "", "", "", ""))
			continue
		}
		n++
		rss := metric(rs, "peak-RSS-MB", plain(0)) + " MB"
		cpu := metric(rs, "cpu-s/op", plain(2)) + " s"
		if row.week {
			rss = "**" + rss + "** (target ≤ 500 MB)"
			cpu = "**" + cpu + "** (target ≤ 1 s)"
		}
		b.WriteString(mdRow(row.lookback, row.buckets, metric(rs, "counts-MB", plain(1))+" MB", rss, cpu,
			metric(rs, "ns/op", durRange), metric(rs, "findings", plain(0))))
	}
	if n == 0 {
		return fmt.Errorf("no BenchmarkLargestSetting result in the input")
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// seasonalLineRE matches TestSeasonalBaselines's log line per configuration.
var seasonalLineRE = regexp.MustCompile(`seasonal: (.+?)\s+false episodes per week\s+([0-9.]+) \(batch (\d+), WAF (\d+), upstream (\d+)\); incident found (true|false) after (\S+)`)

// formatSeasonal writes the false findings per week with and without
// seasonality, from go test -v output of TestSeasonalBaselines.
func formatSeasonal(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	if r := testResults(lines)["TestSeasonalBaselines"]; r != "PASS" {
		return fmt.Errorf("TestSeasonalBaselines did not pass (%q)", r)
	}
	var b strings.Builder
	b.WriteString("| seasonality | false findings per week | nightly batch | weekend WAF | random upstream bursts | incident found after |\n| --- | --- | --- | --- | --- | --- |\n")
	n := 0
	for _, l := range lines {
		m := seasonalLineRE.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		found := "**not found**"
		if m[6] == "true" {
			found = m[7]
		}
		b.WriteString(mdRow(m[1], "**"+m[2]+"**", m[3], m[4], m[5], found))
	}
	if n == 0 {
		return fmt.Errorf("no seasonal figures in the input")
	}
	_, err = io.WriteString(out, b.String())
	return err
}
