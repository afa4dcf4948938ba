package chart

import (
	"math"
	"testing"
)

// bruteQuantile sums the probability mass, independently of the
// incomplete-function route quantile takes.
func bruteQuantile(mu, alpha, q float64) float64 {
	var p float64
	if alpha == 0 {
		p = math.Exp(-mu)
	} else {
		r := 1 / alpha
		p = math.Pow(r/(r+mu), r)
	}
	cdf := 0.0
	for k := 0.0; ; k++ {
		cdf += p
		if cdf >= q {
			return k
		}
		if alpha == 0 {
			p *= mu / (k + 1)
		} else {
			r := 1 / alpha
			p *= (k + r) / (k + 1) * mu / (r + mu)
		}
	}
}

func TestQuantile(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mu, alpha float64
	}{
		{"quiet poisson", 0.3, 0},
		{"one a bucket", 1, 0},
		{"busy poisson", 100, 0},
		{"bursty quiet", 0.3, 2},
		{"bursty busy", 50, 0.5},
		{"nearly poisson", 20, 0.001},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, q := range []float64{bandLow, 0.5, bandHigh} {
				got, want := quantile(tc.mu, tc.alpha, q), bruteQuantile(tc.mu, tc.alpha, q)
				if got != want {
					t.Errorf("quantile(%v, %v, %v) = %v, want %v", tc.mu, tc.alpha, q, got, want)
				}
			}
		})
	}
	// Known values: P(X≤1) = 0.963 and P(X≤2) = 0.9964 for Poisson(0.3).
	if got := quantile(0.3, 0, bandHigh); got != 2 {
		t.Errorf("Poisson(0.3) 99.5%% quantile = %v, want 2", got)
	}
	if got := quantile(0, 1, bandHigh); got != 0 {
		t.Errorf("zero mean quantile = %v, want 0", got)
	}
	// A million expected errors a bucket: ±2.58σ is about ±2576.
	lo, hi := quantile(1e6, 0, bandLow), quantile(1e6, 0, bandHigh)
	if math.Abs(lo-(1e6-2576)) > 3 || math.Abs(hi-(1e6+2576)) > 3 {
		t.Errorf("Poisson(1e6) 99%% range [%v, %v], want about [997424, 1002576]", lo, hi)
	}
	// Overdispersion widens the range.
	if p, nb := quantile(50, 0, bandHigh), quantile(50, 0.5, bandHigh); nb <= p {
		t.Errorf("NB upper %v is not above Poisson upper %v", nb, p)
	}
}

func TestDispersion(t *testing.T) {
	flat := func(n int, v float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		x, mu  []float64
		lo, hi float64
	}{
		{"too few buckets", []float64{0, 9, 0, 9}, flat(4, 2), 0, 0},
		{"exactly as expected is not overdispersed", flat(30, 2), flat(30, 2), 0, 0},
		{"poisson-like spread", []float64{1, 3, 2, 0, 2, 4, 1, 2, 3, 2, 1, 2, 3, 1, 2, 2, 0, 3, 2, 4}, flat(20, 2), 0, 0.1},
		{"bursty", []float64{0, 0, 0, 12, 0, 0, 1, 0, 0, 9, 0, 0, 0, 0, 10, 0, 0, 0, 8, 0}, flat(20, 2), 1, maxDispersion},
		{"capped", []float64{0, 0, 0, 0, 0, 0, 0, 0, 0, 90}, flat(10, 0.1), maxDispersion, maxDispersion},
		{"mismatched lengths", flat(20, 3), flat(19, 3), 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := dispersion(tc.x, tc.mu); got < tc.lo || got > tc.hi {
				t.Errorf("dispersion = %v, want in [%v, %v]", got, tc.lo, tc.hi)
			}
		})
	}
}
