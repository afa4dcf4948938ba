package changepoint

import (
	"math"
	"slices"
)

// Cost is the cost of the half-open segment [start, end) of a series; lower
// is better fit.
//
// PELT's pruning is exact only for costs where splitting a segment never
// costs more than leaving it whole: Cost(a,b)+Cost(b,d) <= Cost(a,d). Every
// "-2 × maximised log-likelihood" cost has that property, which is why the
// costs here are written in that form. Costs must be finite for
// 0 <= start < end <= n.
type Cost interface {
	Cost(start, end int) float64
}

// Poisson is the cost of error counts against exposure (request volume):
// within a segment counts[i] ~ Poisson(rate × exposure[i]). Modelling the
// rate rather than the raw count is what keeps a traffic surge (twice the
// requests, twice the errors) from looking like a change.
type Poisson struct {
	c  []float64 // prefix sums of counts
	e  []float64 // prefix sums of exposure
	cl []float64 // prefix sums of counts[i] × log(exposure[i])
}

// NewPoisson precomputes prefix sums so that Cost is O(1).
//
// A bucket with zero (or negative, or non-finite) exposure, or a non-finite
// or negative count, is ignored entirely: no traffic says nothing about the
// rate, and a count without traffic cannot come from the model. counts and
// exposure must have the same length; the shorter length is used otherwise.
//
// The three prefix sums share one allocation, and the log of an exposure
// equal to the previous one is not taken again (request volume repeats
// often, and this runs twice on every series a run segments).
func NewPoisson(counts, exposure []float64) *Poisson {
	return new(Poisson).Reset(counts, exposure)
}

// Reset makes p the cost of counts against exposure, as NewPoisson does,
// reusing p's prefix sums when they have room: a run segments thousands
// of series one after the other (correlate keeps a pool of them), and
// fresh prefix sums for each were most of a run's garbage.
func (p *Poisson) Reset(counts, exposure []float64) *Poisson {
	n := min(len(counts), len(exposure))
	var buf []float64
	if p.c != nil && cap(p.c) >= 3*(n+1) {
		buf = p.c[:3*(n+1)]
	} else {
		buf = make([]float64, 3*(n+1))
	}
	p.c = buf[: n+1 : cap(buf)] // the whole buffer, for the next Reset
	p.e = buf[n+1 : 2*(n+1) : 2*(n+1)]
	p.cl = buf[2*(n+1) : 3*(n+1) : 3*(n+1)]
	p.c[0], p.e[0], p.cl[0] = 0, 0, 0
	lastE, lastLog := math.NaN(), 0.0
	for i := range n {
		ci, ei := counts[i], exposure[i]
		var dc, de, dl float64
		if ei > 0 && !math.IsInf(ei, 0) && ci >= 0 && !math.IsInf(ci, 0) {
			dc, de = ci, ei
			if ci > 0 {
				if ei != lastE {
					lastE, lastLog = ei, math.Log(ei)
				}
				dl = ci * lastLog
			}
		}
		p.c[i+1] = p.c[i] + dc
		p.e[i+1] = p.e[i] + de
		p.cl[i+1] = p.cl[i] + dl
	}
	return p
}

// Len is the number of buckets.
func (p *Poisson) Len() int { return len(p.c) - 1 }

// Cost is -2 × the maximised Poisson log-likelihood of [start, end), without
// the log(c!) terms, which do not depend on the segmentation.
//
// The Σ c·log(exposure) term is kept although it too cancels between
// segmentations: with it, the cost does not change when exposure is rescaled
// (requests per second versus per minute), so penalties mean the same thing
// whatever unit the caller uses.
func (p *Poisson) Cost(start, end int) float64 {
	c := p.c[end] - p.c[start]
	e := p.e[end] - p.e[start]
	if c <= 0 || e <= 0 {
		// The rate estimate is 0 and the likelihood is exactly 1.
		return 0
	}
	ll := c*(math.Log(c/e)-1) + (p.cl[end] - p.cl[start])
	return -2 * ll
}

// Rate is the maximum-likelihood rate of [start, end): sum of counts over
// sum of exposure. It is NaN when the segment has no exposure at all, since
// any rate fits it equally well.
func (p *Poisson) Rate(start, end int) float64 {
	e := p.e[end] - p.e[start]
	if e <= 0 {
		return math.NaN()
	}
	return (p.c[end] - p.c[start]) / e
}

// madScale turns a median absolute deviation into a Gaussian standard
// deviation: 1/Φ⁻¹(3/4).
const madScale = 1.482602218505602

// NormalMean is the cost of a Gaussian mean shift with one variance for the
// whole series. Estimating the variance once, rather than per segment, is
// what puts the penalty on a known scale: a penalty of k is "k units of
// chi-square evidence" on every series, whatever its units.
type NormalMean struct {
	s, ss  []float64 // prefix sums of centred values and their squares
	centre float64
	sigma  float64
}

// NewNormalMean estimates sigma from first differences: MAD(diff)/(√2·0.6745).
// Differencing cancels level shifts, so the estimate is of the noise alone
// even when the series has many changes, and the MAD ignores the few large
// differences at the changes themselves and at outliers.
//
// When more than half the differences are equal (counts, plateaus) the MAD is
// 0; the standard deviation of the differences is used instead, and if the
// series is constant, 1 (any scale gives zero cost then). x must be finite.
func NewNormalMean(x []float64) *NormalMean {
	return newNormalMean(x, diffSigma(x))
}

func newNormalMean(x []float64, sigma float64) *NormalMean {
	n := len(x)
	m := &NormalMean{
		s:      make([]float64, n+1),
		ss:     make([]float64, n+1),
		centre: mean(x),
		sigma:  sigma,
	}
	// Centring before summing keeps S²/L from cancelling catastrophically
	// against SS on long series far from zero.
	for i, v := range x {
		d := v - m.centre
		m.s[i+1] = m.s[i] + d
		m.ss[i+1] = m.ss[i] + d*d
	}
	return m
}

// Len is the number of values.
func (m *NormalMean) Len() int { return len(m.s) - 1 }

// Sigma is the noise standard deviation the cost is scaled by.
func (m *NormalMean) Sigma() float64 { return m.sigma }

// Mean is the sample mean of [start, end).
func (m *NormalMean) Mean(start, end int) float64 {
	return m.centre + (m.s[end]-m.s[start])/float64(end-start)
}

// Cost is the residual sum of squares of [start, end) around its mean, over
// sigma²: -2 × the maximised log-likelihood up to a constant.
func (m *NormalMean) Cost(start, end int) float64 {
	l := float64(end - start)
	s := m.s[end] - m.s[start]
	rss := (m.ss[end] - m.ss[start]) - s*s/l
	if rss < 0 {
		// Rounding on a constant stretch.
		return 0
	}
	return rss / (m.sigma * m.sigma)
}

// diffSigma is the robust noise scale from first differences described at
// NewNormalMean.
func diffSigma(x []float64) float64 {
	if len(x) < 2 {
		return 1
	}
	d := make([]float64, len(x)-1)
	for i := range d {
		d[i] = x[i+1] - x[i]
	}
	med := median(d)
	for i := range d {
		d[i] = math.Abs(d[i] - med)
	}
	if s := madScale * median(d) / math.Sqrt2; s > 0 {
		return s
	}
	var mean, ss float64
	for i := range len(x) - 1 {
		mean += x[i+1] - x[i]
	}
	mean /= float64(len(x) - 1)
	for i := range len(x) - 1 {
		v := x[i+1] - x[i] - mean
		ss += v * v
	}
	if s := math.Sqrt(ss/float64(len(x)-1)) / math.Sqrt2; s > 0 {
		return s
	}
	return 1
}

func mean(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	var s float64
	for _, v := range x {
		s += v
	}
	return s / float64(len(x))
}

// median returns the median of x without modifying it (0 for empty x).
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	y := slices.Clone(x)
	h := len(y) / 2
	hi := selectKth(y, h)
	if len(y)%2 == 1 {
		return hi
	}
	// selectKth left the h smallest values in y[:h].
	return (slices.Max(y[:h]) + hi) / 2
}

// selectKth reorders a so that a[k] is its k-th smallest value (0-based),
// with no larger value before it and no smaller one after, and returns it.
// It is Hoare's selection: linear on average, where sorting would be
// n·log n — the medians of a 100,000-value series are a third of
// MeanShift's time otherwise. Equal values split evenly, so series with
// many ties (counts, plateaus) do not degrade it. a must not contain NaN.
func selectKth(a []float64, k int) float64 {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		// Median of three as pivot: sorted or reversed input stays linear.
		if a[mid] < a[lo] {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi] < a[lo] {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi] < a[mid] {
			a[hi], a[mid] = a[mid], a[hi]
		}
		p := a[mid]
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// a[lo..j] <= p, a[i..hi] >= p, and everything between equals p.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return a[k]
		}
	}
	return a[k]
}
