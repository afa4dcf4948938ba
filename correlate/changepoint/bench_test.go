package changepoint

import (
	"math"
	"math/rand/v2"
	"testing"
)

func BenchmarkMeanShift100k(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	x := gaussSteps(r, 100_000, []int{20_000, 45_000, 60_000, 85_000}, []float64{0, 1, -0.5, 0.5, 2})
	b.ReportAllocs()
	for b.Loop() {
		if len(MeanShift(x)) == 0 {
			b.Fatal("no change found")
		}
	}
}

// 360 buckets is six hours of one-minute buckets, the shape detect feeds
// PELT for every error class.
func BenchmarkPELTPoisson360(b *testing.B) {
	const n = 360
	r := rand.New(rand.NewPCG(3, 4))
	exposure := make([]float64, n)
	for i := range exposure {
		exposure[i] = 500 + 1000*r.Float64()
	}
	counts := poissonCounts(r, exposure, func(i int) float64 {
		if i >= 200 && i < 260 {
			return 0.006
		}
		return 0.002
	})
	pen := 3 * math.Log(n)
	b.ReportAllocs()
	for b.Loop() {
		PELT(NewPoisson(counts, exposure), n, 1, pen)
	}
}
