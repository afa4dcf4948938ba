package cache

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// scopeQueries are the breakdowns an evaluation at to asks for, in the
// correlator's patterns: an open episode (From fixed at its onset, To
// the window's end), a range that ended (a pre-deploy look), host series
// only, and another service.
func scopeQueries(w correlate.Window, to time.Time) []correlate.ScopeQuery {
	return []correlate.ScopeQuery{
		{Service: "api", Messages: []string{"pool exhausted"}, From: t0.Add(61 * time.Minute), To: to, Window: w},
		{Service: "api", Messages: []string{"timeout after <n> ms", "pool exhausted"}, From: t0.Add(-50 * time.Minute), To: to, Window: w},
		{Service: "api", Messages: []string{"timeout after <n> ms"}, From: t0, To: t0.Add(30 * time.Minute), Window: w},
		{Service: "api", Messages: []string{"timeout after <n> ms"}, Window: w},
		{Service: "web", Messages: []string{"disk full"}, From: t0.Add(-2 * time.Hour), To: to, Window: w},
	}
}

// TestScopeEqualsScratchAndReadsNewBuckets: tick by tick, every breakdown
// the cache answers equals a read from scratch, and after the first tick
// each read it asks of the source spans the buckets new since the last
// tick and the re-checked region only, not the window.
func TestScopeEqualsScratchAndReadsNewBuckets(t *testing.T) {
	ctx := context.Background()
	c, inner, scratch := steadyCache(t)
	for tick := range 40 {
		to := t0.Add(time.Duration(70+tick) * time.Minute)
		inner.cutoff, scratch.cutoff = to, to
		w := window(t, to.Add(-6*time.Hour), to)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		inner.scopes = nil
		for i, q := range scopeQueries(w, to) {
			got, err := c.Scope(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := scratch.Scope(ctx, q)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("tick %d, query %d: cached scope differs from a read from scratch:\n got %+v\nwant %+v", tick, i, got, want)
			}
		}
		if tick == 0 {
			continue
		}
		for _, q := range inner.scopes {
			if span := querySpan(q); span > 3*time.Minute {
				t.Fatalf("tick %d asked the source for %s of breakdown (%+v); want at most the new bucket and the 2 minutes re-checked", tick, span, q)
			}
		}
	}
	st := c.Stats()
	if st.ScopeReads == 0 || st.ScopeBuckets == 0 {
		t.Fatalf("stats %+v count no scope read", st)
	}
}

// TestScopeLateDocuments: an error indexed late into the re-checked region
// is counted, as Traffic counts it; and a restarted cache answers as the
// old one.
func TestScopeLateDocumentsAndRestart(t *testing.T) {
	ctx := context.Background()
	inner := &fake{events: traffic()}
	c, _ := New(inner, Config{Recheck: 3 * time.Minute})
	q := func(w correlate.Window, to time.Time) correlate.ScopeQuery {
		return correlate.ScopeQuery{Service: "api", Messages: []string{"pool exhausted"}, From: t0.Add(61 * time.Minute), To: to, Window: w}
	}
	tick := func(c *Source, to time.Time) *correlate.Scope {
		t.Helper()
		inner.cutoff = to
		w := window(t, to.Add(-time.Hour), to)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		sc, err := c.Scope(ctx, q(w, to))
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	to := t0.Add(80 * time.Minute)
	tick(c, to)
	before := tick(c, to.Add(time.Minute)).Errors[correlate.FieldCustomer]
	late := event{at: to.Add(-2*time.Minute + 50*time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted (late)"}
	inner.events = append(inner.events, late)
	after := tick(c, to.Add(2*time.Minute))
	cust := fakeCustomer(late)
	if got, want := after.Errors[correlate.FieldCustomer][cust], before[cust]+1; got != want {
		t.Errorf("customer %s: %v errors after a late one in the re-checked region, want %v", cust, got, want)
	}
	// A new cache over the same source: its first answer is a whole read,
	// and equals the old cache's.
	fresh, _ := New(inner, Config{Recheck: 3 * time.Minute})
	for k := 3; k < 6; k++ {
		a, b := tick(c, to.Add(time.Duration(k)*time.Minute)), tick(fresh, to.Add(time.Duration(k)*time.Minute))
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("minute %d: the restarted cache's scope differs from the running one's", k)
		}
	}
}

// TestScopePassesThroughWhatItCannotSplit: a range off the bucket grid, a
// query before any Traffic, and the "<other>" signature go to the source
// exactly as asked.
func TestScopePassesThroughWhatItCannotSplit(t *testing.T) {
	ctx := context.Background()
	inner := &fake{events: traffic(), cutoff: t0.Add(2 * time.Hour)}
	c, _ := New(inner, Config{})
	to := t0.Add(90 * time.Minute)
	w := window(t, to.Add(-time.Hour), to)
	cold := correlate.ScopeQuery{Service: "api", Messages: []string{"pool exhausted"}, From: t0.Add(61 * time.Minute), To: to, Window: w}
	if _, err := c.Scope(ctx, cold); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Traffic(ctx, w); err != nil {
		t.Fatal(err)
	}
	off := cold
	off.From = off.From.Add(30 * time.Second)
	other := cold
	other.Messages = []string{"<other>"}
	for _, q := range []correlate.ScopeQuery{off, other} {
		if _, err := c.Scope(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	want := []correlate.ScopeQuery{cold, off, other}
	if !reflect.DeepEqual(inner.scopes, want) {
		t.Errorf("the source was asked\n%+v\nwant the queries as they were\n%+v", inner.scopes, want)
	}
}

// TestScopeForgottenWhenIdle: a breakdown nobody asks for in scopeIdle
// buckets is forgotten at the next evaluation's Traffic (a finding that
// recovered and left), while one asked for every evaluation is kept; the
// forgotten one, asked again, is read over the whole window again and
// still equals a read from scratch.
func TestScopeForgottenWhenIdle(t *testing.T) {
	ctx := context.Background()
	c, inner, scratch := steadyCache(t)
	at := func(tick int) (correlate.Window, time.Time) {
		to := t0.Add(time.Duration(70+tick) * time.Minute)
		inner.cutoff, scratch.cutoff = to, to
		return window(t, to.Add(-6*time.Hour), to), to
	}
	scope := func(q correlate.ScopeQuery) *correlate.Scope {
		t.Helper()
		sc, err := c.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return sc
	}
	var left, kept correlate.ScopeQuery
	for tick := 0; tick <= scopeIdle+1; tick++ {
		w, to := at(tick)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		qs := scopeQueries(w, to)
		kept = qs[0]
		scope(kept)
		if tick == 0 {
			left = qs[4]
			scope(left)
			if len(c.scopes) != 2 {
				t.Fatalf("%d breakdowns kept after two were asked for", len(c.scopes))
			}
		}
	}
	if len(c.scopes) != 1 {
		t.Fatalf("%d breakdowns kept %d buckets after the second was last asked for; want only the one still asked for", len(c.scopes), scopeIdle+1)
	}
	w, to := at(scopeIdle + 2)
	if _, err := c.Traffic(ctx, w); err != nil {
		t.Fatal(err)
	}
	left = scopeQueries(w, to)[4]
	inner.scopes = nil
	got := scope(left)
	var read time.Duration
	for _, q := range inner.scopes {
		read += querySpan(q)
	}
	if read < w.To.Sub(w.From) {
		t.Fatalf("the forgotten breakdown was answered by reads of %s (%+v); want the whole window, %s, read again", read, inner.scopes, w.To.Sub(w.From))
	}
	if want, _ := scratch.Scope(ctx, left); !reflect.DeepEqual(got, want) {
		t.Fatalf("the forgotten breakdown, asked again, differs from a read from scratch:\n got %+v\nwant %+v", got, want)
	}
}

// TestScopeReuseUnchangedRest: with a source that counts documents, the
// bucket a call read as its rest joins the kept breakdown at the next call
// without a read when Traffic counted it unchanged, so a steady call reads
// one bucket, the new one, not two. A document indexed late into that
// bucket makes it read again; so does a call after an evaluation that
// asked for no breakdown, when the late document came between the read
// and that evaluation's count (the count the next one is compared with),
// whether that evaluation's window moved on or not.
// Every answer equals a read from scratch.
func TestScopeReuseUnchangedRest(t *testing.T) {
	for _, recheck := range []time.Duration{time.Minute, 2 * time.Minute} {
		t.Run(recheck.String(), func(t *testing.T) { scopeReuse(t, recheck) })
	}
}

func scopeReuse(t *testing.T, recheck time.Duration) {
	ctx := context.Background()
	f := &fake{events: traffic()}
	scratch := &fake{}
	c, err := New(counting{f}, Config{Recheck: recheck, Keep: 7 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	var reuses int64
	for tick := range 24 {
		to := t0.Add(time.Duration(70+tick) * time.Minute)
		switch tick {
		case 12, 19:
			// Late into the bucket the last call read as its rest.
			f.events = append(slices.Clone(f.events), event{at: to.Add(-recheck - 30*time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
		case 21:
			// Late into the bucket tick 20 read as its rest, then an
			// evaluation of tick 20's instant again, with no breakdown
			// and no new bucket: 21 compares with its count, taken after
			// the late document.
			f.events = append(slices.Clone(f.events), event{at: to.Add(-90 * time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
			prev := to.Add(-time.Minute)
			f.cutoff = prev
			if _, err := c.Traffic(ctx, window(t, prev.Add(-6*time.Hour), prev)); err != nil {
				t.Fatal(err)
			}
		case 17:
			// Late into the newest bucket tick 16 read as its rest, which
			// is still re-checked at 18 when Recheck is two buckets; 17
			// asks for no breakdown, so 18 compares with 17's count, taken
			// after the late document.
			f.events = append(slices.Clone(f.events), event{at: to.Add(-90 * time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
		}
		f.cutoff, scratch.cutoff, scratch.events = to, to, f.events
		w := window(t, to.Add(-6*time.Hour), to)
		if _, err := c.Traffic(ctx, w); err != nil {
			t.Fatal(err)
		}
		if tick == 17 {
			continue
		}
		q := correlate.ScopeQuery{Service: "api", Messages: []string{"pool exhausted"}, From: t0.Add(61 * time.Minute), To: to, Window: w}
		b0, r0 := c.Stats().ScopeBuckets, c.Stats().ScopeReuses
		got, err := c.Scope(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.Scope(ctx, q)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tick %d: cached scope differs from a read from scratch:\n got %+v\nwant %+v", tick, got, want)
		}
		read, reused := c.Stats().ScopeBuckets-b0, c.Stats().ScopeReuses-r0
		reuses += reused
		switch {
		case recheck > time.Minute:
			// The rest spans two buckets and one joins: nothing to reuse
			// but after a skipped evaluation, which must not either.
			if reused != 0 {
				t.Fatalf("tick %d reused a rest of two buckets", tick)
			}
		case tick < 2:
		case tick == 12 || tick == 18 || tick == 19 || tick == 21:
			if reused != 0 || read < 2 {
				t.Fatalf("tick %d, its rest's bucket changed or not compared with the count before the read: read %d buckets, %d reuses; want it read again", tick, read, reused)
			}
		case read != 1 || reused != 1:
			t.Fatalf("tick %d read %d buckets of breakdown with %d reuses, want 1 (the new bucket) and the rest reused", tick, read, reused)
		}
	}
	if recheck == time.Minute && reuses < 15 {
		t.Fatalf("%d reuses in 24 ticks, want one at every steady tick", reuses)
	}
}
