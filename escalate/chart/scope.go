package chart

import (
	"cmp"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/culprithq/culprit/correlate"
)

// maxScopeBars is how many concentrations Scope shows. The correlator
// lists the strongest excess first, and past a handful the bars get too
// thin to read in a Slack preview.
const maxScopeBars = 8

// Scope draws where the finding's errors concentrate: for each of its
// first maxScopeBars Concentration entries, labelled "field=value", the
// share of the signature's errors beside the share of the service's
// requests, in percent. The gap between the two bars is the evidence:
// a provider with 4% of the traffic and 95% of the errors.
//
// Without concentrations it draws the number of affected values per field
// (Scope.Affected) instead, and with neither a chart saying "no scope
// data", so that an evidence page never shows a broken image.
//
// Scope returns an error, and writes nothing, for a nil finding, a share
// that is not a finite fraction in [0, 1], a negative affected count, an
// unknown format or an out-of-range size; otherwise only if writing to w
// fails.
func Scope(w io.Writer, f *correlate.Finding, format Format, size Size) error {
	if f == nil {
		return fmt.Errorf("scope chart: nil finding")
	}
	if err := validateScope(f); err != nil {
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
	p, entries, err := scopePlot(f, s)
	if err != nil {
		return fmt.Errorf("finding %s: %w", f.ID, err)
	}
	return render(w, format, s, func(dc draw.Canvas) { layout(dc, p, entries) })
}

func validateScope(f *correlate.Finding) error {
	for i, c := range f.Scope.Concentration {
		for _, v := range []struct {
			name  string
			share float64
		}{{"share of errors", c.ShareOfErrors}, {"share of requests", c.ShareOfRequests}} {
			if !finite(v.share) || v.share < 0 || v.share > 1 {
				return fmt.Errorf("finding %s: concentration %d (%s=%s) has %s %v, want a fraction in [0, 1]", f.ID, i, c.Field, c.Value, v.name, v.share)
			}
		}
	}
	for _, field := range affectedOrder(f.Scope.Affected) {
		if n := f.Scope.Affected[field]; n < 0 {
			return fmt.Errorf("finding %s: affected %s count is %d, want ≥ 0", f.ID, field, n)
		}
	}
	return nil
}

// affectedOrder lists the affected fields in report order: the canonical
// ones first (customers, sites, hosts), then any other, sorted.
func affectedOrder(m map[string]int) []string {
	var out, rest []string
	for _, k := range correlate.AffectedFields {
		if _, ok := m[k]; ok {
			out = append(out, k)
		}
	}
	for k := range m {
		if !slices.Contains(correlate.AffectedFields, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// formatPercent writes a share (0..1) with enough digits that a small
// share of requests does not read as zero.
func formatPercent(share float64) string {
	v := share * 100
	switch {
	case v == 0:
		return "0%"
	case v >= 9.95:
		return strconv.FormatFloat(v, 'f', 0, 64) + "%"
	case v >= 0.995:
		return strconv.FormatFloat(v, 'f', 1, 64) + "%"
	case v >= 0.01:
		return strconv.FormatFloat(v, 'f', 2, 64) + "%"
	}
	return "<0.01%"
}

// barWidth fits n groups of k bars into the data area's height, which is
// about the canvas height less the title and the x axis.
func barWidth(size Size, n, k int) vg.Length {
	area := size.Height - 60
	return min(max(area/vg.Length(n)*0.8/vg.Length(k), 2), 16)
}

func scopePlot(f *correlate.Finding, size Size) (*plot.Plot, []legendEntry, error) {
	service := cmp.Or(f.Service, f.ID)
	conc := f.Scope.Concentration[:min(len(f.Scope.Concentration), maxScopeBars)]
	fields := affectedOrder(f.Scope.Affected)
	switch {
	case len(conc) > 0:
		return concentrationPlot(service, conc, size)
	case len(fields) > 0:
		return affectedPlot(service, f.Scope.Affected, fields, size)
	}
	p := newPlot(service+": scope", size.Width)
	p.HideAxes()
	p.Add(&overlay{message: "no scope data"})
	return p, nil, nil
}

// horizontalBars is a bar chart drawn sideways, so that long
// "field=value" names read as row labels instead of colliding under the
// bars. Row 0 is at the bottom, so callers pass values top row last.
func horizontalBars(values []float64, width, offset vg.Length) (*plotter.BarChart, error) {
	b, err := plotter.NewBarChart(plotter.Values(values), width)
	if err != nil {
		return nil, err
	}
	b.Horizontal = true
	b.Offset = offset
	b.LineStyle.Width = 0
	return b, nil
}

func concentrationPlot(service string, conc []correlate.Concentration, size Size) (*plot.Plot, []legendEntry, error) {
	n := len(conc)
	names := make([]string, n)
	errShare := make([]float64, n)
	reqShare := make([]float64, n)
	ov := &overlay{}
	bw := barWidth(size, n, 2)
	for i, c := range conc {
		row := n - 1 - i // first concentration on top
		names[row] = truncate(c.Field+"="+c.Value, 36)
		errShare[row] = c.ShareOfErrors * 100
		reqShare[row] = c.ShareOfRequests * 100
		ov.bars = append(ov.bars,
			barValue{x: errShare[row], y: float64(row), dy: bw / 2, text: formatPercent(c.ShareOfErrors)},
			barValue{x: reqShare[row], y: float64(row), dy: -bw / 2, text: formatPercent(c.ShareOfRequests)},
		)
	}
	p := newPlot(service+": where the errors concentrate", size.Width)
	p.X.Label.Text = "share of the signature's errors and of the service's requests"
	errs, err := horizontalBars(errShare, bw, bw/2)
	if err != nil {
		return nil, nil, fmt.Errorf("error share bars: %w", err)
	}
	errs.Color = colBarErrors
	reqs, err := horizontalBars(reqShare, bw, -bw/2)
	if err != nil {
		return nil, nil, fmt.Errorf("request share bars: %w", err)
	}
	reqs.Color = colBarRequest
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	grid.Vertical.Color = colGrid
	p.Add(grid, errs, reqs, ov)
	p.NominalY(names...)
	// Room right of 100% for the value written at a bar's end.
	p.X.Min, p.X.Max = 0, 118
	p.X.Tick.Marker = plot.ConstantTicks{{Value: 0, Label: "0%"}, {Value: 25, Label: "25%"}, {Value: 50, Label: "50%"}, {Value: 75, Label: "75%"}, {Value: 100, Label: "100%"}}
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	return p, []legendEntry{
		{"share of errors", []plot.Thumbnailer{errs}},
		{"share of requests", []plot.Thumbnailer{reqs}},
	}, nil
}

func affectedPlot(service string, affected map[string]int, fields []string, size Size) (*plot.Plot, []legendEntry, error) {
	n := len(fields)
	names := make([]string, n)
	counts := make([]float64, n)
	ov := &overlay{}
	top := 0.0
	for i, field := range fields {
		row := n - 1 - i
		names[row] = truncate(field, 36)
		counts[row] = float64(affected[field])
		top = max(top, counts[row])
		ov.bars = append(ov.bars, barValue{x: counts[row], y: float64(row), text: strconv.Itoa(affected[field])})
	}
	p := newPlot(service+": affected values per field", size.Width)
	p.X.Label.Text = "distinct values with errors"
	bars, err := horizontalBars(counts, barWidth(size, n, 1), 0)
	if err != nil {
		return nil, nil, fmt.Errorf("affected bars: %w", err)
	}
	bars.Color = colBarRequest
	grid := plotter.NewGrid()
	grid.Horizontal.Color = nil
	grid.Vertical.Color = colGrid
	p.Add(grid, bars, ov)
	p.NominalY(names...)
	if top <= 0 {
		top = 1
	}
	p.X.Min, p.X.Max = 0, top*1.15
	p.X.Tick.Marker = wholeTicks{}
	p.Y.Min, p.Y.Max = -0.6, float64(n)-0.4
	return p, nil, nil
}

// wholeTicks drops the fractional ticks the default ticker puts on a short
// axis: there is no half of an affected customer.
type wholeTicks struct{}

// Ticks implements plot.Ticker.
func (wholeTicks) Ticks(lo, hi float64) []plot.Tick {
	var out []plot.Tick
	for _, t := range (plot.DefaultTicks{}).Ticks(lo, hi) {
		if t.Value == math.Trunc(t.Value) {
			out = append(out, t)
		}
	}
	return out
}
