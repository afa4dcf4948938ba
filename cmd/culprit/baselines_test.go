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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/correlate/changepoint"
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
// on the same series, and what `culprit correlate` reports for the run).

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
	MeanShift []int              `json:"culprit_meanshift"`
	Correlate baselineCorrelated `json:"correlate"`
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
				t.Logf("%s: %s, truth %v, meanshift %v, pelt-poisson %v, correlate found=%v onset=%v recovery=%v (%.1fs)",
					name, out.Service, out.TruthCPs, out.MeanShift, out.PELTPoisson, out.Correlate.Found,
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
	for _, p := range paths {
		c, e, err := readBaselineCSV(p)
		if err != nil {
			b.Fatal(err)
		}
		counts, exposures = append(counts, c), append(exposures, e)
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
