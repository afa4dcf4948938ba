package chart

import (
	"bytes"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/culprithq/culprit/correlate"
)

func renderScope(t *testing.T, format Format, mutate func(f *correlate.Finding)) []byte {
	t.Helper()
	f := fixtureFinding()
	if mutate != nil {
		mutate(f)
	}
	var buf bytes.Buffer
	if err := Scope(&buf, f, format, Size{}); err != nil {
		t.Fatalf("Scope: %v", err)
	}
	return buf.Bytes()
}

func noConcentration(f *correlate.Finding) { f.Scope.Concentration = nil }

func emptyScope(f *correlate.Finding) { f.Scope = correlate.ScopeSummary{} }

func TestScopeGolden(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(f *correlate.Finding)
	}{
		{"scope", nil},
		{"scope-affected", noConcentration},
		{"scope-empty", emptyScope},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkGolden(t, tc.name, renderScope(t, FormatPNG, tc.mutate))
		})
	}
}

func TestScopeSVG(t *testing.T) {
	many := func(f *correlate.Finding) {
		f.Scope.Concentration = nil
		for i := range 10 {
			f.Scope.Concentration = append(f.Scope.Concentration, correlate.Concentration{
				Field: correlate.FieldCustomer, Value: fmt.Sprint(1000 + i), ShareOfErrors: 0.5 - float64(i)/50, ShareOfRequests: 0.01,
			})
		}
	}
	for _, tc := range []struct {
		name    string
		mutate  func(f *correlate.Finding)
		present []string
		absent  []string
	}{
		{
			name: "concentration",
			present: []string{
				"edge-router: where the errors concentrate",
				"service.version=3.8.0", "cloud.provider=aws", "host.name=edge-aws-use1-03", "url.path=/fn/resize",
				"99%", "35%", "97%", "42%", "0.40%", "share of errors", "share of requests", "100%",
			},
			absent: []string{"organization.id", "no scope data"},
		},
		{
			name:    "at most eight concentrations",
			mutate:  many,
			present: []string{"organization.id=1000", "organization.id=1007"},
			absent:  []string{"organization.id=1008", "organization.id=1009"},
		},
		{
			name:    "affected counts without concentration",
			mutate:  noConcentration,
			present: []string{"edge-router: affected values per field", "organization.id", "url.domain", "host.name", "37", "41", "6"},
			absent:  []string{"share of errors", "no scope data"},
		},
		{
			name: "affected fields beyond the canonical ones",
			mutate: func(f *correlate.Finding) {
				f.Scope.Concentration = nil
				f.Scope.Affected = map[string]int{"cloud.region": 3}
			},
			present: []string{"cloud.region", "3"},
		},
		{
			name:    "empty scope",
			mutate:  emptyScope,
			present: []string{"edge-router: scope", "no scope data"},
		},
		{
			name: "control characters and invalid UTF-8 still make a valid SVG",
			mutate: func(f *correlate.Finding) {
				f.Scope.Concentration[0].Value = "a\x00b\x1bc\xff"
				f.Service = "edge\x07router"
			},
			present: []string{"service.version=a b c\uFFFD", "edge router: where the errors concentrate"},
		},
		{
			name:    "long value is shortened",
			mutate:  func(f *correlate.Finding) { f.Scope.Concentration[0].Value = strings.Repeat("x", 80) },
			present: []string{"service.version=" + strings.Repeat("x", 19) + "…"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc := parseSVG(t, renderScope(t, FormatSVG, tc.mutate))
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

func TestScopeBadInput(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mutate  func(f *correlate.Finding)
		wantErr string
	}{
		{"NaN share of errors", func(f *correlate.Finding) { f.Scope.Concentration[1].ShareOfErrors = math.NaN() },
			"finding f-edge-1: concentration 1 (cloud.provider=aws) has share of errors NaN"},
		{"share of requests above one", func(f *correlate.Finding) { f.Scope.Concentration[0].ShareOfRequests = 35 },
			"concentration 0 (service.version=3.8.0) has share of requests 35, want a fraction in [0, 1]"},
		{"negative share", func(f *correlate.Finding) { f.Scope.Concentration[2].ShareOfErrors = -0.1 },
			"concentration 2 (host.name=edge-aws-use1-03) has share of errors -0.1"},
		{"negative affected count", func(f *correlate.Finding) { f.Scope.Affected["host.name"] = -2 },
			"finding f-edge-1: affected host.name count is -2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := fixtureFinding()
			tc.mutate(f)
			var buf bytes.Buffer
			err := Scope(&buf, f, FormatSVG, Size{})
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
			}
			if buf.Len() != 0 {
				t.Errorf("wrote %d bytes despite the error", buf.Len())
			}
		})
	}
	if err := Scope(&bytes.Buffer{}, nil, FormatPNG, Size{}); err == nil || err.Error() != "scope chart: nil finding" {
		t.Errorf("nil finding: err = %v", err)
	}
}

// Scope needs no series: a ticket surge has a scope but nothing to chart
// per minute.
func TestScopeWithoutSeries(t *testing.T) {
	doc := parseSVG(t, renderScope(t, FormatSVG, func(f *correlate.Finding) { f.Series = nil }))
	if !doc.has("cloud.provider=aws") {
		t.Errorf("texts: %q", doc.texts)
	}
}

func TestFormatPercent(t *testing.T) {
	for _, tc := range []struct {
		share float64
		want  string
	}{
		{0, "0%"},
		{1, "100%"},
		{0.97, "97%"},
		{0.0996, "10%"},
		{0.042, "4.2%"},
		{0.004, "0.40%"},
		{0.00012, "0.01%"},
		{0.00001, "<0.01%"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			if got := formatPercent(tc.share); got != tc.want {
				t.Errorf("formatPercent(%v) = %q, want %q", tc.share, got, tc.want)
			}
		})
	}
}
