package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// formatCase runs a stdin-to-stdout formatter and checks what it writes.
type formatCase struct {
	name    string
	in      string
	want    []string // lines or fragments the output must contain
	wantErr string
}

func runFormatCases(t *testing.T, f func(in *strings.Reader, out *strings.Builder) error, cases []formatCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b strings.Builder
			err := f(strings.NewReader(c.in), &b)
			if c.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), c.wantErr) {
					t.Fatalf("error %v, want one mentioning %q; output:\n%s", err, c.wantErr, b.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, b.String())
				}
			}
		})
	}
}

const bigRun = `=== RUN   TestBigFileRSS
    bench_test.go:171: after Range: VmHWM 10 MB, heap in use 2 MB, total allocated 480 MB
    bench_test.go:196: file 1.07 GB, 2802970 lines; pass 1 3.373s (831122 lines/s), scope 1.377s; services 5, checkout messages 1 (masker: "x <*>"), scope paths 99631
    bench_test.go:199: peak RSS (VmHWM) 24 MB (before reading: 10 MB)
--- PASS: TestBigFileRSS (9.99s)
`

func TestFormatBig(t *testing.T) {
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatBig(in, out) }, []formatCase{
		{"two labelled runs", "== realistic messages\n" + bigRun + "== every error message unique\n" +
			strings.ReplaceAll(strings.ReplaceAll(bigRun, "24 MB", "25 MB"), "3.373s (831122", "3.6s (772000"),
			[]string{"| realistic messages | 1.07 GB, 2.8 M lines | 3.4 s (831k lines/s) | 1.4 s | **24 MB** |",
				"| every error message unique | 1.07 GB, 2.8 M lines | 3.6 s (772k lines/s) | 1.4 s | **25 MB** |"}, ""},
		{"an unlabelled run is numbered", bigRun, []string{"| run 1 | 1.07 GB"}, ""},
		{"a skipped run is an error", "== realistic messages\n--- SKIP: TestBigFileRSS (0.00s)\n", nil, "was CULPRIT_BIG=1 set?"},
		{"no run at all is an error", "PASS\n", nil, "no TestBigFileRSS figures"},
	})
}

func TestFormatTCPD(t *testing.T) {
	out := `    tcpd_test.go:259: apple                n= 150 F1=1.000 cover=0.9 changes=[80]
    tcpd_test.go:309: published default: binseg F1 0.6902, cover 0.6550
    tcpd_test.go:309: published default: amoc F1 0.6468, cover 0.6572
    tcpd_test.go:309: published default: odd F1 0.1000, cover n/a
    tcpd_test.go:291: MeanShift over 25 univariate series: F1 0.6940, cover 0.6851
    tcpd_test.go:292: best published default: F1 0.6900 (binseg), cover 0.6570 (amoc)
--- PASS: TestTCPDDefaults (0.31s)
`
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatTCPD(in, out) }, []formatCase{
		{"every published method beside ours", out, []string{"| **culprit MeanShift** | **0.694** | **0.685** |",
			"| binseg (best published default F1) | 0.690 | 0.655 |", "| amoc (best published default cover) | 0.647 | 0.657 |",
			"| odd | 0.100 | – |", "25 univariate series; TestTCPDDefaults passes."}, ""},
		{"older output: only the best", strings.Join(slices.DeleteFunc(strings.Split(out, "\n"), func(l string) bool {
			return strings.Contains(l, "published default: ") && !strings.Contains(l, "best")
		}), "\n"), []string{"| binseg (best published default F1) | 0.690 | |", "| amoc (best published default cover) | | 0.657 |"}, ""},
		{"a failing test says so", strings.Replace(out, "--- PASS", "--- FAIL", 1), []string{"TestTCPDDefaults **fails**"}, ""},
		{"no summary is an error", "--- SKIP: TestTCPDDefaults\n", nil, "no TestTCPDDefaults summary"},
	})
}

func TestFormatBursty(t *testing.T) {
	out := `=== RUN   TestDetectBurstyBaselineRarelyFires
    detect_test.go:210: prior overdispersion of the family: 0.0123
    detect_test.go:223: bursty quiet series that fired: 1 of 200
--- PASS: TestDetectBurstyBaselineRarelyFires (2.10s)
=== RUN   TestDetectStationaryNeverFires
--- PASS: TestDetectStationaryNeverFires (1.00s)
`
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatBursty(in, out) }, []formatCase{
		{"both pass", out, []string{"| 200 bursty (1–3 bursts of 5–15 min at 5–20× the base rate) | **1 of 200** | TestDetectBurstyBaselineRarelyFires passes |",
			"| 200 stationary, at p < 0.01 | at most 2 (the test prints no count when it passes) | TestDetectStationaryNeverFires passes |",
			"prior overdispersion: 0.0123."}, ""},
		{"stationary failing", strings.Replace(out, "--- PASS: TestDetectStationaryNeverFires", "--- FAIL: TestDetectStationaryNeverFires", 1),
			[]string{"more than 2", "TestDetectStationaryNeverFires **fails**"}, ""},
		{"no bursty count", "--- PASS: TestDetectStationaryNeverFires (1.00s)\n", nil, "no TestDetectBurstyBaselineRarelyFires count"},
		{"stationary not run", strings.Split(out, "=== RUN   TestDetectStationaryNeverFires")[0], nil, "no TestDetectStationaryNeverFires result"},
	})
}

func TestFormatIntake(t *testing.T) {
	out := "BenchmarkIntakeLoadSQLite-2   \t       1\t61915632756 ns/op\t    120000 events\t      1999 events/s\t         0 lost\t       325.5 max-ms\t         3.033 p50-ms\t       136.0 p99-ms\n"
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatIntake(in, out) }, []formatCase{
		{"one run", out, []string{"| 1 | 120,000 in 60 s | 1,999 events/s | 0 | 3.03 ms | 136 ms | 326 ms |"}, ""},
		{"two runs are numbered", out + out, []string{"| 2 | 120,000 in 60 s |"}, ""},
		{"skipped", "--- SKIP: BenchmarkIntakeLoadSQLite\n", nil, "no BenchmarkIntakeLoadSQLite result"},
	})
}

func TestFormatESRequests(t *testing.T) {
	log := `time=2026-11-23T10:00:00Z level=DEBUG msg="elasticsearch request" op="count errors" index=bench5m-* attempt=1 status=200 took_ms=41 latency=55.1ms ok=true
time=2026-11-23T10:00:00Z level=DEBUG msg="elasticsearch request" op="count requests" index=bench5m-* attempt=1 status=200 took_ms=98 latency=120ms ok=true
time=2026-11-23T10:00:01Z level=DEBUG msg="elasticsearch retry" op="count errors" status=429 wait=1s error="x"
time=2026-11-23T10:00:02Z level=DEBUG msg="elasticsearch request" op="count errors" index=bench5m-* attempt=2 status=200 took_ms=45 latency=60ms ok=true
time=2026-11-23T10:00:02Z level=DEBUG msg="elasticsearch request" op="count errors" index=bench5m-* attempt=1 status=200 took_ms=52 latency=61ms ok=true
BenchmarkCorrelateES 	       3	 1200000000 ns/op
`
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatESRequests(in, out) }, []formatCase{
		{"per request kind in order of appearance", log, []string{
			"| count errors | 3 | 41 / 45 / 52 | 55.1 / 60.0 / 61.0 |\n| count requests | 1 | 98 / 98 / 98 | 120 / 120 / 120 |"}, ""},
		{"no debug records", "BenchmarkCorrelateES \t 3 \t 1 ns/op\n", nil, "CULPRIT_BENCH_ES_DEBUG=1 unset?"},
		{"a record without took", `msg="elasticsearch request" op="x" latency=1ms`, nil, "unreadable request record"},
	})
}

func TestParseLogfmt(t *testing.T) {
	cases := []struct {
		name, in string
		want     map[string]string
	}{
		{"plain and quoted", `a=1 msg="hello world" b=x`, map[string]string{"a": "1", "msg": "hello world", "b": "x"}},
		{"escaped quote", `op="say \"hi\"" n=2`, map[string]string{"op": `say "hi"`, "n": "2"}},
		{"unterminated quote keeps the rest", `op="open`, map[string]string{"op": `"open`}},
		{"no pairs", "just words", map[string]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := parseLogfmt(c.in)
			if len(got) != len(c.want) {
				t.Fatalf("parseLogfmt(%q) = %v, want %v", c.in, got, c.want)
			}
			for k, v := range c.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
}

func TestFormatES5M(t *testing.T) {
	parse := func(s string) []benchResult {
		rs, err := parseGoBench(strings.NewReader(s))
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	warm := parse("BenchmarkCorrelateES \t 3 \t 1180000000 ns/op \t 2 findings \t 610 es-took-ms/op \t 11 requests/op\n" +
		"BenchmarkCorrelateES \t 3 \t 1440000000 ns/op \t 2 findings \t 730 es-took-ms/op \t 11 requests/op\n")
	cold := parse("BenchmarkCorrelateES \t 3 \t 1250000000 ns/op \t 2 findings \t 640 es-took-ms/op \t 11 requests/op\n")
	var b strings.Builder
	if err := formatES5M(warm, cold, &b); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"| what | target | warm (2 runs) | cold (1 run) |",
		"| requests per correlate run | ≤ 20 | **11** | **11** |",
		"| Elasticsearch time (\"took\") per run | ≤ 2 s | **0.61–0.73 s** | **0.64 s** |",
		"| wall time per run | | 1.18–1.44 s | 1.25 s |",
	} {
		if !strings.Contains(b.String(), w) {
			t.Errorf("table lacks %q:\n%s", w, b.String())
		}
	}
}

func TestE2E(t *testing.T) {
	truth := `{"service":"edge-router","onset":"2026-11-20T16:01:56Z","suspect_deploy_id":"dep-5c7129"}`
	page := func(service, headline string) string {
		return `{"at":"2026-11-20T16:03:00Z","channel":"pagerduty","action":"trigger","service":"` + service + `","headline":"` + headline + `"}`
	}
	cases := []struct {
		name     string
		backtest string
		want     string
	}{
		{"the first page for the truth's service",
			`{"to":"2026-11-20T16:45:00Z","messages":[` + page("api", "api: other affecting 9 customers") + `,` +
				page("edge-router", "edge-router 2.42.0 (deploy dep-5c7129, …) … affecting 6 customers, 1% …") + `]}`,
			"| 2 | 16:01:56 | 16:03:00 | 1m4s | 6 | yes |"},
		{"a page blaming another deploy", `{"to":"2026-11-20T16:45:00Z","messages":[` + page("edge-router", "new class affecting 1 customer") + `]}`,
			"| 2 | 16:01:56 | 16:03:00 | 1m4s | 1 | no |"},
		{"no page", `{"to":"2026-11-20T16:45:00Z","messages":[{"at":"2026-11-20T16:03:00Z","channel":"slack","action":"post","service":"edge-router"}]}`,
			"| 2 | 16:01:56 | none by 16:45 | – | – | – |"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "2")
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"truth.json": truth, "backtest.json": c.backtest} {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var b strings.Builder
			if err := cmdE2E([]string{dir}, &b); err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(b.String(), c.want) {
				t.Errorf("table lacks %q:\n%s", c.want, b.String())
			}
		})
	}
	t.Run("a missing backtest is an error", func(t *testing.T) {
		if err := cmdE2E([]string{t.TempDir()}, &strings.Builder{}); err == nil {
			t.Error("no error for a directory without truth.json and backtest.json")
		}
	})
}

func TestProvenance(t *testing.T) {
	m := machine{NProc: 2, CPU: "AMD EPYC", Go: "go1.26.8 linux/amd64", LoadAvg: "1.50 1.60 1.70"}
	cases := []struct {
		name    string
		took    float64
		command string
		want    []string
		notWant []string
	}{
		{"with time and command", 2165, "GOMAXPROCS=1 go test -run '^$' ./x/", []string{
			"_Generated by `make bench` (step `s`, 36m5s) on 0001-01-01 00:00 UTC: nproc 2, AMD EPYC, go1.26.8 linux/amd64, load average 1.50 1.60 1.70 at the end._",
			"\n_Command:_ `GOMAXPROCS=1 go test -run '^$' ./x/`"}, nil},
		{"a command with backticks gets a longer fence", 0, "echo `date`", []string{"_Command:_ `` echo `date` ``"}, []string{"step `s`, "}},
		{"no command", 0, "", nil, []string{"_Command:_"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := provenance("s", m, time.Duration(c.took*float64(time.Second)), c.command)
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("provenance lacks %q:\n%s", w, got)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(got, w) {
					t.Errorf("provenance has %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestCPUModel(t *testing.T) {
	cases := []struct{ name, in, want string }{
		{"first model name", "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nprocessor\t: 1\nmodel name\t: other\n", "AMD EPYC 7B13"},
		{"none", "processor\t: 0\nHardware\t: BCM2835\n", "unknown CPU"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := cpuModelFrom(strings.NewReader(c.in)); got != c.want {
				t.Errorf("cpuModelFrom = %q, want %q", got, c.want)
			}
		})
	}
}

func TestWrapRefusesEmptyBody(t *testing.T) {
	cases := []struct{ name, body string }{{"empty", ""}, {"blank lines", "\n \n"}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errOut strings.Builder
			if err := cmdWrap([]string{"-step", "x"}, strings.NewReader(c.body), &out, &errOut); err == nil {
				t.Errorf("wrap of an empty body succeeded with %q", out.String())
			}
		})
	}
}

func TestFormatSlowLoad(t *testing.T) {
	out := "BenchmarkServeSlowClients-2   \t       1\t36915632756 ns/op\t      1000 conns\t       15.00 github-max-ms\t       180.0 github-probes\t         1.5 github-p50-ms\t        12.0 github-p99-ms\t" +
		"20.0 healthz-max-ms\t       181.0 healthz-probes\t         0.9 healthz-p50-ms\t        10.0 healthz-p99-ms\t        600.0 held-min\t        57.0 rss-max-MB\t        36.0 rss-before-MB\t" +
		"14000 shed\t        30.0 slack-max-ms\t       180.0 slack-probes\t         1.0 slack-p50-ms\t        25.0 slack-p99-ms\n"
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatSlowLoad(in, out) }, []formatCase{
		{"one run", out, []string{
			"Run 1: 1,000 slow clients", "14,000 connections shed, daemon RSS 36 MB before and 57 MB at most.",
			"| `GET /healthz` | 181 | 0.9 ms | 10 ms | 20 ms |",
			"| Slack `/correlate help`, signed | 180 | 1 ms | 25 ms | 30 ms |",
		}, ""},
		{"with the charts", out + "BenchmarkChartsConcurrent-2   \t       1\t 689716610 ns/op\t       548.7 p50-ms\t       615.1 p99-ms\t         1.000 renders\t       500.0 requests\t        75.18 rss-max-MB\n", []string{
			"Charts: 500 requests at once for one incident's `chart.png` drew it 1 time(s); p50 549 ms, p99 615 ms; peak RSS 75 MB",
			"| GitHub `deployment_status`, signed | 180 | 1.5 ms | 12 ms | 15 ms |",
		}, ""},
		{"skipped", "--- SKIP: BenchmarkServeSlowClients\n", nil, "no BenchmarkServeSlowClients result"},
	})
}

func TestFormatRetention(t *testing.T) {
	out := "BenchmarkStoreQuarter/prune-2 \t       1\t62772635831 ns/op\t        77.24 day30-MB\t       103.3 day60-MB\t       127.7 day90-MB\n" +
		"BenchmarkStoreQuarter/none-2  \t       1\t60000000000 ns/op\t        80.00 day30-MB\t       160.1 day60-MB\t       240.4 day90-MB\n"
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatRetention(in, out) }, []formatCase{
		{"both", out, []string{"| defaults, pruned | 77 MB | 103 MB | 128 MB |", "| never pruned | 80 MB | 160 MB | 240 MB |"}, ""},
		{"skipped", "--- SKIP: BenchmarkStoreQuarter\n", nil, "no BenchmarkStoreQuarter result"},
	})
}

func TestFormatScale(t *testing.T) {
	const week = "pkg: github.com/culprithq/culprit/correlate\n" +
		"BenchmarkLargestSetting7d \t       3\t1950972335 ns/op\t        96.13 counts-MB\t         0.7616 cpu-s/op\t       100.0 findings\t       252.6 peak-RSS-MB\t     10000 series\t85464226 B/op\t  152508 allocs/op\n"
	const day = "BenchmarkLargestSetting6h \t       3\t 583206522 ns/op\t         3.433 counts-MB\t         0.2059 cpu-s/op\t       103.0 findings\t       252.5 peak-RSS-MB\t     10000 series\t51551714 B/op\t  144638 allocs/op\n"
	const daemon = "pkg: github.com/culprithq/culprit/correlate\n" +
		"BenchmarkLargestSetting7dIncremental \t       3\t4967257998 ns/op\t        96.13 counts-MB\t         3.423 cpu-s/op\t       100.0 findings\t       553.3 peak-RSS-MB\t         2.000 reads/eval\t     10000 series\t         1.000 topups/eval\n"
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatScale(in, out) }, []formatCase{
		{"the week against its targets", day + week, []string{
			"| 6 h | 360 | 3.4 MB | 252 MB | 0.21 s | 0.58 s | 103 |",
			"| 12 h | 720 | not measured |",
			"| 7 days | 10,080 | 96.1 MB | **253 MB** (target ≤ 500 MB) | **0.76 s** (target ≤ 1 s) | 1.95 s | 100 |",
		}, ""},
		{"the daemon's row, through the cache", week + daemon, []string{
			"| 7 days, the daemon: through the incremental cache, GOMEMLIMIT=400MiB | 10,080 | 96.1 MB | **553 MB** (target ≤ 500 MB) | **3.42 s** (target ≤ 1 s) | 4.97 s | 100 |",
		}, ""},
		{"no result is an error", "PASS\n", nil, "no BenchmarkLargestSetting result"},
	})
}

func TestFormatSeasonal(t *testing.T) {
	const run = `=== RUN   TestSeasonalBaselines
    seasonal_test.go:201: seasonal: off             false episodes per week  11.0 (batch 7, WAF 2, upstream 2); incident found true after 20m0s
    seasonal_test.go:201: seasonal: weekly, 1 week  false episodes per week   2.0 (batch 0, WAF 0, upstream 2); incident found false after 0s
--- PASS: TestSeasonalBaselines (11.59s)
`
	runFormatCases(t, func(in *strings.Reader, out *strings.Builder) error { return formatSeasonal(in, out) }, []formatCase{
		{"one row a configuration", run, []string{
			"| off | **11.0** | 7 | 2 | 2 | 20m0s |",
			"| weekly, 1 week | **2.0** | 0 | 0 | 2 | **not found** |",
		}, ""},
		{"a failed test is an error", strings.ReplaceAll(run, "--- PASS", "--- FAIL"), nil, "did not pass"},
	})
}
