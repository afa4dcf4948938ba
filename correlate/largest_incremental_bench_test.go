package correlate_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/cache"
)

// weekSource is the daemon's largest setting generated on the fly: 100
// services of 100 error classes, each erring about once a minute (Poisson,
// 0.5 to 2.5 a minute), class 0 of every service stepping up tenfold at
// bucket step, as correlate's BenchmarkLargestSetting7d builds it. A
// bucket's counts and examples are a function of the bucket alone, so any
// window asked of it is the same data, and it holds none of it: the
// process's memory is the cache's and the correlator's, as a daemon's is
// (its source is Elasticsearch).
type weekSource struct {
	epoch time.Time
	step  int64
	names [][]string
	rates [][]float64
}

func newWeekSource(epoch time.Time, step int64) *weekSource {
	r := rand.New(rand.NewPCG(1, 1))
	words := correlate.SyntheticWords(r)
	g := &weekSource{epoch: epoch, step: step}
	for range 100 {
		var names []string
		var rates []float64
		for m := range 100 {
			names = append(names, correlate.SyntheticName(r, words, m))
			rates = append(rates, 0.5*(1+r.Float64()*4))
		}
		g.names, g.rates = append(g.names, names), append(g.rates, rates)
	}
	return g
}

// count draws class (s, m)'s errors in bucket b by inversion, from a hash
// of the three: the same every time it is asked.
func (g *weekSource) count(s, m int, b int64) int {
	mu := g.rates[s][m]
	if m == 0 && b >= g.step {
		mu *= 10
	}
	x := uint64(s)<<48 ^ uint64(m)<<32 ^ uint64(b)
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	x ^= x >> 31
	u := float64(x>>11) / (1 << 53)
	p := math.Exp(-mu)
	f, k := p, 0
	for u > f && k < 1000 {
		k++
		p *= mu / float64(k)
		f += p
	}
	return k
}

func (g *weekSource) Traffic(_ context.Context, w correlate.Window) (*correlate.Traffic, error) {
	n := w.Len()
	b0 := int64(w.From.Sub(g.epoch) / time.Minute)
	tr := &correlate.Traffic{Window: w}
	scratch := make([]float64, n)
	for s, names := range g.names {
		st := correlate.ServiceTraffic{Service: fmt.Sprintf("svc-%03d", s), Requests: make([]float64, n), Errors: make([]float64, n)}
		for i := range n {
			st.Requests[i] = 1000
		}
		for m, name := range names {
			var ex []string
			for i := range n {
				c := g.count(s, m, b0+int64(i))
				scratch[i] = float64(c)
				st.Errors[i] += float64(c)
				// The earliest occurrences, each bucket's in order.
				for k := 0; k < c && len(ex) < 3; k++ {
					ex = append(ex, fmt.Sprintf("%s request %d-%d", name, b0+int64(i), k))
				}
			}
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: name, Counts: correlate.NewCounts(scratch), Examples: ex})
		}
		tr.Services = append(tr.Services, st)
	}
	return tr, nil
}

// Counts makes it a Counter, as Elasticsearch is: a re-checked bucket
// whose count did not change is not read again.
func (g *weekSource) Counts(_ context.Context, w correlate.Window) ([]float64, error) {
	out := make([]float64, w.Len())
	for i := range out {
		out[i] = 100 * 1000
	}
	return out, nil
}

func (*weekSource) Scope(context.Context, correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

// largest is the cache in the daemon's steady state at its largest
// setting, filled once per process (filling takes longer than the
// evaluations measured).
var largest struct {
	once sync.Once
	c    *cache.Source
	to   time.Time
	err  error
}

// BenchmarkLargestSetting7dIncremental is correlate's
// BenchmarkLargestSetting7d as the daemon runs it: the week reaches the
// correlator through the incremental cache (sources/cache), filled the way the daemon fills it (one
// new bucket a minute, each read alone with its examples, a minute
// re-checked), and each evaluation slides the window one bucket and runs
// the whole correlation over it. CPU per evaluation is the cache's
// (reading the new bucket, any top-up, assembling the week) and the
// correlator's; peak RSS is the process's, holding the cache's week and
// the correlator's working set, as the daemon does. Run it alone, so the
// peak is its own:
//
//	GOMEMLIMIT=400MiB go test -run '^$' -bench '^BenchmarkLargestSetting7dIncremental$' -benchtime 3x ./correlate/
func BenchmarkLargestSetting7dIncremental(b *testing.B) {
	const week = 7 * 24 * 60
	ctx := context.Background()
	largest.once.Do(func() {
		epoch := time.Date(2026, 11, 13, 0, 0, 0, 0, time.UTC)
		c, err := cache.New(newWeekSource(epoch, week-90), cache.Config{Recheck: time.Minute, Keep: week*time.Minute + time.Hour})
		if err != nil {
			largest.err = err
			return
		}
		for g := 10; g <= week; g++ {
			to := epoch.Add(time.Duration(g) * time.Minute)
			if _, err := c.Traffic(ctx, correlate.Window{From: to.Add(-10 * time.Minute), To: to, Step: time.Minute}); err != nil {
				largest.err = err
				return
			}
		}
		largest.c, largest.to = c, epoch.Add(week*time.Minute)
	})
	if largest.err != nil {
		b.Fatal(largest.err)
	}
	window := func() correlate.Window {
		return correlate.Window{From: largest.to.Add(-week * time.Minute), To: largest.to, Step: time.Minute}
	}
	tr, err := largest.c.Traffic(ctx, window())
	if err != nil {
		b.Fatal(err)
	}
	var cells int
	for _, s := range tr.Services {
		for _, m := range s.Messages {
			cells += m.Counts.Bytes()
		}
	}
	tr = nil
	cfg := rules.Default().Correlate
	reads0, topUps0 := largest.c.Stats().Reads, largest.c.Stats().TopUps
	cpu0 := correlate.CPUTime(b)
	b.ResetTimer()
	var res *correlate.Result
	for b.Loop() {
		largest.to = largest.to.Add(time.Minute)
		if res, err = correlate.Run(ctx, largest.c, correlate.Input{Window: window()}, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	b.ReportMetric((correlate.CPUTime(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
	b.ReportMetric(float64(correlate.PeakRSS(b))/(1<<20), "peak-RSS-MB")
	b.ReportMetric(float64(cells)/(1<<20), "counts-MB")
	b.ReportMetric(float64(res.Stats.Tested), "series")
	b.ReportMetric(float64(len(res.Findings)), "findings")
	// What stays live between evaluations: the cache's week.
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapAlloc)/(1<<20), "live-heap-MB")
	st := largest.c.Stats()
	b.ReportMetric(float64(st.Reads-reads0)/float64(b.N), "reads/eval")
	b.ReportMetric(float64(st.TopUps-topUps0)/float64(b.N), "topups/eval")
}
