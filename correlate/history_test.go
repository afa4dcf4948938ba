package correlate

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// The summary must give the dispersion blockAlpha measures on the buckets
// themselves, at any rate, or a week of baseline would judge differently
// from the same week searched in full.
func TestHistoryAlphaIsBlockAlpha(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const n, block = 403, 5 // a partial block at the end, as in a window
	counts, exposure := make([]float64, n), make([]float64, n)
	for i := range n {
		exposure[i] = float64(500 + r.IntN(1000))
		if i%40 == 0 {
			exposure[i] = 0 // an ingest gap
		}
		counts[i] = poisson(r, exposure[i]*0.002*(1+3*float64(i%17/16)))
	}
	h, _ := newExposureHistory(exposure, n, block).of(NewCounts(counts), block, nil)
	if h.err != sum(counts) || h.req != sum(exposure) || h.buckets != n {
		t.Fatalf("history totals %g errors / %g requests over %d, want %g / %g over %d", h.err, h.req, h.buckets, sum(counts), sum(exposure), n)
	}
	whole := n / block * block
	for _, rate := range []float64{0.001, 0.002, 0.005} {
		wantA, wantN := blockAlpha(counts[:whole], exposure[:whole], rate, block)
		gotA, gotN := h.alpha(rate)
		if gotN != wantN || math.Abs(gotA-wantA) > 1e-9*math.Max(1, wantA) {
			t.Errorf("rate %g: alpha %g over %g blocks, want %g over %g", rate, gotA, gotN, wantA, wantN)
		}
	}
}

// stepTraffic is one service with a sparse background class over n
// buckets whose errors all fall in the first half, and a step in another
// class at 'at'.
func stepTraffic(n, at int) *Traffic {
	r := rand.New(rand.NewPCG(3, 3))
	w, _ := NewWindow(t0, t0.Add(time.Duration(n)*time.Minute), time.Minute)
	st := ServiceTraffic{Service: "api", Requests: make([]float64, n), Errors: make([]float64, n)}
	bg, step := make([]float64, n), make([]float64, n)
	for i := range n {
		st.Requests[i] = 1000
		step[i] = poisson(r, 0.5)
		if i >= at {
			step[i] = poisson(r, 5)
		}
		// A deadlock that erred through the older buckets, quiet since,
		// and back in the newest ones.
		if i%30 == 0 && i < n/2 || i >= n-60 && i%2 == 0 {
			bg[i] = 3
		}
		st.Errors[i] = bg[i] + step[i]
	}
	st.Messages = []MessageCounts{
		{Message: "pq: deadlock detected", Counts: NewCounts(bg), Examples: []string{"pq: deadlock detected"}},
		{Message: "upstream timed out", Counts: NewCounts(step), Examples: []string{"upstream timed out"}},
	}
	return &Traffic{Window: w, Services: []ServiceTraffic{st}}
}

// A week of buckets searched only in its newest span finds what the whole
// search finds, and still counts the older buckets as baseline: a class
// whose errors are all older than the span is not new.
func TestDetectionSpanKeepsTheOlderBaseline(t *testing.T) {
	const n, at = 7 * 24 * 60, 7*24*60 - 200
	tr := stepTraffic(n, at)
	run := func(span time.Duration) map[string]Finding {
		cfg := rules.Default().Correlate
		cfg.DetectionSpan = rules.Duration(span)
		res, err := Run(context.Background(), staticSource{tr: tr}, Input{Window: tr.Window}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]Finding{}
		for _, f := range res.Findings {
			out[f.Signature] = f
		}
		return out
	}
	full, bounded := run(0), run(6*time.Hour)
	for _, sig := range []string{"upstream timed out", "pq: deadlock detected"} {
		f, g := full[sig], bounded[sig]
		if f.Signature == "" || g.Signature == "" {
			t.Fatalf("%q: found in full search %v, in the bounded one %v", sig, f.Signature != "", g.Signature != "")
		}
		if !f.Onset.Equal(g.Onset) || f.Kind != g.Kind {
			t.Errorf("%q: bounded %s at %s, full %s at %s", sig, g.Kind, g.Onset, f.Kind, f.Onset)
		}
		if d := math.Abs(g.Frequency.BeforePerMin - f.Frequency.BeforePerMin); d > 0.05*f.Frequency.BeforePerMin {
			t.Errorf("%q: bounded baseline %.3g/min, full %.3g/min", sig, g.Frequency.BeforePerMin, f.Frequency.BeforePerMin)
		}
		if len(g.Series.Errors) != 360 {
			t.Errorf("%q: the bounded finding charts %d buckets, want the 360 searched", sig, len(g.Series.Errors))
		}
	}
	if k := bounded["pq: deadlock detected"].Kind; k != KindErrorIncrease {
		t.Errorf("a class that erred before the searched span is %s, want %s", k, KindErrorIncrease)
	}
}
