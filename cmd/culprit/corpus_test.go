package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
)

// The labelled corpus measures culprit's judgment the way on-call feels
// it: would the daemon, with its default settings and a route that pages
// everything worth a page, have paged for the injected incident, how soon,
// naming the right deploy and the right scope, and how often would it have
// paged for nothing. Every run goes through backtest, the daemon's own
// evaluator, routes and incident life cycle at 1-minute ticks.
//
// It is a benchmark run of about an hour on two cores, not a CI test:
//
//	CULPRIT_CORPUS=1 go test -count=1 -run TestCorpus -v -timeout 3h ./cmd/culprit/
//
// Settings (environment):
//   - CULPRIT_CORPUS_SEEDS: seeds of the incident runs, "1..7" (default),
//     "1,2,5", or "none" for quiet days only; every shape but quiet runs
//     once per seed.
//   - CULPRIT_CORPUS_SHAPES: the incident shapes to run, comma-separated
//     ("quick_increase,late_leak"); default every shape. For iterating on
//     a few shapes; a corpus for BENCHMARKS.md runs them all.
//   - CULPRIT_CORPUS_PEAK: the fleet's requests a minute at the diurnal
//     peak, default 6000.
//   - CULPRIT_CORPUS_QUIET_DAYS: consecutive days of quiet traffic, one
//     seed each, default 28 (the four weeks).
//   - CULPRIT_CORPUS_PARALLEL: runs backtested side by side, default
//     GOMAXPROCS.
//   - CULPRIT_CORPUS_WARMUP: how long after an incident run's start the
//     first tick comes, default min(lookback, onset-1h): the default
//     lookback (6h) is longer than the time before the default onset (4h),
//     so a full lookback before the first tick would leave no tick before
//     the onset.
//   - CULPRIT_CORPUS_DIR: keep the generated runs there (and reuse them);
//     default a temporary directory.
//   - CULPRIT_CORPUS_OUT: the JSON results file; default corpus.json in a
//     temporary directory. The summary tables go beside it, as .md.

// corpusRouteConfig is rules.Default() plus the fleet's product names and one route that pages every
// finding graded page: the corpus asks "would it have paged". The routing
// key is required by validation but never read: a backtest sends nothing.
const corpusRouteConfig = `
correlate:
  # The product names the simulated fleet's customers use, as its
  # operator would configure them: they only inform related tickets.
  products:
    edge-router: [CDN, serverless, edge functions]
    api: [API, REST API]
    functions: [functions, serverless]
    dashboard: [dashboard, control panel]
routes:
  - name: always
    action: page
pagerduty:
  routing_key: {env: CULPRIT_CORPUS_UNUSED_KEY}
`

// corpusQuietSeed0 is the first quiet day's seed, away from the incident
// runs' seeds so that no quiet day replays an incident run's background.
const corpusQuietSeed0 = 1001

type corpusOptions struct {
	Seeds      []int64       `json:"seeds"`
	Shapes     []string      `json:"shapes,omitempty"`
	PeakPerMin float64       `json:"peak_per_min"`
	QuietDays  int           `json:"quiet_days"`
	Warmup     time.Duration `json:"warmup_ns"`
	Dir        string        `json:"dir"`
	Out        string        `json:"out"`
	Parallel   int           `json:"parallel"`
}

func corpusOptionsFromEnv(t *testing.T) corpusOptions {
	t.Helper()
	o := corpusOptions{PeakPerMin: 6000, QuietDays: 28, Seeds: []int64{1, 2, 3, 4, 5, 6, 7}, Parallel: runtime.GOMAXPROCS(0)}
	var err error
	if v := os.Getenv("CULPRIT_CORPUS_SEEDS"); v != "" {
		if o.Seeds, err = parseSeeds(v); err != nil {
			t.Fatalf("CULPRIT_CORPUS_SEEDS: %v", err)
		}
	}
	if v := os.Getenv("CULPRIT_CORPUS_SHAPES"); v != "" {
		for f := range strings.SplitSeq(v, ",") {
			sh := strings.TrimSpace(f)
			if !slices.Contains(simulate.Shapes(), simulate.Shape(sh)) || sh == string(simulate.ShapeQuiet) {
				t.Fatalf("CULPRIT_CORPUS_SHAPES: %q is not an incident shape (known: %v)", sh, simulate.Shapes())
			}
			o.Shapes = append(o.Shapes, sh)
		}
	}
	if v := os.Getenv("CULPRIT_CORPUS_PEAK"); v != "" {
		if o.PeakPerMin, err = strconv.ParseFloat(v, 64); err != nil || o.PeakPerMin <= 0 {
			t.Fatalf("CULPRIT_CORPUS_PEAK %q: not a positive number", v)
		}
	}
	if v := os.Getenv("CULPRIT_CORPUS_QUIET_DAYS"); v != "" {
		if o.QuietDays, err = strconv.Atoi(v); err != nil || o.QuietDays < 0 {
			t.Fatalf("CULPRIT_CORPUS_QUIET_DAYS %q: not a count of 0 or more", v)
		}
	}
	if v := os.Getenv("CULPRIT_CORPUS_PARALLEL"); v != "" {
		if o.Parallel, err = strconv.Atoi(v); err != nil || o.Parallel < 1 {
			t.Fatalf("CULPRIT_CORPUS_PARALLEL %q: not a count of 1 or more", v)
		}
	}
	o.Warmup = -1
	if v := os.Getenv("CULPRIT_CORPUS_WARMUP"); v != "" {
		if o.Warmup, err = time.ParseDuration(v); err != nil || o.Warmup < 0 {
			t.Fatalf("CULPRIT_CORPUS_WARMUP %q: not a duration of 0 or more", v)
		}
	}
	if o.Dir = os.Getenv("CULPRIT_CORPUS_DIR"); o.Dir == "" {
		o.Dir = t.TempDir()
	}
	if o.Out = os.Getenv("CULPRIT_CORPUS_OUT"); o.Out == "" {
		o.Out = filepath.Join(t.TempDir(), "corpus.json")
	}
	return o
}

// parseSeeds reads "1..7", "3", "1,2,5", or "none" (quiet days only).
func parseSeeds(v string) ([]int64, error) {
	if v == "none" {
		return nil, nil
	}
	if lo, hi, ok := strings.Cut(v, ".."); ok {
		a, err1 := strconv.ParseInt(strings.TrimSpace(lo), 10, 64)
		b, err2 := strconv.ParseInt(strings.TrimSpace(hi), 10, 64)
		if err1 != nil || err2 != nil || b < a || b-a > 10000 {
			return nil, fmt.Errorf("%q: want a range such as 1..7", v)
		}
		var out []int64
		for s := a; s <= b; s++ {
			out = append(out, s)
		}
		return out, nil
	}
	var out []int64
	for f := range strings.SplitSeq(v, ",") {
		s, err := strconv.ParseInt(strings.TrimSpace(f), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%q: want seeds such as 1,2,5 or 1..7", v)
		}
		out = append(out, s)
	}
	return out, nil
}

func TestParseSeeds(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want []int64
		bad  bool
	}{
		{"range", "1..3", []int64{1, 2, 3}, false},
		{"single", "42", []int64{42}, false},
		{"list", "1, 5,9", []int64{1, 5, 9}, false},
		{"none", "none", nil, false},
		{"reversed range", "3..1", nil, true},
		{"not a number", "a,b", nil, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseSeeds(c.in)
			if (err != nil) != c.bad || !slices.Equal(got, c.want) {
				t.Errorf("parseSeeds(%q) = %v, %v; want %v (error: %t)", c.in, got, err, c.want, c.bad)
			}
		})
	}
}

// corpusPage is one page trigger as the corpus scores it.
type corpusPage struct {
	At       time.Time `json:"at"`
	Offset   string    `json:"offset_from_start"`
	Service  string    `json:"service"`
	Key      string    `json:"key"`
	Headline string    `json:"headline"`
	Reasons  []string  `json:"severity_reasons,omitempty"`
	// Truth says the page is about the injected incident (for a shape
	// that should not page, it is still a false page).
	Truth bool `json:"truth"`
}

// corpusIncident is an incident of the truth's service that did not page,
// kept to explain a miss.
type corpusIncident struct {
	Severity string    `json:"severity"`
	Action   string    `json:"action"`
	Onset    time.Time `json:"onset"`
	OpenedAt time.Time `json:"opened_at"`
	Headline string    `json:"headline"`
	Reasons  []string  `json:"severity_reasons,omitempty"`
}

// corpusRun is one backtested run and its scores.
type corpusRun struct {
	Name       string         `json:"name"`
	Shape      simulate.Shape `json:"shape"`
	Seed       int64          `json:"seed"`
	Quiet      bool           `json:"quiet_day"`
	Truth      simulate.Truth `json:"truth"`
	From       time.Time      `json:"from"`
	To         time.Time      `json:"to"`
	Ticks      int            `json:"ticks"`
	Hours      float64        `json:"hours"` // judged: from the first tick to the last
	GenSeconds float64        `json:"generate_seconds"`
	RunSeconds float64        `json:"backtest_seconds"`

	Detected     bool       `json:"detected"`
	PagedAt      *time.Time `json:"paged_at,omitempty"`
	DelaySeconds *float64   `json:"delay_seconds,omitempty"`
	// FirstErrorDelaySeconds is the delay from the first injected error
	// rather than from the onset: the part of the delay that is culprit's.
	FirstErrorDelaySeconds *float64 `json:"first_error_delay_seconds,omitempty"`
	Suspect                string   `json:"suspect,omitempty"`
	AttributionOK          *bool    `json:"attribution_ok,omitempty"`
	// FinalOK scores the paged incident's last evidence instead of the
	// page's: a leak that begins after its rollout ended is tied to the
	// version only when the rollback takes it away host by host, after
	// the page, and the page update and the review carry that.
	FinalSuspect string `json:"final_suspect,omitempty"`
	FinalOK      *bool  `json:"final_attribution_ok,omitempty"`
	// BlamedDeploy is a page on a truth without a deploy to blame that
	// blamed one anyway.
	BlamedDeploy bool     `json:"blamed_deploy,omitempty"`
	Scope        []string `json:"scope_top2,omitempty"`
	ScopeTop1    *bool    `json:"scope_top1,omitempty"`
	ScopeTop2    *bool    `json:"scope_top2_ok,omitempty"`
	// ScopeTop1Dim is top-1 among the concentrations other than
	// service.version: a bad deploy's version always concentrates its
	// errors, and says nothing about who is hurt.
	ScopeTop1Dim *bool `json:"scope_top1_without_version,omitempty"`
	// Explanation is the page's top scope explanation, and ExplainTop1
	// whether it names the injected dimension: alone, or in a conjunction
	// (the Friday's errors are on aws and on functions both).
	Explanation string `json:"explanation_top,omitempty"`
	ExplainTop1 *bool  `json:"explanation_top1,omitempty"`

	// Related tickets of the incident's findings against the truth's
	// labels: how many were related, how many of those are about the
	// incident, and how many tickets are.
	TicketsRelated int `json:"tickets_related"`
	TicketsCorrect int `json:"tickets_correct"`
	TicketsTruth   int `json:"tickets_truth"`

	TruthPages int              `json:"truth_pages"`
	FalsePages []corpusPage     `json:"false_pages"`
	Unpaged    []corpusIncident `json:"unpaged_truth_service_incidents,omitempty"`
}

func TestCorpus(t *testing.T) {
	if os.Getenv("CULPRIT_CORPUS") != "1" {
		t.Skip("a benchmark run of about an hour on two cores (91 incident runs, 28 quiet days); enable with CULPRIT_CORPUS=1 go test -count=1 -run TestCorpus -v -timeout 3h ./cmd/culprit/")
	}
	wall := time.Now()
	ctx := t.Context()
	o := corpusOptionsFromEnv(t)
	p := filepath.Join(t.TempDir(), "culprit.yml")
	if err := os.WriteFile(p, []byte(corpusRouteConfig), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := rules.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	lookback := cfg.Evaluation.Lookback.D()

	type plan struct {
		name  string
		sim   simulate.Config
		quiet bool
	}
	var plans []plan
	for _, shape := range simulate.Shapes() {
		if shape == simulate.ShapeQuiet || (len(o.Shapes) > 0 && !slices.Contains(o.Shapes, string(shape))) {
			continue
		}
		for _, seed := range o.Seeds {
			plans = append(plans, plan{name: fmt.Sprintf("%s-s%d", shape, seed),
				sim: simulate.Config{Seed: seed, Shape: shape, PeakPerMin: o.PeakPerMin}})
		}
	}
	// A quiet day is judged over its 24 hours, but its traffic starts a
	// lookback earlier: the daemon runs continuously and always has a full
	// window behind it. Without that history every day's first hours had
	// no baseline, and a sparse class (an invalid API key at 00:06) read
	// as a new error class.
	day0 := simulate.DefaultStart.Truncate(24 * time.Hour)
	for d := range o.QuietDays {
		seed := corpusQuietSeed0 + int64(d)
		plans = append(plans, plan{name: fmt.Sprintf("quiet-day%d-s%d", d+1, seed), quiet: true,
			sim: simulate.Config{Seed: seed, Shape: simulate.ShapeQuiet, PeakPerMin: o.PeakPerMin,
				Start: day0.Add(time.Duration(d)*24*time.Hour - lookback), Duration: 24*time.Hour + lookback}})
	}

	// Runs are independent (each backtest has its own throwaway store), so
	// they go side by side, one per core; results keep the plans' order.
	runs := make([]corpusRun, len(plans))
	sem := make(chan struct{}, o.Parallel)
	var wg sync.WaitGroup
	for i, pl := range plans {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r, err := corpusOne(ctx, cfg, o, pl.name, pl.sim, pl.quiet, lookback)
			if err != nil {
				t.Errorf("%s: %v", pl.name, err)
				return
			}
			t.Logf("%-28s %4d ticks, generate %5.1fs, backtest %6.1fs: %s", r.Name, r.Ticks, r.GenSeconds, r.RunSeconds, r.verdict())
			runs[i] = r
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	sum := summarize(runs)
	elapsed := time.Since(wall)
	shapes := ""
	if len(o.Shapes) > 0 {
		shapes = "CULPRIT_CORPUS_SHAPES=" + strings.Join(o.Shapes, ",") + " "
	}
	command := fmt.Sprintf("CULPRIT_CORPUS=1 %sCULPRIT_CORPUS_SEEDS=%s CULPRIT_CORPUS_PEAK=%g CULPRIT_CORPUS_QUIET_DAYS=%d go test -count=1 -run TestCorpus -v -timeout 3h ./cmd/culprit/",
		shapes, seedsString(o.Seeds), o.PeakPerMin, o.QuietDays)
	out := struct {
		Command     string         `json:"command"`
		WallSeconds float64        `json:"wall_seconds"`
		Options     corpusOptions  `json:"options"`
		Lookback    string         `json:"lookback"`
		Lag         string         `json:"lag"`
		Summary     []corpusLine   `json:"summary"`
		Runs        []corpusRun    `json:"runs"`
		Targets     map[string]any `json:"targets"`
	}{command, elapsed.Seconds(), o, lookback.String(), cfg.Sources.Elasticsearch.Lag.D().String(), sum, runs,
		map[string]any{"recall": 0.95, "false_pages_per_week": 1, "median_delay_seconds": 180, "attribution_top1": 0.95}}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(o.Out, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	md := corpusMarkdown(command, elapsed, o, lookback, cfg.Sources.Elasticsearch.Lag.D(), sum, runs)
	// The Markdown beside the JSON is what `make bench` splices into
	// BENCHMARKS.md.
	mdPath := strings.TrimSuffix(o.Out, filepath.Ext(o.Out)) + ".md"
	if err := os.WriteFile(mdPath, []byte(md), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("\n%s", md)
	t.Logf("results: %s and %s", o.Out, mdPath)
}

// corpusOne generates (or reuses) one run and backtests it.
func corpusOne(ctx context.Context, cfg rules.Config, o corpusOptions, name string, sim simulate.Config, quiet bool, lookback time.Duration) (corpusRun, error) {
	dir := filepath.Join(o.Dir, fmt.Sprintf("%s-p%g", name, o.PeakPerMin))
	g := time.Now()
	truth, run, err := corpusFiles(ctx, dir, sim)
	if err != nil {
		return corpusRun{}, err
	}
	gen := time.Since(g)
	start, end := run.Start, run.Start.Add(run.Duration)
	from := start.Add(lookback) // a quiet day's history; see the plans
	if !quiet {
		warm := o.Warmup
		if warm < 0 {
			warm = min(lookback, run.Onset-time.Hour)
		}
		from = start.Add(warm)
	}
	in := backtestInput{logs: filepath.Join(dir, simulate.LogsFile), deploys: filepath.Join(dir, simulate.DeploysFile),
		tickets: filepath.Join(dir, simulate.TicketsFile), from: from, to: end, lag: cfg.Sources.Elasticsearch.Lag.D()}
	b := time.Now()
	rep, err := backtest(ctx, &cfg, in)
	if err != nil {
		return corpusRun{}, err
	}
	r := scoreCorpusRun(truth, rep, start)
	r.Name, r.Shape, r.Seed, r.Quiet = name, sim.Shape, sim.Seed, quiet
	r.GenSeconds, r.RunSeconds = gen.Seconds(), time.Since(b).Seconds()
	return r, nil
}

// corpusSpan is what the scoring needs of a run's Config, defaults filled.
type corpusSpan struct {
	Start    time.Time     `json:"start"`
	Duration time.Duration `json:"duration"`
	Onset    time.Duration `json:"onset"`
}

// corpusFiles writes a run into dir, or reads back the run a kept corpus
// directory already holds (generation is deterministic by its Config).
func corpusFiles(ctx context.Context, dir string, sim simulate.Config) (simulate.Truth, corpusSpan, error) {
	type kept struct {
		Span  corpusSpan     `json:"span"`
		Truth simulate.Truth `json:"truth"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, "corpus-run.json")); err == nil {
		var k kept
		if err := json.Unmarshal(b, &k); err == nil && sameSpan(k.Span, sim) {
			return k.Truth, k.Span, nil
		}
		// A kept run of another span (an older corpus's) is generated
		// again, not reused; until it is complete, nothing says it is.
		if err := os.Remove(filepath.Join(dir, "corpus-run.json")); err != nil {
			return simulate.Truth{}, corpusSpan{}, fmt.Errorf("drop the stale run: %w", err)
		}
	}
	run, err := simulate.WriteFiles(ctx, dir, sim)
	if err != nil {
		return simulate.Truth{}, corpusSpan{}, err
	}
	k := kept{corpusSpan{run.Config.Start, run.Config.Duration, run.Config.Onset}, run.Truth}
	b, err := json.Marshal(k)
	if err != nil {
		return simulate.Truth{}, corpusSpan{}, fmt.Errorf("record run: %w", err)
	}
	// Written last: its presence says the run's files are complete.
	if err := os.WriteFile(filepath.Join(dir, "corpus-run.json"), b, 0o644); err != nil {
		return simulate.Truth{}, corpusSpan{}, fmt.Errorf("record run: %w", err)
	}
	return k.Truth, k.Span, nil
}

// sameSpan: a kept run covers the span sim asks for (zero fields are the
// simulator's defaults, which do not change between runs).
func sameSpan(kept corpusSpan, sim simulate.Config) bool {
	return (sim.Start.IsZero() || kept.Start.Equal(sim.Start)) && (sim.Duration == 0 || kept.Duration == sim.Duration)
}

// isTruthPage: the page is for the truth's service, after its onset, and
// its finding carries the injected error class.
func isTruthPage(truth simulate.Truth, m backtestMessage) bool {
	if truth.MessageContains == "" || m.Service != truth.Service || m.At.Before(truth.Onset) || m.queued == nil || m.queued.Finding == nil {
		return false
	}
	return findingHas(m.queued.Finding, truth.MessageContains)
}

// findingHas: the finding's signature, headline or an example carries s.
func findingHas(f *correlate.Finding, s string) bool {
	if s == "" {
		return false
	}
	if strings.Contains(f.Signature, s) || strings.Contains(f.Headline, s) {
		return true
	}
	return slices.ContainsFunc(f.Examples, func(e string) bool { return strings.Contains(e, s) })
}

func scoreCorpusRun(truth simulate.Truth, rep *backtestReport, start time.Time) corpusRun {
	r := corpusRun{Truth: truth, From: rep.From, To: rep.To, Ticks: rep.Ticks, FalsePages: []corpusPage{}}
	if rep.Ticks > 0 {
		r.Hours = rep.To.Sub(rep.From).Hours()
	}
	r.TicketsRelated, r.TicketsCorrect, r.TicketsTruth = scoreTickets(truth, rep)
	var first *backtestMessage
	for i, m := range rep.Messages {
		if m.Channel != string(escalate.ChannelPagerDuty) || m.Action != escalate.Trigger {
			continue
		}
		p := corpusPage{At: m.At, Offset: m.At.Sub(start).String(), Service: m.Service, Key: m.Key, Headline: m.Headline,
			Truth: isTruthPage(truth, m)}
		if m.queued != nil && m.queued.Finding != nil {
			p.Reasons = m.queued.Finding.SeverityReasons
		}
		if !p.Truth || !truth.ExpectPage {
			r.FalsePages = append(r.FalsePages, p)
			continue
		}
		r.TruthPages++
		if first == nil {
			first = &rep.Messages[i]
		}
	}
	if first == nil {
		for _, in := range rep.Incidents {
			if in.Service != truth.Service || in.finding == nil || !in.PagedAt.IsZero() || !findingHas(in.finding, truth.MessageContains) {
				continue
			}
			r.Unpaged = append(r.Unpaged, corpusIncident{Severity: in.Severity, Action: in.Action, Onset: in.Onset,
				OpenedAt: in.OpenedAt, Headline: in.Headline, Reasons: in.finding.SeverityReasons})
		}
		return r
	}
	r.Detected = true
	at := first.At
	d := at.Sub(truth.Onset).Seconds()
	r.PagedAt, r.DelaySeconds = &at, &d
	if !truth.FirstError.IsZero() {
		fe := at.Sub(truth.FirstError).Seconds()
		r.FirstErrorDelaySeconds = &fe
	}
	f := first.queued.Finding
	if len(f.SuspectedDeploys) > 0 {
		r.Suspect = f.SuspectedDeploys[0].ID
	}
	if truth.SuspectDeployID != "" {
		ok := r.Suspect == truth.SuspectDeployID
		r.AttributionOK = &ok
		for _, in := range rep.Incidents {
			if in.Key == first.Key && in.finding != nil {
				if len(in.finding.SuspectedDeploys) > 0 {
					r.FinalSuspect = in.finding.SuspectedDeploys[0].ID
				}
				fok := r.FinalSuspect == truth.SuspectDeployID
				r.FinalOK = &fok
			}
		}
	} else {
		r.BlamedDeploy = r.Suspect != ""
	}
	if truth.Field != "" {
		hit, dimOK := -1, false
		if i := slices.IndexFunc(f.Scope.Concentration, func(c correlate.Concentration) bool { return c.Field != correlate.FieldVersion }); i >= 0 {
			c := f.Scope.Concentration[i]
			dimOK = c.Field == truth.Field && c.Value == truth.Value
		}
		r.ScopeTop1Dim = &dimOK
		for i, c := range f.Scope.Concentration {
			if i < 2 {
				r.Scope = append(r.Scope, c.Field+"="+c.Value)
			}
			if hit < 0 && c.Field == truth.Field && c.Value == truth.Value {
				hit = i
			}
		}
		top1, top2 := hit == 0, hit == 0 || hit == 1
		r.ScopeTop1, r.ScopeTop2 = &top1, &top2
		explained := false
		if ex := f.Scope.Explanations; len(ex) > 0 {
			r.Explanation = ex[0].Label()
			explained = slices.Contains(ex[0].Conditions, correlate.Condition{Field: truth.Field, Value: truth.Value})
		}
		r.ExplainTop1 = &explained
	}
	return r
}

// scoreTickets compares the related tickets of the incidents about the
// truth (their latest findings, united when the incident reopened) with
// the truth's labels. A run without such an incident relates nothing,
// and so misses every incident ticket.
func scoreTickets(truth simulate.Truth, rep *backtestReport) (related, correct, labelled int) {
	labelled = len(truth.IncidentTickets)
	if truth.MessageContains == "" {
		return 0, 0, labelled
	}
	seen := map[int64]bool{}
	for _, in := range rep.Incidents {
		if in.finding == nil || in.Service != truth.Service || !findingHas(in.finding, truth.MessageContains) {
			continue
		}
		for _, t := range in.finding.Tickets {
			if seen[t.ID] {
				continue
			}
			seen[t.ID] = true
			related++
			if slices.Contains(truth.IncidentTickets, t.ID) {
				correct++
			}
		}
	}
	return related, correct, labelled
}

func (r corpusRun) verdict() string {
	var parts []string
	switch {
	case r.Quiet:
	case r.Detected:
		paged := fmt.Sprintf("paged +%s", time.Duration(*r.DelaySeconds*float64(time.Second)))
		if r.FirstErrorDelaySeconds != nil && *r.FirstErrorDelaySeconds < *r.DelaySeconds-30 {
			paged += fmt.Sprintf(" (+%s after the first error)", time.Duration(*r.FirstErrorDelaySeconds*float64(time.Second)).Round(time.Second))
		}
		parts = append(parts, paged)
		if r.AttributionOK != nil {
			parts = append(parts, fmt.Sprintf("suspect %s (ok %t)", cmp.Or(r.Suspect, "none"), *r.AttributionOK))
		}
		if r.FinalOK != nil {
			parts = append(parts, fmt.Sprintf("at the end %s (ok %t)", cmp.Or(r.FinalSuspect, "none"), *r.FinalOK))
		}
		if r.ScopeTop2 != nil {
			parts = append(parts, fmt.Sprintf("scope %v (top1 %t, top2 %t)", r.Scope, *r.ScopeTop1, *r.ScopeTop2))
		}
		if r.ExplainTop1 != nil {
			parts = append(parts, fmt.Sprintf("explanation %q (injected %t)", r.Explanation, *r.ExplainTop1))
		}
	case r.Truth.ExpectPage:
		parts = append(parts, "MISSED")
		for _, in := range r.Unpaged {
			parts = append(parts, fmt.Sprintf("[%s/%s %s: %s]", in.Severity, in.Action, in.OpenedAt.Format("15:04"), in.Headline))
		}
	default:
		parts = append(parts, "not expected to page")
	}
	parts = append(parts, fmt.Sprintf("%d false pages", len(r.FalsePages)))
	for _, p := range r.FalsePages {
		parts = append(parts, fmt.Sprintf("[false %s %s: %s]", p.At.Format("01-02T15:04"), p.Service, p.Headline))
	}
	return strings.Join(parts, "; ")
}

// corpusLine is one row of the summary: a shape, the quiet days, or all.
type corpusLine struct {
	Group        string   `json:"group"`
	Runs         int      `json:"runs"`
	ExpectPage   int      `json:"expect_page"`
	Detected     int      `json:"detected"`
	Recall       *float64 `json:"recall,omitempty"`
	MedianDelayS *float64 `json:"median_delay_seconds,omitempty"`
	P90DelayS    *float64 `json:"p90_delay_seconds,omitempty"`
	// MedianFirstS is the median delay from the first injected error, over
	// the runs whose truth records it.
	MedianFirstS   *float64 `json:"median_first_error_delay_seconds,omitempty"`
	AttributionN   int      `json:"attribution_n"`
	AttributionOK  int      `json:"attribution_ok"`
	FinalN         int      `json:"final_attribution_n"`
	FinalOK        int      `json:"final_attribution_ok"`
	ScopeN         int      `json:"scope_n"`
	ScopeTop1      int      `json:"scope_top1"`
	ScopeTop2      int      `json:"scope_top2"`
	ScopeTop1Dim   int      `json:"scope_top1_without_version"`
	ExplainTop1    int      `json:"explanation_top1"`
	BlamedDeploy   int      `json:"blamed_deploy_without_cause"`
	FalsePages     int      `json:"false_pages"`
	TicketsRelated int      `json:"tickets_related"`
	TicketsCorrect int      `json:"tickets_correct"`
	TicketsTruth   int      `json:"tickets_truth"`
	Hours          float64  `json:"hours"`
	FalsePerWeek   float64  `json:"false_pages_per_week"`
	MissedRuns     []string `json:"missed_runs,omitempty"`
	MisattribRuns  []string `json:"misattributed_runs,omitempty"`
	FalsePageRuns  []string `json:"false_page_runs,omitempty"`
	WallSecondsSum float64  `json:"wall_seconds"`
}

func summarize(runs []corpusRun) []corpusLine {
	var groups []string
	by := map[string][]corpusRun{}
	for _, r := range runs {
		g := string(r.Shape)
		if r.Quiet {
			g = "quiet days"
		}
		if _, ok := by[g]; !ok {
			groups = append(groups, g)
		}
		by[g] = append(by[g], r)
	}
	var incident []corpusRun
	for _, r := range runs {
		if !r.Quiet {
			incident = append(incident, r)
		}
	}
	var lines []corpusLine
	for _, g := range groups {
		lines = append(lines, corpusSummary(g, by[g]))
	}
	lines = append(lines, corpusSummary("incident runs", incident), corpusSummary("all", runs))
	return lines
}

func corpusSummary(group string, runs []corpusRun) corpusLine {
	l := corpusLine{Group: group, Runs: len(runs)}
	var delays, firsts []float64
	for _, r := range runs {
		l.Hours += r.Hours
		l.WallSecondsSum += r.GenSeconds + r.RunSeconds
		l.FalsePages += len(r.FalsePages)
		l.TicketsRelated += r.TicketsRelated
		l.TicketsCorrect += r.TicketsCorrect
		l.TicketsTruth += r.TicketsTruth
		if len(r.FalsePages) > 0 {
			l.FalsePageRuns = append(l.FalsePageRuns, fmt.Sprintf("%s×%d", r.Name, len(r.FalsePages)))
		}
		if r.Truth.ExpectPage {
			l.ExpectPage++
			if !r.Detected {
				l.MissedRuns = append(l.MissedRuns, r.Name)
			}
		}
		if r.BlamedDeploy {
			l.BlamedDeploy++
		}
		if !r.Detected {
			continue
		}
		l.Detected++
		delays = append(delays, *r.DelaySeconds)
		if r.FirstErrorDelaySeconds != nil {
			firsts = append(firsts, *r.FirstErrorDelaySeconds)
		}
		if r.FinalOK != nil {
			l.FinalN++
			if *r.FinalOK {
				l.FinalOK++
			}
		}
		if r.AttributionOK != nil {
			l.AttributionN++
			if *r.AttributionOK {
				l.AttributionOK++
			} else {
				l.MisattribRuns = append(l.MisattribRuns, r.Name+"→"+cmp.Or(r.Suspect, "none"))
			}
		}
		if r.ScopeTop1 != nil {
			l.ScopeN++
			if *r.ScopeTop1 {
				l.ScopeTop1++
			}
			if *r.ScopeTop2 {
				l.ScopeTop2++
			}
			if *r.ScopeTop1Dim {
				l.ScopeTop1Dim++
			}
			if r.ExplainTop1 != nil && *r.ExplainTop1 {
				l.ExplainTop1++
			}
		}
	}
	if l.ExpectPage > 0 {
		v := float64(l.Detected) / float64(l.ExpectPage)
		l.Recall = &v
	}
	if len(delays) > 0 {
		m, p := quantile(delays, 0.5), quantile(delays, 0.9)
		l.MedianDelayS, l.P90DelayS = &m, &p
	}
	if len(firsts) > 0 {
		m := quantile(firsts, 0.5)
		l.MedianFirstS = &m
	}
	if l.Hours > 0 {
		l.FalsePerWeek = float64(l.FalsePages) / l.Hours * 168
	}
	return l
}

// quantile is the nearest-rank quantile: a delay that some run really had.
func quantile(xs []float64, q float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func TestQuantile(t *testing.T) {
	cases := []struct {
		name string
		xs   []float64
		q    float64
		want float64
	}{
		{"median of odd", []float64{5, 1, 3}, 0.5, 3},
		{"median of even is the lower", []float64{4, 1, 3, 2}, 0.5, 2},
		{"p90 of ten", []float64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 0.9, 9},
		{"p90 of one", []float64{7}, 0.9, 7},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := quantile(c.xs, c.q); got != c.want {
				t.Errorf("quantile(%v, %g) = %g, want %g", c.xs, c.q, got, c.want)
			}
		})
	}
}

func corpusMarkdown(command string, elapsed time.Duration, o corpusOptions, lookback, lag time.Duration, sum []corpusLine, runs []corpusRun) string {
	var b strings.Builder
	fmt.Fprintf(&b, "```sh\n%s\n```\n\n", command)
	inc, quiet := 0, 0
	for _, r := range runs {
		if r.Quiet {
			quiet++
		} else {
			inc++
		}
	}
	fmt.Fprintf(&b, "%d incident runs (seeds %s, 6 h, onset 4 h), %d quiet days; peak %g requests/min; lookback %s; ingestion lag %s; %d runs side by side; wall time %s.\n\n",
		inc, seedsString(o.Seeds), quiet, o.PeakPerMin, lookback, lag, o.Parallel, elapsed.Round(time.Second))
	b.WriteString("| runs | expect page | detected | recall | median delay | p90 delay | median delay from the first error | attribution top-1 | at the incident's end | scope top-1 | scope top-2 | scope top-1 w/o version | top explanation = injected | false pages | judged hours | false pages / week | ticket precision | ticket recall |\n")
	b.WriteString("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, l := range sum {
		fmt.Fprintf(&b, "| %s (%d) | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d | %.0f | %.2f | %s | %s |\n", l.Group, l.Runs, l.ExpectPage, l.Detected,
			ratioOrDash(l.Recall), secondsOrDash(l.MedianDelayS), secondsOrDash(l.P90DelayS), secondsOrDash(l.MedianFirstS),
			fracOrDash(l.AttributionOK, l.AttributionN), fracOrDash(l.FinalOK, l.FinalN), fracOrDash(l.ScopeTop1, l.ScopeN), fracOrDash(l.ScopeTop2, l.ScopeN),
			fracOrDash(l.ScopeTop1Dim, l.ScopeN), fracOrDash(l.ExplainTop1, l.ScopeN), l.FalsePages, l.Hours, l.FalsePerWeek,
			fracOrDash(l.TicketsCorrect, l.TicketsRelated), fracOrDash(l.TicketsCorrect, l.TicketsTruth))
	}
	for _, l := range sum {
		if l.Group == "all" || l.Group == "incident runs" {
			continue
		}
		if len(l.MissedRuns)+len(l.MisattribRuns)+len(l.FalsePageRuns) > 0 {
			fmt.Fprintf(&b, "\n%s: missed %v; misattributed %v; false pages %v", l.Group, l.MissedRuns, l.MisattribRuns, l.FalsePageRuns)
		}
		if l.BlamedDeploy > 0 {
			fmt.Fprintf(&b, "; %d pages blamed a deploy with no deploy to blame", l.BlamedDeploy)
		}
	}
	b.WriteString("\n")
	return b.String()
}

func ratioOrDash(v *float64) string {
	if v == nil {
		return "–"
	}
	return fmt.Sprintf("%.3f", *v)
}

func secondsOrDash(v *float64) string {
	if v == nil {
		return "–"
	}
	return time.Duration(*v * float64(time.Second)).Round(time.Second).String()
}

func fracOrDash(n, of int) string {
	if of == 0 {
		return "–"
	}
	return fmt.Sprintf("%d/%d (%.2f)", n, of, float64(n)/float64(of))
}

func seedsString(s []int64) string {
	if len(s) == 0 {
		return "none"
	}
	if len(s) > 2 && s[len(s)-1]-s[0] == int64(len(s)-1) && slices.IsSorted(s) {
		return fmt.Sprintf("%d..%d", s[0], s[len(s)-1])
	}
	parts := make([]string, len(s))
	for i, v := range s {
		parts[i] = strconv.FormatInt(v, 10)
	}
	return strings.Join(parts, ",")
}

// TestScoreCorpusExplanation: the top explanation counts when it names the
// injected value, alone or with others, and only the top one counts.
func TestScoreCorpusExplanation(t *testing.T) {
	start := simulate.DefaultStart
	onset := start.Add(4 * time.Hour)
	truth := simulate.Truth{Service: "edge-router", MessageContains: "function invocation failed", Onset: onset,
		Field: correlate.FieldProvider, Value: "aws", ExpectPage: true}
	aws := correlate.Condition{Field: correlate.FieldProvider, Value: "aws"}
	fn := correlate.Condition{Field: correlate.FieldPath, Value: "/fn/*", Prefix: true}
	v2 := correlate.Condition{Field: correlate.FieldVersion, Value: "2.0"}
	cases := []struct {
		name string
		ex   [][]correlate.Condition
		want bool
	}{
		{"the conjunction", [][]correlate.Condition{{aws, fn}}, true},
		{"the value alone", [][]correlate.Condition{{aws}}, true},
		{"another value first", [][]correlate.Condition{{v2}, {aws, fn}}, false},
		{"no explanation", nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &correlate.Finding{Signature: "function invocation failed: fn-<*>", Headline: "x"}
			for _, conds := range c.ex {
				f.Scope.Explanations = append(f.Scope.Explanations, correlate.Explanation{Conditions: conds})
			}
			msgs := []backtestMessage{{At: onset.Add(3 * time.Minute), Channel: string(escalate.ChannelPagerDuty), Action: escalate.Trigger,
				Service: "edge-router", queued: &escalate.Incident{Finding: f}}}
			r := scoreCorpusRun(truth, &backtestReport{Messages: msgs}, start)
			if r.ExplainTop1 == nil || *r.ExplainTop1 != c.want {
				t.Fatalf("explanation top-1 = %v, want %t", r.ExplainTop1, c.want)
			}
		})
	}
}

// TestScoreCorpusRun: which triggers count as the detection and which as
// false pages, and what the detection is scored on.
func TestScoreCorpusRun(t *testing.T) {
	start := simulate.DefaultStart
	onset := start.Add(4 * time.Hour)
	truth := simulate.Truth{Service: "edge-router", MessageContains: "function invocation failed", Onset: onset,
		SuspectDeployID: "dep-bad", Field: correlate.FieldProvider, Value: "aws", ExpectPage: true}
	finding := func(sig, suspect string, conc ...string) *escalate.Incident {
		f := &correlate.Finding{Signature: sig, Headline: sig}
		if suspect != "" {
			f.SuspectedDeploys = []correlate.Suspect{{ID: suspect}}
		}
		for _, c := range conc {
			k, v, _ := strings.Cut(c, "=")
			f.Scope.Concentration = append(f.Scope.Concentration, correlate.Concentration{Field: k, Value: v})
		}
		return &escalate.Incident{Finding: f}
	}
	page := func(at time.Time, svc string, in *escalate.Incident) backtestMessage {
		return backtestMessage{At: at, Channel: string(escalate.ChannelPagerDuty), Action: escalate.Trigger, Service: svc, queued: in}
	}
	ours := finding("function invocation failed: fn-<*>", "dep-bad", "service.version=2.0", "cloud.provider=aws")
	type scoreCase struct {
		name                 string
		truth                simulate.Truth
		msgs                 []backtestMessage
		detected             bool
		delay                time.Duration
		attribution, top1    bool
		top2, top1NoVersion  bool
		falsePages, truthPgs int
	}
	cases := []scoreCase{
		{"detected with a background page", truth, []backtestMessage{
			page(onset.Add(-time.Hour), "api", finding("db timeout <*>", "")),
			page(onset.Add(3*time.Minute), "edge-router", ours),
		}, true, 3 * time.Minute, true, false, true, true, 1, 1},
		{"the same class before the onset is false", truth, []backtestMessage{
			page(onset.Add(-time.Minute), "edge-router", ours),
		}, false, 0, false, false, false, false, 1, 0},
		{"another service's page is not the detection", truth, []backtestMessage{
			page(onset.Add(time.Minute), "api", ours),
		}, false, 0, false, false, false, false, 1, 0},
		{"wrong suspect", truth, []backtestMessage{
			page(onset.Add(5*time.Minute), "edge-router", finding("function invocation failed", "dep-harmless", "cloud.provider=aws")),
		}, true, 5 * time.Minute, false, true, true, true, 0, 1},
		{"a page for a shape that must not page is false", simulate.Truth{Service: "edge-router", MessageContains: "certificate verify failed",
			Onset: onset}, []backtestMessage{
			page(onset.Add(time.Minute), "edge-router", finding("certificate verify failed for <*>", "")),
		}, false, 0, false, false, false, false, 1, 0},
	}
	late := truth
	late.FirstError = onset.Add(4 * time.Minute)
	cases = append(cases, scoreCase{"a slow shape: delay from the onset and from the first error", late, []backtestMessage{
		page(onset.Add(7*time.Minute), "edge-router", ours),
	}, true, 7 * time.Minute, true, false, true, true, 0, 1})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := scoreCorpusRun(c.truth, &backtestReport{Messages: c.msgs}, start)
			if r.Detected != c.detected || len(r.FalsePages) != c.falsePages || r.TruthPages != c.truthPgs {
				t.Fatalf("detected %t, %d false, %d truth pages; want %t, %d, %d", r.Detected, len(r.FalsePages), r.TruthPages,
					c.detected, c.falsePages, c.truthPgs)
			}
			if !c.detected {
				return
			}
			if got := time.Duration(*r.DelaySeconds * float64(time.Second)); got != c.delay {
				t.Errorf("delay %s, want %s", got, c.delay)
			}
			switch {
			case c.truth.FirstError.IsZero() && r.FirstErrorDelaySeconds != nil:
				t.Errorf("delay from the first error %g s without a first error in the truth", *r.FirstErrorDelaySeconds)
			case !c.truth.FirstError.IsZero() && (r.FirstErrorDelaySeconds == nil || *r.FirstErrorDelaySeconds != (c.delay-c.truth.FirstError.Sub(onset)).Seconds()):
				t.Errorf("delay from the first error %v, want %s", r.FirstErrorDelaySeconds, c.delay-c.truth.FirstError.Sub(onset))
			}
			if *r.AttributionOK != c.attribution || *r.ScopeTop1 != c.top1 || *r.ScopeTop2 != c.top2 || *r.ScopeTop1Dim != c.top1NoVersion {
				t.Errorf("attribution %t, scope top1 %t top2 %t top1 w/o version %t; want %t, %t, %t, %t", *r.AttributionOK,
					*r.ScopeTop1, *r.ScopeTop2, *r.ScopeTop1Dim, c.attribution, c.top1, c.top2, c.top1NoVersion)
			}
		})
	}
}

func TestScoreTickets(t *testing.T) {
	truth := simulate.Truth{Service: "edge-router", MessageContains: "function invocation failed", IncidentTickets: []int64{1, 2, 3, 4}}
	about := &correlate.Finding{Signature: "function invocation failed: <*>", Tickets: []correlate.TicketRef{{ID: 1}, {ID: 2}, {ID: 9}}}
	reopened := &correlate.Finding{Signature: "function invocation failed: <*>", Tickets: []correlate.TicketRef{{ID: 2}, {ID: 3}}}
	other := &correlate.Finding{Signature: "no healthy upstream", Tickets: []correlate.TicketRef{{ID: 4}, {ID: 8}}}
	rep := &backtestReport{Incidents: []backtestIncident{
		{Service: "edge-router", finding: about},
		{Service: "edge-router", finding: reopened},
		{Service: "edge-router", finding: other},
		{Service: "api", finding: &correlate.Finding{Signature: "function invocation failed", Tickets: []correlate.TicketRef{{ID: 4}}}},
	}}
	related, correct, labelled := scoreTickets(truth, rep)
	// 1, 2, 9 and 3: the reopened incident's 2 counts once; other
	// signatures and services are not the incident's.
	if related != 4 || correct != 3 || labelled != 4 {
		t.Errorf("scoreTickets = %d related, %d correct, %d labelled; want 4, 3, 4", related, correct, labelled)
	}
	if r, c, l := scoreTickets(simulate.Truth{Shape: simulate.ShapeQuiet}, rep); r != 0 || c != 0 || l != 0 {
		t.Errorf("a quiet truth scores %d, %d, %d; want nothing", r, c, l)
	}
}
