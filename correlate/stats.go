package correlate

import (
	"math"
	"sort"

	"gonum.org/v1/gonum/mathext"
)

// minP keeps p-values representable: a change so strong that its tail
// underflows is reported as this, not as an impossible zero.
const minP = 1e-300

// nbUpperTail is P(X >= s) for a negative binomial with the given mean and
// size (dispersion) k: Var = mean + mean²/k. k = +Inf is Poisson.
//
// Error counts are overdispersed (bursty), so a Poisson tail would call every
// burst significant; the negative binomial lets the variance the baseline
// actually showed widen the tail.
func nbUpperTail(s, mean, k float64) float64 {
	if s <= 0 {
		return 1
	}
	if mean <= 0 {
		return minP
	}
	var p float64
	if math.IsInf(k, 1) || k > 1e12 {
		// P(Poisson(mean) >= s) = regularised lower gamma P(s, mean).
		p = mathext.GammaIncReg(s, mean)
	} else {
		// P(NB >= s) = I_{mean/(k+mean)}(s, k).
		p = mathext.RegIncBeta(s, k, mean/(k+mean))
	}
	return clampP(p)
}

// binomLowerTail is P(X <= x) for X ~ Binomial(n, p).
func binomLowerTail(x, n, p float64) float64 {
	if x >= n || p <= 0 {
		return 1
	}
	if x < 0 {
		return 0
	}
	if p >= 1 {
		return clampP(0)
	}
	// P(X <= x) = I_{1-p}(n-x, x+1).
	return clampP(mathext.RegIncBeta(n-x, x+1, 1-p))
}

// binomUpperTail is P(X >= x) for X ~ Binomial(n, p).
func binomUpperTail(x, n, p float64) float64 {
	if x <= 0 {
		return 1
	}
	if x > n || p <= 0 {
		return clampP(0)
	}
	if p >= 1 {
		return 1
	}
	// P(X >= x) = I_p(x, n-x+1): computed directly, because 1 - P(X < x)
	// loses exactly the tiny tails that matter here.
	return clampP(mathext.RegIncBeta(x, n-x+1, p))
}

func clampP(p float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	if p < minP {
		return minP
	}
	if p > 1 {
		return 1
	}
	return p
}

// benjaminiHochberg returns the BH-adjusted q-value of each p-value.
// Every series tested in a run is one hypothesis; reporting q instead of p is
// what keeps a run over thousands of signatures from paging on the luckiest.
func benjaminiHochberg(p []float64) []float64 {
	m := len(p)
	q := make([]float64, m)
	if m == 0 {
		return q
	}
	idx := make([]int, m)
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(a, b int) bool { return p[idx[a]] < p[idx[b]] })
	prev := 1.0
	for r := m - 1; r >= 0; r-- {
		i := idx[r]
		v := p[i] * float64(m) / float64(r+1)
		if v < prev {
			prev = v
		}
		q[i] = math.Min(prev, 1)
	}
	return q
}

func sum(x []float64) float64 {
	var s float64
	for _, v := range x {
		s += v
	}
	return s
}
