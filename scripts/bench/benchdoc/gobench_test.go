package main

import (
	"strings"
	"testing"
)

// microOutput is real go test -bench output of the micro step, trimmed to
// two runs of each benchmark (GOMAXPROCS=1, so no -N suffix) plus one
// benchmark the table does not know, run with GOMAXPROCS=2.
const microOutput = `goos: linux
goarch: amd64
pkg: github.com/culprithq/culprit/sources/file
cpu: AMD EPYC
BenchmarkIngest 	  890318	      1142 ns/op	 335.30 MB/s	    875459 lines/s	       3 B/op	       0 allocs/op
BenchmarkIngest 	 1082751	      1162 ns/op	 329.50 MB/s	    860302 lines/s	       3 B/op	       0 allocs/op
ok  	github.com/culprithq/culprit/sources/file	4.392s
pkg: github.com/culprithq/culprit/correlate
BenchmarkCorrelate10kSeries 	       6	 178171905 ns/op	      9999 series	125996301 B/op	  104122 allocs/op
BenchmarkCorrelate10kSeries 	       7	 166183548 ns/op	      9999 series	125996376 B/op	  104123 allocs/op
pkg: github.com/culprithq/culprit/correlate/changepoint
BenchmarkMeanShift100k  	      54	  21647454 ns/op	 9636160 B/op	      41 allocs/op
BenchmarkMeanShift100k  	      58	  22468501 ns/op	 9636160 B/op	      41 allocs/op
BenchmarkPELTPoisson360 	    1288	    866119 ns/op	   21600 B/op	      11 allocs/op
BenchmarkPELTPoisson360 	    1942	    609707 ns/op	   21600 B/op	      11 allocs/op
pkg: github.com/culprithq/culprit/correlate/template
BenchmarkGroup 	     612	   1917946 ns/op	      5000 msgs/op	   2606956 msgs/s	  955824 B/op	    6673 allocs/op
BenchmarkGroup 	     501	   2261222 ns/op	      5000 msgs/op	   2211194 msgs/s	  955824 B/op	    6673 allocs/op
BenchmarkMask  	 6662756	       176.2 ns/op	 300.73 MB/s	   5674152 msgs/s	      42 B/op	       0 allocs/op
BenchmarkMask  	 6415022	       178.8 ns/op	 296.45 MB/s	   5593323 msgs/s	      42 B/op	       0 allocs/op
pkg: github.com/culprithq/culprit/sources/simulate
BenchmarkWriteFiles 	       2	 913211220 ns/op	69005364 B/op	  846296 allocs/op
BenchmarkWriteFiles 	       2	 953478757 ns/op	68985384 B/op	  846071 allocs/op
BenchmarkGenerate-2 	       3	 400000000 ns/op
PASS
`

func TestParseGoBench(t *testing.T) {
	cases := []struct {
		name    string
		in      string
		want    []benchResult
		wantErr string
	}{
		{"suffix, package and custom metrics", "pkg: github.com/x/y\nBenchmarkA-8   \t 10\t 1500 ns/op\t 3.5 lines/s\n",
			[]benchResult{{Name: "A", Pkg: "github.com/x/y", N: 10, Metrics: map[string]float64{"ns/op": 1500, "lines/s": 3.5}}}, ""},
		{"sub-benchmarks keep their path", "BenchmarkBaselines/MeanShift-2 \t 1 \t 7 ns/op\n",
			[]benchResult{{Name: "Baselines/MeanShift", N: 1, Metrics: map[string]float64{"ns/op": 7}}}, ""},
		{"test output and summaries are ignored", "=== RUN TestX\n--- PASS: TestX\nPASS\nok  \tpkg\t1s\nBenchmarkNothing skipped\n", nil, ""},
		{"an unpaired metric is an error", "BenchmarkA \t 10 \t 1500 ns/op 3\n", nil, "not value-unit pairs"},
		{"a metric that is not a number is an error", "BenchmarkA \t 10 \t fast ns/op\n", nil, "not a number"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseGoBench(strings.NewReader(c.in))
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(c.want) {
				t.Fatalf("got %d results %+v, want %d", len(got), got, len(c.want))
			}
			for i := range got {
				g, w := got[i], c.want[i]
				if g.Name != w.Name || g.Pkg != w.Pkg || g.N != w.N || len(g.Metrics) != len(w.Metrics) {
					t.Errorf("result %d = %+v, want %+v", i, g, w)
				}
				for k, v := range w.Metrics {
					if g.Metrics[k] != v {
						t.Errorf("result %d %s = %g, want %g", i, k, g.Metrics[k], v)
					}
				}
			}
		})
	}
}

func TestRanges(t *testing.T) {
	cases := []struct {
		name string
		got  string
		want string
	}{
		{"milliseconds, three digits", durRange(166183548, 178171905), "166–178 ms"},
		{"milliseconds with a decimal", durRange(21647454, 22468501), "21.6–22.5 ms"},
		{"half a millisecond and more", durRange(609707, 866119), "0.61–0.87 ms"},
		{"below half a millisecond", durRange(209707, 366119), "210–366 µs"},
		{"seconds", durRange(890458170, 953478757), "0.89–0.95 s"},
		{"nanoseconds", durRange(174.7, 178.8), "175–179 ns"},
		{"equal after rounding prints once", durRange(1.0001e9, 1.0002e9), "1.00 s"},
		{"thousands per second", rateRange(860302, 887116), "860k–887k"},
		{"millions per second", rateRange(5593323, 5723276), "5.6–5.7 M"},
		{"small rates", rateRange(12.25, 14.5), "12.2–14.5"},
		{"megabytes", bytesRange(125996301, 125996398), "126 MB"},
		{"thousands separators", thousands(120000), "120,000"},
		{"no separator under a thousand", thousands(999), "999"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %q, want %q", c.got, c.want)
			}
		})
	}
}

func TestFormatMicro(t *testing.T) {
	var b strings.Builder
	if err := formatMicro(strings.NewReader(microOutput), &b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"| what | target | measured (2 runs) | benchmark |",
		"| NDJSON ingest, pass 1, one core | ≥ 300,000 lines/s | **860k–875k lines/s** (1142–1162 ns/line, 330–335 MB/s, 0 allocs/line) |",
		"| correlator, 10,000 series × 360 buckets, one core | ≤ 1 s | **166–178 ms** per run (126 MB allocated) |",
		"| `culprit changepoints` on a 100k-row CSV | < 1 s | not measured |",
		"| masking error messages | | 5.6–5.7 M messages/s (176–179 ns, 0 allocs) |",
		"| simulator, 6 h Friday (≈420k docs) to gzip files | | 0.91–0.95 s |",
		"| Generate | | 400 ms | `sources/simulate BenchmarkGenerate` |",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	if err := formatMicro(strings.NewReader("PASS\nok\n"), &b); err == nil {
		t.Error("no benchmark results formatted without an error")
	}
}
