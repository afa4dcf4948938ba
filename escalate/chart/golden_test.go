package chart

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.png from the current output")

// Golden PNGs are compared pixel by pixel with tolerance, not byte for
// byte: a newer rasteriser or zlib may shift anti-aliased edges by a few
// levels, or re-encode identical pixels differently, and neither is a
// regression. A pixel differs when any channel differs by more than
// channelTolerance; the image differs when more than maxDiffFraction of
// its pixels do. A missing deploy span or label changes several percent.
const (
	channelTolerance = 40
	maxDiffFraction  = 0.005
)

// diffFraction is the share of pixels of got that differ from want.
func diffFraction(want, got image.Image, tol uint8) (float64, error) {
	wb, gb := want.Bounds(), got.Bounds()
	if wb.Size() != gb.Size() {
		return 1, fmt.Errorf("image is %v, golden is %v", gb.Size(), wb.Size())
	}
	if wb.Empty() {
		return 0, nil
	}
	differ := 0
	for y := range wb.Dy() {
		for x := range wb.Dx() {
			w := color.NRGBAModel.Convert(want.At(wb.Min.X+x, wb.Min.Y+y)).(color.NRGBA)
			g := color.NRGBAModel.Convert(got.At(gb.Min.X+x, gb.Min.Y+y)).(color.NRGBA)
			if absDiff(w.R, g.R) > tol || absDiff(w.G, g.G) > tol || absDiff(w.B, g.B) > tol || absDiff(w.A, g.A) > tol {
				differ++
			}
		}
	}
	return float64(differ) / float64(wb.Dx()*wb.Dy()), nil
}

func absDiff(a, b uint8) uint8 {
	if a > b {
		return a - b
	}
	return b - a
}

// comparePNG decodes both PNGs and returns the differing fraction.
func comparePNG(want, got []byte) (float64, error) {
	wi, err := png.Decode(bytes.NewReader(want))
	if err != nil {
		return 1, fmt.Errorf("decode golden: %w", err)
	}
	gi, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		return 1, fmt.Errorf("decode chart: %w", err)
	}
	return diffFraction(wi, gi, channelTolerance)
}

// checkGolden compares got with testdata/name.png, or rewrites it with
// -update. On a mismatch the actual image is kept in a temporary directory
// outside the repository (not t.TempDir, which is removed before anyone
// could look at it) and its path is logged.
func checkGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name+".png")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test -update to create it): %v", err)
	}
	frac, err := comparePNG(want, got)
	if err == nil && frac <= maxDiffFraction {
		return
	}
	dir, derr := os.MkdirTemp("", "culprit-chart-")
	actual := "(not saved)"
	if derr == nil {
		actual = filepath.Join(dir, name+".actual.png")
		if werr := os.WriteFile(actual, got, 0o644); werr != nil {
			actual = "(not saved: " + werr.Error() + ")"
		}
	}
	if err != nil {
		t.Fatalf("%s: %v; actual image: %s", path, err, actual)
	}
	t.Errorf("%s: %.2f%% of pixels differ (allowed %.2f%%); actual image: %s; run go test -update if the change is intended",
		path, 100*frac, 100*maxDiffFraction, actual)
}

// svgDoc is what the SVG tests look at: the text drawn and the number of
// path elements.
type svgDoc struct {
	texts []string
	paths int
}

func (d svgDoc) has(s string) bool {
	for _, t := range d.texts {
		if t == s {
			return true
		}
	}
	return false
}

func (d svgDoc) hasPrefix(s string) bool {
	for _, t := range d.texts {
		if strings.HasPrefix(t, s) {
			return true
		}
	}
	return false
}

// parseSVG checks that b is well-formed XML with an <svg> root and collects
// its text and paths.
func parseSVG(t *testing.T, b []byte) svgDoc {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(b))
	var doc svgDoc
	var stack []string
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
		switch tk := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tk.Name.Local
			}
			if tk.Name.Local == "path" {
				doc.paths++
			}
			stack = append(stack, tk.Name.Local)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			if len(stack) > 0 && stack[len(stack)-1] == "text" {
				doc.texts = append(doc.texts, string(tk))
			}
		}
	}
	if root != "svg" {
		t.Fatalf("svg root element is %q", root)
	}
	return doc
}

func TestDiffFraction(t *testing.T) {
	solid := func(w, h int, c color.NRGBA) *image.NRGBA {
		img := image.NewNRGBA(image.Rect(0, 0, w, h))
		for y := range h {
			for x := range w {
				img.SetNRGBA(x, y, c)
			}
		}
		return img
	}
	white := color.NRGBA{255, 255, 255, 255}
	for _, tc := range []struct {
		name    string
		got     func() image.Image
		want    float64
		wantErr bool
	}{
		{"identical", func() image.Image { return solid(10, 10, white) }, 0, false},
		{"within tolerance everywhere", func() image.Image {
			return solid(10, 10, color.NRGBA{255 - channelTolerance, 255, 255, 255})
		}, 0, false},
		{"one channel just over tolerance", func() image.Image {
			img := solid(10, 10, white)
			img.SetNRGBA(3, 3, color.NRGBA{255, 255 - channelTolerance - 1, 255, 255})
			return img
		}, 0.01, false},
		{"a block of 20 pixels", func() image.Image {
			img := solid(10, 10, white)
			for y := range 2 {
				for x := range 10 {
					img.SetNRGBA(x, y, color.NRGBA{0, 0, 0, 255})
				}
			}
			return img
		}, 0.2, false},
		{"different size", func() image.Image { return solid(10, 11, white) }, 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := diffFraction(solid(10, 10, white), tc.got(), channelTolerance)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("fraction = %v, want %v", got, tc.want)
			}
		})
	}
}
