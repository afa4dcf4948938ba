package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/changepoint"
	"github.com/culprithq/culprit/correlate/template"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/simulate"
	"github.com/klauspost/compress/gzip"
)

// The baseline comparison (scripts/bench/run-ruptures.sh) needs the error
// series culprit sees, with their ground truth, as plain CSV that another
// tool can read. The export lives here, behind CULPRIT_EXPORT_DIR, because
// it drives the same simulator and the same `culprit correlate` the
// scenario tests do, and a test file adds nothing to the binary.
//
//	CULPRIT_EXPORT_DIR=$PWD/.bench/series \
//	CULPRIT_EXPORT_SHAPES=new_error_provider,error_increase,slow_ramp,region_outage \
//	CULPRIT_EXPORT_SEEDS=1,2,3,4,5 CULPRIT_EXPORT_ROLLBACK=5h \
//	  go test -count=1 -run TestExportBaselineSeries ./cmd/culprit/
//
// For every shape and seed it writes NAME.csv (timestamp,value,requests:
// the truth service's errors per minute whose message contains the truth's
// MessageContains, and the service's requests in that minute) and NAME.json
// (the truth as change-point indices, the correlator's segmentation stage
// and the whole correlator on the same series, and what `culprit correlate`
// reports for the run).

// baselineStep is the bucket width of the exported series, the correlator's.
const baselineStep = time.Minute

// baselineRun is NAME.json. Indices are 0-based minutes from Start; a change
// point is the index of the first bucket of the new segment.
type baselineRun struct {
	Name            string    `json:"name"`
	Shape           string    `json:"shape"`
	Seed            int64     `json:"seed"`
	Service         string    `json:"service"`
	MessageContains string    `json:"message_contains"`
	Start           time.Time `json:"start"`
	StepSeconds     int       `json:"step_seconds"`
	N               int       `json:"n"`
	InjectedErrors  int       `json:"injected_errors"`
	OnsetIndex      int       `json:"onset_index"`
	// RecoveryIndex is the first bucket after the last injected error can
	// occur (the recovery time rounded up), nil when the run ends first.
	RecoveryIndex *int  `json:"recovery_index"`
	TruthCPs      []int `json:"truth_cps"`
	// PELTPoisson is the correlator's segmentation stage alone: PELT with
	// the Poisson cost against the service's requests, penalty 2·log n, at
	// full resolution. It only proposes; the correlator keeps an episode
	// only when the negative-binomial test says it is real.
	PELTPoisson []int `json:"culprit_pelt_poisson"`
	// MeanShift is what `culprit changepoints` prints for NAME.csv,
	// recorded here so a missing binary cannot silently change the
	// comparison.
	MeanShift []int `json:"culprit_meanshift"`
	// CorrelatorSeries is correlate.Run on NAME.csv and nothing else (see
	// seriesSource): the finding's onset and, if it recovered, its recovery,
	// empty when there is no finding. Unlike Correlate it sees no other
	// message, host or deploy, so it times and scores the correlator on
	// exactly what ruptures gets.
	CorrelatorSeries []int              `json:"culprit_correlator_series"`
	Correlate        baselineCorrelated `json:"correlate"`
}

// baselineCorrelated is the finding of `culprit correlate` that matches the
// truth (same service, a signature or example containing MessageContains).
type baselineCorrelated struct {
	Found         bool    `json:"found"`
	Kind          string  `json:"kind,omitempty"`
	Severity      string  `json:"severity,omitempty"`
	Signature     string  `json:"signature,omitempty"`
	OnsetIndex    *int    `json:"onset_index"`
	RecoveryIndex *int    `json:"recovery_index"`
	DetectedIndex *int    `json:"detected_index"`
	Findings      int     `json:"findings"`
	Seconds       float64 `json:"seconds"`
}

func TestExportBaselineSeries(t *testing.T) {
	dir := os.Getenv("CULPRIT_EXPORT_DIR")
	if dir == "" {
		t.Skip("set CULPRIT_EXPORT_DIR to export the baseline series (see scripts/bench/run-ruptures.sh)")
	}
	shapes := splitEnv(os.Getenv("CULPRIT_EXPORT_SHAPES"), "new_error_provider,error_increase,slow_ramp,region_outage")
	seeds := splitEnv(os.Getenv("CULPRIT_EXPORT_SEEDS"), "1,2,3,4,5")
	rollback := 5 * time.Hour
	if v := os.Getenv("CULPRIT_EXPORT_ROLLBACK"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("CULPRIT_EXPORT_ROLLBACK: %v", err)
		}
		rollback = d
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, shape := range shapes {
		for _, s := range seeds {
			seed, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				t.Fatalf("CULPRIT_EXPORT_SEEDS: %q is not a seed", s)
			}
			name := fmt.Sprintf("%s-%d", shape, seed)
			t.Run(name, func(t *testing.T) {
				cfg := simulate.Config{Seed: seed, Shape: simulate.Shape(shape)}
				if shape == string(simulate.ShapeFriday) || shape == string(simulate.ShapeIncrease) ||
					shape == string(simulate.ShapeCanary) || shape == string(simulate.ShapeSlowRamp) {
					cfg.Rollback = rollback
				}
				out, err := exportBaselineRun(t.Context(), t.TempDir(), dir, name, cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("%s: %s, truth %v, meanshift %v, pelt-poisson %v, correlator on the series %v, correlate found=%v onset=%v recovery=%v (%.1fs)",
					name, out.Service, out.TruthCPs, out.MeanShift, out.PELTPoisson, out.CorrelatorSeries, out.Correlate.Found,
					deref(out.Correlate.OnsetIndex), deref(out.Correlate.RecoveryIndex), out.Correlate.Seconds)
			})
		}
	}
}

func splitEnv(v, def string) []string {
	if v == "" {
		v = def
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func deref(p *int) string {
	if p == nil {
		return "-"
	}
	return strconv.Itoa(*p)
}

// errorDoc is what the export keeps of an error document: the truth is only
// known once generation ends, so every error is kept (a few percent of the
// documents) and filtered afterwards.
type errorDoc struct {
	service string
	minute  int
	msg     string
}

// exportBaselineRun generates one run into work (logs, deploys, tickets),
// writes NAME.csv and NAME.json into dir, and runs `culprit correlate` on
// the logs.
func exportBaselineRun(ctx context.Context, work, dir, name string, cfg simulate.Config) (*baselineRun, error) {
	logs := filepath.Join(work, simulate.LogsFile)
	f, err := os.Create(logs)
	if err != nil {
		return nil, fmt.Errorf("create logs: %w", err)
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	zw, err := gzip.NewWriterLevel(bw, gzip.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	start := cfg.Start
	if start.IsZero() {
		start = simulate.DefaultStart
	}
	requests := map[string]map[int]float64{}
	var errs []errorDoc
	buf := make([]byte, 0, 1<<16)
	sim, err := simulate.Generate(ctx, cfg, func(d *simulate.Doc) error {
		m := int(d.Time.Sub(start) / baselineStep)
		if requests[d.Service] == nil {
			requests[d.Service] = map[int]float64{}
		}
		requests[d.Service][m]++
		if d.Error != "" {
			errs = append(errs, errorDoc{d.Service, m, d.Error})
		}
		buf = append(d.AppendJSON(buf), '\n')
		if len(buf) >= 1<<16-4096 {
			_, err := zw.Write(buf)
			buf = buf[:0]
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generate %s: %w", name, err)
	}
	if _, err := zw.Write(buf); err != nil {
		return nil, fmt.Errorf("write logs: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("close logs: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return nil, fmt.Errorf("flush logs: %w", err)
	}
	if err := simulate.WriteSidecars(work, sim); err != nil {
		return nil, err
	}
	tr := sim.Truth
	if tr.Service == "" || tr.MessageContains == "" || tr.Onset.IsZero() {
		return nil, fmt.Errorf("%s: shape %s has no error series to export", name, tr.Shape)
	}
	n := int(sim.Config.Duration / baselineStep)
	counts := make([]float64, n)
	exposure := make([]float64, n)
	for m, c := range requests[tr.Service] {
		if m >= 0 && m < n {
			exposure[m] = c
		}
	}
	for _, e := range errs {
		if e.service == tr.Service && e.minute >= 0 && e.minute < n && strings.Contains(e.msg, tr.MessageContains) {
			counts[e.minute]++
		}
	}
	out := &baselineRun{
		Name: name, Shape: string(tr.Shape), Seed: cfg.Seed, Service: tr.Service,
		MessageContains: tr.MessageContains, Start: start, StepSeconds: int(baselineStep / time.Second),
		N: n, InjectedErrors: tr.InjectedErrors,
		OnsetIndex: int(tr.Onset.Sub(start) / baselineStep),
	}
	out.TruthCPs = []int{out.OnsetIndex}
	if tr.Recovered != nil {
		r := int(math.Ceil(float64(tr.Recovered.Sub(start)) / float64(baselineStep)))
		if r < n {
			out.RecoveryIndex = &r
			out.TruthCPs = append(out.TruthCPs, r)
		}
	}
	out.PELTPoisson = changepoint.PELT(changepoint.NewPoisson(counts, exposure), n, 1, 2*math.Log(float64(n)))
	out.MeanShift = changepoint.MeanShift(counts)
	src := newSeriesSource(tr.Service, tr.MessageContains, start, counts, exposure)
	if out.CorrelatorSeries, err = src.correlate(ctx, rules.Default().Correlate); err != nil {
		return nil, fmt.Errorf("correlate %s series: %w", name, err)
	}

	var csvBuf bytes.Buffer
	cw := csv.NewWriter(&csvBuf)
	_ = cw.Write([]string{"timestamp", "value", "requests"})
	for i := range n {
		_ = cw.Write([]string{
			start.Add(time.Duration(i) * baselineStep).Format(time.RFC3339),
			strconv.FormatFloat(counts[i], 'f', -1, 64),
			strconv.FormatFloat(exposure[i], 'f', -1, 64),
		})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return nil, fmt.Errorf("write csv: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".csv"), csvBuf.Bytes(), 0o644); err != nil {
		return nil, fmt.Errorf("write csv: %w", err)
	}

	began := time.Now()
	var stdout bytes.Buffer
	args := []string{"correlate", "--logs", logs, "--deploys", filepath.Join(work, simulate.DeploysFile),
		"--tickets", filepath.Join(work, simulate.TicketsFile), "--format", "json"}
	if err := run(ctx, args, func(string) string { return "" }, nil, &stdout, io.Discard); err != nil {
		return nil, fmt.Errorf("correlate %s: %w", name, err)
	}
	out.Correlate.Seconds = time.Since(began).Seconds()
	var res correlate.Result
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		return nil, fmt.Errorf("decode correlate output: %w", err)
	}
	out.Correlate.Findings = len(res.Findings)
	index := func(t time.Time) *int {
		i := int(t.Sub(start) / baselineStep)
		return &i
	}
	for _, fd := range res.Findings {
		if fd.Service != tr.Service || !(strings.Contains(fd.Signature, tr.MessageContains) ||
			slices.ContainsFunc(fd.Examples, func(s string) bool { return strings.Contains(s, tr.MessageContains) })) {
			continue
		}
		c := &out.Correlate
		c.Found, c.Kind, c.Severity, c.Signature = true, string(fd.Kind), string(fd.Severity), fd.Signature
		c.OnsetIndex, c.DetectedIndex = index(fd.Onset), index(fd.Detected)
		if fd.Recovered != nil {
			c.RecoveryIndex = index(*fd.Recovered)
		}
		break
	}

	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s.json: %w", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), append(b, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write %s.json: %w", name, err)
	}
	return out, nil
}

// seriesSource serves one exported series as the whole of a window's
// traffic: one service, one message whose counts are the series and whose
// service requests are its exposure. Its Scope is empty, since the series
// carries no host, version or customer: the correlator then detects, tests
// and dates the episode exactly as in production but attributes nothing,
// which is what makes it comparable with ruptures on the same numbers.
type seriesSource struct {
	tr correlate.Traffic
}

var _ correlate.Source = (*seriesSource)(nil)

// newSeriesSource builds the traffic once, so that a benchmark times
// correlate.Run and not the copying. message is masked as every real source
// masks it; counts and requests must have the same length (the window's).
func newSeriesSource(service, message string, start time.Time, counts, requests []float64) *seriesSource {
	n := min(len(counts), len(requests))
	w := correlate.Window{From: start, To: start.Add(time.Duration(n) * baselineStep), Step: baselineStep}
	counts, requests = counts[:n], requests[:n]
	return &seriesSource{tr: correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{{
		Service:  service,
		Requests: requests,
		Errors:   counts,
		Messages: []correlate.MessageCounts{{Message: template.Mask(message), Counts: correlate.NewCounts(counts), Examples: []string{message}}},
	}}}}
}

// Traffic returns the series for its own window and refuses any other: a
// different window would silently shift every index it is scored by.
func (s *seriesSource) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sw := s.tr.Window
	if !w.From.Equal(sw.From) || !w.To.Equal(sw.To) || w.Step != sw.Step {
		return nil, fmt.Errorf("series covers %s to %s by %s, not the window asked for",
			sw.From.Format(time.RFC3339), sw.To.Format(time.RFC3339), sw.Step)
	}
	tr := s.tr
	return &tr, nil
}

// Scope is empty: the series has no dimensions to break down.
func (s *seriesSource) Scope(ctx context.Context, _ correlate.ScopeQuery) (*correlate.Scope, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &correlate.Scope{}, nil
}

// correlate runs the correlator over the series with no deploys and no
// tickets and returns its change points as baselineCorrelated dates them:
// the finding's onset and, when it recovered, its recovery, as indices from
// the series' start. With one series there is at most one log finding;
// none gives an empty, non-nil slice.
func (s *seriesSource) correlate(ctx context.Context, cfg rules.Correlate) ([]int, error) {
	w := s.tr.Window
	res, err := correlate.Run(ctx, s, correlate.Input{Window: w}, cfg)
	if err != nil {
		return nil, err
	}
	cps := []int{}
	for _, fd := range res.Findings {
		if fd.Kind == correlate.KindTicketSurge {
			continue
		}
		cps = append(cps, int(fd.Onset.Sub(w.From)/w.Step))
		if fd.Recovered != nil {
			cps = append(cps, int(fd.Recovered.Sub(w.From)/w.Step))
		}
		break
	}
	return cps, nil
}

// BenchmarkBaselines times culprit's detectors on the exported series, one
// op being every series of CULPRIT_EXPORT_DIR, so that ns/op compares
// directly with the summed per-series times ruptures_bench.py reports.
// CSV parsing is excluded on both sides.
func BenchmarkBaselines(b *testing.B) {
	dir := os.Getenv("CULPRIT_EXPORT_DIR")
	if dir == "" {
		b.Skip("set CULPRIT_EXPORT_DIR to a directory written by TestExportBaselineSeries")
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.csv"))
	if err != nil || len(paths) == 0 {
		b.Skipf("no series in %s", dir)
	}
	var counts, exposures [][]float64
	var metas []baselineRun
	for _, p := range paths {
		c, e, err := readBaselineCSV(p)
		if err != nil {
			b.Fatal(err)
		}
		counts, exposures = append(counts, c), append(exposures, e)
		var m baselineRun
		if err := readBaselineJSON(strings.TrimSuffix(p, ".csv")+".json", &m); err != nil {
			b.Fatal(err)
		}
		metas = append(metas, m)
	}
	b.Run("MeanShift", func(b *testing.B) {
		for b.Loop() {
			for _, c := range counts {
				changepoint.MeanShift(c)
			}
		}
		b.ReportMetric(float64(len(counts)), "series")
	})
	b.Run("PELTPoisson", func(b *testing.B) {
		for b.Loop() {
			for i, c := range counts {
				n := len(c)
				changepoint.PELT(changepoint.NewPoisson(c, exposures[i]), n, 1, 2*math.Log(float64(n)))
			}
		}
		b.ReportMetric(float64(len(counts)), "series")
	})
	b.Run("CorrelatorSeries", func(b *testing.B) {
		cfg := rules.Default().Correlate
		srcs := make([]*seriesSource, len(counts))
		for i, m := range metas {
			srcs[i] = newSeriesSource(m.Service, m.MessageContains, m.Start, counts[i], exposures[i])
			// The timed runs must be the scored ones: an export from an
			// older build, or a source that drifted from the export's,
			// would time something the table does not score.
			got, err := srcs[i].correlate(b.Context(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if m.CorrelatorSeries == nil {
				b.Fatalf("%s: no culprit_correlator_series; export the series again", m.Name)
			}
			if !slices.Equal(got, m.CorrelatorSeries) {
				b.Fatalf("%s: correlator found %v, the export recorded %v", m.Name, got, m.CorrelatorSeries)
			}
		}
		for b.Loop() {
			for _, src := range srcs {
				if _, err := src.correlate(b.Context(), cfg); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(len(srcs)), "series")
	})
}

// readBaselineJSON reads NAME.json.
func readBaselineJSON(path string, out *baselineRun) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read series metadata: %w", err)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decode %s: %w", path, err)
	}
	return nil
}

// readBaselineCSV reads the value and requests columns of NAME.csv.
func readBaselineCSV(path string) (values, requests []float64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open series: %w", err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	for i, r := range recs {
		if i == 0 {
			continue
		}
		if len(r) < 3 {
			return nil, nil, fmt.Errorf("%s:%d: want 3 columns", path, i+1)
		}
		v, err1 := strconv.ParseFloat(r[1], 64)
		q, err2 := strconv.ParseFloat(r[2], 64)
		if err1 != nil || err2 != nil {
			return nil, nil, fmt.Errorf("%s:%d: not a number", path, i+1)
		}
		values, requests = append(values, v), append(requests, q)
	}
	return values, requests, nil
}

// TestSeriesSourceCorrelate checks the change points the export records
// for the correlator: nothing on a flat series, the onset and recovery of
// a step, and the onset alone when the step lasts to the end.
func TestSeriesSourceCorrelate(t *testing.T) {
	const n = 360
	cases := []struct {
		name     string
		seed     uint64
		factor   float64
		from, to int
		want     []int
	}{
		{"flat", 1, 1, 0, 0, []int{}},
		{"step that recovers", 2, 15, 240, 300, []int{240, 300}},
		{"step to the end", 3, 15, 240, n, []int{240}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			counts, requests := stepSeries(c.seed, n, 0.002, c.factor, c.from, c.to)
			src := newSeriesSource("api", "upstream timeout after 30s", baselineTestStart, counts, requests)
			got, err := src.correlate(t.Context(), rules.Default().Correlate)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil || !slices.Equal(got, c.want) {
				t.Errorf("change points %#v, want %#v", got, c.want)
			}
		})
	}
}

// TestSeriesSourceRefuses checks that the source answers only for its own
// window and honours cancellation, rather than serving shifted indices.
func TestSeriesSourceRefuses(t *testing.T) {
	counts, requests := stepSeries(1, 60, 0.002, 1, 0, 0)
	src := newSeriesSource("api", "upstream timeout", baselineTestStart, counts, requests)
	own := src.tr.Window
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	cases := []struct {
		name    string
		ctx     context.Context
		w       correlate.Window
		wantErr string
	}{
		{"own window", t.Context(), own, ""},
		{"shifted window", t.Context(), correlate.Window{From: own.From.Add(time.Minute), To: own.To.Add(time.Minute), Step: own.Step}, "not the window asked for"},
		{"other step", t.Context(), correlate.Window{From: own.From, To: own.To, Step: 5 * time.Minute}, "not the window asked for"},
		{"cancelled", cancelled, own, context.Canceled.Error()},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr, err := src.Traffic(c.ctx, c.w)
			if c.wantErr == "" {
				if err != nil || tr == nil || len(tr.Services) != 1 || tr.Window.Len() != 60 {
					t.Fatalf("Traffic = %+v, %v; want the one 60-bucket series", tr, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("Traffic error %v, want one containing %q", err, c.wantErr)
			}
		})
	}
}

// baselineTestStart is an arbitrary minute-aligned start for test series.
var baselineTestStart = time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)

// stepSeries is n minutes of 1000 requests with Poisson errors around
// rate per request, times factor in [from, to), from a fixed seed.
func stepSeries(seed uint64, n int, rate, factor float64, from, to int) (counts, requests []float64) {
	r := rand.New(rand.NewPCG(seed, seed))
	counts, requests = make([]float64, n), make([]float64, n)
	for i := range n {
		requests[i] = 1000
		mu := rate * requests[i]
		if i >= from && i < to {
			mu *= factor
		}
		// Poisson by inversion, exact enough for the small means used here.
		k, p, u := 0.0, math.Exp(-mu), r.Float64()
		for c := p; u > c; c += p {
			k++
			p *= mu / k
		}
		counts[i] = k
	}
	return counts, requests
}
