package correlate

import (
	"context"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

// A burst of a word-variant of a class that was there all along is not a
// brand-new error; a burst of a message with no such relative still is.
func TestVariantOfAnExistingClassIsNotNew(t *testing.T) {
	const n = 360
	w, _ := NewWindow(t0, t0.Add(n*time.Minute), time.Minute)
	series := func(f func(i int) float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	burst := func(i int) float64 {
		if i >= 300 && i < 330 {
			return 8
		}
		return 0
	}
	st := ServiceTraffic{Service: "api", Requests: series(func(int) float64 { return 1000 })}
	msgs := map[string][]float64{
		// The background: a deadlock on one relation now and then.
		"pq: deadlock detected on relation sites": series(func(i int) float64 {
			if i%15 == 0 {
				return 1
			}
			return 0
		}),
		// The same deadlock on another relation, absent until it bursts.
		"pq: deadlock detected on relation deploys": series(burst),
		// A message with no relative, bursting at the same time.
		"function invocation failed upstream returned bad gateway": series(burst),
	}
	for m, c := range msgs {
		st.Messages = append(st.Messages, MessageCounts{Message: m, Counts: NewCounts(c), Examples: []string{m}})
	}
	st.Errors = make([]float64, n)
	for _, mc := range st.Messages {
		for i, v := range mc.Counts.Dense() {
			st.Errors[i] += v
		}
	}
	tr := &Traffic{Window: w, Services: []ServiceTraffic{st}}
	res, err := Run(context.Background(), staticSource{tr: tr}, Input{Window: w}, rules.Default().Correlate)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]Kind{}
	for _, f := range res.Findings {
		kinds[f.Signature] = f.Kind
	}
	if k := kinds["pq: deadlock detected on relation deploys"]; k == KindNewError {
		t.Errorf("the deploys variant of a background deadlock is judged %s; findings %v", k, kinds)
	}
	if k := kinds["function invocation failed upstream returned bad gateway"]; k != KindNewError {
		t.Errorf("a message with no relative is judged %q, want %s; findings %v", k, KindNewError, kinds)
	}
}

func TestVariants(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"deadlock on relation sites", "deadlock on relation deploys", true},
		{"deadlock on relation sites", "deadlock on relation sites", false},
		{"deadlock on relation <*>", "deadlock on relation deploys", false},
		{"VM Started now", "VM Resumed later", false},
		{"a b c", "a b", false},
	} {
		if got := variants(c.a, c.b); got != c.want {
			t.Errorf("variants(%q, %q) = %v, want %v", c.a, c.b, got, c.want)
		}
	}
}
