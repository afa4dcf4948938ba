package cache

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// TestOneBucketReadStoresAsClearingFirst: a read of one complete bucket
// (a new bucket, a top-up) that stores only the counts that changed leaves
// the cache as clearing every series' bucket first and storing the read
// would (split's path for a read of several buckets): a series losing its
// count there, one whose only
// count it was (dropped, or read again and started afresh), one gaining
// a count, one whose count changed, with and without the example budget.
// And the traffic handed out before keeps its counts.
func TestOneBucketReadStoresAsClearingFirst(t *testing.T) {
	ctx := context.Background()
	end := t0.Add(-20 * time.Minute)
	w := window(t, end.Add(-time.Hour), end)
	diskFull := t0.Add(-41 * time.Minute) // its only bucket in w (traffic)
	for _, exampleBytes := range []int{0, 1} {
		build := func() (*Source, *fake) {
			inner := &fake{events: traffic()}
			c, err := New(inner, Config{ExampleBytes: exampleBytes, ExampleBuckets: 4})
			if err != nil {
				t.Fatal(err)
			}
			for k := 20; k >= 0; k-- {
				to := end.Add(-time.Duration(k) * time.Minute)
				inner.cutoff = to
				if _, err := c.Traffic(ctx, window(t, to.Add(-time.Hour), to)); err != nil {
					t.Fatal(err)
				}
			}
			return c, inner
		}
		a, ia := build()
		b, ib := build()
		handed, err := a.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		var before [][]float64
		for _, st := range handed.Services {
			for _, m := range st.Messages {
				before = append(before, m.Counts.Dense())
			}
		}
		// The documents change under the cache, in buckets it holds.
		// Three timeouts at 23:11 (traffic), two at 23:14.
		lose, gain := t0.Add(-49*time.Minute), t0.Add(-46*time.Minute)
		change := func(events []event, dropDiskFull bool) []event {
			events = slices.DeleteFunc(slices.Clone(events), func(e event) bool {
				in := func(at time.Time) bool { return !e.at.Before(at) && e.at.Before(at.Add(time.Minute)) }
				return in(lose) && e.message == "timeout after <n> ms" ||
					in(gain) && e.raw == "timeout after 6741 ms" ||
					dropDiskFull && in(diskFull) && e.message == "disk full"
			})
			return append(events, event{at: gain.Add(5 * time.Second), service: "api", message: "new <*>", raw: "new one"})
		}
		for _, step := range []struct {
			at           time.Time
			dropDiskFull bool
		}{{lose, false}, {gain, false}, {diskFull, false}, {diskFull, true}, {end.Add(-59 * time.Minute), false}} {
			for _, s := range []struct {
				c     *Source
				inner *fake
				clear bool
			}{{a, ia, false}, {b, ib, true}} {
				s.inner.events = change(traffic(), step.dropDiskFull)
				i := w.Index(step.at)
				if !s.clear {
					if _, _, err := s.c.read(ctx, w, i, i+1, map[int]*bucket{}, true); err != nil {
						t.Fatal(err)
					}
					continue
				}
				sub := correlate.Window{From: w.Start(i), To: w.Start(i + 1), Step: w.Step}
				tr, err := s.inner.Traffic(ctx, sub)
				if err != nil {
					t.Fatal(err)
				}
				s.c.split(tr, s.c.index(sub.From), i, 1, 1, map[int]*bucket{}, true, false)
			}
			if len(a.series) != len(b.series) {
				t.Fatalf("bucket %s read again: %d series, want %d", step.at.Format("15:04"), len(a.series), len(b.series))
			}
			for k, want := range b.series {
				got := a.series[k]
				if got == nil {
					t.Fatalf("bucket %s read again: series %v missing", step.at.Format("15:04"), k)
				}
				for g := b.index(w.From) - 70; g < b.index(w.To)+5; g++ {
					if got.counts.get(g) != want.counts.get(g) {
						t.Fatalf("bucket %s read again: series %v bucket %d: %d, want %d", step.at.Format("15:04"), k, g, got.counts.get(g), want.counts.get(g))
					}
				}
				if got.counts.nz != want.counts.nz || !reflect.DeepEqual(got.ex, want.ex) || !reflect.DeepEqual(got.short, want.short) || got.exBytes != want.exBytes {
					t.Fatalf("bucket %s read again: series %v: %d counts, examples %v, short %v, %d bytes; want %d, %v, %v, %d",
						step.at.Format("15:04"), k, got.counts.nz, got.ex, got.short, got.exBytes, want.counts.nz, want.ex, want.short, want.exBytes)
				}
			}
		}
		if _, ok := a.series[seriesKey{"web", "disk full"}]; ok {
			t.Error("a series whose only count went is still cached")
		}
		ga, err := a.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		gb, err := b.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ga, gb) {
			t.Errorf("traffic after the reads differs from clearing first:\n got %+v\nwant %+v", ga, gb)
		}
		k := 0
		for _, st := range handed.Services {
			for _, m := range st.Messages {
				if got := m.Counts.Dense(); !slices.Equal(got, before[k]) {
					t.Errorf("%s %q handed out before the reads changed after them", st.Service, m.Message)
				}
				k++
			}
		}
	}
}
