package changepoint

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestMeanShiftRecoversSteps(t *testing.T) {
	for _, tc := range []struct {
		name   string
		n      int
		at     []int
		levels []float64
	}{
		{"one step", 200, []int{100}, []float64{0, 3}},
		{"several steps", 400, []int{80, 200, 260}, []float64{0, 3, -1, 2}},
		{"large level, small noise", 300, []int{150}, []float64{1e6, 1e6 + 4}},
		{"short series", 30, []int{15}, []float64{0, 6}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			missed := 0
			for seed := range 20 {
				r := rand.New(rand.NewPCG(uint64(seed), 21))
				got := MeanShift(gaussSteps(r, tc.n, tc.at, tc.levels))
				if !near(got, tc.at, 3) {
					missed++
					t.Logf("seed %d: %v, want %v ±3", seed, got, tc.at)
				}
			}
			// Steps of 3σ and more are found essentially always.
			if missed > 1 {
				t.Errorf("%d of 20 series segmented wrongly", missed)
			}
		})
	}
}

// With the default penalty, stationary series must almost never get a
// change: the brief's bar is under 5% of 200 series of length 300.
func TestMeanShiftFalsePositiveRate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		noise func(r *rand.Rand, x []float64)
		max   int // of 200
	}{
		{"white noise", func(r *rand.Rand, x []float64) {
			for i := range x {
				x[i] = r.NormFloat64()
			}
		}, 9},
		{"AR(1) noise, φ=0.5", func(r *rand.Rand, x []float64) {
			prev := 0.0
			for i := range x {
				prev = 0.5*prev + r.NormFloat64()
				x[i] = prev
			}
		}, 19},
		{"heavy tails, t(3)", func(r *rand.Rand, x []float64) {
			for i := range x {
				g := 0.0
				for range 3 {
					v := r.NormFloat64()
					g += v * v
				}
				x[i] = r.NormFloat64() / math.Sqrt(g/3)
			}
		}, 19},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hit := 0
			for seed := range 200 {
				r := rand.New(rand.NewPCG(uint64(seed), 31))
				x := make([]float64, 300)
				tc.noise(r, x)
				if cps := MeanShift(x); len(cps) > 0 {
					hit++
				}
			}
			t.Logf("%d of 200 stationary series got a change", hit)
			if hit > tc.max {
				t.Errorf("%d of 200 stationary series got a change, want at most %d", hit, tc.max)
			}
		})
	}
}

// Whitening is what keeps a wandering but stationary series from being read
// as a staircase: without it (a plain mean-shift fit with the noise scale of
// first differences) the same series are full of changes.
func TestMeanShiftToleratesAutocorrelation(t *testing.T) {
	var withWhitening, plain int
	for seed := range 50 {
		r := rand.New(rand.NewPCG(uint64(seed), 41))
		x := make([]float64, 500)
		prev := 0.0
		for i := range x {
			prev = 0.7*prev + r.NormFloat64()
			x[i] = prev
		}
		withWhitening += len(MeanShift(x))
		plain += len(PELT(NewNormalMean(x), len(x), meanShiftMinSize, meanShiftPenaltyFactor*math.Log(500)))
	}
	t.Logf("changes in 50 AR(0.7) series: MeanShift %d, plain mean shift %d", withWhitening, plain)
	if withWhitening > 10 || plain < 5*max(withWhitening, 10) {
		t.Errorf("MeanShift found %d changes, plain mean-shift %d", withWhitening, plain)
	}
}

func TestMeanShiftMissingValues(t *testing.T) {
	nan := math.NaN()
	r := rand.New(rand.NewPCG(1, 1))
	base := gaussSteps(r, 200, []int{100}, []float64{0, 5})
	if got := MeanShift(base); !slices.Equal(got, []int{100}) {
		t.Fatalf("without gaps: %v, want [100]", got)
	}
	for _, tc := range []struct {
		name string
		gaps []int // positions set to NaN (or Inf)
		inf  bool
		want []int
	}{
		{"gaps before the change", []int{3, 40, 41, 42, 77}, false, []int{100}},
		{"gaps after the change", []int{120, 150, 199}, false, []int{100}},
		{"leading gaps", []int{0, 1, 2}, false, []int{100}},
		// The first observed value of the new level is 102.
		{"the change itself missing", []int{100, 101}, false, []int{102}},
		{"infinities are missing too", []int{10, 100}, true, []int{101}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := slices.Clone(base)
			for _, g := range tc.gaps {
				x[g] = nan
				if tc.inf {
					x[g] = math.Inf(1)
				}
			}
			if got := MeanShift(x); !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// Gaps shift every index after them: the answer must be the same
	// change, reported at the original position.
	long := make([]float64, 0, 300)
	for i, v := range base {
		long = append(long, v)
		if i%2 == 0 {
			long = append(long, nan)
		}
	}
	if got := MeanShift(long); !slices.Equal(got, []int{150}) {
		t.Errorf("every other value missing: %v, want [150]", got)
	}
}

func TestMeanShiftDegenerateInputs(t *testing.T) {
	nan := math.NaN()
	constant := make([]float64, 100)
	for i := range constant {
		constant[i] = 7
	}
	steps := make([]float64, 200)
	for i := range steps {
		if i >= 100 {
			steps[i] = 9
		}
	}
	for _, tc := range []struct {
		name string
		x    []float64
		want []int
	}{
		{"nil", nil, nil},
		{"all missing", []float64{nan, nan, nan}, nil},
		{"too short", []float64{0, 0, 0, 9, 9, 9}, nil},
		{"constant", constant, nil},
		{"noise-free step", steps, []int{100}},
	} {
		if got := MeanShift(tc.x); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// The answer must not depend on the units of the series.
func TestMeanShiftAffineInvariance(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	x := gaussSteps(r, 300, []int{70, 140, 220}, []float64{0, 2.5, 0.5, 3})
	want := MeanShift(x)
	if len(want) == 0 {
		t.Fatal("no change found in the reference series")
	}
	for _, ab := range [][2]float64{{1000, -5}, {0.001, 1e4}, {-3, 0}} {
		y := make([]float64, len(x))
		for i, v := range x {
			y[i] = ab[0]*v + ab[1]
		}
		if got := MeanShift(y); !slices.Equal(got, want) {
			t.Errorf("%g·x%+g: %v, want %v", ab[0], ab[1], got, want)
		}
	}
}

// MeanShift's functional pruning must give exactly PELT's (and so optimal
// partitioning's) answer: always without a candidate budget, and with the
// production budget on ordinary series, which never reach it.
func TestFPOPEqualsPELT(t *testing.T) {
	for seed := range 300 {
		r := rand.New(rand.NewPCG(uint64(seed), 51))
		n := 2 + r.IntN(300)
		x := make([]float64, n)
		lvl := 0.0
		for i := range x {
			if r.Float64() < 0.03 {
				lvl += 3 * r.NormFloat64()
			}
			x[i] = lvl + r.NormFloat64()
			if seed%5 == 0 {
				x[i] = math.Round(x[i]) // ties and repeated values
			}
		}
		nm := NewNormalMean(x)
		m := 1 + r.IntN(6)
		pen := r.Float64() * 4 * math.Log(float64(n))
		want := PELT(nm, n, m, pen)
		if got := fpopBudgeted(nm, m, pen, n+1); !slices.Equal(got, want) {
			t.Errorf("seed %d (n=%d minSize=%d penalty=%.2f): fpop %v, PELT %v", seed, n, m, pen, got, want)
		}
		if got := fpop(nm, m, pen); !slices.Equal(got, want) {
			t.Errorf("seed %d (n=%d minSize=%d penalty=%.2f): budgeted fpop %v, PELT %v", seed, n, m, pen, got, want)
		}
	}
}

// On a ramp nearly every recent position stays a candidate and the budget
// binds. The answer is then no longer exact, but it must stay within a
// small fraction of one penalty of the optimum, and shrink towards it as the
// budget grows.
func TestFPOPBudgetOnRamp(t *testing.T) {
	const n = 3000
	pen := 3 * math.Log(n)
	for _, tc := range []struct {
		budget    int
		maxExcess float64 // in penalties, worst over the seeds
	}{{16, 0.1}, {fpopBudget, 0.005}} {
		worst := 0.0
		for seed := range 12 {
			r := rand.New(rand.NewPCG(uint64(seed), 2))
			x := make([]float64, n)
			for i := range x {
				x[i] = 0.5*float64(i) + float64(seed%4+1)*r.NormFloat64()
			}
			nm := newNormalMean(x, stdDev(x))
			got := fpopBudgeted(nm, 5, pen, tc.budget)
			opt := fpopBudgeted(nm, 5, pen, n+1)
			if len(got) != len(opt) {
				t.Errorf("budget %d, seed %d: %d changes, optimum has %d", tc.budget, seed, len(got), len(opt))
			}
			worst = max(worst, (penalised(nm, got, n, pen)-penalised(nm, opt, n, pen))/pen)
		}
		t.Logf("budget %d: worst excess cost %.5f penalties", tc.budget, worst)
		if worst > tc.maxExcess {
			t.Errorf("budget %d: excess cost %.4f penalties, want at most %.4f", tc.budget, worst, tc.maxExcess)
		}
		if tc.budget == 16 && worst == 0 {
			t.Error("budget 16 never bound on a ramp: the test does not exercise thinning")
		}
	}
}

func TestAR1Coefficient(t *testing.T) {
	for _, phi := range []float64{0, 0.3, 0.6} {
		r := rand.New(rand.NewPCG(7, 7))
		x := make([]float64, 20000)
		prev := 0.0
		for i := range x {
			prev = phi*prev + r.NormFloat64()
			x[i] = prev
			if i >= 10000 {
				x[i] += 20 // a level shift must not bias the estimate
			}
		}
		if got := ar1Coefficient(x); math.Abs(got-phi) > 0.05 {
			t.Errorf("φ=%.1f: estimated %.3f", phi, got)
		}
	}
}

func TestMedian(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	for trial := range 500 {
		n := 1 + r.IntN(50)
		x := make([]float64, n)
		for i := range x {
			x[i] = float64(r.IntN(1 + trial%7)) // many ties
			if trial%3 == 0 {
				x[i] = r.NormFloat64()
			}
		}
		orig := slices.Clone(x)
		s := slices.Clone(x)
		slices.Sort(s)
		want := s[n/2]
		if n%2 == 0 {
			want = (s[n/2-1] + s[n/2]) / 2
		}
		if got := median(x); got != want {
			t.Fatalf("median(%v) = %v, want %v", orig, got, want)
		}
		if !slices.Equal(x, orig) {
			t.Fatalf("median modified its input")
		}
	}
}
