package chart

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/culprithq/culprit/correlate"
)

// Rate draws the finding's signature errors per minute over the window of
// its series, against the range the baseline predicts, with the deploys
// that overlap the window and the finding's onset and recovery.
//
// Every deploy in deploys whose rollout overlaps the window is drawn as a
// shaded span from StartedAt to FinishedAt (unfinished: to its last host's
// rollout time, or to the window's end when no host is known), labelled
// "<service> <version>", with a tick for each host's rollout time. The
// finding's first suspect is emphasised; when deploys does not contain it,
// it is drawn from f.SuspectedDeploys so that the chart never omits the
// deploy the page blames. Counts are converted to per minute whatever the
// bucket step.
//
// Rate returns an error, and writes nothing, for a finding whose series is
// missing or inconsistent (zero or non-finite step, slices of different
// lengths, NaN, infinite or negative counts), for an unknown format or an
// out-of-range size; otherwise only if writing to w fails. A series with no
// buckets, or only zeros, still draws.
func Rate(w io.Writer, f *correlate.Finding, deploys []correlate.Deploy, format Format, size Size) error {
	if f == nil {
		return fmt.Errorf("rate chart: nil finding")
	}
	if err := validateSeries(f); err != nil {
		return err
	}
	format, err := ParseFormat(string(format))
	if err != nil {
		return err
	}
	s, err := size.resolve()
	if err != nil {
		return err
	}
	p, entries, err := ratePlot(f, deploys, s)
	if err != nil {
		return fmt.Errorf("finding %s: %w", f.ID, err)
	}
	return render(w, format, s, func(dc draw.Canvas) { layout(dc, p, entries) })
}

// Bounds on a series' time axis. Outside them the window cannot be
// represented as a time.Duration (which would divide by zero or overflow),
// and no series culprit builds comes near them.
const (
	minStepSec   = 1
	maxStepSec   = 7 * 86400
	maxWindowSec = 400 * 86400
)

func validateSeries(f *correlate.Finding) error {
	s := f.Series
	if s == nil {
		return fmt.Errorf("finding %s: no series to chart", f.ID)
	}
	if !finite(s.StepSec) || s.StepSec < minStepSec || s.StepSec > maxStepSec {
		return fmt.Errorf("finding %s: series step is %v seconds, want %d to %d", f.ID, s.StepSec, minStepSec, maxStepSec)
	}
	if span := float64(len(s.Errors)) * s.StepSec; span > maxWindowSec {
		return fmt.Errorf("finding %s: series spans %.0f days, more than %d", f.ID, span/86400, maxWindowSec/86400)
	}
	if len(s.Errors) != len(s.Baseline) {
		return fmt.Errorf("finding %s: series has %d error buckets and %d baseline buckets", f.ID, len(s.Errors), len(s.Baseline))
	}
	// Requests are not drawn, but a series whose slices disagree was
	// assembled wrongly and its other numbers are not to be trusted.
	if len(s.Requests) != 0 && len(s.Requests) != len(s.Errors) {
		return fmt.Errorf("finding %s: series has %d error buckets and %d request buckets", f.ID, len(s.Errors), len(s.Requests))
	}
	for _, c := range []struct {
		name string
		v    []float64
	}{{"error", s.Errors}, {"baseline", s.Baseline}} {
		for i, v := range c.v {
			if !finite(v) || v < 0 {
				return fmt.Errorf("finding %s: %s bucket %d is %v, want a finite count ≥ 0", f.ID, c.name, i, v)
			}
		}
	}
	return nil
}

// unix is t in the float seconds the time axis uses.
func unix(t time.Time) float64 { return float64(t.UnixMilli()) / 1e3 }

// span is a deploy's rollout clipped to the window.
type span struct {
	d          correlate.Deploy
	start, end time.Time // clipped
	suspect    bool
}

// deploySpan is the part of d's rollout inside [from, to), and whether
// there is one. A rollout without an end runs to its last host (the last
// moment culprit knows it was still going), or to the window's end when no
// host is known. An end before the start, which only bad input produces,
// is read as an instantaneous deploy rather than dropped.
func deploySpan(d correlate.Deploy, from, to time.Time) (start, end time.Time, ok bool) {
	if d.StartedAt.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	start, end = d.StartedAt, d.FinishedAt
	if end.IsZero() {
		end = to
		if len(d.Hosts) > 0 {
			end = start
			for _, h := range d.Hosts {
				if h.At.After(end) {
					end = h.At
				}
			}
		}
	}
	if end.Before(start) {
		end = start
	}
	if !start.Before(to) || end.Before(from) {
		return time.Time{}, time.Time{}, false
	}
	if start.Before(from) {
		start = from
	}
	if end.After(to) {
		end = to
	}
	return start, end, true
}

// deployLabel is how a deploy is named on the chart.
func deployLabel(d correlate.Deploy) string {
	l := strings.TrimSpace(d.Service + " " + d.Version)
	if l == "" {
		l = d.ID
	}
	return truncate(l, 40)
}

// spans are the deploys to draw: those overlapping the window, plus the
// first suspect when the caller did not pass it, in drawing order (the
// suspect last, so it is on top).
func spans(f *correlate.Finding, deploys []correlate.Deploy, from, to time.Time) []span {
	suspectID := ""
	if len(f.SuspectedDeploys) > 0 {
		suspectID = f.SuspectedDeploys[0].ID
	}
	all := deploys
	if suspectID != "" && !slices.ContainsFunc(deploys, func(d correlate.Deploy) bool { return d.ID == suspectID }) {
		s := f.SuspectedDeploys[0]
		all = append(slices.Clip(deploys), correlate.Deploy{
			ID: s.ID, Service: cmp.Or(s.Service, f.Service), Version: s.Version,
			StartedAt: s.StartedAt, FinishedAt: s.FinishedAt,
		})
	}
	var out []span
	for _, d := range all {
		start, end, ok := deploySpan(d, from, to)
		if !ok {
			continue
		}
		out = append(out, span{d: d, start: start, end: end, suspect: suspectID != "" && d.ID == suspectID})
	}
	slices.SortStableFunc(out, func(a, b span) int {
		if a.suspect != b.suspect {
			if a.suspect {
				return 1
			}
			return -1
		}
		return cmp.Or(a.d.StartedAt.Compare(b.d.StartedAt), cmp.Compare(a.d.ID, b.d.ID))
	})
	return out
}

// rateSeries is the finding's series converted for drawing: per minute,
// with the expected range.
type rateSeries struct {
	from, to         time.Time
	x                []float64 // bucket starts, then the window end: n+1 values
	errors, expected []float64 // per minute, n values
	lo, hi           []float64 // per minute, n values
}

func newRateSeries(f *correlate.Finding) rateSeries {
	s := f.Series
	n := len(s.Errors)
	step := time.Duration(s.StepSec * float64(time.Second))
	from := s.Start.UTC()
	to := from.Add(time.Duration(max(n, 1)) * step)
	perMin := 60 / s.StepSec

	pre := 0
	if f.Onset.After(from) {
		pre = min(n, int(f.Onset.Sub(from)/step))
	}
	lo, hi := bandFor(s.Baseline, dispersion(s.Errors[:pre], s.Baseline[:pre]))

	r := rateSeries{from: from, to: to, x: make([]float64, n+1)}
	for i := range n + 1 {
		r.x[i] = unix(from) + float64(i)*s.StepSec
	}
	scale := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i := range v {
			out[i] = v[i] * perMin
		}
		return out
	}
	r.errors, r.expected, r.lo, r.hi = scale(s.Errors), scale(s.Baseline), scale(lo), scale(hi)
	return r
}

// stepXYs is a step line through per-bucket values: flat across each
// bucket, so that a minute's count reads as that minute's level.
func stepXYs(x, v []float64) plotter.XYs {
	if len(v) == 0 {
		return nil
	}
	xy := make(plotter.XYs, 0, len(v)+1)
	for i := range v {
		xy = append(xy, plotter.XY{X: x[i], Y: v[i]})
	}
	return append(xy, plotter.XY{X: x[len(v)], Y: v[len(v)-1]})
}

// bandPolygon outlines the stepped band between lo and hi.
func bandPolygon(x, lo, hi []float64) plotter.XYs {
	xy := make(plotter.XYs, 0, 4*len(lo))
	for i := range hi {
		xy = append(xy, plotter.XY{X: x[i], Y: hi[i]}, plotter.XY{X: x[i+1], Y: hi[i]})
	}
	for i := len(lo) - 1; i >= 0; i-- {
		xy = append(xy, plotter.XY{X: x[i+1], Y: lo[i]}, plotter.XY{X: x[i], Y: lo[i]})
	}
	return xy
}

func ratePlot(f *correlate.Finding, deploys []correlate.Deploy, size Size) (*plot.Plot, []legendEntry, error) {
	r := newRateSeries(f)
	title := cmp.Or(f.Signature, f.ID)
	if f.Service != "" {
		title = f.Service + ": " + title
	}
	p := newPlot(title, size.Width)
	p.X.Label.Text = "time (UTC)"
	p.Y.Label.Text = "errors / min"

	grid := plotter.NewGrid()
	grid.Vertical.Color = nil
	grid.Horizontal.Color = colGrid
	p.Add(grid)

	ov := &overlay{}
	var entries []legendEntry
	n := len(r.errors)
	top := 0.0
	for i := range n {
		top = max(top, r.errors[i], r.hi[i], r.expected[i])
	}
	if top <= 0 {
		top = 1
	}
	ymax := top / headroom

	// Deploy spans go first, beneath the data.
	sp := spans(f, deploys, r.from, r.to)
	var suspectThumb, otherThumb plot.Thumbnailer
	for _, s := range sp {
		fill, edge := colOtherBg, colOther
		if s.suspect {
			fill, edge = colSuspectBg, colSuspect
		}
		poly, err := plotter.NewPolygon(plotter.XYs{
			{X: unix(s.start), Y: 0}, {X: unix(s.end), Y: 0},
			{X: unix(s.end), Y: ymax}, {X: unix(s.start), Y: ymax},
		})
		if err != nil {
			return nil, nil, fmt.Errorf("deploy %s span: %w", s.d.ID, err)
		}
		poly.Color = fill
		poly.LineStyle.Width = 0
		p.Add(poly)
		edgeStyle := draw.LineStyle{Color: edge, Width: 0.8}
		if s.suspect {
			edgeStyle.Width = 1.4
		}
		ov.markers = append(ov.markers, marker{x: unix(s.start), style: edgeStyle})
		if s.suspect && s.end.After(s.start) {
			ov.markers = append(ov.markers, marker{x: unix(s.end), style: draw.LineStyle{Color: edge, Width: 0.8, Dashes: []vg.Length{3, 2}}})
		}
		for _, h := range s.d.Hosts {
			if !h.At.Before(r.from) && h.At.Before(r.to) {
				ov.ticks = append(ov.ticks, tick{x: unix(h.At), col: edge})
			}
		}
		if s.suspect {
			suspectThumb = poly
		} else if otherThumb == nil {
			otherThumb = poly
		}
	}
	// Labels: the suspect first so it gets the top row, then onset and
	// recovery, then the other deploys in time order.
	for i := len(sp) - 1; i >= 0; i-- {
		if sp[i].suspect {
			ov.labels = append(ov.labels, label{x: unix(sp[i].start), text: deployLabel(sp[i].d), bold: true, essential: true})
		}
	}
	onsetIn := !f.Onset.Before(r.from) && f.Onset.Before(r.to)
	if onsetIn {
		ov.markers = append(ov.markers, marker{x: unix(f.Onset), style: draw.LineStyle{Color: colText, Width: 1.2}})
		ov.labels = append(ov.labels, label{x: unix(f.Onset), text: "onset", essential: true})
	}
	if f.Recovered != nil && !f.Recovered.Before(r.from) && !f.Recovered.After(r.to) {
		ov.markers = append(ov.markers, marker{x: unix(*f.Recovered), style: draw.LineStyle{Color: colText, Width: 1.2, Dashes: []vg.Length{4, 3}}})
		text := "recovered"
		if r := f.Recovery; r != nil {
			// The legend ties the fall to the deploy that caused it.
			text = "recovered: " + map[bool]string{true: "rollback ", false: "deploy "}[r.Rollback] + r.DeployID
		}
		ov.labels = append(ov.labels, label{x: unix(*f.Recovered), text: text, essential: true})
	}
	for _, s := range sp {
		if !s.suspect {
			ov.labels = append(ov.labels, label{x: unix(s.start), text: deployLabel(s.d)})
		}
	}

	if n == 0 {
		ov.message = "no data in this window"
	} else {
		band, err := plotter.NewPolygon(bandPolygon(r.x, r.lo, r.hi))
		if err != nil {
			return nil, nil, fmt.Errorf("expected range: %w", err)
		}
		band.Color = colBand
		band.LineStyle.Width = 0
		p.Add(band)

		expected, err := plotter.NewLine(stepXYs(r.x, r.expected))
		if err != nil {
			return nil, nil, fmt.Errorf("baseline line: %w", err)
		}
		expected.Color = colExpected
		expected.Width = 1
		expected.Dashes = []vg.Length{4, 2}
		expected.StepStyle = plotter.PostStep
		p.Add(expected)

		observed, err := plotter.NewLine(stepXYs(r.x, r.errors))
		if err != nil {
			return nil, nil, fmt.Errorf("error line: %w", err)
		}
		observed.Color = colErrors
		observed.Width = 1.6
		observed.StepStyle = plotter.PostStep
		p.Add(observed)

		entries = append(entries,
			legendEntry{"errors / min", []plot.Thumbnailer{observed}},
			legendEntry{"expected, 99% range", []plot.Thumbnailer{band, expected}},
		)
	}
	if suspectThumb != nil {
		entries = append(entries, legendEntry{"suspect deploy", []plot.Thumbnailer{suspectThumb}})
	}
	if otherThumb != nil {
		entries = append(entries, legendEntry{"other deploy", []plot.Thumbnailer{otherThumb}})
	}
	p.Add(ov)

	p.X.Min, p.X.Max = unix(r.from), unix(r.to)
	p.X.Tick.Marker = plotTimeTicks(r.to.Sub(r.from))
	p.Y.Min, p.Y.Max = 0, ymax
	p.Y.Tick.Marker = niceTicks{}
	return p, entries, nil
}

// plotTimeTicks labels a window of length d in UTC as HH:MM, with the
// date when the window spans days.
func plotTimeTicks(d time.Duration) plot.TimeTicks {
	format := "15:04"
	if d > 24*time.Hour {
		format = "Jan 2 15:04"
	}
	return plot.TimeTicks{Ticker: timeTicker{}, Format: format, Time: plot.UTCUnixTime}
}

// timeTicker puts ticks on round UTC minutes (1, 2, 5, 10, 15, 30 minutes,
// 1, 2, 3, 6, 12 hours, days), at most maxTimeTicks of them; the default
// ticker would put them on round numbers of seconds such as 16:06:40.
type timeTicker struct{}

const maxTimeTicks = 8

var tickSteps = []float64{60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400}

// Ticks implements plot.Ticker.
func (timeTicker) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return nil
	}
	step := 0.0
	for _, s := range tickSteps {
		if (hi-lo)/s <= maxTimeTicks {
			step = s
			break
		}
	}
	if step == 0 {
		step = 86400 * math.Ceil((hi-lo)/86400/maxTimeTicks)
	}
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi; v += step {
		// A non-empty label marks a major tick; TimeTicks formats it.
		ticks = append(ticks, plot.Tick{Value: v, Label: "t"})
	}
	return ticks
}

// niceTicks puts about five labelled ticks on 1, 2, 2.5 or 5 times a power
// of ten, with no more decimals than the step needs; the default ticker
// labels a 0–28 axis with just "0.00" and "25.00".
type niceTicks struct{}

// Ticks implements plot.Ticker.
func (niceTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || !finite(lo) || !finite(hi) {
		return nil
	}
	const want = 5
	mag := math.Pow(10, math.Floor(math.Log10((hi-lo)/want)))
	step := 10 * mag
	for _, m := range []float64{1, 2, 2.5, 5} {
		if (hi-lo)/(m*mag) <= want+1 {
			step = m * mag
			break
		}
	}
	decimals := 0
	for scaled := step; decimals < 10 && math.Abs(scaled-math.Round(scaled)) > 1e-6*scaled; scaled *= 10 {
		decimals++
	}
	var ticks []plot.Tick
	for k := math.Ceil(lo/step - 1e-9); k*step <= hi+1e-9*step; k++ {
		v := k * step
		if v == 0 {
			v = 0 // not -0, which would be labelled "-0"
		}
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', decimals, 64)})
	}
	return ticks
}
