package cache

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
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

// TestInternedMessagesAreForgotten: messages no cached bucket holds any
// more are dropped from the intern table once they outnumber those in
// use, so a daemon that runs for months does not keep every message it
// ever saw.
func TestInternedMessagesAreForgotten(t *testing.T) {
	ctx := context.Background()
	to := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	src := &denseSource{series: 1500}
	c, err := New(src, Config{})
	if err != nil {
		t.Fatal(err)
	}
	// Every hour, 1,500 messages never seen before, and the last hour's
	// buckets gone.
	most := 0
	for gen := range 8 {
		src.prefix = fmt.Sprintf("gen%d", gen)
		at := to.Add(time.Duration(gen) * time.Hour)
		if _, err := c.Traffic(ctx, correlate.Window{From: at.Add(-10 * time.Minute), To: at, Step: time.Minute}); err != nil {
			t.Fatal(err)
		}
		most = max(most, len(c.names))
		for k := range 1500 {
			if m := fmt.Sprintf("%s %05d <*>", src.prefix, k); c.names[m] != m {
				t.Fatalf("generation %d: %q, in use, is not interned", gen, m)
			}
		}
	}
	if limit := 2*1500 + 1024 + 1500; most > limit {
		t.Errorf("the intern table reached %d messages with 1,500 in use; want at most %d", most, limit)
	}
	if most < 3000 {
		t.Errorf("the intern table never held more than %d: the test did not make it sweep", most)
	}
}
