package cache

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// conjFake is the fake source that also counts conjunctions, as the real
// sources do: the signature's errors and the service's requests meeting
// every condition (on host and customer) in [Before, From) and [From, To).
type conjFake struct {
	*fake
	conjs []correlate.ConjunctionQuery
}

func (f *conjFake) CountConjunctions(_ context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	f.conjs = append(f.conjs, q)
	before := q.Before
	if before.IsZero() || before.After(q.From) {
		before = q.From
	}
	out := make([]correlate.ConjunctionCount, len(q.Conjunctions))
	for _, e := range f.events {
		if e.service != q.Service || !e.at.Before(f.cutoff) || e.at.Before(before) || !e.at.Before(q.To) {
			continue
		}
		match := e.message != "" && slices.Contains(q.Messages, e.message)
		vals := map[string]string{correlate.FieldHost: fakeHost(e), correlate.FieldCustomer: fakeCustomer(e)}
		for i, conj := range q.Conjunctions {
			if !slices.ContainsFunc(conj, func(c correlate.Condition) bool { return !meets(c, vals[c.Field]) }) {
				n := &out[i]
				if e.at.Before(q.From) {
					n.RequestsBefore++
					if match {
						n.ErrorsBefore++
					}
				} else {
					n.Requests++
					if match {
						n.Errors++
					}
				}
			}
		}
	}
	return out, nil
}

func meets(c correlate.Condition, v string) bool {
	if c.Prefix {
		return strings.HasPrefix(v, strings.TrimSuffix(c.Value, "*"))
	}
	return v == c.Value
}

func conds(pairs ...string) []correlate.Condition {
	var out []correlate.Condition
	for i := 0; i+1 < len(pairs); i += 2 {
		c := correlate.Condition{Field: pairs[i], Value: pairs[i+1]}
		if strings.HasSuffix(c.Value, "*") {
			c.Prefix = true
		}
		out = append(out, c)
	}
	return out
}

// TestConjunctionsEqualScratchAndReadNewBuckets: tick by tick, with the
// window sliding, growing back, and a conjunction joining, leaving and
// coming back to the candidates, the cached counts equal a count from scratch; after the
// first tick every read spans a few buckets, not the window; an onset in
// the re-checked region is counted too.
func TestConjunctionsEqualScratchAndReadNewBuckets(t *testing.T) {
	ctx := context.Background()
	inner := &conjFake{fake: &fake{events: traffic()}}
	scratch := &conjFake{fake: &fake{events: inner.events}}
	c, err := New(inner, Config{Recheck: 2 * time.Minute, Keep: 13 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	base := [][]correlate.Condition{
		{},
		conds(correlate.FieldHost, "h1"),
		conds(correlate.FieldCustomer, "c2"),
		conds(correlate.FieldHost, "h1", correlate.FieldCustomer, "c2"),
		conds(correlate.FieldHost, "h*"),
	}
	extra := conds(correlate.FieldHost, "h3", correlate.FieldCustomer, "c0")
	lookback := 6 * time.Hour
	for tick := range 45 {
		to := t0.Add(time.Duration(70+tick) * time.Minute)
		inner.cutoff, scratch.cutoff = to, to
		if tick == 25 {
			lookback = 8 * time.Hour // a paged incident stretches the window
		}
		w := window(t, to.Add(-lookback), to)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		conjs := base
		// The extra conjunction joins, leaves, and comes back while it is
		// still counted (conjRetain): no second read of the whole span.
		if tick >= 10 && tick < 20 || tick >= 22 && tick < 24 {
			conjs = append(slices.Clone(base), extra)
		}
		// The first finding's onset, re-estimated, moves later for a few
		// ticks, then back.
		onset := t0.Add(61 * time.Minute)
		if tick >= 30 && tick < 35 {
			onset = t0.Add(64 * time.Minute)
		}
		queries := []correlate.ConjunctionQuery{
			// An open finding, and one whose onset is in the re-checked
			// region at first.
			{Service: "api", Messages: []string{"pool exhausted"}, Before: w.From, From: onset, To: to, Conjunctions: conjs},
			{Service: "api", Messages: []string{"timeout after <n> ms"}, Before: w.From, From: t0.Add(69 * time.Minute), To: to, Conjunctions: conjs},
			// An episode that ended: To is its end, not the window's.
			{Service: "web", Messages: []string{"disk full"}, Before: w.From, From: t0.Add(-50 * time.Minute), To: t0.Add(10 * time.Minute), Conjunctions: conjs},
		}
		inner.conjs = nil
		for i, q := range queries {
			got, err := c.CountConjunctions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := scratch.CountConjunctions(ctx, q)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("tick %d, query %d: cached counts differ from a count from scratch:\n got %+v\nwant %+v", tick, i, got, want)
			}
			if want[0].Errors == 0 || want[0].RequestsBefore == 0 {
				t.Fatalf("tick %d, query %d: nothing counted (%+v): the comparison proves nothing", tick, i, want[0])
			}
		}
		if tick == 0 {
			continue
		}
		// In the steady state, two reads an open finding (the bucket that
		// left the window, and the new one with the re-checked region) and
		// one for the episode that ended.
		// A moved onset costs one more, of the buckets between.
		want := 2*2 + 1
		if tick == 30 || tick == 35 {
			want++
		}
		if steady := tick >= 5 && tick != 10 && tick != 25; steady && len(inner.conjs) != want {
			t.Fatalf("tick %d made %d reads for %d findings, want %d", tick, len(inner.conjs), len(queries), want)
		}
		for _, q := range inner.conjs {
			span := q.To.Sub(q.Before)
			limit := 3 * time.Minute
			if tick == 10 && len(q.Conjunctions) == 1 {
				limit = lookback // the conjunction first asked for, once
			}
			if tick == 25 {
				limit = 2 * time.Hour // the buckets the window grew back by
			}
			if span > limit {
				t.Fatalf("tick %d asked the source for %s of conjunction counts (%d conjunctions, %s to %s); want at most %s",
					tick, span, len(q.Conjunctions), q.Before.Format("15:04"), q.To.Format("15:04"), limit)
			}
		}
	}
	if st := c.Stats(); st.ConjunctionReads == 0 || st.ConjunctionBuckets == 0 {
		t.Fatalf("stats %+v count no conjunction read", st)
	}
}

// TestConjunctionsRestartAndOffGrid: a new cache answers as the old one
// did, and a query off the bucket grid goes to the source as it is.
func TestConjunctionsRestartAndOffGrid(t *testing.T) {
	ctx := context.Background()
	inner := &conjFake{fake: &fake{events: traffic()}}
	to := t0.Add(80 * time.Minute)
	inner.cutoff = to
	w := window(t, to.Add(-time.Hour), to)
	q := correlate.ConjunctionQuery{Service: "api", Messages: []string{"pool exhausted"}, Before: w.From, From: t0.Add(61 * time.Minute), To: to,
		Conjunctions: [][]correlate.Condition{{}, conds(correlate.FieldCustomer, "c1")}}
	want, _ := inner.CountConjunctions(ctx, q)
	for range 2 {
		c, _ := New(inner, Config{Recheck: time.Minute})
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		got, err := c.CountConjunctions(ctx, q)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("CountConjunctions = %+v, %v; want %+v", got, err, want)
		}
		off := q
		off.From = off.From.Add(30 * time.Second)
		inner.conjs = nil
		wantOff, _ := inner.CountConjunctions(ctx, off)
		inner.conjs = nil
		got, err = c.CountConjunctions(ctx, off)
		if err != nil || !reflect.DeepEqual(got, wantOff) || len(inner.conjs) != 1 || !reflect.DeepEqual(inner.conjs[0], off) {
			t.Fatalf("off the grid: %+v, %v, asked %+v; want %+v, asked as it is", got, err, inner.conjs, wantOff)
		}
	}
}

// TestConjunctionsWithoutCounter: over a source that cannot count
// conjunctions the cache says so, and the correlator keeps the
// one-dimension table.
func TestConjunctionsWithoutCounter(t *testing.T) {
	c, _ := New(&fake{events: traffic()}, Config{})
	_, err := c.CountConjunctions(context.Background(), correlate.ConjunctionQuery{Service: "api"})
	if !errors.Is(err, correlate.ErrNoConjunctions) {
		t.Fatalf("err = %v, want ErrNoConjunctions", err)
	}
}

// conjCounting is conjFake with a Counter, as Elasticsearch has: Traffic
// then tells which re-checked buckets are unchanged.
type conjCounting struct {
	counting
	conjFake *conjFake
}

func (c conjCounting) CountConjunctions(ctx context.Context, q correlate.ConjunctionQuery) ([]correlate.ConjunctionCount, error) {
	return c.conjFake.CountConjunctions(ctx, q)
}

// TestConjunctionsReuseUnchangedRest: with a one-bucket re-check over a
// source that counts documents, the bucket a call read as its rest joins
// the kept sum at the next call without a read when Traffic counted it
// unchanged: a steady call reads two buckets (the one that left the
// window, the new one), not three, also when the onset moved well before
// them. A document indexed late into that
// bucket makes it read again, also when an evaluation in between (of the
// same instant, asking for no counts) counted it after the late document,
// and the counts stay equal to a count from scratch.
func TestConjunctionsReuseUnchangedRest(t *testing.T) {
	ctx := context.Background()
	f := &fake{events: traffic()}
	cf := &conjFake{fake: f}
	inner := conjCounting{counting{f}, cf}
	scratch := &conjFake{fake: &fake{}}
	c, err := New(inner, Config{Recheck: time.Minute, Keep: 7 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	conjs := [][]correlate.Condition{{}, conds(correlate.FieldHost, "h1"), conds(correlate.FieldHost, "h2", correlate.FieldCustomer, "c3")}
	var late int64
	for tick := range 20 {
		to := t0.Add(time.Duration(70+tick) * time.Minute)
		if tick == 12 {
			// Late into the bucket the last call read as its rest.
			f.events = append(slices.Clone(f.events), event{at: to.Add(-90 * time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
			late = c.Stats().ConjunctionReuses
		}
		if tick == 18 {
			// Late into the bucket tick 17 read as its rest, then an
			// evaluation of tick 17's instant again that asks for no
			// counts: 18 compares with its count, taken after the late
			// document, so it must not reuse tick 17's read.
			f.events = append(slices.Clone(f.events), event{at: to.Add(-90 * time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
			prev := to.Add(-time.Minute)
			f.cutoff = prev
			if _, err := c.Traffic(ctx, window(t, prev.Add(-6*time.Hour), prev)); err != nil {
				t.Fatal(err)
			}
			late = c.Stats().ConjunctionReuses
		}
		f.cutoff, scratch.cutoff, scratch.events = to, to, f.events
		w := window(t, to.Add(-6*time.Hour), to)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		onset := t0.Add(61 * time.Minute)
		if tick >= 15 {
			onset = onset.Add(time.Minute) // re-estimated, long before the rest
		}
		q := correlate.ConjunctionQuery{Service: "api", Messages: []string{"pool exhausted"}, Before: w.From, From: onset, To: to, Conjunctions: conjs}
		b0 := c.Stats().ConjunctionBuckets
		got, err := c.CountConjunctions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.CountConjunctions(ctx, q)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tick %d: cached counts differ from a count from scratch:\n got %+v\nwant %+v", tick, got, want)
		}
		read := c.Stats().ConjunctionBuckets - b0
		switch {
		case tick == 12 || tick == 18:
			if read != 3 || c.Stats().ConjunctionReuses != late {
				t.Fatalf("tick %d, after a late document: read %d buckets, reuses %d→%d; want 3, none", tick, read, late, c.Stats().ConjunctionReuses)
			}
		case tick == 15:
			if read != 3 {
				t.Fatalf("tick %d, the onset moved a minute: read %d buckets, want 3 (the minute between the onsets, the one that left the window, the new one)", tick, read)
			}
		case tick >= 2 && read != 2:
			t.Fatalf("tick %d read %d buckets of conjunction counts, want 2 (the one that left the window, the new one)", tick, read)
		}
	}
	if c.Stats().ConjunctionReuses < 14 {
		t.Fatalf("%d reuses in 20 ticks, want one at every steady tick", c.Stats().ConjunctionReuses)
	}
}
