package chart

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gonum.org/v1/plot/vg"

	"github.com/culprithq/culprit/correlate"
)

type rateArgs struct {
	f       *correlate.Finding
	deploys []correlate.Deploy
}

func renderRate(t *testing.T, format Format, mutate func(a *rateArgs)) []byte {
	t.Helper()
	a := &rateArgs{f: fixtureFinding(), deploys: slices.Clone(fixDeploys)}
	if mutate != nil {
		mutate(a)
	}
	var buf bytes.Buffer
	if err := Rate(&buf, a.f, a.deploys, format, Size{}); err != nil {
		t.Fatalf("Rate: %v", err)
	}
	return buf.Bytes()
}

func TestRateGolden(t *testing.T) {
	got := renderRate(t, FormatPNG, nil)
	img, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 800 || b.Dy() != 300 {
		t.Errorf("default PNG is %dx%d px, want 800x300", b.Dx(), b.Dy())
	}
	checkGolden(t, "rate", got)
}

// The golden comparison must be able to fail: the same finding drawn
// without its deploys differs from the golden by more than the tolerance.
func TestGoldenCatchesMissingDeploy(t *testing.T) {
	if *update {
		t.Skip("goldens are being rewritten")
	}
	want, err := os.ReadFile(filepath.Join("testdata", "rate.png"))
	if err != nil {
		t.Fatal(err)
	}
	got := renderRate(t, FormatPNG, func(a *rateArgs) {
		a.deploys = nil
		a.f.SuspectedDeploys = nil
	})
	frac, err := comparePNG(want, got)
	if err != nil {
		t.Fatal(err)
	}
	if frac <= maxDiffFraction {
		t.Errorf("chart without deploys differs from the golden by only %.3f%%, within the %.2f%% tolerance", 100*frac, 100*maxDiffFraction)
	}
	t.Logf("without deploys: %.2f%% of pixels differ", 100*frac)
}

func TestRateSVG(t *testing.T) {
	doc := parseSVG(t, renderRate(t, FormatSVG, nil))
	for _, want := range []string{
		"onset", "recovered", "edge-router 3.8.0", "billing-api 2.14.0",
		"time (UTC)", "errors / min", "15:00", "15:30", "16:30",
		"errors / min", "expected, 99% range", "suspect deploy", "other deploy",
	} {
		if !doc.has(want) {
			t.Errorf("svg has no text %q; texts: %q", want, doc.texts)
		}
	}
	if !doc.hasPrefix("edge-router: function invocation failed") {
		t.Errorf("svg has no title; texts: %q", doc.texts)
	}
	// Spans, band, two lines, grid, axes, ticks, label boxes: dozens of
	// paths, but not one per pixel.
	if doc.paths < 30 || doc.paths > 1000 {
		t.Errorf("svg has %d paths, want 30..1000", doc.paths)
	}
}

func TestRateAnnotations(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(a *rateArgs)
		present []string
		absent  []string
	}{
		{
			name:    "deploy before the window is not drawn",
			present: []string{"edge-router 3.8.0", "billing-api 2.14.0"},
			absent:  []string{"search 9.9.9"},
		},
		{
			name: "deploy after the window is not drawn",
			mutate: func(a *rateArgs) {
				a.deploys = append(a.deploys, correlate.Deploy{ID: "dep-late", Service: "late", Version: "1.0", StartedAt: at(90, 0), FinishedAt: at(95, 0)})
			},
			absent: []string{"late 1.0"},
		},
		{
			name: "deploy started before the window and finishing in it is drawn",
			mutate: func(a *rateArgs) {
				a.deploys = append(a.deploys, correlate.Deploy{ID: "dep-long", Service: "long", Version: "7", StartedAt: at(-20, 0), FinishedAt: at(5, 0)})
			},
			present: []string{"long 7"},
		},
		{
			name: "unfinished deploy without hosts is drawn",
			mutate: func(a *rateArgs) {
				a.deploys = append(a.deploys, correlate.Deploy{ID: "dep-open", Service: "gateway", Version: "0.9", StartedAt: at(75, 0)})
			},
			present: []string{"gateway 0.9"},
		},
		{
			name:    "not recovered has no recovery label",
			mutate:  func(a *rateArgs) { a.f.Recovered = nil },
			present: []string{"onset"},
			absent:  []string{"recovered"},
		},
		{
			name: "a recovery the finding ties to a rollback names it",
			mutate: func(a *rateArgs) {
				a.f.Recovery = &correlate.Recovery{DeployID: "dep-e5fb72", Service: "edge-router", Version: "3.7.9", Rollback: true}
			},
			present: []string{"recovered: rollback dep-e5fb72"},
		},
		{
			name: "onset outside the window has no onset label",
			mutate: func(a *rateArgs) {
				a.f.Onset = at(-10, 0)
			},
			absent: []string{"onset"},
		},
		{
			name:    "suspect missing from deploys is drawn from the finding",
			mutate:  func(a *rateArgs) { a.deploys = nil },
			present: []string{"edge-router 3.8.0", "suspect deploy"},
			absent:  []string{"billing-api 2.14.0", "other deploy"},
		},
		{
			name: "no deploys and no suspect",
			mutate: func(a *rateArgs) {
				a.deploys = nil
				a.f.SuspectedDeploys = nil
			},
			present: []string{"onset", "recovered", "errors / min"},
			absent:  []string{"edge-router 3.8.0", "suspect deploy", "other deploy"},
		},
		{
			name: "crowded labels keep the essential ones",
			mutate: func(a *rateArgs) {
				for i := range 8 {
					a.deploys = append(a.deploys, correlate.Deploy{ID: fmt.Sprint("dep-", i), Service: fmt.Sprint("svc-", i), Version: "1.0", StartedAt: at(31, 0)})
				}
			},
			present: []string{"edge-router 3.8.0", "onset", "recovered", "billing-api 2.14.0", "svc-0 1.0"},
			absent:  []string{"svc-7 1.0"},
		},
		{
			name: "deploy without service or version is named by its id",
			mutate: func(a *rateArgs) {
				a.deploys = append(a.deploys, correlate.Deploy{ID: "dep-anon", StartedAt: at(50, 0)})
			},
			present: []string{"dep-anon"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := parseSVG(t, renderRate(t, FormatSVG, tc.mutate))
			for _, s := range tc.present {
				if !doc.has(s) {
					t.Errorf("no text %q; texts: %q", s, doc.texts)
				}
			}
			for _, s := range tc.absent {
				if doc.has(s) {
					t.Errorf("text %q is drawn; texts: %q", s, doc.texts)
				}
			}
		})
	}
}

func TestRateBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(a *rateArgs)
		format  Format
		size    Size
		wantErr string
	}{
		{name: "nil finding", mutate: func(a *rateArgs) { a.f = nil }, wantErr: "rate chart: nil finding"},
		{name: "no series", mutate: func(a *rateArgs) { a.f.Series = nil }, wantErr: "finding f-edge-1: no series to chart"},
		{name: "zero step", mutate: func(a *rateArgs) { a.f.Series.StepSec = 0 }, wantErr: "finding f-edge-1: series step is 0 seconds"},
		{name: "negative step", mutate: func(a *rateArgs) { a.f.Series.StepSec = -60 }, wantErr: "series step is -60 seconds, want 1 to 604800"},
		{name: "sub-second step", mutate: func(a *rateArgs) { a.f.Series.StepSec = 1e-10 }, wantErr: "series step is 1e-10 seconds"},
		{name: "step of a year", mutate: func(a *rateArgs) { a.f.Series.StepSec = 365 * 86400 }, wantErr: "series step is 3.1536e+07 seconds"},
		{name: "window of years", mutate: func(a *rateArgs) { a.f.Series.StepSec = 7 * 86400 }, wantErr: "finding f-edge-1: series spans 630 days, more than 400"},
		{name: "NaN step", mutate: func(a *rateArgs) { a.f.Series.StepSec = math.NaN() }, wantErr: "series step is NaN seconds"},
		{
			name:    "baseline shorter than errors",
			mutate:  func(a *rateArgs) { a.f.Series.Baseline = a.f.Series.Baseline[:80] },
			wantErr: "finding f-edge-1: series has 90 error buckets and 80 baseline buckets",
		},
		{
			name:    "requests longer than errors",
			mutate:  func(a *rateArgs) { a.f.Series.Requests = append(a.f.Series.Requests, 1) },
			wantErr: "finding f-edge-1: series has 90 error buckets and 91 request buckets",
		},
		{name: "NaN error count", mutate: func(a *rateArgs) { a.f.Series.Errors[7] = math.NaN() }, wantErr: "finding f-edge-1: error bucket 7 is NaN"},
		{name: "infinite baseline", mutate: func(a *rateArgs) { a.f.Series.Baseline[3] = math.Inf(1) }, wantErr: "finding f-edge-1: baseline bucket 3 is +Inf"},
		{name: "negative error count", mutate: func(a *rateArgs) { a.f.Series.Errors[0] = -1 }, wantErr: "error bucket 0 is -1"},
		{name: "unknown format", format: "gif", wantErr: `unknown chart format "gif"`},
		{name: "too small", size: Size{Width: 50, Height: 50}, wantErr: "chart size 50x50pt is outside"},
		{name: "too large", size: Size{Width: 100000, Height: 300}, wantErr: "chart size 100000x300pt is outside"},
		{name: "negative height", size: Size{Width: 600, Height: -1}, wantErr: "chart size 600x-1pt is outside"},
		{name: "NaN width", size: Size{Width: vgNaN(), Height: 300}, wantErr: "chart size NaNx300pt is outside"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := &rateArgs{f: fixtureFinding(), deploys: fixDeploys}
			if tc.mutate != nil {
				tc.mutate(a)
			}
			format := tc.format
			if format == "" {
				format = FormatPNG
			}
			var buf bytes.Buffer
			err := Rate(&buf, a.f, a.deploys, format, tc.size)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
}

func TestRateDrawsEmptySeries(t *testing.T) {
	for _, tc := range []struct {
		name    string
		series  *correlate.FindingChart
		message bool
	}{
		{name: "no buckets", series: &correlate.FindingChart{Start: fixStart, StepSec: 60}, message: true},
		{name: "all zeros", series: &correlate.FindingChart{Start: fixStart, StepSec: 60, Errors: make([]float64, 30), Baseline: make([]float64, 30)}},
		{name: "single bucket", series: &correlate.FindingChart{Start: fixStart, StepSec: 60, Errors: []float64{4}, Baseline: []float64{1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fixtureFinding()
			f.Series = tc.series
			var pngBuf, svgBuf bytes.Buffer
			if err := Rate(&pngBuf, f, fixDeploys, FormatPNG, Size{}); err != nil {
				t.Fatalf("png: %v", err)
			}
			if _, err := png.Decode(&pngBuf); err != nil {
				t.Fatalf("png does not decode: %v", err)
			}
			if err := Rate(&svgBuf, f, fixDeploys, FormatSVG, Size{}); err != nil {
				t.Fatalf("svg: %v", err)
			}
			doc := parseSVG(t, svgBuf.Bytes())
			if got := doc.has("no data in this window"); got != tc.message {
				t.Errorf("no-data message drawn = %v, want %v", got, tc.message)
			}
		})
	}
}

// A finding bucketed in 5 or ½ minutes is drawn per minute all the same.
func TestRatePerMinute(t *testing.T) {
	for _, tc := range []struct {
		name     string
		stepSec  float64
		errors   []float64
		baseline []float64
		want     []float64
		wantBase []float64
	}{
		{"1-minute buckets", 60, []float64{3, 0}, []float64{1, 1}, []float64{3, 0}, []float64{1, 1}},
		{"5-minute buckets", 300, []float64{50, 5}, []float64{5, 2.5}, []float64{10, 1}, []float64{1, 0.5}},
		{"30-second buckets", 30, []float64{4, 1}, []float64{0.5, 0.5}, []float64{8, 2}, []float64{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &correlate.Finding{ID: "f", Onset: fixStart.Add(time.Hour), Series: &correlate.FindingChart{
				Start: fixStart, StepSec: tc.stepSec, Errors: tc.errors, Baseline: tc.baseline,
			}}
			r := newRateSeries(f)
			if !slices.Equal(r.errors, tc.want) || !slices.Equal(r.expected, tc.wantBase) {
				t.Errorf("per minute errors %v expected %v, want %v and %v", r.errors, r.expected, tc.want, tc.wantBase)
			}
			if want := fixStart.Add(time.Duration(float64(len(tc.errors)) * tc.stepSec * float64(time.Second))); !r.to.Equal(want) {
				t.Errorf("window ends %v, want %v", r.to, want)
			}
			for i := range r.hi {
				if r.hi[i] < r.expected[i] || r.lo[i] > r.expected[i] {
					t.Errorf("bucket %d: range [%v, %v] does not contain the expectation %v", i, r.lo[i], r.hi[i], r.expected[i])
				}
			}
		})
	}
}

func TestDeploySpan(t *testing.T) {
	from, to := at(0, 0), at(90, 0)
	hosts := []correlate.HostRollout{{Name: "a", At: at(31, 0)}, {Name: "b", At: at(36, 0)}, {Name: "c", At: at(33, 0)}}
	for _, tc := range []struct {
		name             string
		d                correlate.Deploy
		ok               bool
		wantStart, wantE time.Time
	}{
		{"finished inside", correlate.Deploy{StartedAt: at(30, 0), FinishedAt: at(44, 0)}, true, at(30, 0), at(44, 0)},
		{"unfinished with hosts ends at the last host", correlate.Deploy{StartedAt: at(30, 0), Hosts: hosts}, true, at(30, 0), at(36, 0)},
		{"unfinished without hosts runs to the window end", correlate.Deploy{StartedAt: at(30, 0)}, true, at(30, 0), to},
		{"clipped at both ends", correlate.Deploy{StartedAt: at(-30, 0), FinishedAt: at(120, 0)}, true, from, to},
		{"finished before the window", correlate.Deploy{StartedAt: at(-30, 0), FinishedAt: at(-1, 0)}, false, time.Time{}, time.Time{}},
		{"ends exactly at the window start", correlate.Deploy{StartedAt: at(-30, 0), FinishedAt: from}, true, from, from},
		{"starts at the window end", correlate.Deploy{StartedAt: to, FinishedAt: at(95, 0)}, false, time.Time{}, time.Time{}},
		{"finish before start is instantaneous", correlate.Deploy{StartedAt: at(40, 0), FinishedAt: at(35, 0)}, true, at(40, 0), at(40, 0)},
		{"no start time", correlate.Deploy{FinishedAt: at(35, 0)}, false, time.Time{}, time.Time{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, e, ok := deploySpan(tc.d, from, to)
			if ok != tc.ok || !s.Equal(tc.wantStart) || !e.Equal(tc.wantE) {
				t.Errorf("deploySpan = %v, %v, %v; want %v, %v, %v", s.Format("15:04:05"), e.Format("15:04:05"), ok,
					tc.wantStart.Format("15:04:05"), tc.wantE.Format("15:04:05"), tc.ok)
			}
		})
	}
}

func TestTimeTicker(t *testing.T) {
	for _, tc := range []struct {
		name     string
		from, to time.Time
		step     float64
		first    string
	}{
		{"90 minutes", at(0, 0), at(90, 0), 900, "15:00"},
		{"20 minutes, odd start", at(3, 20), at(23, 20), 300, "15:05"},
		{"6 hours", at(0, 0), at(360, 0), 3600, "15:00"},
		{"3 days", at(0, 0), at(3*24*60, 0), 43200, "Nov 21 00:00"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tt := plotTimeTicks(tc.to.Sub(tc.from))
			ticks := tt.Ticks(unix(tc.from), unix(tc.to))
			if len(ticks) < 2 || len(ticks) > maxTimeTicks+1 {
				t.Fatalf("%d ticks, want 2..%d", len(ticks), maxTimeTicks+1)
			}
			if ticks[0].Label != tc.first {
				t.Errorf("first tick %q, want %q", ticks[0].Label, tc.first)
			}
			for i, tk := range ticks {
				if math.Mod(tk.Value, tc.step) != 0 {
					t.Errorf("tick %d at %v is not on a multiple of %vs", i, tk.Value, tc.step)
				}
				if i > 0 && tk.Value-ticks[i-1].Value != tc.step {
					t.Errorf("ticks %d and %d are %vs apart, want %v", i-1, i, tk.Value-ticks[i-1].Value, tc.step)
				}
			}
		})
	}
}

func TestNiceTicks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		lo, hi float64
		want   []string
	}{
		{"errors up to 28", 0, 28.6, []string{"0", "5", "10", "15", "20", "25"}},
		{"empty series", 0, 1 / headroom, []string{"0.00", "0.25", "0.50", "0.75", "1.00", "1.25"}},
		{"thousands", 0, 14000, []string{"0", "2500", "5000", "7500", "10000", "12500"}},
		{"small", 0, 0.06, []string{"0.00", "0.01", "0.02", "0.03", "0.04", "0.05", "0.06"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, tk := range (niceTicks{}).Ticks(tc.lo, tc.hi) {
				got = append(got, tk.Label)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("labels %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRateDeterministic(t *testing.T) {
	for _, format := range []Format{FormatPNG, FormatSVG} {
		t.Run(string(format), func(t *testing.T) {
			a, b := renderRate(t, format, nil), renderRate(t, format, nil)
			if !bytes.Equal(a, b) {
				t.Errorf("two renderings of the same finding differ")
			}
		})
	}
}

type failWriter struct{}

var errDiskFull = errors.New("disk full")

func (failWriter) Write([]byte) (int, error) { return 0, errDiskFull }

func TestRateWriteError(t *testing.T) {
	for _, format := range []Format{FormatPNG, FormatSVG} {
		t.Run(string(format), func(t *testing.T) {
			err := Rate(failWriter{}, fixtureFinding(), fixDeploys, format, Size{})
			if !errors.Is(err, errDiskFull) || !strings.Contains(err.Error(), "write "+string(format)+" chart") {
				t.Errorf("err = %v, want a wrapped %v", err, errDiskFull)
			}
		})
	}
}

func BenchmarkRatePNG(b *testing.B) {
	f := fixtureFinding()
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := Rate(&buf, f, fixDeploys, FormatPNG, Size{}); err != nil {
			b.Fatal(err)
		}
	}
}

func vgNaN() vg.Length { return vg.Length(math.NaN()) }
