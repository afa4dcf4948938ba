package chart

import (
	"math"

	"gonum.org/v1/gonum/mathext"
)

// The expected range drawn around the baseline is the central 99% of a
// negative binomial count whose mean is the bucket's baseline and whose
// overdispersion is estimated from the finding's own pre-onset buckets.
//
// Why not a plain Poisson band: error counts are bursty (retries, one
// customer's batch job), so a Poisson band is too narrow and would make
// ordinary noise look like an incident on the very chart meant to show
// that the change is real. Why not a fixed dispersion: the correlator
// judges each series against its own burstiness, and the picture should
// tell the same story. With fewer than minPreBuckets quiet buckets there is
// nothing to estimate from and the band falls back to Poisson, the
// narrowest honest choice. The band is per bucket and not corrected for
// the number of buckets shown: about one bucket in a hundred is expected to
// poke out of it even when nothing happened, which is why significance is
// the correlator's number and not something to read off the chart.
const (
	bandLow  = 0.005
	bandHigh = 0.995
	// minPreBuckets is the fewest pre-onset buckets the dispersion is
	// estimated from.
	minPreBuckets = 10
	// maxDispersion caps the estimate: a handful of buckets with a tiny
	// baseline can otherwise produce a band that swallows the incident.
	maxDispersion = 4
)

// dispersion estimates the NB2 overdispersion α (variance μ + αμ²) from
// counts x and expected means mu by the method of moments,
// α = Σ((x−μ)² − x) / Σμ², which is unbiased term by term because
// E[(x−μ)²] − E[x] = αμ². Under-dispersed data gives 0, i.e. Poisson.
func dispersion(x, mu []float64) float64 {
	if len(x) < minPreBuckets || len(x) != len(mu) {
		return 0
	}
	var num, den float64
	for i := range x {
		d := x[i] - mu[i]
		num += d*d - x[i]
		den += mu[i] * mu[i]
	}
	if den <= 0 || num <= 0 {
		return 0
	}
	return min(num/den, maxDispersion)
}

// quantile is the smallest count k with P(X ≤ k) ≥ q for X negative
// binomial with mean mu and overdispersion alpha (Poisson when alpha is 0).
// It uses the regularised incomplete gamma and beta functions rather than
// summing the probability mass, so that it stays exact and cheap for a
// bucket of a million expected errors.
func quantile(mu, alpha, q float64) float64 {
	if mu <= 0 || !finite(mu) {
		return 0
	}
	cdf := func(k float64) float64 {
		if alpha <= 0 {
			return mathext.GammaIncRegComp(k+1, mu)
		}
		r := 1 / alpha
		return mathext.RegIncBeta(r, k+1, r/(r+mu))
	}
	if cdf(0) >= q {
		return 0
	}
	sd := math.Sqrt(mu + alpha*mu*mu)
	lo, hi := 0.0, math.Ceil(mu+12*sd+10)
	for cdf(hi) < q && hi < 1e15 {
		lo, hi = hi, 2*hi
	}
	// Invariant: cdf(lo) < q ≤ cdf(hi).
	for hi-lo > 1 {
		mid := math.Floor((lo + hi) / 2)
		if cdf(mid) >= q {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi
}

// bandFor returns the lower and upper bounds of the expected range for each
// baseline mean, in counts per bucket. Baselines repeat (a flat pre-onset
// rate times a steady request volume), so bounds are memoised per mean.
func bandFor(baseline []float64, alpha float64) (lo, hi []float64) {
	lo = make([]float64, len(baseline))
	hi = make([]float64, len(baseline))
	memo := make(map[float64][2]float64)
	for i, mu := range baseline {
		b, ok := memo[mu]
		if !ok {
			b = [2]float64{quantile(mu, alpha, bandLow), quantile(mu, alpha, bandHigh)}
			memo[mu] = b
		}
		lo[i], hi[i] = b[0], b[1]
	}
	return lo, hi
}
