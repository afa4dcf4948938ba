package correlate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// staticSource serves precomputed traffic, so benchmarks and tests measure
// the correlator alone.
type staticSource struct {
	tr    *Traffic
	scope *Scope
}

func (s staticSource) Traffic(context.Context, Window) (*Traffic, error) { return s.tr, nil }
func (s staticSource) Scope(context.Context, ScopeQuery) (*Scope, error) {
	if s.scope != nil {
		return s.scope, nil
	}
	return &Scope{}, nil
}

// syntheticTraffic builds services×perService signatures over n buckets.
// Messages are random word sequences so Drain keeps them apart, counts are
// Poisson around a per-signature rate, and one signature in every service
// steps up at 3/4 of the window.
func syntheticTraffic(services, perService, n int, seed uint64) *Traffic {
	return syntheticTrafficStep(services, perService, n, 3*n/4, seed)
}

// syntheticTrafficStep is syntheticTraffic with the step at bucket at.
func syntheticTrafficStep(services, perService, n, at int, seed uint64) *Traffic {
	return syntheticTrafficMix(services, perService, n, at, 0, seed)
}

// syntheticTrafficMix is syntheticTrafficStep where a share quiet of each
// service's signatures (never the one that steps) err about once an hour
// instead of about once a minute: most classes are quiet most minutes.
func syntheticTrafficMix(services, perService, n, at int, quiet float64, seed uint64) *Traffic {
	r := rand.New(rand.NewPCG(seed, seed))
	w, _ := NewWindow(t0, t0.Add(time.Duration(n)*time.Minute), time.Minute)
	words := syntheticWords(r)
	tr := &Traffic{Window: w}
	for s := range services {
		st := ServiceTraffic{Service: fmt.Sprintf("svc-%03d", s), Requests: make([]float64, n), Errors: make([]float64, n)}
		for i := range n {
			st.Requests[i] = 1000
		}
		for m := range perService {
			name := syntheticName(r, words, m)
			rate := 0.0005 * (1 + r.Float64()*4)
			if m > 0 && float64(m) <= quiet*float64(perService) {
				rate /= 60
			}
			counts := make([]float64, n)
			for i := range n {
				mu := rate * st.Requests[i]
				if m == 0 && i >= at {
					mu *= 10
				}
				counts[i] = poisson(r, mu)
				st.Errors[i] += counts[i]
			}
			st.Messages = append(st.Messages, MessageCounts{Message: name, Counts: NewCounts(counts), Examples: []string{name}})
		}
		tr.Services = append(tr.Services, st)
	}
	return tr
}

// syntheticWords are 3,000 words of letters only: masked messages carry
// their numbers as <*>, and a token with a digit reads as a value to
// Drain, which would make every message a candidate join of every other.
func syntheticWords(r *rand.Rand) []string {
	words := make([]string, 3000)
	for i := range words {
		w := make([]byte, 6+r.IntN(3))
		for k := range w {
			w[k] = byte('a' + r.IntN(26))
		}
		words[i] = string(w)
	}
	return words
}

// syntheticName is signature m's message: 4 to 8 of words, so that Drain
// keeps the signatures apart.
func syntheticName(r *rand.Rand, words []string, m int) string {
	var b strings.Builder
	for k := range 4 + m%5 {
		if k > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[r.IntN(len(words))])
	}
	return b.String()
}

// BenchmarkCorrelate10kSeries is the speed target: 10,000 series of 360
// buckets through grouping, testing, the family correction and explanation.
func BenchmarkCorrelate10kSeries(b *testing.B) {
	tr := syntheticTraffic(100, 100, 360, 1)
	src := staticSource{tr: tr}
	cfg := rules.Default().Correlate
	b.ReportAllocs()
	b.ResetTimer()
	var res *Result
	for b.Loop() {
		var err error
		res, err = Run(context.Background(), src, Input{Window: tr.Window}, cfg)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(res.Stats.Tested), "series")
}

func TestRunFindsInjectedSteps(t *testing.T) {
	tr := syntheticTraffic(5, 40, 360, 2)
	res, err := Run(context.Background(), staticSource{tr: tr}, Input{Window: tr.Window}, rules.Default().Correlate)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stats.Tested < 195 {
		t.Errorf("tested %d series, want about 200 (Drain merged random messages?)", res.Stats.Tested)
	}
	found := map[string]bool{}
	for _, f := range res.Findings {
		found[f.Service] = true
		if f.Significance.Tests != res.Stats.Tested || f.Significance.Method != Method {
			t.Errorf("significance %+v does not describe the family", f.Significance)
		}
		if d := f.Onset.Sub(tr.Window.Start(270)); d < -3*time.Minute || d > 3*time.Minute {
			t.Errorf("%s onset %s, want about %s", f.Service, f.Onset, tr.Window.Start(270))
		}
	}
	if len(found) != 5 || len(res.Findings) != 5 {
		t.Errorf("found %d findings in %d services, want one per service", len(res.Findings), len(found))
	}
}
