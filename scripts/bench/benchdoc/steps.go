package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The formatters below read what a test or benchmark prints and write the
// table BENCHMARKS.md shows. Each fails when its figures are missing: a
// test that was skipped (no Elasticsearch, a missing env variable) prints
// nothing to format, and an empty table must not replace a real one.

// testResults maps each top-level test in go test -v output to PASS, FAIL
// or SKIP.
func testResults(lines []string) map[string]string {
	re := regexp.MustCompile(`^--- (PASS|FAIL|SKIP): (\S+)`)
	out := map[string]string{}
	for _, l := range lines {
		if m := re.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
			out[m[2]] = m[1]
		}
	}
	return out
}

func readLines(r io.Reader) ([]string, error) {
	var lines []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read input: %w", err)
	}
	return lines, nil
}

// verdict is how a test's outcome reads in a table.
func verdict(r string) string {
	switch r {
	case "PASS":
		return "passes"
	case "FAIL":
		return "**fails**"
	case "SKIP":
		return "skipped"
	}
	return "no result"
}

var (
	bigFileRE = regexp.MustCompile(`file ([\d.]+) GB, (\d+) lines; pass 1 (\S+) \((\d+) lines/s\), scope (\S+);`)
	bigRSSRE  = regexp.MustCompile(`peak RSS \(VmHWM\) (\d+) MB`)
)

// formatBig reads the output of one or more TestBigFileRSS runs, each after
// a line "== LABEL" naming its file (regen.sh writes them).
func formatBig(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	type row struct{ label, size, pass1, scope, rss string }
	var rows []row
	var cur *row
	for _, l := range lines {
		if label, ok := strings.CutPrefix(l, "== "); ok {
			rows = append(rows, row{label: strings.TrimSpace(label)})
			cur = &rows[len(rows)-1]
			continue
		}
		if m := bigFileRE.FindStringSubmatch(l); m != nil {
			if cur == nil {
				rows = append(rows, row{label: fmt.Sprintf("run %d", len(rows)+1)})
				cur = &rows[len(rows)-1]
			}
			p1, err1 := time.ParseDuration(m[3])
			sc, err2 := time.ParseDuration(m[5])
			lps, err3 := strconv.ParseFloat(m[4], 64)
			nl, err4 := strconv.ParseFloat(m[2], 64)
			if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
				return fmt.Errorf("unreadable TestBigFileRSS line %q", l)
			}
			cur.size = fmt.Sprintf("%s GB, %.1f M lines", m[1], nl/1e6)
			cur.pass1 = fmt.Sprintf("%.1f s (%s lines/s)", p1.Seconds(), rateRange(lps, lps))
			cur.scope = fmt.Sprintf("%.1f s", sc.Seconds())
		}
		if m := bigRSSRE.FindStringSubmatch(l); m != nil && cur != nil {
			cur.rss = m[1] + " MB"
		}
	}
	var b strings.Builder
	b.WriteString("| file | size | pass 1 | scope pass | peak RSS |\n| --- | --- | --- | --- | --- |\n")
	n := 0
	for _, r := range rows {
		if r.size == "" || r.rss == "" {
			return fmt.Errorf("%s: no TestBigFileRSS figures (was CULPRIT_BIG=1 set?)", r.label)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | **%s** |\n", r.label, r.size, r.pass1, r.scope, r.rss)
		n++
	}
	if n == 0 {
		return fmt.Errorf("no TestBigFileRSS figures in the input (was CULPRIT_BIG=1 set?)")
	}
	_, err = io.WriteString(out, b.String())
	return err
}

var (
	tcpdOursRE = regexp.MustCompile(`MeanShift over (\d+) univariate series: F1 ([\d.]+), cover ([\d.]+)`)
	tcpdBestRE = regexp.MustCompile(`best published default: F1 ([\d.]+) \((\S+)\), cover ([\d.]+) \((\S+)\)`)
	tcpdPubRE  = regexp.MustCompile(`published default: (\S+) F1 (\S+), cover (\S+)`)
)

// formatTCPD reads TestTCPDDefaults -v output.
func formatTCPD(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	var ours, best []string
	var pub [][]string // every published method, best F1 first
	for _, l := range lines {
		if m := tcpdOursRE.FindStringSubmatch(l); m != nil {
			ours = m
		}
		if m := tcpdBestRE.FindStringSubmatch(l); m != nil {
			best = m
		} else if m := tcpdPubRE.FindStringSubmatch(l); m != nil {
			pub = append(pub, m)
		}
	}
	if ours == nil || best == nil {
		return fmt.Errorf("no TestTCPDDefaults summary in the input (is ../shared/bench/tcpd there?)")
	}
	f := func(s string) string {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return "–" // a published method without this metric ("n/a")
		}
		return fmt.Sprintf("%.3f", v)
	}
	var b strings.Builder
	b.WriteString("| method (default setting) | mean F1 | mean cover |\n| --- | --- | --- |\n")
	fmt.Fprintf(&b, "| **culprit MeanShift** | **%s** | **%s** |\n", f(ours[2]), f(ours[3]))
	if len(pub) == 0 {
		// Output of a test from before every method was logged.
		fmt.Fprintf(&b, "| %s (best published default F1) | %s | |\n", best[2], f(best[1]))
		fmt.Fprintf(&b, "| %s (best published default cover) | | %s |\n", best[4], f(best[3]))
	}
	for _, m := range pub {
		name := m[1]
		var marks []string
		if name == best[2] {
			marks = append(marks, "best published default F1")
		}
		if name == best[4] {
			marks = append(marks, "best published default cover")
		}
		if len(marks) > 0 {
			name += " (" + strings.Join(marks, ", ") + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s |\n", name, f(m[2]), f(m[3]))
	}
	fmt.Fprintf(&b, "\n%s univariate series; TestTCPDDefaults %s.\n", ours[1], verdict(testResults(lines)["TestTCPDDefaults"]))
	_, err = io.WriteString(out, b.String())
	return err
}

var (
	burstyFiredRE = regexp.MustCompile(`bursty quiet series that fired: (\d+) of (\d+)`)
	burstyPriorRE = regexp.MustCompile(`prior overdispersion of the family: (\S+)`)
)

// formatBursty reads the -v output of the two false-alarm tests. The
// stationary test prints its count only when it fails, so a pass is shown
// as its bound.
func formatBursty(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	res := testResults(lines)
	var fired, prior []string
	for _, l := range lines {
		if m := burstyFiredRE.FindStringSubmatch(l); m != nil {
			fired = m
		}
		if m := burstyPriorRE.FindStringSubmatch(l); m != nil {
			prior = m
		}
	}
	if fired == nil {
		return fmt.Errorf("no TestDetectBurstyBaselineRarelyFires count in the input")
	}
	stationary := "at most 2 (the test prints no count when it passes)"
	if r := res["TestDetectStationaryNeverFires"]; r == "" {
		return fmt.Errorf("no TestDetectStationaryNeverFires result in the input")
	} else if r != "PASS" {
		stationary = "more than 2 (see the test's output)"
	}
	var b strings.Builder
	b.WriteString("| quiet series | fired | test |\n| --- | --- | --- |\n")
	fmt.Fprintf(&b, "| %s bursty (1–3 bursts of 5–15 min at 5–20× the base rate) | **%s of %s** | TestDetectBurstyBaselineRarelyFires %s |\n",
		fired[2], fired[1], fired[2], verdict(res["TestDetectBurstyBaselineRarelyFires"]))
	fmt.Fprintf(&b, "| 200 stationary, at p < 0.01 | %s | TestDetectStationaryNeverFires %s |\n", stationary, verdict(res["TestDetectStationaryNeverFires"]))
	if prior != nil {
		fmt.Fprintf(&b, "\nThe family's prior overdispersion: %s.\n", prior[1])
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// formatIntake reads BenchmarkIntakeLoadSQLite output.
func formatIntake(in io.Reader, out io.Writer) error {
	rs, err := parseGoBench(in)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("| run | events | achieved | lost | p50 | p99 | max |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	n := 0
	for _, r := range rs {
		if r.Name != "IntakeLoadSQLite" {
			continue
		}
		n++
		m := r.Metrics
		// The load's own duration, without the store's setup and read-back
		// that ns/op includes.
		secs := 0.0
		if m["events/s"] > 0 {
			secs = m["events"] / m["events/s"]
		}
		fmt.Fprintf(&b, "| %d | %s in %.0f s | %s events/s | %.0f | %s ms | %s ms | %s ms |\n", n,
			thousands(m["events"]), secs, thousands(m["events/s"]), m["lost"],
			strconv.FormatFloat(m["p50-ms"], 'g', 3, 64), strconv.FormatFloat(m["p99-ms"], 'g', 3, 64),
			strconv.FormatFloat(m["max-ms"], 'g', 3, 64))
	}
	if n == 0 {
		return fmt.Errorf("no BenchmarkIntakeLoadSQLite result in the input")
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// thousands formats a count with thousands separators: 120,000.
func thousands(v float64) string {
	s := strconv.FormatFloat(v, 'f', 0, 64)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// cmdES5M formats the warm and cold BenchmarkCorrelateES outputs.
func cmdES5M(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("es5m", flag.ContinueOnError)
	fs.SetOutput(stderr)
	warm := fs.String("warm", "", "BenchmarkCorrelateES output, caches kept")
	cold := fs.String("cold", "", "BenchmarkCorrelateES output, CULPRIT_BENCH_ES_COLD=1")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *warm == "" || *cold == "" || fs.NArg() > 0 {
		return fmt.Errorf("want -warm FILE -cold FILE")
	}
	var sets [2][]benchResult
	for i, p := range []string{*warm, *cold} {
		f, err := os.Open(p)
		if err != nil {
			return fmt.Errorf("read benchmark output: %w", err)
		}
		rs, err := parseGoBench(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		rs = slices.DeleteFunc(rs, func(r benchResult) bool { return r.Name != "CorrelateES" })
		if len(rs) == 0 {
			return fmt.Errorf("%s: no BenchmarkCorrelateES result (skipped without CULPRIT_BENCH_ES_URL?)", p)
		}
		sets[i] = rs
	}
	return formatES5M(sets[0], sets[1], stdout)
}

// counts formats a range of per-run counts: whole numbers as such, a mean
// that is not one with a decimal.
func counts(lo, hi float64) string {
	if lo == math.Trunc(lo) && hi == math.Trunc(hi) {
		return numRange(lo, hi, 0)
	}
	return numRange(lo, hi, 1)
}

func formatES5M(warm, cold []benchResult, out io.Writer) error {
	ms := func(lo, hi float64) string { return durRange(lo*1e6, hi*1e6) }
	cell := func(rs []benchResult, unit string, f func(lo, hi float64) string) string { return metric(rs, unit, f) }
	var b strings.Builder
	fmt.Fprintf(&b, "| what | target | warm (%s) | cold (%s) |\n| --- | --- | --- | --- |\n", plural(len(warm), "run"), plural(len(cold), "run"))
	fmt.Fprintf(&b, "| requests per correlate run | ≤ 20 | **%s** | **%s** |\n", cell(warm, "requests/op", counts), cell(cold, "requests/op", counts))
	fmt.Fprintf(&b, "| Elasticsearch time (\"took\") per run | ≤ 2 s | **%s** | **%s** |\n", cell(warm, "es-took-ms/op", ms), cell(cold, "es-took-ms/op", ms))
	fmt.Fprintf(&b, "| wall time per run | | %s | %s |\n", cell(warm, "ns/op", durRange), cell(cold, "ns/op", durRange))
	fmt.Fprintf(&b, "| findings | | %s | %s |\n", cell(warm, "findings", counts), cell(cold, "findings", counts))
	_, err := io.WriteString(out, b.String())
	return err
}

// parseLogfmt splits a slog text record into its keys and values.
func parseLogfmt(l string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(l); {
		for i < len(l) && l[i] == ' ' {
			i++
		}
		eq := strings.IndexByte(l[i:], '=')
		if eq < 0 {
			break
		}
		key := l[i : i+eq]
		i += eq + 1
		if i < len(l) && l[i] == '"' {
			j := i + 1
			for j < len(l) && l[j] != '"' {
				if l[j] == '\\' {
					j++
				}
				j++
			}
			end := min(j+1, len(l))
			if v, err := strconv.Unquote(l[i:end]); err == nil {
				out[key] = v
			} else {
				out[key] = l[i:end]
			}
			i = end
			continue
		}
		j := strings.IndexByte(l[i:], ' ')
		if j < 0 {
			j = len(l) - i
		}
		out[key] = l[i : i+j]
		i += j
	}
	return out
}

// formatESRequests reads the debug log of a BenchmarkCorrelateES run
// (CULPRIT_BENCH_ES_DEBUG=1) and tabulates took and latency per kind of
// request, in the order the kinds first appear.
func formatESRequests(in io.Reader, out io.Writer) error {
	lines, err := readLines(in)
	if err != nil {
		return err
	}
	type agg struct {
		took, lat []float64
	}
	var ops []string
	by := map[string]*agg{}
	for _, l := range lines {
		if !strings.Contains(l, `msg="elasticsearch request"`) {
			continue
		}
		kv := parseLogfmt(l)
		op := kv["op"]
		took, err1 := strconv.ParseFloat(kv["took_ms"], 64)
		lat, err2 := time.ParseDuration(kv["latency"])
		if op == "" || err1 != nil || err2 != nil {
			return fmt.Errorf("unreadable request record %q", l)
		}
		a, ok := by[op]
		if !ok {
			a = &agg{}
			by[op] = a
			ops = append(ops, op)
		}
		a.took = append(a.took, took)
		a.lat = append(a.lat, float64(lat)/1e6)
	}
	if len(ops) == 0 {
		return fmt.Errorf("no \"elasticsearch request\" records in the input (CULPRIT_BENCH_ES_DEBUG=1 unset?)")
	}
	var b strings.Builder
	b.WriteString("| request | count | took (ms), min / median / max | latency (ms), min / median / max |\n| --- | --- | --- | --- |\n")
	for _, op := range ops {
		a := by[op]
		fmt.Fprintf(&b, "| %s | %d | %s | %s |\n", op, len(a.took), triple(a.took), triple(a.lat))
	}
	_, err = io.WriteString(out, b.String())
	return err
}

// triple is min / median / max; whole numbers (took) print without decimals.
func triple(xs []float64) string {
	s := slices.Sorted(slices.Values(xs))
	d := decimals(s[len(s)-1])
	if !slices.ContainsFunc(s, func(v float64) bool { return v != math.Trunc(v) }) {
		d = 0
	}
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', d, 64) }
	return f(s[0]) + " / " + f(s[(len(s)-1)/2]) + " / " + f(s[len(s)-1])
}

// e2eRun is what the delay table needs of one seed's backtest.
type e2eRun struct {
	Seed      string
	Onset     time.Time
	Service   string
	Suspect   string
	PagedAt   time.Time // zero: no page for the truth's service
	Customers string
	Blamed    string
	To        time.Time
}

var customersRE = regexp.MustCompile(`affecting (\d+) customers?`)

// readE2E reads dir/truth.json (simulate's ground truth) and
// dir/backtest.json (`culprit backtest --format json`).
func readE2E(dir string) (e2eRun, error) {
	var truth struct {
		Service string    `json:"service"`
		Onset   time.Time `json:"onset"`
		Suspect string    `json:"suspect_deploy_id"`
	}
	var rep struct {
		To       time.Time `json:"to"`
		Messages []struct {
			At       time.Time `json:"at"`
			Channel  string    `json:"channel"`
			Action   string    `json:"action"`
			Service  string    `json:"service"`
			Headline string    `json:"headline"`
		} `json:"messages"`
	}
	for name, v := range map[string]any{"truth.json": &truth, "backtest.json": &rep} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return e2eRun{}, fmt.Errorf("read run: %w", err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			return e2eRun{}, fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
		}
	}
	if truth.Service == "" || truth.Onset.IsZero() {
		return e2eRun{}, fmt.Errorf("%s: truth has no service or onset", dir)
	}
	r := e2eRun{Seed: filepath.Base(dir), Onset: truth.Onset, Service: truth.Service, Suspect: truth.Suspect, To: rep.To}
	for _, m := range rep.Messages {
		if m.Channel == "pagerduty" && m.Action == "trigger" && m.Service == truth.Service {
			r.PagedAt = m.At
			r.Customers = "?"
			if c := customersRE.FindStringSubmatch(m.Headline); c != nil {
				r.Customers = c[1]
			}
			r.Blamed = "no"
			if truth.Suspect != "" && strings.Contains(m.Headline, truth.Suspect) {
				r.Blamed = "yes"
			}
			break
		}
	}
	return r, nil
}

func cmdE2E(dirs []string, stdout io.Writer) error {
	if len(dirs) == 0 {
		return fmt.Errorf("want one directory per seed")
	}
	var runs []e2eRun
	for _, d := range dirs {
		r, err := readE2E(d)
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	slices.SortStableFunc(runs, func(a, b e2eRun) int {
		x, errA := strconv.Atoi(a.Seed)
		y, errB := strconv.Atoi(b.Seed)
		if errA == nil && errB == nil {
			return cmp.Compare(x, y)
		}
		return strings.Compare(a.Seed, b.Seed)
	})
	return formatE2E(runs, stdout)
}

func formatE2E(runs []e2eRun, out io.Writer) error {
	var b strings.Builder
	b.WriteString("| seed | onset (first host on the bad version) | first page | delay | customers at the page | names the deploy |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, r := range runs {
		if r.PagedAt.IsZero() {
			fmt.Fprintf(&b, "| %s | %s | none by %s | – | – | – |\n", r.Seed, r.Onset.Format("15:04:05"), r.To.Format("15:04"))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", r.Seed, r.Onset.Format("15:04:05"), r.PagedAt.Format("15:04:05"),
			r.PagedAt.Sub(r.Onset), r.Customers, r.Blamed)
	}
	_, err := io.WriteString(out, b.String())
	return err
}

// formatSlowLoad is the slow-connection table (BenchmarkServeSlowClients):
// each probe's latency while the slow clients hold the daemon, then the
// load itself and the daemon's memory.
func formatSlowLoad(in io.Reader, out io.Writer) error {
	rs, err := parseGoBench(in)
	if err != nil {
		return err
	}
	var b strings.Builder
	n := 0
	ms := func(v float64) string { return strconv.FormatFloat(v, 'g', 3, 64) + " ms" }
	for _, r := range rs {
		if r.Name == "ChartsConcurrent" {
			m := r.Metrics
			fmt.Fprintf(&b, "Charts: %s requests at once for one incident's `chart.png` drew it %s time(s); p50 %s, p99 %s; "+
				"peak RSS %.0f MB (the benchmark's process, clients included).\n\n",
				thousands(m["requests"]), thousands(m["renders"]), ms(m["p50-ms"]), ms(m["p99-ms"]), m["rss-max-MB"])
			continue
		}
		if r.Name != "ServeSlowClients" {
			continue
		}
		n++
		m := r.Metrics
		fmt.Fprintf(&b, "Run %d: %s slow clients (a third each: slow headers, slow body, idle keep-alive), "+
			"%s connections shed, daemon RSS %.0f MB before and %.0f MB at most.\n\n",
			n, thousands(m["conns"]), thousands(m["shed"]), m["rss-before-MB"], m["rss-max-MB"])
		b.WriteString("| probe | answered | p50 | p99 | max |\n| --- | --- | --- | --- | --- |\n")
		for _, p := range []struct{ key, name string }{
			{"healthz", "`GET /healthz`"}, {"github", "GitHub `deployment_status`, signed"}, {"slack", "Slack `/correlate help`, signed"},
		} {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", p.name, thousands(m[p.key+"-probes"]),
				ms(m[p.key+"-p50-ms"]), ms(m[p.key+"-p99-ms"]), ms(m[p.key+"-max-ms"]))
		}
		b.WriteString("\n")
	}
	if n == 0 {
		return fmt.Errorf("no BenchmarkServeSlowClients result in the input")
	}
	_, err = io.WriteString(out, strings.TrimSuffix(b.String(), "\n"))
	return err
}

// formatRetention reads BenchmarkStoreQuarter output: the store's size
// after 30, 60 and 90 simulated days, pruned with the default retention
// and never pruned.
func formatRetention(in io.Reader, out io.Writer) error {
	rs, err := parseGoBench(in)
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("| retention | day 30 | day 60 | day 90 |\n| --- | --- | --- | --- |\n")
	label := map[string]string{"StoreQuarter/prune": "defaults, pruned", "StoreQuarter/none": "never pruned"}
	n := 0
	for _, r := range rs {
		l, ok := label[r.Name]
		if !ok {
			continue
		}
		n++
		m := r.Metrics
		fmt.Fprintf(&b, "| %s | %.0f MB | %.0f MB | %.0f MB |\n", l, m["day30-MB"], m["day60-MB"], m["day90-MB"])
	}
	if n == 0 {
		return fmt.Errorf("no BenchmarkStoreQuarter result in the input")
	}
	_, err = io.WriteString(out, b.String())
	return err
}
