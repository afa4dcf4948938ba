package cache

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// denseSource answers every bucket with the same shape: one service, and
// series messages each with one error in every bucket. It is the worst
// case for the cache's memory (no class is ever quiet), built without
// holding documents.
type denseSource struct {
	series int
	prefix string // names the messages, "error class" when empty
}

func (d *denseSource) Traffic(_ context.Context, w correlate.Window) (*correlate.Traffic, error) {
	n := w.Len()
	st := correlate.ServiceTraffic{Service: "api", Requests: make([]float64, n), Errors: make([]float64, n)}
	ones := make([]float64, n)
	for i := range n {
		st.Requests[i], st.Errors[i], ones[i] = float64(100*d.series), float64(d.series), 1
	}
	for k := range d.series {
		st.Messages = append(st.Messages, correlate.MessageCounts{Message: fmt.Sprintf("%s %05d <*>", cmp.Or(d.prefix, "error class"), k),
			Counts: correlate.NewCounts(ones), Examples: []string{fmt.Sprintf("error class %05d 1", k)}})
	}
	return &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{st}}, nil
}

func (*denseSource) Scope(context.Context, correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

// BenchmarkCacheMemory reports the heap the cache holds per series and
// bucket when every series has errors in every bucket, after reading a
// window of -benchtime-independent size (a day of 1-minute buckets, 100
// series): the figure to multiply by a deployment's series and lookback.
//
//	go test -run '^$' -bench CacheMemory -benchtime 1x ./sources/cache/
func BenchmarkCacheMemory(b *testing.B) {
	const series, buckets = 100, 24 * 60
	to := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	w := correlate.Window{From: to.Add(-buckets * time.Minute), To: to, Step: time.Minute}
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c, err := New(&denseSource{series: series}, Config{Keep: buckets * time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Traffic(context.Background(), w); err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
		b.ReportMetric(held/float64(series*buckets), "B/series-bucket")
		b.ReportMetric(held/(1<<20), "MiB")
		runtime.KeepAlive(c)
	}
}

// TestGoneMessagesAreForgotten: a series no cached bucket has errors in
// any more is dropped, so a daemon that runs for months does not keep
// every message it ever saw.
func TestGoneMessagesAreForgotten(t *testing.T) {
	ctx := context.Background()
	to := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	src := &denseSource{series: 1500}
	c, err := New(src, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Every hour, 1,500 messages never seen before, and the last hour's
	// buckets gone.
	for gen := range 8 {
		src.prefix = fmt.Sprintf("gen%d", gen)
		at := to.Add(time.Duration(gen) * time.Hour)
		if _, err := c.Traffic(ctx, correlate.Window{From: at.Add(-10 * time.Minute), To: at, Step: time.Minute}); err != nil {
			t.Fatal(err)
		}
		if len(c.series) != 1500 {
			t.Fatalf("generation %d: %d series kept, want the 1,500 in use", gen, len(c.series))
		}
		for k := range c.series {
			if !strings.HasPrefix(k.message, src.prefix+" ") {
				t.Fatalf("generation %d: series %q of an evicted generation is still kept", gen, k.message)
			}
		}
	}
}

// mixSource is what the daemon reads in steady state, generated rather
// than held: one service, series messages; the first dense of them have
// one error in every bucket, the others are quiet, with one error an hour
// on average at pseudo-random minutes (so that their buckets with errors
// do not line up, as real ones do not). Every occurrence has its own raw
// text, about 70 bytes, and examples are the earliest few over the window,
// as the real sources give them.
type mixSource struct {
	series, dense int
	epoch         time.Time
}

// count is series k's errors in bucket g (minutes since the epoch).
func (m *mixSource) count(k int, g int64) int {
	if k < m.dense {
		return 1
	}
	h := uint64(k)*0x9E3779B97F4A7C15 ^ uint64(g)*0xC2B2AE3D27D4EB4F
	h ^= h >> 29
	h *= 0xBF58476D1CE4E5B9
	h ^= h >> 32
	if h%60 == 0 {
		return 1
	}
	return 0
}

func (m *mixSource) Traffic(_ context.Context, w correlate.Window) (*correlate.Traffic, error) {
	n := w.Len()
	g0 := int64(w.From.Sub(m.epoch) / w.Step)
	st := correlate.ServiceTraffic{Service: "api", Requests: make([]float64, n), Errors: make([]float64, n)}
	counts := make([]float64, n)
	for k := range m.series {
		var ex []string
		nz := false
		for i := range n {
			c := m.count(k, g0+int64(i))
			counts[i] = float64(c)
			st.Errors[i] += float64(c)
			nz = nz || c > 0
			for o := 0; o < c && len(ex) < 3; o++ {
				ex = append(ex, fmt.Sprintf("error class %05d: upstream request %d failed after %d ms (bucket %d)", k, (g0+int64(i))*7+int64(o), 100+(g0+int64(i))%900, g0+int64(i)))
			}
		}
		if nz {
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: fmt.Sprintf("error class %05d <*>", k),
				Counts: correlate.NewCounts(counts), Examples: ex})
		}
	}
	for i := range n {
		st.Requests[i] = 100 * float64(m.series)
	}
	return &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{st}}, nil
}

func (*mixSource) Scope(context.Context, correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

// BenchmarkCacheSteadyState reports what the cache holds after the
// daemon's steady state, not after one initial read: a week of 1-minute
// buckets read one new bucket per call (each call's window is short, so
// that assembling stays cheap), then one window over the whole span, for
// 100 series; then the top-up reads per evaluation while a window slides
// one bucket a call, and what is held after that slide. The per-bucket
// totals (16 bytes a bucket and service) are shared by all series: with
// 100 series they add 0.17 bytes a series and bucket, with 10,000 almost
// nothing. "dense" has every series erring every
// minute, "quiet90" has 90% of them erring once an hour.
//
//	go test -run '^$' -bench CacheSteadyState -benchtime 1x ./sources/cache/
func BenchmarkCacheSteadyState(b *testing.B) {
	const series, buckets, warm, slide = 100, 7 * 24 * 60, 2000, 1000
	for _, mix := range []struct {
		name  string
		dense int
	}{{"dense", series}, {"quiet90", series / 10}} {
		b.Run(mix.name, func(b *testing.B) {
			ctx := context.Background()
			epoch := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
			for b.Loop() {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				src := &mixSource{series: series, dense: mix.dense, epoch: epoch}
				// The example cap scaled to these 100 series, as the
				// default is for the largest setting's 10,000.
				c, err := New(src, Config{Keep: buckets * time.Minute, ExampleBytes: defaultExampleBytes * series / 10000})
				if err != nil {
					b.Fatal(err)
				}
				for g := 10; g <= buckets; g++ {
					to := epoch.Add(time.Duration(g) * time.Minute)
					if _, err := c.Traffic(ctx, correlate.Window{From: to.Add(-10 * time.Minute), To: to, Step: time.Minute}); err != nil {
						b.Fatal(err)
					}
				}
				to := epoch.Add(buckets * time.Minute)
				if _, err := c.Traffic(ctx, correlate.Window{From: epoch, To: to, Step: time.Minute}); err != nil {
					b.Fatal(err)
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				held := float64(after.HeapAlloc) - float64(before.HeapAlloc)
				b.ReportMetric(held/float64(series*buckets), "B/series-bucket")
				b.ReportMetric(held/(1<<20), "MiB")
				// The daemon's steady state: a window sliding one bucket
				// per evaluation, each reading its new bucket. Top-ups are
				// counted after warm evaluations, once the budget's kept
				// examples of the quiet series (32 of their hours) are
				// used up; the window is 6 hours so that assembling it
				// 3,000 times stays cheap.
				var topUps, reads int64
				for e := 1; e <= warm+slide; e++ {
					if e == warm+1 {
						st := c.Stats()
						topUps, reads = st.TopUps, st.Reads
					}
					end := to.Add(time.Duration(e) * time.Minute)
					if _, err := c.Traffic(ctx, correlate.Window{From: end.Add(-6 * time.Hour), To: end, Step: time.Minute}); err != nil {
						b.Fatal(err)
					}
				}
				// What it holds then, examples refilled by the top-ups
				// included.
				runtime.GC()
				runtime.ReadMemStats(&after)
				held = float64(after.HeapAlloc) - float64(before.HeapAlloc)
				b.ReportMetric(held/float64(series*buckets), "slid-B/series-bucket")
				st := c.Stats()
				b.ReportMetric(float64(st.TopUps-topUps)/slide, "topups/eval")
				b.ReportMetric(float64(st.Reads-reads)/slide, "reads/eval")
				runtime.KeepAlive(c)
			}
		})
	}
}
