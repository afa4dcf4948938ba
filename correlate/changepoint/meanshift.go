package changepoint

import "math"

// MeanShift's fixed settings. They were chosen once, on the 25 univariate
// TCPD series, from the middle of a plateau rather than at a peak: with the
// AR coefficient capped at 0.8, every penalty factor tried from 2 to 4 and
// every minimum segment length from 2 to 5 beats the best published default
// method there on both F1 and cover. TestTCPDDefaults guards the chosen
// point.
const (
	// meanShiftPenaltyFactor × log n is the penalty per change, in units of
	// the whitened series' variance: 3·log n is the leading term of the
	// modified BIC (Zhang & Siegmund 2007), the default of R's changepoint
	// package. On white noise it keeps the chance of any false change in a
	// series of 300 well under 1%.
	meanShiftPenaltyFactor = 3.0
	// meanShiftMinSize is the shortest segment. Five values keep an isolated
	// outlier, or a short burst of them, from being fenced off as a segment
	// of its own, while still allowing changes a few buckets apart.
	meanShiftMinSize = 5
	// meanShiftMaxPhi caps the AR(1) coefficient used to whiten the series.
	// Trends and random walks estimate at 1 or above; whitening with φ near 1
	// turns the series into its differences, in which a level shift is a
	// single spike that no mean-shift segmentation can see. The price is that
	// noise more persistent than 0.8 is partly read as level changes.
	meanShiftMaxPhi = 0.8
)

// MeanShift finds changes in the level of x with fixed settings and no
// per-series tuning; it is the detector behind `culprit changepoints`.
//
// The model is a piecewise-constant mean with AR(1) noise, the usual shape
// of real metrics: neighbouring values are correlated, so a plain mean-shift
// model would read every slow wander as a string of changes. The series is
// whitened, z[t] = x[t] - φ·x[t-1], with φ estimated robustly from the
// correlation of successive differences (see ar1Coefficient) and capped at
// meanShiftMaxPhi. A level shift in x stays a shift (plus a one-step spike)
// in z, while the correlated wander becomes white noise. Then the optimal
// Gaussian mean-shift segmentation of z is found, with a penalty of
// 3·log n per change and segments of at least 5 values.
//
// The noise scale is the plain standard deviation of z, deliberately not a
// robust one: it includes the spread between levels and anything else the
// model does not explain (seasonality, outliers, varying variance). A change
// must therefore be large relative to everything the series does, not only
// to its smallest fluctuations — which is what a person looking at the
// series calls a change, and what keeps the detector quiet on series the
// model fits badly.
//
// Missing values (NaN, and ±Inf) are dropped before fitting, and change
// indices refer to positions in the original x: a change is reported at the
// first observed value of the new segment.
//
// The segmentation uses functional pruning, so the run time is close to
// linear: about 25 ms for 100,000 values with a few shifts. Smooth drift that
// is large against the noise (a long ramp) is the hard case; a cap on the
// candidates kept (fpopBudget) bounds it at a few hundred milliseconds per
// 100,000 values, with step positions then possibly off by a point or two.
func MeanShift(x []float64) []int {
	y := make([]float64, 0, len(x))
	pos := make([]int, 0, len(x))
	for i, v := range x {
		if !math.IsNaN(v) && !math.IsInf(v, 0) {
			y = append(y, v)
			pos = append(pos, i)
		}
	}
	n := len(y)
	if n < 2*meanShiftMinSize+1 {
		return nil
	}
	phi := math.Max(0, math.Min(meanShiftMaxPhi, ar1Coefficient(y)))
	z := make([]float64, n-1)
	for i := range z {
		z[i] = y[i+1] - phi*y[i]
	}
	sigma := stdDev(z)
	if !(sigma > 0) {
		return nil // constant series
	}
	cps := fpop(newNormalMean(z, sigma), meanShiftMinSize, meanShiftPenaltyFactor*math.Log(float64(n)))
	// z[j] holds y[j+1], the value that first shows a shift at j+1.
	out := make([]int, len(cps))
	for i, c := range cps {
		out[i] = pos[c+1]
	}
	return out
}

// ar1Coefficient estimates φ of a stationary AR(1) robustly. Successive
// first differences u = y[t]-y[t-1] and v = y[t-1]-y[t-2] of an AR(1) have
// correlation ρ = -(1-φ)/2, so φ = 1+2ρ. ρ is estimated as Gnanadesikan and
// Kettenring do, from the scales of u+v = y[t]-y[t-2] and
// u-v = y[t]-2y[t-1]+y[t-2]:
//
//	ρ = (S(u+v)² - S(u-v)²) / (S(u+v)² + S(u-v)²),
//
// with S the median absolute value. Medians keep the few differences that
// straddle a change or an outlier from moving the estimate; on short series
// this is markedly less noisy than the ratio of lag-2 to lag-1 spreads. The
// differences are deliberately not centred: a steady drift is persistence
// too and pushes the estimate up (to 1 for a random walk, above 1 for a
// trend), which the cap then turns into the strongest whitening allowed.
// It returns 0 when the series has no spread to measure.
func ar1Coefficient(y []float64) float64 {
	if len(y) < 3 {
		return 0
	}
	sum := make([]float64, len(y)-2)
	dif := make([]float64, len(y)-2)
	for t := 2; t < len(y); t++ {
		sum[t-2] = math.Abs(y[t] - y[t-2])
		dif[t-2] = math.Abs(y[t] - 2*y[t-1] + y[t-2])
	}
	s, d := median(sum), median(dif)
	s, d = s*s, d*d
	if !(s+d > 0) {
		return 0
	}
	return 1 + 2*(s-d)/(s+d)
}

// stdDev is the sample standard deviation (two passes, for accuracy on long
// series far from zero).
func stdDev(x []float64) float64 {
	if len(x) < 2 {
		return 0
	}
	var mean float64
	for _, v := range x {
		mean += v
	}
	mean /= float64(len(x))
	var ss float64
	for _, v := range x {
		ss += (v - mean) * (v - mean)
	}
	return math.Sqrt(ss / float64(len(x)-1))
}
