package chart

import (
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// overlay draws what sits on top of the data and is placed in canvas units:
// vertical markers, rollout ticks, and labels laid out so they do not
// overlap. The plotters in gonum/plot place text at data coordinates only,
// which cannot keep a deploy's label clear of the onset label drawn a
// minute later.
type overlay struct {
	markers []marker
	ticks   []tick
	labels  []label // in priority order: earlier labels get the top rows
	bars    []barValue
	message string // centred, for charts without data
}

// marker is a vertical line across the data area.
type marker struct {
	x     float64
	style draw.LineStyle
}

// tick is a short mark at the bottom of the data area, one per host that
// received a deploy.
type tick struct {
	x   float64
	col color.Color
}

// label is text anchored at data x, in one of the rows at the top of the
// data area.
type label struct {
	x    float64
	text string
	bold bool
	// essential labels are drawn even when every row is taken.
	essential bool
}

// barValue is a value written at the end of a horizontal bar.
type barValue struct {
	x, y float64   // data coordinates of the bar's end
	dy   vg.Length // the bar's offset within its group
	text string
}

const (
	labelRows = 4
	labelSize = 8.5
	tickLen   = 7
)

// Plot implements plot.Plotter.
func (o *overlay) Plot(c draw.Canvas, p *plot.Plot) {
	trX, trY := p.Transforms(&c)
	inX := func(x vg.Length) bool { return x >= c.Min.X-0.01 && x <= c.Max.X+0.01 }
	for _, m := range o.markers {
		x := trX(m.x)
		if inX(x) {
			c.StrokeLine2(m.style, x, c.Min.Y, x, c.Max.Y)
		}
	}
	for _, t := range o.ticks {
		x := trX(t.x)
		if inX(x) {
			c.StrokeLine2(draw.LineStyle{Color: t.col, Width: 1.2}, x, c.Min.Y, x, c.Min.Y+tickLen)
		}
	}
	o.drawLabels(c, trX)
	for _, b := range o.bars {
		sty := textStyle(fontRegular, labelSize, colText)
		sty.YAlign = text.YCenter
		c.FillText(sty, vg.Point{X: trX(b.x) + 3, Y: trY(b.y) + b.dy}, b.text)
	}
	if o.message != "" {
		sty := textStyle(fontRegular, 12, colOther)
		sty.XAlign, sty.YAlign = text.XCenter, text.YCenter
		c.FillText(sty, c.Center(), o.message)
	}
}

// drawLabels places each label in the highest row where it does not touch
// a label already placed, left-aligned just right of its anchor, or to the
// left of it when it would run off the data area. When every row is taken
// an essential label (the suspect, onset, recovery) goes in the last row
// and may overlap, since dropping it from a page would be worse than an
// untidy corner; any other label is left out, its span still drawn.
func (o *overlay) drawLabels(c draw.Canvas, trX func(float64) vg.Length) {
	const pad, gap = 2, 4
	type span struct{ x0, x1 vg.Length }
	var rows [labelRows][]span
	for _, l := range o.labels {
		f := fontRegular
		if l.bold {
			f = fontBold
		}
		sty := textStyle(f, labelSize, colText)
		ax := trX(l.x)
		w := sty.Width(l.text)
		x0 := ax + 3
		if x0+w > c.Max.X {
			x0 = ax - 3 - w
		}
		x0 = max(x0, c.Min.X+pad)
		row := -1
		for r := range rows {
			free := true
			for _, s := range rows[r] {
				if x0-gap < s.x1 && s.x0 < x0+w+gap {
					free = false
					break
				}
			}
			if free {
				row = r
				break
			}
		}
		if row < 0 {
			if !l.essential {
				continue
			}
			row = labelRows - 1
		}
		rows[row] = append(rows[row], span{x0, x0 + w})
		ext := sty.FontExtents()
		lineH := ext.Ascent + ext.Descent + 2*pad
		y0 := c.Max.Y - vg.Length(row+1)*lineH
		bg := vg.Rectangle{Min: vg.Point{X: x0 - pad, Y: y0}, Max: vg.Point{X: x0 + w + pad, Y: y0 + lineH}}
		c.FillPolygon(colLabelBg, []vg.Point{bg.Min, {X: bg.Max.X, Y: bg.Min.Y}, bg.Max, {X: bg.Min.X, Y: bg.Max.Y}})
		sty.YAlign = text.YCenter
		c.FillText(sty, vg.Point{X: x0, Y: y0 + lineH/2}, l.text)
	}
}

// headroom is the share of the data area's height the data may use; the
// rest, at the top, is where drawLabels puts its rows. It is generous
// enough for labelRows rows at the default size.
const headroom = 0.7
