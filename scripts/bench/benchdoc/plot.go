package main

import (
	"cmp"
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Plot size: 6×3.6 in at the PNG canvas's 96 dpi is 576×346 pixels, which
// reads on GitHub without zooming and stays far below 150 KB.
const (
	plotW = 6 * vg.Inch
	plotH = 3.6 * vg.Inch
)

var (
	dotColor    = color.NRGBA{R: 31, G: 119, B: 180, A: 200}
	targetColor = color.NRGBA{R: 214, G: 39, B: 40, A: 255}
	barColor    = color.NRGBA{R: 31, G: 119, B: 180, A: 160}
	accentColor = color.NRGBA{R: 255, G: 127, B: 14, A: 255}
)

func newPlot(title, xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(12)
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.Legend.Top = true
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	p.Add(plotter.NewGrid())
	return p
}

// hline is a dashed horizontal line across [x0, x1] at y.
func hline(x0, x1, y float64, c color.Color) (*plotter.Line, error) {
	l, err := plotter.NewLine(plotter.XYs{{X: x0, Y: y}, {X: x1, Y: y}})
	if err != nil {
		return nil, err
	}
	l.Color = c
	l.Width = vg.Points(1.2)
	l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
	return l, nil
}

func savePlot(p *plot.Plot, path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	if err := p.Save(plotW, plotH, path); err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// shapeDelays is one box of the delay plot.
type shapeDelays struct {
	Shape    string
	Minutes  []float64 // detection delays of the detected runs
	Expected int       // runs that should have paged
}

// plotDelays draws detection delay per shape: every run as a dot, a box
// once there are enough runs for quartiles to mean something, and the
// target as a dashed line. The x labels say how many runs paged at all,
// since a missed run has no dot.
func plotDelays(groups []shapeDelays, targetMin float64, path string) error {
	p := newPlot("Detection delay per incident shape", "", "minutes from onset to page")
	var names []string
	top := targetMin
	for i, g := range groups {
		names = append(names, fmt.Sprintf("%s\n%d/%d paged", g.Shape, len(g.Minutes), g.Expected))
		if len(g.Minutes) >= 5 {
			b, err := plotter.NewBoxPlot(vg.Points(28), float64(i), plotter.Values(g.Minutes))
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			b.FillColor = color.NRGBA{R: 31, G: 119, B: 180, A: 40}
			p.Add(b)
		}
		pts := make(plotter.XYs, len(g.Minutes))
		for k, v := range g.Minutes {
			// A small deterministic spread keeps equal delays apart.
			pts[k] = plotter.XY{X: float64(i) + 0.18*(float64(k)-float64(len(g.Minutes)-1)/2)/max(1, float64(len(g.Minutes)-1)), Y: v}
			top = max(top, v)
		}
		if len(pts) > 0 {
			s, err := plotter.NewScatter(pts)
			if err != nil {
				return fmt.Errorf("plot %s: %w", path, err)
			}
			s.GlyphStyle = draw.GlyphStyle{Color: dotColor, Radius: vg.Points(2.5), Shape: draw.CircleGlyph{}}
			p.Add(s)
			if i == 0 {
				p.Legend.Add("one run", s)
			}
		}
	}
	if len(groups) == 0 {
		return fmt.Errorf("plot %s: no incident shape that should page", path)
	}
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(groups))-0.4
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Min, p.Y.Max = 0, math.Ceil(top*1.1)
	p.Y.Tick.Marker = stepTicks{}
	p.Legend.Left = true
	if targetMin > 0 {
		l, err := hline(p.X.Min, p.X.Max, targetMin, targetColor)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		p.Add(l)
		p.Legend.Add(fmt.Sprintf("target: median ≤ %g min", targetMin), l)
	}
	return savePlot(p, path)
}

// groupRate is one bar of the false pages plot.
type groupRate struct {
	Group   string
	PerWeek float64
	Pages   int
	Hours   float64
}

// plotFalsePages draws false pages per week for each group of runs as
// horizontal bars (the group names are long), with the count and hours
// beside each group's name and the target as a dashed line.
func plotFalsePages(groups []groupRate, target float64, path string) error {
	if len(groups) == 0 {
		return fmt.Errorf("plot %s: no groups", path)
	}
	p := newPlot("False pages per week", "false pages per week (extrapolated)", "")
	// The first group at the top: bars are placed from the bottom up.
	n := len(groups)
	vals := make(plotter.Values, n)
	names := make([]string, n)
	labels := plotter.XYLabels{XYs: make(plotter.XYs, n), Labels: make([]string, n)}
	top := target
	for i, g := range groups {
		k := n - 1 - i
		vals[k] = g.PerWeek
		names[k] = fmt.Sprintf("%s (%d in %g h)", g.Group, g.Pages, g.Hours)
		labels.XYs[k] = plotter.XY{X: g.PerWeek, Y: float64(k)}
		labels.Labels[k] = fmt.Sprintf("%.1f", g.PerWeek)
		top = max(top, g.PerWeek)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	bars.Horizontal = true
	bars.Color = barColor
	bars.LineStyle.Width = 0
	p.Add(bars)
	lab, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font.Size = vg.Points(8)
		lab.TextStyle[i].YAlign = draw.YCenter
	}
	lab.Offset = vg.Point{X: vg.Points(3)}
	p.Add(lab)
	p.NominalY(names...)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	// A row's worth of room above the bars for the target's label, which
	// names the line instead of a legend that would cover bars.
	p.Y.Min, p.Y.Max = -0.6, float64(n)+0.1
	p.X.Min, p.X.Max = 0, max(top*1.15, target*1.6)
	p.X.Tick.Marker = stepTicks{}
	if target > 0 {
		l, err := plotter.NewLine(plotter.XYs{{X: target, Y: p.Y.Min}, {X: target, Y: float64(n) - 0.4}})
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		l.Color = targetColor
		l.Width = vg.Points(1.2)
		l.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		p.Add(l)
		tl, err := plotter.NewLabels(plotter.XYLabels{XYs: plotter.XYs{{X: target, Y: float64(n) - 0.15}},
			Labels: []string{fmt.Sprintf("target: ≤ %g a week", target)}})
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		tl.TextStyle[0].Color = targetColor
		tl.TextStyle[0].Font.Size = vg.Points(8)
		tl.TextStyle[0].YAlign = draw.YCenter
		p.Add(tl)
	}
	return savePlot(p, path)
}

// stepTicks puts labelled ticks at a round step (1, 2 or 5 times a power
// of ten) giving five to ten of them, since gonum's default ticks can be
// as sparse as three.
type stepTicks struct{}

func (stepTicks) Ticks(lo, hi float64) []plot.Tick {
	if !(hi > lo) || math.IsInf(hi-lo, 0) {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	step := niceStep((hi - lo) / 10)
	prec := max(0, -int(math.Floor(math.Log10(step))))
	var ticks []plot.Tick
	for v := math.Ceil(lo/step) * step; v <= hi+step*1e-9; v += step {
		ticks = append(ticks, plot.Tick{Value: v, Label: strconv.FormatFloat(v, 'f', prec, 64)})
	}
	return ticks
}

// niceStep is the smallest of 1, 2 and 5 times a power of ten that is at
// least raw.
func niceStep(raw float64) float64 {
	if !(raw > 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw {
			return m * p
		}
	}
	return 10 * p
}

// methodPoint is one method of the ruptures comparison.
type methodPoint struct {
	Name    string
	F1      float64
	Seconds float64 // over all series; > 0
	Culprit bool
}

// plotF1Time draws mean F1 against the time for all series, on a log
// scale since the methods span four orders of magnitude.
func plotF1Time(pts []methodPoint, series int, path string) error {
	if len(pts) == 0 {
		return fmt.Errorf("plot %s: no timed method", path)
	}
	p := newPlot("Change points: accuracy against time",
		fmt.Sprintf("seconds for all %d series (log scale)", series), "mean F1 (margin 5)")
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	lo, hi := math.Inf(1), math.Inf(-1)
	var theirs, ours plotter.XYs
	labels := plotter.XYLabels{}
	for _, m := range pts {
		xy := plotter.XY{X: m.Seconds, Y: m.F1}
		if m.Culprit {
			ours = append(ours, xy)
		} else {
			theirs = append(theirs, xy)
		}
		labels.XYs = append(labels.XYs, xy)
		labels.Labels = append(labels.Labels, m.Name)
		lo, hi = min(lo, m.Seconds), max(hi, m.Seconds)
	}
	for _, set := range []struct {
		xys   plotter.XYs
		name  string
		c     color.Color
		glyph draw.GlyphDrawer
	}{{theirs, "ruptures", dotColor, draw.CircleGlyph{}}, {ours, "culprit", accentColor, draw.SquareGlyph{}}} {
		if len(set.xys) == 0 {
			continue
		}
		s, err := plotter.NewScatter(set.xys)
		if err != nil {
			return fmt.Errorf("plot %s: %w", path, err)
		}
		s.GlyphStyle = draw.GlyphStyle{Color: set.c, Radius: vg.Points(3.5), Shape: set.glyph}
		p.Add(s)
		p.Legend.Add(set.name, s)
	}
	spreadLabels(labels.XYs)
	lab, err := plotter.NewLabels(labels)
	if err != nil {
		return fmt.Errorf("plot %s: %w", path, err)
	}
	for i := range lab.TextStyle {
		lab.TextStyle[i].Font = font.From(plotter.DefaultFont, vg.Points(7))
		lab.TextStyle[i].YAlign = draw.YCenter
	}
	lab.Offset = vg.Point{X: vg.Points(6)}
	p.Add(lab)
	// Room on the right for the labels of the slowest methods.
	p.X.Min, p.X.Max = lo/3, hi*30
	p.Y.Min, p.Y.Max = 0, 1.05
	p.Legend.Left = true
	p.Legend.Top = false
	return savePlot(p, path)
}

// spreadLabels moves label positions (in place) apart vertically where two
// points are close on the plot, a tenth of a decade and 0.04 of F1, so
// that neighbouring methods' names do not print over each other.
func spreadLabels(xys plotter.XYs) {
	order := make([]int, len(xys))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(xys[b].Y, xys[a].Y) })
	for k, i := range order {
		for _, j := range order[:k] {
			if math.Abs(math.Log10(xys[i].X)-math.Log10(xys[j].X)) < 0.8 && math.Abs(xys[i].Y-xys[j].Y) < 0.04 {
				xys[i].Y = xys[j].Y - 0.04
			}
		}
	}
}
