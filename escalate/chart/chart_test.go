package chart

import (
	"bytes"
	"image/png"
	"testing"

	"gonum.org/v1/plot/vg"
)

func TestParseFormat(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{"png", FormatPNG, false},
		{"SVG", FormatSVG, false},
		{" svg\n", FormatSVG, false},
		{"gif", "", true},
		{"", "", true},
		{".png", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseFormat(tc.in)
			if (err != nil) != tc.wantErr || got != tc.want {
				t.Errorf("ParseFormat(%q) = %q, %v; want %q, error %v", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestContentType(t *testing.T) {
	for f, want := range map[Format]string{FormatPNG: "image/png", FormatSVG: "image/svg+xml", "gif": "application/octet-stream"} {
		if got := f.ContentType(); got != want {
			t.Errorf("%q.ContentType() = %q, want %q", f, got, want)
		}
	}
}

// A Size maps to pixels at DPI, and zero fields take the default.
func TestSizePixels(t *testing.T) {
	for _, tc := range []struct {
		name          string
		size          Size
		wantW, wantH  int
		wantErrSubstr string
	}{
		{name: "zero is the default", size: Size{}, wantW: 800, wantH: 300},
		{name: "width only", size: Size{Width: 450}, wantW: 600, wantH: 300},
		{name: "square", size: Size{Width: 300, Height: 300}, wantW: 400, wantH: 400},
		{name: "largest", size: Size{Width: 3000, Height: 3000}, wantW: 4000, wantH: 4000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Rate(&buf, fixtureFinding(), fixDeploys, FormatPNG, tc.size); err != nil {
				t.Fatal(err)
			}
			cfg, err := png.DecodeConfig(&buf)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Width != tc.wantW || cfg.Height != tc.wantH {
				t.Errorf("PNG is %dx%d, want %dx%d", cfg.Width, cfg.Height, tc.wantW, tc.wantH)
			}
		})
	}
}

func TestFit(t *testing.T) {
	sty := textStyle(fontRegular, 10, colText)
	for _, tc := range []struct {
		name  string
		in    string
		width vg.Length
		want  string
	}{
		{"fits", "onset", 100, "onset"},
		{"shortened", "function invocation failed", 60, "function in…"},
		{"nothing fits", "onset", 1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := fit(sty, tc.in, tc.width)
			if got != tc.want {
				t.Errorf("fit(%q, %v) = %q, want %q", tc.in, tc.width, got, tc.want)
			}
			if sty.Width(got) > tc.width {
				t.Errorf("%q is %v wide, more than %v", got, sty.Width(got), tc.width)
			}
		})
	}
}

// Formats are matched as ParseFormat reads them, so a Format built from a
// file extension in capitals still draws.
func TestFormatNormalised(t *testing.T) {
	var buf bytes.Buffer
	if err := Rate(&buf, fixtureFinding(), fixDeploys, Format("PNG"), Size{}); err != nil {
		t.Fatal(err)
	}
	if _, err := png.DecodeConfig(&buf); err != nil {
		t.Errorf("not a PNG: %v", err)
	}
}
