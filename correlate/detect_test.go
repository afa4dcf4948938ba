package correlate

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/culprithq/culprit/rules"
)

func testDetectConfig() detectConfig {
	return detectConfig{minErrors: 10, minRatio: 2, minBase: 30, recovery: 10, block: 5, newShareMax: 0.05, priorAlpha: minAlpha, corrBuckets: 15}
}

func TestNBUpperTail(t *testing.T) {
	// Poisson(2): P(X >= 5) = 1 - sum_{k<5} e^-2 2^k/k! = 0.052653.
	if got := nbUpperTail(5, 2, math.Inf(1)); math.Abs(got-0.052653) > 1e-5 {
		t.Errorf("Poisson tail = %v, want 0.052653", got)
	}
	// Geometric (NB size 1) with mean 2: P(X >= 5) = (2/3)^5 = 0.131687.
	if got := nbUpperTail(5, 2, 1); math.Abs(got-0.131687) > 1e-5 {
		t.Errorf("NB(size 1) tail = %v, want 0.131687", got)
	}
	// Overdispersion widens the tail.
	if nbUpperTail(20, 5, 2) <= nbUpperTail(20, 5, math.Inf(1)) {
		t.Error("NB tail should be heavier than Poisson")
	}
	if got := nbUpperTail(0, 5, 1); got != 1 {
		t.Errorf("P(X>=0) = %v, want 1", got)
	}
}

func TestBinomialTails(t *testing.T) {
	// Binomial(10, 0.5): P(X <= 2) = 56/1024.
	if got := binomLowerTail(2, 10, 0.5); math.Abs(got-56.0/1024) > 1e-9 {
		t.Errorf("lower tail = %v", got)
	}
	if got := binomUpperTail(8, 10, 0.5); math.Abs(got-56.0/1024) > 1e-9 {
		t.Errorf("upper tail = %v", got)
	}
	// The far tail must not be lost to 1-x cancellation.
	if got := binomUpperTail(100, 100, 0.1); got > 1e-90 || got <= 0 {
		t.Errorf("far upper tail = %v, want about 1e-100", got)
	}
}

func TestBenjaminiHochberg(t *testing.T) {
	p := []float64{0.01, 0.04, 0.03, 0.005}
	// Sorted: .005 .01 .03 .04 -> .02 .02 .04 .04 (monotone from the top).
	want := []float64{0.02, 0.04, 0.04, 0.02}
	got := benjaminiHochberg(p)
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-12 {
			t.Errorf("q[%d] = %v, want %v", i, got[i], want[i])
		}
	}
}

// series builds counts ~ Poisson(rate(t) * exposure(t)).
func series(r *rand.Rand, n int, exposure func(int) float64, rate func(int) float64) (c, e []float64) {
	c, e = make([]float64, n), make([]float64, n)
	for i := range n {
		e[i] = exposure(i)
		c[i] = poisson(r, rate(i)*e[i])
	}
	return c, e
}

func poisson(r *rand.Rand, mu float64) float64 {
	if mu <= 0 {
		return 0
	}
	if mu > 50 {
		return math.Max(0, math.Round(mu+math.Sqrt(mu)*r.NormFloat64()))
	}
	l, k, p := math.Exp(-mu), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func flat(v float64) func(int) float64 { return func(int) float64 { return v } }

func TestDetectStep(t *testing.T) {
	tests := []struct {
		name      string
		rate      func(int) float64
		wantStart int
		wantNew   bool
		wantRecov int // -1: not recovered
	}{
		{
			name:      "new class from nothing",
			rate:      func(i int) float64 { return map[bool]float64{true: 0.004, false: 0}[i >= 240] },
			wantStart: 240, wantNew: true, wantRecov: -1,
		},
		{
			name:      "existing class rises fivefold",
			rate:      func(i int) float64 { return map[bool]float64{true: 0.01, false: 0.002}[i >= 200] },
			wantStart: 200, wantNew: false, wantRecov: -1,
		},
		{
			// 0.0005 per request is about 120 errors in the baseline: a
			// burst to 25× is the sparse class bursting, not a new one.
			name:      "sparse class bursts 25-fold: an increase, not new",
			rate:      func(i int) float64 { return map[bool]float64{true: 0.0125, false: 0.0005}[i >= 240] },
			wantStart: 240, wantNew: false, wantRecov: -1,
		},
		{
			name: "new class that recovers",
			rate: func(i int) float64 {
				if i >= 150 && i < 250 {
					return 0.005
				}
				return 0
			},
			wantStart: 150, wantNew: true, wantRecov: 250,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, 7))
			c, e := series(r, 360, flat(1000), tc.rate)
			ep, ok := detect(c, e, history{}, testDetectConfig())
			if !ok {
				t.Fatal("no episode found")
			}
			if d := ep.start - tc.wantStart; d < -2 || d > 2 {
				t.Errorf("onset bucket %d, want %d±2", ep.start, tc.wantStart)
			}
			if ep.newClass != tc.wantNew {
				t.Errorf("newClass = %v, want %v", ep.newClass, tc.wantNew)
			}
			if tc.wantRecov < 0 && ep.recovered {
				t.Errorf("recovered at %d, want still elevated", ep.end)
			}
			if tc.wantRecov >= 0 && (!ep.recovered || abs(ep.end-tc.wantRecov) > 2) {
				t.Errorf("recovered=%v at %d, want recovery at %d±2", ep.recovered, ep.end, tc.wantRecov)
			}
			if ep.p > 1e-6 {
				t.Errorf("p = %g, want a decisive change", ep.p)
			}
		})
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

// A ramp (a rollout reaching more hosts each minute) must be dated to its
// start, not to the middle where the jump is clearest.
func TestDetectRampOnset(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	c, e := series(r, 360, flat(1000), func(i int) float64 {
		if i < 240 {
			return 0
		}
		return 0.006 * math.Min(1, float64(i-240+1)/20)
	})
	ep, ok := detect(c, e, history{}, testDetectConfig())
	if !ok {
		t.Fatal("no episode found")
	}
	if ep.start < 238 || ep.start > 243 {
		t.Errorf("onset bucket %d, want 240 (within 3)", ep.start)
	}
}

// Volume surges move counts but not rates: nothing to report.
func TestDetectTrafficSurgeIsNotAChange(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 11))
	c, e := series(r, 360, func(i int) float64 {
		if i >= 200 {
			return 4000
		}
		return 1000
	}, flat(0.003))
	if ep, ok := detect(c, e, history{}, testDetectConfig()); ok && ep.p < 0.01 {
		t.Errorf("traffic surge read as a change: onset %d p=%g", ep.start, ep.p)
	}
}

// False alarms on bursty background: bursts of 5-15 minutes at 5-20x the base
// rate, a few per series, as real background error classes do. The family
// correction must keep nearly all of these quiet.
func TestDetectBurstyBaselineRarelyFires(t *testing.T) {
	const trials = 200
	type pair struct{ c, e []float64 }
	var family []pair
	var alphas []float64
	for s := range trials {
		r := rand.New(rand.NewPCG(uint64(s), 99))
		burst := make([]float64, 360)
		for i := range burst {
			burst[i] = 1
		}
		for b := 0; b < 1+r.IntN(3); b++ {
			at, n, k := r.IntN(340), 5+r.IntN(10), 5+15*r.Float64()
			for i := at; i < at+n && i < 360; i++ {
				burst[i] = k
			}
		}
		c, e := series(r, 360, flat(1000), func(i int) float64 { return 0.001 * burst[i] })
		family = append(family, pair{c, e})
		if a, ok := seriesAlpha(c, e, history{}, 5); ok {
			alphas = append(alphas, a)
		}
	}
	cfg := testDetectConfig()
	cfg.priorAlpha = priorAlpha(alphas)
	t.Logf("prior overdispersion of the family: %.3g", cfg.priorAlpha)
	fired := 0
	for _, s := range family {
		ep, ok := detect(s.c, s.e, history{}, cfg)
		// One series among the hundreds a run tests: judge it at a
		// Bonferroni-like share of the family's 1% rate.
		if ok && ep.p < 0.01/50 {
			fired++
		}
	}
	if fired > trials/20 {
		t.Errorf("%d of %d bursty quiet series fired, want at most %d", fired, trials, trials/20)
	}
	t.Logf("bursty quiet series that fired: %d of %d", fired, trials)
}

func TestDetectStationaryNeverFires(t *testing.T) {
	fired := 0
	for s := range 200 {
		r := rand.New(rand.NewPCG(uint64(s), 5))
		c, e := series(r, 360, flat(1000), flat(0.002))
		if ep, ok := detect(c, e, history{}, testDetectConfig()); ok && ep.p < 0.01 {
			fired++
		}
	}
	if fired > 2 {
		t.Errorf("%d of 200 stationary series fired at p<0.01", fired)
	}
}

// TestDetectMinBaseline is the window-edge false page: a sparse class that
// appeared with the morning five hours ago reads as a new class against the
// forty minutes of night left in front of it, though it was never a change
// worth paging while its onset was recent. With the daemon's two hours of
// baseline required it is not judged; the same appearance forty minutes
// ago, with hours of calm behind it, is found either way.
func TestDetectMinBaseline(t *testing.T) {
	const L = 360 // six hours of one-minute buckets, the default lookback
	flat := func(int) float64 { return 1000 }
	cases := []struct {
		name        string
		onset       int
		minBaseline int
		wantOK      bool
	}{
		{"onset 5h20m ago, 2h required", 40, 120, false},
		{"onset 5h20m ago, a one-off question", 40, 0, true},
		{"onset 2h05m ago, 2h required", 235, 120, true},
		{"onset 40m ago, 2h required", L - 40, 120, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(7, uint64(tc.onset)))
			counts, exposure := series(r, L, flat, func(i int) float64 {
				if i >= tc.onset {
					return 0.0008 // 0.8 a minute: a deadlock now and then
				}
				return 0
			})
			cfg := detectConfigFor(rules.Default().Correlate, L, tc.minBaseline)
			cfg.priorAlpha = minAlpha
			ep, ok := detect(counts, exposure, history{}, cfg)
			if ok != tc.wantOK {
				t.Fatalf("found = %v (episode %+v), want %v", ok, ep, tc.wantOK)
			}
			if ok && (ep.start < tc.onset-5 || ep.start > tc.onset+5) {
				t.Errorf("onset at bucket %d, want near %d", ep.start, tc.onset)
			}
			if ok && ep.start < cfg.minBase {
				t.Errorf("onset at bucket %d, inside the %d-bucket minimum baseline", ep.start, cfg.minBase)
			}
		})
	}
}
