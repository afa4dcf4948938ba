package correlate

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// elevated is a quarter of an hour well above its baseline, block by block.
var elevated = sustain{blocks: []blockRate{{6, 1e-6}, {6.5, 1e-6}, {5.8, 1e-6}}, bucket: time.Minute}

func TestGrade(t *testing.T) {
	cfg := rules.Default().Correlate // page needs 5 customers, 3 for a new class a deploy is suspected of
	finding := func(kind Kind, customers, hosts int) Finding {
		return Finding{Kind: kind, Scope: ScopeSummary{Affected: map[string]int{FieldCustomer: customers, FieldHost: hosts}}}
	}
	suspected := func(f Finding) Finding {
		f.SuspectedDeploys = []Suspect{{ID: "dep-1"}}
		return f
	}
	tied := func(f Finding) Finding {
		f.SuspectedDeploys = []Suspect{{ID: "dep-1", corroborated: true}}
		return f
	}
	cases := []struct {
		name     string
		f        Finding
		carriers int
		excess   float64
		want     Severity
		reason   string
	}{
		{"new class, first minutes: few errors, five customers", finding(KindNewError, 5, 1), 3, 8, SeverityPage, "5 customers on 1 hosts"},
		{"new class, many errors carried by three customers", finding(KindNewError, 12, 3), 3, 40, SeverityNotify, "3 customers carry 80%"},
		{"new class, enough errors and broad", finding(KindNewError, 30, 4), 20, 60, SeverityPage, "30 customers"},
		{"new class, four customers", finding(KindNewError, 4, 2), 4, 6, SeverityNotify, "only 4 customers"},
		{"new class on too few entities", finding(KindNewError, 2, 1), 2, 6, SeverityInfo, "new signature reached only 2 customers"},
		{"increase carried by three customers, even with few errors", finding(KindErrorIncrease, 40, 6), 3, 8, SeverityNotify, "3 customers carry 80%"},
		{"new class a deploy is suspected of, three customers", suspected(finding(KindNewError, 3, 2)), 3, 6, SeverityPage, "page needs 3 customers for a new class a deploy is suspected of"},
		{"new class a deploy is suspected of, two customers on three hosts", suspected(finding(KindNewError, 2, 3)), 2, 6, SeverityNotify, "only 2 customers affected (page needs 3 for a new class"},
		{"new class a deploy is suspected of, one customer", suspected(finding(KindNewError, 1, 3)), 1, 6, SeverityNotify, "one customer carries the errors"},
		{"new class a deploy is suspected of, errors carried by two of many", suspected(finding(KindNewError, 9, 3)), 2, 30, SeverityNotify, "2 customers carry 80%"},
		{"increase a deploy is suspected of on one line, three customers", suspected(finding(KindErrorIncrease, 3, 2)), 3, 6, SeverityNotify, "page needs 5)"},
		{"increase a deploy is tied to, four customers carry it", tied(finding(KindErrorIncrease, 12, 7)), 4, 20, SeverityPage, "page needs 3 customers for an increase a deploy is tied to"},
		{"increase a deploy is tied to, two customers carry it", tied(finding(KindErrorIncrease, 12, 7)), 2, 20, SeverityNotify, "2 customers carry 80% of the excess errors (page needs 3 for an increase"},
		{"increase a deploy is tied to, one customer", tied(finding(KindErrorIncrease, 1, 3)), 1, 6, SeverityNotify, "one customer carries the errors"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := grade(c.f, c.carriers, c.excess, elevated, cfg)
			if got != c.want || !strings.Contains(strings.Join(reasons, "; "), c.reason) {
				t.Fatalf("grade = %s %q, want %s with %q", got, reasons, c.want, c.reason)
			}
		})
	}
}

// TestGradeHoldsDeploylessIncreases: a broad increase in an existing class
// with no deploy to blame pages only once every block of the last 20
// minutes has been elevated and the newest is not fading; new classes and
// increases tied to a deploy by corroborated evidence are never held, and
// one line of evidence alone does not lift the hold.
func TestGradeHoldsDeploylessIncreases(t *testing.T) {
	cfg := rules.Default().Correlate // sustain_without_deploy 20m
	broad := func(kind Kind, suspect string) Finding {
		f := Finding{Kind: kind, Scope: ScopeSummary{Affected: map[string]int{FieldCustomer: 40, FieldHost: 6}}}
		if suspect != "" {
			f.SuspectedDeploys = []Suspect{{ID: suspect, corroborated: true}}
		}
		return f
	}
	oneLine := func(f Finding) Finding {
		f.SuspectedDeploys[0].corroborated = false
		return f
	}
	blocks := func(b ...blockRate) sustain { return sustain{blocks: b, bucket: time.Minute} }
	hi, lo := 1e-6, 0.3
	off := cfg
	off.SustainWithoutDeploy = 0
	cases := []struct {
		name   string
		f      Finding
		held   sustain
		cfg    rules.Correlate
		want   Severity
		reason string
	}{
		{"young: the first block is baseline", broad(KindErrorIncrease, ""), blocks(blockRate{1.1, lo}, blockRate{9, hi}, blockRate{8, hi}), cfg, SeverityNotify,
			"stayed elevated for 20m0s without fading (the last 15m0s ran at 1.1×, 9.0×, 8.0× the baseline, by 5m0s)"},
		{"a burst fading on its own", broad(KindErrorIncrease, ""), blocks(blockRate{13, hi}, blockRate{5.4, hi}, blockRate{2.6, 1e-3}), cfg, SeverityNotify, "13.0×, 5.4×, 2.6×"},
		{"fading by excess, not by ratio", broad(KindErrorIncrease, ""), blocks(blockRate{7.8, hi}, blockRate{9.5, hi}, blockRate{4.9, hi}), cfg, SeverityNotify, "7.8×, 9.5×, 4.9×"},
		{"high but not significant in one block", broad(KindErrorIncrease, ""), blocks(blockRate{4, hi}, blockRate{3, 0.05}, blockRate{4, hi}), cfg, SeverityNotify, "without fading"},
		{"no blocks (a window shorter than the hold)", broad(KindErrorIncrease, ""), sustain{}, cfg, SeverityNotify, "without fading"},
		{"a step that holds", broad(KindErrorIncrease, ""), elevated, cfg, SeverityPage, "40 customers"},
		{"a ramp", broad(KindErrorIncrease, ""), blocks(blockRate{2.2, 1e-3}, blockRate{4, hi}, blockRate{7, hi}), cfg, SeverityPage, "40 customers"},
		{"young increase tied to a deploy", broad(KindErrorIncrease, "dep-1"), blocks(blockRate{1, 1}), cfg, SeverityPage, "40 customers"},
		{"young increase a deploy is suspected of on one line", oneLine(broad(KindErrorIncrease, "dep-1")), blocks(blockRate{1, 1}), cfg, SeverityNotify,
			"deploy dep-1 is suspected on one line of evidence only"},
		{"a step that holds, a deploy suspected on one line", oneLine(broad(KindErrorIncrease, "dep-1")), elevated, cfg, SeverityPage, "40 customers"},
		{"young new class a deploy is suspected of on one line", oneLine(broad(KindNewError, "dep-1")), blocks(blockRate{1, 1}), cfg, SeverityPage, "40 customers"},
		{"young new class without a deploy", broad(KindNewError, ""), blocks(blockRate{1, 1}), cfg, SeverityPage, "40 customers"},
		{"hold turned off", broad(KindErrorIncrease, ""), blocks(blockRate{1, 1}), off, SeverityPage, "40 customers"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, reasons := grade(c.f, 30, 200, c.held, c.cfg)
			if got != c.want || !strings.Contains(strings.Join(reasons, "; "), c.reason) {
				t.Fatalf("grade = %s %q, want %s with %q", got, reasons, c.want, c.reason)
			}
		})
	}
}

// TestSustained: block by block, a step that holds stays elevated and a
// burst that faded does not; a recovered episode has no blocks to judge.
func TestSustained(t *testing.T) {
	const L, onset = 240, 200
	exposure := make([]float64, L)
	for i := range exposure {
		exposure[i] = 1000
	}
	series := func(level func(i int) float64) []float64 {
		c := make([]float64, L)
		for i := range c {
			c[i] = 2 // a rate of 0.002 per request
			if i >= onset {
				c[i] = level(i)
			}
		}
		return c
	}
	ep := episode{start: onset, end: L, baseRate: 0.002}
	dc := detectConfigFor(rules.Default().Correlate, L, 0)
	span := holdBuckets(rules.Default().Correlate)
	if span != 20 {
		t.Fatalf("holdBuckets = %d, want 20 for 20m of 1m buckets", span)
	}
	cases := []struct {
		name     string
		counts   []float64
		ep       episode
		elevated []bool
	}{
		{"a step that holds", series(func(int) float64 { return 12 }), ep, []bool{true, true, true, true}},
		{"a burst that faded", series(func(i int) float64 {
			if i < L-8 {
				return 30
			}
			return 2
		}), ep, []bool{true, true, true, false}},
		{"recovered", series(func(int) float64 { return 12 }), episode{start: onset, end: onset + 20, baseRate: 0.002, recovered: true}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bs := sustained(c.counts, exposure, history{}, c.ep, span, dc)
			got := make([]bool, len(bs))
			for i, b := range bs {
				got[i] = b.elevated(2)
			}
			if !slices.Equal(got, c.elevated) {
				t.Fatalf("elevated blocks %v (%+v), want %v", got, bs, c.elevated)
			}
		})
	}
}

// TestCorroborated: one moderate line is what chance gives; a strong line,
// or two moderate ones, is a tie; a line against never adds; the version
// rate stands alone unless the rollout's minutes found the versions alike.
func TestCorroborated(t *testing.T) {
	cases := []struct {
		align, split, rate, rec evidence
		sbs                     sideBySide
		want                    bool
	}{
		{evNone, evNone, evNone, evNone, sideBySideNone, false},
		{evModerate, evNone, evNone, evNone, sideBySideAgrees, false},
		{evNone, evModerate, evNone, evNone, sideBySideNone, false},
		{evModerate, evNone, evModerate, evNone, sideBySideAgrees, true},
		{evNone, evStrong, evNone, evNone, sideBySideDisagrees, true},
		{evNone, evNone, evNone, evStrong, sideBySideNone, true},
		// The version rate alone: all there is after a quick rollout, or
		// agreeing with the few minutes there were; one line where the
		// minutes found the versions alike.
		{evNone, evNone, evModerate, evNone, sideBySideNone, true},
		{evNone, evNone, evModerate, evNone, sideBySideAgrees, true},
		{evNone, evNone, evModerate, evNone, sideBySideDisagrees, false},
	}
	for _, c := range cases {
		if got := corroborated(c.align, c.split, c.rate, c.rec, c.sbs); got != c.want {
			t.Errorf("corroborated(%+v) = %v, want %v", c, got, c.want)
		}
	}
}
