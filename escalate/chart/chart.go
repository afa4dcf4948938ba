// Package chart draws the pictures that travel with a finding: its error
// rate against the expected range with the deploys that overlap it, and the
// dimension values its errors concentrate on.
//
// Charts are drawn from the finding alone (Finding.Series, Finding.Scope)
// and the deploys the caller already holds, never from a second query to the
// log source. A page must show exactly the numbers the correlator judged, a
// chart must still render when Elasticsearch is the thing that is down, and
// redrawing an old incident's evidence page must not depend on logs that
// retention has since deleted.
//
// Two formats, because the two audiences differ: PNG for Slack messages and
// PagerDuty's `images`, which accept only raster images, and SVG for the
// web evidence page, where it stays sharp at any zoom and its text can be
// searched and copied. Both come from one drawing, so they never disagree.
// Output is deterministic for the same input (the fonts are embedded in
// gonum/plot, and nothing reads the clock or iterates a map unsorted), which
// is what makes golden tests and caching by content possible.
package chart

import (
	"bytes"
	"fmt"
	"image/color"
	"io"
	"math"
	"strings"
	"unicode/utf8"

	xfont "golang.org/x/image/font"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Format is an output image format.
type Format string

const (
	// FormatPNG is a raster image at DPI dots per inch, for Slack and
	// PagerDuty.
	FormatPNG Format = "png"
	// FormatSVG is a vector image for the web evidence page.
	FormatSVG Format = "svg"
)

// ParseFormat reads a format name as it appears in a file extension or a
// query parameter ("png", "SVG"). It returns an error naming the accepted
// formats for anything else.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case FormatPNG, FormatSVG:
		return f, nil
	}
	return "", fmt.Errorf("unknown chart format %q (want png or svg)", s)
}

// ContentType is the MIME type to serve or upload the format with.
func (f Format) ContentType() string {
	switch f {
	case FormatPNG:
		return "image/png"
	case FormatSVG:
		return "image/svg+xml"
	}
	return "application/octet-stream"
}

// DPI is the resolution PNGs are rendered at. It is fixed so that a Size
// always yields the same pixel dimensions (golden tests compare pixels) and
// so that text keeps the same pixel height in every chart culprit sends.
const DPI = 96

// Size is a chart's dimensions in typographic points (1/72 inch); at DPI a
// point is 4/3 pixel. A zero field takes DefaultSize's value.
type Size struct{ Width, Height vg.Length }

// DefaultSize is 800×300 pixels as PNG: wide enough for a 90-minute window
// at about 8 pixels a minute, and short enough to sit inline in a Slack
// message without scrolling.
var DefaultSize = Size{Width: 600, Height: 225}

// Bounds on a Size. Below the minimum the axes and labels no longer fit;
// the maximum (4000 pixels a side) bounds the memory a PNG canvas takes.
var (
	minSize = Size{Width: 200, Height: 100}
	maxSize = Size{Width: 3000, Height: 3000}
)

func (s Size) resolve() (Size, error) {
	if s.Width == 0 {
		s.Width = DefaultSize.Width
	}
	if s.Height == 0 {
		s.Height = DefaultSize.Height
	}
	ok := func(v, lo, hi vg.Length) bool { return v >= lo && v <= hi } // false for NaN
	if !ok(s.Width, minSize.Width, maxSize.Width) || !ok(s.Height, minSize.Height, maxSize.Height) {
		return Size{}, fmt.Errorf("chart size %gx%gpt is outside %gx%gpt to %gx%gpt",
			s.Width, s.Height, minSize.Width, minSize.Height, maxSize.Width, maxSize.Height)
	}
	return s, nil
}

// Colours from the Okabe–Ito palette, which stays distinguishable under
// the common colour-vision deficiencies and on white. Fills are NRGBA:
// color.RGBA is alpha-premultiplied, so a "translucent" RGBA with full
// channel values renders dark.
var (
	colText       = color.NRGBA{A: 255}
	colErrors     = color.NRGBA{R: 0, G: 114, B: 178, A: 255}   // blue
	colExpected   = color.NRGBA{R: 0, G: 158, B: 115, A: 255}   // bluish green
	colBand       = color.NRGBA{R: 0, G: 158, B: 115, A: 56}    // bluish green, translucent
	colSuspect    = color.NRGBA{R: 213, G: 94, B: 0, A: 255}    // vermillion
	colSuspectBg  = color.NRGBA{R: 213, G: 94, B: 0, A: 56}     // vermillion, translucent
	colOther      = color.NRGBA{R: 110, G: 110, B: 110, A: 255} // grey
	colOtherBg    = color.NRGBA{R: 153, G: 153, B: 153, A: 46}  // grey, translucent
	colGrid       = color.NRGBA{A: 28}
	colLabelBg    = color.NRGBA{R: 255, G: 255, B: 255, A: 210}
	colBarErrors  = color.NRGBA{R: 213, G: 94, B: 0, A: 220}
	colBarRequest = color.NRGBA{R: 0, G: 114, B: 178, A: 220}
)

// Liberation Sans is metric-compatible with Arial and Helvetica, so the SVG
// lays out the same in a browser that substitutes one of them.
var (
	fontRegular = font.Font{Typeface: "Liberation", Variant: "Sans"}
	fontBold    = font.Font{Typeface: "Liberation", Variant: "Sans", Weight: xfont.WeightBold}
)

func textStyle(f font.Font, size vg.Length, c color.Color) text.Style {
	return text.Style{
		Color:   c,
		Font:    font.From(f, size),
		Handler: plot.DefaultTextHandler,
	}
}

// newPlot is a plot with culprit's fonts and a title that fits the width.
func newPlot(title string, width vg.Length) *plot.Plot {
	p := plot.New()
	p.Title.TextStyle.Font = font.From(fontBold, 11)
	p.Title.Text = fit(p.Title.TextStyle, title, width-12)
	p.Title.Padding = 6
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(fontRegular, 10)
		a.Tick.Label.Font = font.From(fontRegular, 9)
	}
	return p
}

// fit shortens s with an ellipsis until it is at most width wide in sty.
func fit(sty text.Style, s string, width vg.Length) string {
	s = printable(s)
	if sty.Width(s) <= width {
		return s
	}
	r := []rune(s)
	for len(r) > 0 {
		r = r[:len(r)-1]
		t := strings.TrimRight(string(r), " ") + "…"
		if sty.Width(t) <= width {
			return t
		}
	}
	return ""
}

// truncate shortens s to at most n runes with an ellipsis.
func truncate(s string, n int) string {
	s = printable(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n-1]) + "…"
}

// printable replaces what cannot be drawn as text: control characters
// (which are not even allowed in XML, so an SVG containing one would not
// load) and invalid UTF-8. Names come from logs and deploy hooks, so
// either can turn up.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if r < 0x20 || (r >= 0x7f && r < 0xa0) {
			return ' '
		}
		return r
	}, s)
}

// legendEntry is one row of the legend column.
type legendEntry struct {
	name   string
	thumbs []plot.Thumbnailer
}

// legendWidth is the width of the column the legend takes at the right.
func legendWidth(entries []legendEntry) vg.Length {
	if len(entries) == 0 {
		return 0
	}
	l := newLegend(nil)
	var w vg.Length
	for _, e := range entries {
		w = max(w, l.TextStyle.Width(e.name))
	}
	return l.ThumbnailWidth + l.TextStyle.Width(" ") + w + 10
}

func newLegend(entries []legendEntry) plot.Legend {
	l := plot.NewLegend()
	l.TextStyle = textStyle(fontRegular, 9, colText)
	l.ThumbnailWidth = 16
	l.Left = true
	l.Top = true
	l.Padding = 3
	for _, e := range entries {
		l.Add(e.name, e.thumbs...)
	}
	return l
}

// layout draws p in the canvas with the legend in a column at its right,
// outside the data area so that it never hides a deploy or the series.
func layout(dc draw.Canvas, p *plot.Plot, entries []legendEntry) {
	// The whole canvas is white, the legend column included: an SVG is
	// transparent by default and would show a dark page through it.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	lw := legendWidth(entries)
	// A small margin all round: gonum sizes the y axis to its widest tick
	// label exactly, and anti-aliasing then shaves that label's first
	// pixel off at the canvas edge.
	p.Draw(draw.Crop(dc, 6, -lw, 4, -4))
	if lw == 0 {
		return
	}
	// Align the legend's top with the data area, below the title.
	top := p.Title.TextStyle.Rectangle(p.Title.Text).Size().Y + p.Title.Padding + 4
	lc := draw.Crop(dc, dc.Max.X-dc.Min.X-lw+6, 0, 0, -top)
	l := newLegend(entries)
	l.Draw(lc)
}

// render draws into a canvas of the format and writes it to w.
//
// gonum/plot panics on some conditions a caller cannot see coming (an
// unencodable image, an invalid option); a chart is never worth taking the
// daemon down for, so such a panic becomes an error.
func render(w io.Writer, format Format, size Size, drawFn func(draw.Canvas)) (err error) {
	size, err = size.resolve()
	if err != nil {
		return err
	}
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("draw %s chart: %v", format, r)
		}
	}()
	switch format {
	case FormatPNG:
		c := vgimg.NewWith(vgimg.UseWH(size.Width, size.Height), vgimg.UseDPI(DPI))
		drawFn(draw.New(c))
		if _, err := (vgimg.PngCanvas{Canvas: c}).WriteTo(w); err != nil {
			return fmt.Errorf("write png chart: %w", err)
		}
		return nil
	case FormatSVG:
		c := vgsvg.New(size.Width, size.Height)
		drawFn(draw.New(c))
		var buf bytes.Buffer
		if _, err := c.WriteTo(&buf); err != nil {
			return fmt.Errorf("write svg chart: %w", err)
		}
		if _, err := w.Write(svgFontFallback(buf.Bytes())); err != nil {
			return fmt.Errorf("write svg chart: %w", err)
		}
		return nil
	}
	return fmt.Errorf("unknown chart format %q (want png or svg)", string(format))
}

// svgFontFallback lets browsers without Liberation Sans use a
// metric-compatible face instead of their default serif, which would
// overflow the label boxes laid out for Liberation's metrics. Embedding the
// font instead would add some 300 kB to every evidence page.
func svgFontFallback(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("font-family:Liberation Sans;"),
		[]byte("font-family:'Liberation Sans',Arial,Helvetica,sans-serif;"))
}

// finite reports whether v is neither NaN nor infinite.
func finite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
