package cache

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// tickFunc evaluates like the daemon at to over [from, to): the source's
// cutoff at to, the cache's answer checked against a read from scratch.
// It returns the windows the cache asked of its source.
func tickFunc(t *testing.T, c *Source, inner, scratch *fake) func(from, to time.Time) []correlate.Window {
	return func(from, to time.Time) []correlate.Window {
		t.Helper()
		inner.cutoff, scratch.cutoff = to, to
		scratch.events = inner.events
		inner.asked = nil
		w := window(t, from, to)
		got, err := c.Traffic(context.Background(), w)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.Traffic(context.Background(), w)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("window %s: cached traffic differs from a read from scratch:\n got %+v\nwant %+v", span(w), got, want)
		}
		return inner.asked
	}
}

// checkExampleBytes: the byte count the budget reads, kept as examples
// are stored and dropped, is what a walk over every kept example gives.
func checkExampleBytes(t *testing.T, c *Source) {
	t.Helper()
	walk := 0
	for _, se := range c.series {
		for _, e := range se.ex {
			walk += entryBytes(e)
		}
	}
	if got := c.exampleBytes(); got != walk {
		t.Fatalf("exampleBytes %d, a walk over the kept examples %d", got, walk)
	}
}

// TestExampleBudgetEqualsScratch: with a budget far smaller than the
// series' buckets with errors, examples are still those of a read from
// scratch at every tick of a sliding window, and when the window's start
// moves back (an incident anchoring it) and forward again; the budget is
// exceeded and top-ups happen, one or two a tick once the window slides.
func TestExampleBudgetEqualsScratch(t *testing.T) {
	inner := &fake{events: traffic()}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Recheck: 2 * time.Minute, Keep: 7 * time.Hour, ExampleBuckets: 4, ExampleBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	tick := tickFunc(t, c, inner, scratch)
	most := 0
	for m := range 400 {
		to := t0.Add(time.Duration(m) * time.Minute)
		from := to.Add(-6 * time.Hour)
		if m%50 == 25 {
			from = from.Add(-40 * time.Minute) // anchored further back
		}
		before := c.Stats().TopUps
		tick(from, to)
		checkExampleBytes(t, c)
		topUps := int(c.Stats().TopUps - before)
		// The first ticks top up the cold read's buckets, and a window
		// reaching back, or the one after it, the buckets its start
		// gained or lost; the others slide one bucket.
		if m > 10 && m%50 != 25 && m%50 != 26 {
			most = max(most, topUps)
		}
	}
	if st := c.Stats(); st.TopUps < 200 {
		t.Errorf("%d top-ups in 400 ticks with a budget of 4 buckets: the budget is not exercised", st.TopUps)
	}
	if most > 2 {
		t.Errorf("a sliding tick took %d top-up reads; want at most 2 (one per density of series, shared)", most)
	}
	for k, se := range c.series {
		if se.counts.nz > 4 && len(se.ex) > 4 {
			t.Errorf("series %v, %d buckets with errors: %d buckets of examples kept, want at most the budget (4)", k, se.counts.nz, len(se.ex))
		}
	}
}

// denseEvents are classes errors every minute of [from, from+minutes),
// class k counting 1+k%4 errors a minute, each occurrence with its own
// raw text, and a request per error.
func denseEvents(classes, minutes int, from time.Time) []event {
	var out []event
	for m := range minutes {
		for k := range classes {
			for o := range 1 + k%4 {
				at := from.Add(time.Duration(m)*time.Minute + time.Duration(k)*time.Second + time.Duration(o)*100*time.Millisecond)
				out = append(out, event{at: at, service: "api", message: fmt.Sprintf("class %02d", k), raw: fmt.Sprintf("class %02d occurrence %d.%d", k, m, o)})
			}
		}
	}
	return out
}

// TestDenseTopUpsShared: classes erring every minute, each with more
// buckets with errors than the budget, cost at most one single-bucket
// top-up per evaluation between them, not one per class, and their
// examples are a read from scratch's.
func TestDenseTopUpsShared(t *testing.T) {
	const classes = 40
	inner := &fake{events: denseEvents(classes, 8*60, t0.Add(-4*time.Hour))}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Keep: 3 * time.Hour, ExampleBuckets: 8, ExampleBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	tick := tickFunc(t, c, inner, scratch)
	var topUps int64
	for m := range 200 {
		to := t0.Add(time.Duration(m) * time.Minute)
		before := c.Stats().TopUps
		asked := tick(to.Add(-2*time.Hour), to)
		checkExampleBytes(t, c)
		n := c.Stats().TopUps - before
		topUps += n
		// The first ticks after the cold read top up its buckets that
		// hold fewer than their own examples (as many as Examples).
		if m <= 3 {
			continue
		}
		if n > 1 {
			t.Fatalf("tick %d: %d top-up reads for %d dense classes (asked %v); want at most one, shared", m, n, classes, asked)
		}
		if len(asked) != 1+int(n) || asked[0].Len() != 1 {
			t.Fatalf("tick %d asked %v; want the new bucket and at most one top-up", m, asked)
		}
	}
	if topUps < 150 {
		t.Errorf("%d top-ups in 200 ticks: the budget of 8 buckets is not exercised by %d classes erring every minute", topUps, classes)
	}
	for k, se := range c.series {
		if len(se.ex) > 8 {
			t.Errorf("series %v keeps examples of %d buckets, want at most 8", k, len(se.ex))
		}
	}
}

// TestExamplesKeptBelowTheCap: the same dense classes with the default
// Config.ExampleBytes, which their examples stay far below: every bucket
// keeps its examples, and a steady tick reads its new bucket and nothing
// else. Only above the cap does memory cost reads.
func TestExamplesKeptBelowTheCap(t *testing.T) {
	const classes = 40
	inner := &fake{events: denseEvents(classes, 8*60, t0.Add(-4*time.Hour))}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Keep: 3 * time.Hour, ExampleBuckets: 8})
	if err != nil {
		t.Fatal(err)
	}
	tick := tickFunc(t, c, inner, scratch)
	for m := range 240 {
		to := t0.Add(time.Duration(m) * time.Minute)
		before := c.Stats().TopUps
		asked := tick(to.Add(-2*time.Hour), to)
		checkExampleBytes(t, c)
		// For a window's length after the cold read, its start passes
		// buckets whose examples the read gave to earlier ones: those
		// are topped up once each, cap or not.
		if m <= 121 {
			continue
		}
		if n := c.Stats().TopUps - before; n != 0 || len(asked) != 1 {
			t.Fatalf("tick %d: %d top-ups, asked %v; want the new bucket alone below the cap", m, n, asked)
		}
	}
	kept := 0
	for _, se := range c.series {
		kept = max(kept, len(se.ex))
	}
	if kept <= 8 {
		t.Errorf("the busiest series keeps examples of %d buckets: the budget of 8 applied below the cap", kept)
	}
}

// TestRereadBucketReplacesCounts: a bucket read again (in the re-checked
// region) replaces what the cache held for it: a message that is gone
// from it is gone from the answer, and from the cache when it has no
// other bucket; a count that changed is the new one.
func TestRereadBucketReplacesCounts(t *testing.T) {
	inner := &fake{events: traffic()}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Recheck: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tick := tickFunc(t, c, inner, scratch)
	at := t0.Add(-2 * time.Minute)
	inner.events = append(slices.Clone(inner.events),
		event{at: at.Add(time.Second), service: "api", message: "vanishing", raw: "vanishing 1"},
		event{at: at.Add(2 * time.Second), service: "api", message: "timeout after <n> ms", raw: "timeout after 1 ms"})
	tick(t0.Add(-time.Hour), t0)
	if c.series[seriesKey{"api", "vanishing"}] == nil {
		t.Fatal("the message read is not cached")
	}
	// The documents are withdrawn (a re-indexing), and the bucket, in the
	// re-checked region, is read again.
	inner.events = slices.DeleteFunc(slices.Clone(inner.events), func(e event) bool {
		return e.raw == "vanishing 1" || e.raw == "timeout after 1 ms"
	})
	tick(t0.Add(-time.Hour+time.Minute), t0.Add(time.Minute))
	if se := c.series[seriesKey{"api", "vanishing"}]; se != nil {
		t.Errorf("a message gone from the only bucket it had is still cached: %+v", se)
	}
	g := c.index(at)
	if got, want := c.series[seriesKey{"api", "timeout after <n> ms"}].counts.get(g), uint32(len(slices.DeleteFunc(slices.Clone(inner.events), func(e event) bool {
		return e.message != "timeout after <n> ms" || e.at.Before(at) || !e.at.Before(at.Add(time.Minute))
	}))); got != want {
		t.Errorf("the re-read bucket holds %d timeouts, want %d", got, want)
	}
}

// TestEvictionTrimsSeries: buckets older than Keep leave the counts, the
// examples, the totals and the complete set, and a series left with no
// bucket is dropped; what is left answers as a read from scratch.
func TestEvictionTrimsSeries(t *testing.T) {
	inner := &fake{events: traffic()}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Recheck: 2 * time.Minute, Keep: time.Hour, ExampleBuckets: 4, ExampleBytes: 1})
	if err != nil {
		t.Fatal(err)
	}
	tick := tickFunc(t, c, inner, scratch)
	sawDisk := false
	for m := range 300 {
		to := t0.Add(time.Duration(m) * time.Minute)
		tick(to.Add(-30*time.Minute), to)
		keep := c.index(to.Add(-time.Hour))
		for k, se := range c.series {
			first, _, ok := se.counts.bounds()
			if !ok {
				t.Fatalf("tick %d: series %v is kept with no count", m, k)
			}
			if first < keep || (len(se.ex) > 0 && se.ex[0].at < keep) {
				t.Fatalf("tick %d: series %v holds bucket %d, before the kept %d", m, k, min(first, se.ex[0].at), keep)
			}
			sawDisk = sawDisk || k.message == "disk full"
		}
		for name, tt := range c.totals {
			if tt.base < keep {
				t.Fatalf("tick %d: service %s's totals start at bucket %d, before the kept %d", m, name, tt.base, keep)
			}
		}
		if len(c.complete) > 0 && c.complete[0].lo < keep {
			t.Fatalf("tick %d: complete buckets %v reach before the kept %d", m, c.complete, keep)
		}
		// "disk full" errs once every 97 minutes: an hour after each, its
		// series is gone.
		if _, ok := c.series[seriesKey{"web", "disk full"}]; ok {
			last := -1
			for _, e := range inner.events {
				if e.message == "disk full" && e.at.Before(to) {
					last = max(last, int(e.at.Sub(t0)/time.Minute))
				}
			}
			if age := m - last; age > 61 {
				t.Fatalf("tick %d: \"disk full\", last seen %d minutes ago, is still cached with a Keep of an hour", m, age)
			}
		}
	}
	if !sawDisk {
		t.Error("the sparse series was never cached: the test does not exercise its eviction")
	}
}
