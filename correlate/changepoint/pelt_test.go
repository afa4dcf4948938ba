package changepoint

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"gonum.org/v1/gonum/stat/distuv"
)

// optimalPartition is the O(n²) dynamic programme PELT must agree with
// (Jackson et al. 2005), written as plainly as possible: every allowed last
// change is tried at every end.
func optimalPartition(c Cost, n, minSize int, penalty float64) []int {
	if n < 2*minSize {
		return nil
	}
	f := make([]float64, n+1)
	last := make([]int, n+1)
	f[0] = -penalty
	for t := 1; t <= n; t++ {
		f[t] = math.Inf(1)
		for s := 0; s <= t-minSize; s++ {
			if s != 0 && s < minSize {
				continue
			}
			if v := f[s] + c.Cost(s, t) + penalty; v < f[t] {
				f[t], last[t] = v, s
			}
		}
	}
	return backtrack(last, n)
}

// penalised is the objective PELT minimises, for a given segmentation.
func penalised(c Cost, cps []int, n int, penalty float64) float64 {
	b := append(append([]int{0}, cps...), n)
	total := penalty * float64(len(cps))
	for i := 1; i < len(b); i++ {
		total += c.Cost(b[i-1], b[i])
	}
	return total
}

// gaussSteps is noise of sd 1 around levels that change at the given
// indices.
func gaussSteps(r *rand.Rand, n int, at []int, levels []float64) []float64 {
	x := make([]float64, n)
	k := 0
	for i := range x {
		for k < len(at) && i >= at[k] {
			k++
		}
		x[i] = levels[k] + r.NormFloat64()
	}
	return x
}

// poissonCounts draws counts[i] ~ Poisson(rate(i) × exposure[i]).
func poissonCounts(r *rand.Rand, exposure []float64, rate func(i int) float64) []float64 {
	c := make([]float64, len(exposure))
	for i, e := range exposure {
		if lam := rate(i) * e; lam > 0 {
			c[i] = distuv.Poisson{Lambda: lam, Src: r}.Rand()
		}
	}
	return c
}

func near(got, want []int, tol int) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if d := got[i] - want[i]; d < -tol || d > tol {
			return false
		}
	}
	return true
}

func TestPELTRecoversGaussianSteps(t *testing.T) {
	for _, tc := range []struct {
		name    string
		n       int
		at      []int
		levels  []float64
		minSize int
	}{
		{"one step", 200, []int{100}, []float64{0, 3}, 1},
		{"three steps", 240, []int{50, 120, 160}, []float64{0, 4, 1, 6}, 2},
		{"down and up", 300, []int{100, 200}, []float64{5, 2, 5}, 5},
		{"change near the start", 150, []int{8}, []float64{0, 5}, 3},
		{"no change", 300, nil, []float64{0}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for seed := range 10 {
				r := rand.New(rand.NewPCG(uint64(seed), 11))
				x := gaussSteps(r, tc.n, tc.at, tc.levels)
				got := PELT(NewNormalMean(x), tc.n, tc.minSize, 3*math.Log(float64(tc.n)))
				if !near(got, tc.at, 2) {
					t.Errorf("seed %d: change points %v, want %v ±2", seed, got, tc.at)
				}
			}
		})
	}
}

func TestPELTRespectsMinSize(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	x := gaussSteps(r, 200, []int{60, 63, 120, 122}, []float64{0, 9, 0, -9, 0})
	for _, m := range []int{1, 2, 4, 7} {
		cps := PELT(NewNormalMean(x), len(x), m, 3*math.Log(200))
		b := append(append([]int{0}, cps...), len(x))
		for i := 1; i < len(b); i++ {
			if b[i]-b[i-1] < m {
				t.Errorf("minSize %d: segment [%d,%d) in %v", m, b[i-1], b[i], cps)
			}
		}
		if m == 1 && !near(cps, []int{60, 63, 120, 122}, 0) {
			t.Errorf("minSize 1 should find both blips exactly, got %v", cps)
		}
	}
}

func TestPELTRecoversPoissonSteps(t *testing.T) {
	const n = 360
	for seed := range 10 {
		r := rand.New(rand.NewPCG(uint64(seed), 5))
		exposure := make([]float64, n)
		for i := range exposure {
			exposure[i] = 500 + 1000*r.Float64() // uneven traffic
		}
		counts := poissonCounts(r, exposure, func(i int) float64 {
			if i >= 120 && i < 240 {
				return 0.006 // an incident: errors per request triple
			}
			return 0.002
		})
		p := NewPoisson(counts, exposure)
		got := PELT(p, n, 1, 3*math.Log(n))
		if !near(got, []int{120, 240}, 3) {
			t.Errorf("seed %d: change points %v, want [120 240] ±3", seed, got)
			continue
		}
		if r := p.Rate(got[0], got[1]); math.Abs(r-0.006) > 0.001 {
			t.Errorf("seed %d: incident rate %.4f, want about 0.006", seed, r)
		}
	}
}

// A traffic surge doubles requests and, at a constant error rate, errors:
// that is not a change in the error rate, and the Poisson cost must not call
// it one. The same counts scored without exposure must show the surge, or
// the test would pass for a detector that finds nothing at all.
func TestPoissonTrafficSurgeIsNotAChange(t *testing.T) {
	const n = 360
	falseAlarms := 0
	for seed := range 20 {
		r := rand.New(rand.NewPCG(uint64(seed), 9))
		exposure := make([]float64, n)
		ones := make([]float64, n)
		for i := range exposure {
			exposure[i] = 2000
			if i >= 150 && i < 230 {
				exposure[i] = 4000
			}
			ones[i] = 1
		}
		counts := poissonCounts(r, exposure, func(int) float64 { return 0.01 })
		pen := 3 * math.Log(n)
		if cps := PELT(NewPoisson(counts, exposure), n, 1, pen); len(cps) > 0 {
			falseAlarms++
			t.Logf("seed %d: rate changes reported at %v", seed, cps)
		}
		if cps := PELT(NewPoisson(counts, ones), n, 1, pen); !near(cps, []int{150, 230}, 3) {
			t.Errorf("seed %d: without exposure the surge should show at [150 230], got %v", seed, cps)
		}
	}
	if falseAlarms > 1 {
		t.Errorf("%d of 20 constant-rate series with a traffic surge got a rate change", falseAlarms)
	}
}

func TestPoissonZeroCountsAndExposure(t *testing.T) {
	counts := []float64{0, 0, 3, 0, 5, 7, 0}
	exposure := []float64{100, 0, 100, 0, 100, 100, 100}
	p := NewPoisson(counts, exposure)
	// Buckets without exposure say nothing: the same data without them must
	// cost the same.
	q := NewPoisson([]float64{0, 3, 5, 7, 0}, []float64{100, 100, 100, 100, 100})
	for _, tc := range []struct{ ps, pe, qs, qe int }{
		{0, 7, 0, 5}, {1, 3, 1, 2}, {2, 6, 1, 4}, {3, 5, 2, 3},
	} {
		if a, b := p.Cost(tc.ps, tc.pe), q.Cost(tc.qs, tc.qe); math.Abs(a-b) > 1e-9 {
			t.Errorf("Cost[%d,%d) = %v, without zero-exposure buckets %v", tc.ps, tc.pe, a, b)
		}
	}
	// All-zero counts fit a zero rate perfectly.
	if c := p.Cost(0, 2); c != 0 {
		t.Errorf("Cost of zero counts = %v, want 0", c)
	}
	if c := p.Cost(1, 2); c != 0 || !math.IsNaN(p.Rate(1, 2)) {
		t.Errorf("a bucket without exposure: cost %v rate %v, want 0 and NaN", c, p.Rate(1, 2))
	}
	if r := p.Rate(0, 7); math.Abs(r-15.0/500) > 1e-12 {
		t.Errorf("Rate = %v, want %v", r, 15.0/500)
	}
	// A count with no traffic cannot come from the model and is ignored
	// rather than making every segment containing it infinitely bad.
	w := NewPoisson([]float64{2, 9, 2}, []float64{100, 0, 100})
	if c := w.Cost(0, 3); math.IsInf(c, 0) || math.IsNaN(c) || math.Abs(c-NewPoisson([]float64{2, 2}, []float64{100, 100}).Cost(0, 2)) > 1e-9 {
		t.Errorf("count without exposure changed the cost: %v", c)
	}
	// Rescaling exposure (per second vs per minute) must not change costs.
	scaled := make([]float64, len(exposure))
	for i, e := range exposure {
		scaled[i] = 60 * e
	}
	s := NewPoisson(counts, scaled)
	if a, b := p.Cost(0, 7), s.Cost(0, 7); math.Abs(a-b) > 1e-9 {
		t.Errorf("Cost depends on the exposure unit: %v vs %v", a, b)
	}
}

// PELT's pruning must never change the answer: on small random inputs it
// must return exactly the optimal partition, for both costs, with and
// without a minimum segment length, and at penalties from 0 upwards.
func TestPELTEqualsOptimalPartitioning(t *testing.T) {
	for seed := range 400 {
		r := rand.New(rand.NewPCG(uint64(seed), 17))
		n := 1 + r.IntN(60)
		minSize := 1 + r.IntN(4)
		penalty := r.Float64() * 4 * math.Log(float64(n)+1)
		if seed%10 == 0 {
			penalty = 0
		}
		var c Cost
		if seed%2 == 0 {
			x := make([]float64, n)
			lvl := 0.0
			for i := range x {
				if r.Float64() < 0.1 {
					lvl += 3 * r.NormFloat64()
				}
				x[i] = lvl + r.NormFloat64()
			}
			c = NewNormalMean(x)
		} else {
			exposure := make([]float64, n)
			for i := range exposure {
				if r.Float64() > 0.1 {
					exposure[i] = 10 + 100*r.Float64()
				}
			}
			rate := 0.05 * r.Float64()
			counts := poissonCounts(r, exposure, func(i int) float64 {
				if i > n/2 {
					return 3 * rate
				}
				return rate
			})
			c = NewPoisson(counts, exposure)
		}
		got := PELT(c, n, minSize, penalty)
		want := optimalPartition(c, n, minSize, penalty)
		if !slices.Equal(got, want) {
			t.Errorf("seed %d (n=%d minSize=%d penalty=%.2f): PELT %v (%.6f), optimal partitioning %v (%.6f)",
				seed, n, minSize, penalty, got, penalised(c, got, n, penalty), want, penalised(c, want, n, penalty))
		}
	}
}

func TestPELTDegenerateInputs(t *testing.T) {
	x := []float64{0, 0, 0, 10, 10, 10}
	nm := NewNormalMean(x)
	for _, tc := range []struct {
		name    string
		n, m    int
		penalty float64
		want    []int
	}{
		{"empty", 0, 1, 1, nil},
		{"too short for two segments", 5, 3, 0, nil},
		{"minSize below 1 means 1", 6, 0, 1, []int{3}},
		{"exact fit", 6, 3, 1, []int{3}},
		{"penalty too high", 6, 1, 1e12, nil},
	} {
		if got := PELT(nm, tc.n, tc.m, tc.penalty); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPoissonCostWithRepeatedExposure: the cost is the same, bit for bit,
// as with the log of every bucket's exposure taken afresh, when exposures
// repeat (the log reused), alternate, and are skipped (zero, infinite).
func TestPoissonCostWithRepeatedExposure(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		n := 1 + r.IntN(60)
		counts, exposure := make([]float64, n), make([]float64, n)
		for i := range n {
			counts[i] = float64(r.IntN(4))
			switch k := r.IntN(6); k {
			case 0:
				exposure[i] = 0
			case 1:
				exposure[i] = math.Inf(1)
			default:
				exposure[i] = float64(1 + r.IntN(3)) // repeats often
			}
		}
		p := NewPoisson(counts, exposure)
		var c, e, cl float64
		pc, pe, pcl := []float64{0}, []float64{0}, []float64{0}
		for i := range n {
			if exposure[i] > 0 && !math.IsInf(exposure[i], 0) {
				c, e = c+counts[i], e+exposure[i]
				if counts[i] > 0 {
					cl += counts[i] * math.Log(exposure[i])
				}
			}
			pc, pe, pcl = append(pc, c), append(pe, e), append(pcl, cl)
		}
		for s := range n {
			for u := s + 1; u <= n; u++ {
				want := 0.0
				if cc, ee := pc[u]-pc[s], pe[u]-pe[s]; cc > 0 && ee > 0 {
					want = -2 * (cc*(math.Log(cc/ee)-1) + (pcl[u] - pcl[s]))
				}
				if got := p.Cost(s, u); math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("Cost(%d, %d) = %v, want %v (counts %v, exposure %v)", s, u, got, want, counts, exposure)
				}
			}
		}
	}
}

// TestPoissonResetReusesAsNew: a cost reset over series of other lengths,
// longer and shorter, reusing its prefix sums, is the cost NewPoisson
// builds, bit for bit, with nothing left of the series before.
func TestPoissonResetReusesAsNew(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	var p Poisson
	for _, n := range []int{50, 10, 0, 49, 200, 3, 200} {
		counts, exposure := make([]float64, n), make([]float64, n)
		for i := range n {
			counts[i], exposure[i] = float64(r.IntN(5)), float64(1+r.IntN(1000))
		}
		want := NewPoisson(counts, exposure)
		if got := p.Reset(counts, exposure); got != &p || p.Len() != n {
			t.Fatalf("Reset over %d buckets: Len %d", n, p.Len())
		}
		for s := range n {
			for u := s + 1; u <= n; u++ {
				if got, w := p.Cost(s, u), want.Cost(s, u); math.Float64bits(got) != math.Float64bits(w) {
					t.Fatalf("after Reset over %d buckets: Cost(%d, %d) = %v, want %v", n, s, u, got, w)
				}
				if got, w := p.Rate(s, u), want.Rate(s, u); got != w && !(math.IsNaN(got) && math.IsNaN(w)) {
					t.Fatalf("after Reset over %d buckets: Rate(%d, %d) = %v, want %v", n, s, u, got, w)
				}
			}
		}
	}
}
