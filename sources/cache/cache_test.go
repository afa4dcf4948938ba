package cache

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

var t0 = time.Date(2026, 3, 6, 12, 0, 0, 0, time.UTC)

// event is one log document of the fake source.
type event struct {
	at      time.Time
	service string
	message string // masked; "" for a request without error
	raw     string
}

// fake is a source over a list of documents that answers like the real
// ones: per bucket counts, the three earliest examples per message (ties
// by raw text), and Complete from a cutoff with their rule (at least 1).
// It records the windows it was asked for.
type fake struct {
	events []event
	cutoff time.Time
	asked  []correlate.Window
	scopes []correlate.ScopeQuery
}

func (f *fake) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	f.asked = append(f.asked, w)
	n := w.Len()
	type msg struct {
		counts []float64
		ex     []event
	}
	type svc struct {
		req, errs []float64
		msgs      map[string]*msg
	}
	svcs := map[string]*svc{}
	for _, e := range f.events {
		i := w.Index(e.at)
		if i < 0 || i >= n || !e.at.Before(f.cutoff) {
			continue
		}
		s := svcs[e.service]
		if s == nil {
			s = &svc{req: make([]float64, n), errs: make([]float64, n), msgs: map[string]*msg{}}
			svcs[e.service] = s
		}
		s.req[i]++
		if e.message == "" {
			continue
		}
		s.errs[i]++
		m := s.msgs[e.message]
		if m == nil {
			m = &msg{counts: make([]float64, n)}
			s.msgs[e.message] = m
		}
		m.counts[i]++
		m.ex = append(m.ex, e)
	}
	tr := &correlate.Traffic{Window: w}
	if f.cutoff.Before(w.To) {
		k := 0
		if f.cutoff.After(w.From) {
			k = int(f.cutoff.Sub(w.From) / w.Step)
		}
		tr.Complete = max(min(k, n), 1)
	}
	for name, s := range svcs {
		st := correlate.ServiceTraffic{Service: name, Requests: s.req, Errors: s.errs}
		for text, m := range s.msgs {
			sort.SliceStable(m.ex, func(a, b int) bool {
				if !m.ex[a].at.Equal(m.ex[b].at) {
					return m.ex[a].at.Before(m.ex[b].at)
				}
				return m.ex[a].raw < m.ex[b].raw
			})
			var ex []string
			for _, e := range m.ex[:min(3, len(m.ex))] {
				ex = append(ex, e.raw)
			}
			st.Messages = append(st.Messages, correlate.MessageCounts{Message: text, Counts: correlate.NewCounts(m.counts), Examples: ex})
		}
		sort.Slice(st.Messages, func(a, b int) bool { return st.Messages[a].Message < st.Messages[b].Message })
		tr.Services = append(tr.Services, st)
	}
	sort.Slice(tr.Services, func(a, b int) bool { return tr.Services[a].Service < tr.Services[b].Service })
	return tr, nil
}

// fakeHost and fakeCustomer are the dimensions the fake breaks down by,
// varied by the second and the minute of a document.
func fakeHost(e event) string     { return fmt.Sprintf("h%d", e.at.Second()%4) }
func fakeCustomer(e event) string { return fmt.Sprintf("c%d", e.at.Minute()%5) }

// Scope answers as the real sources do: tallies by host and customer over
// [From, To), host series over the window, and the five earliest matching
// documents (ties by raw text). It records the queries it was asked.
func (f *fake) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	f.scopes = append(f.scopes, q)
	sc := &correlate.Scope{Errors: map[string]map[string]float64{}, Requests: map[string]map[string]float64{},
		HostErrors: map[string][]float64{}, HostRequests: map[string][]float64{}}
	for _, fl := range correlate.ScopeFields {
		sc.Errors[fl], sc.Requests[fl] = map[string]float64{}, map[string]float64{}
	}
	hasRange := !q.From.IsZero() && !q.To.IsZero() && q.To.After(q.From)
	n := q.Window.Len()
	var matched []event
	for _, e := range f.events {
		if e.service != q.Service || !e.at.Before(f.cutoff) {
			continue
		}
		match := e.message != "" && slices.Contains(q.Messages, e.message)
		if hasRange && !e.at.Before(q.From) && e.at.Before(q.To) {
			for fl, v := range map[string]string{correlate.FieldHost: fakeHost(e), correlate.FieldCustomer: fakeCustomer(e)} {
				sc.Requests[fl][v]++
				if match {
					sc.Errors[fl][v]++
				}
			}
			if match {
				matched = append(matched, e)
			}
		}
		if i := q.Window.Index(e.at); n > 0 && i >= 0 {
			h := fakeHost(e)
			for _, into := range []map[string][]float64{sc.HostRequests, sc.HostErrors} {
				if into == nil {
					continue
				}
				if into[h] == nil {
					into[h] = make([]float64, n)
				}
				into[h][i]++
				if !match {
					break
				}
			}
		}
	}
	sort.SliceStable(matched, func(a, b int) bool {
		if !matched[a].at.Equal(matched[b].at) {
			return matched[a].at.Before(matched[b].at)
		}
		return matched[a].raw < matched[b].raw
	})
	for _, e := range matched[:min(5, len(matched))] {
		sc.Samples = append(sc.Samples, correlate.Sample{Time: e.at, Host: fakeHost(e), Customer: fakeCustomer(e), Message: e.raw})
	}
	return sc, nil
}

// traffic is a day of documents: two services with steady requests, a
// background error in most minutes with numbered raw messages (so that
// examples tell occurrences apart), a sparse one, and an error class
// that begins at 13:00.
func traffic() []event {
	var out []event
	for m := range 24 * 60 {
		at := t0.Add(-12*time.Hour + time.Duration(m)*time.Minute)
		for k := range 6 {
			out = append(out, event{at: at.Add(time.Duration(k) * 7 * time.Second), service: "api"})
		}
		out = append(out, event{at: at.Add(3 * time.Second), service: "web"})
		if m%5 != 0 {
			for k := range m % 4 {
				out = append(out, event{at: at.Add(time.Duration(10+k) * time.Second), service: "api",
					message: "timeout after <n> ms", raw: fmt.Sprintf("timeout after %d ms", m*10+k)})
			}
		}
		if m%97 == 0 {
			out = append(out, event{at: at.Add(40 * time.Second), service: "web", message: "disk full", raw: fmt.Sprintf("disk full on /dev/sd%d", m%7)})
		}
		if at.After(t0.Add(time.Hour)) {
			out = append(out, event{at: at.Add(20 * time.Second), service: "api", message: "pool exhausted", raw: "pool exhausted"})
		}
	}
	return out
}

func window(t *testing.T, from, to time.Time) correlate.Window {
	t.Helper()
	w, err := correlate.NewWindow(from, to, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestSteadyStateReadsNewBucketsOnly: after the first evaluation read its
// window, each one-minute tick asks the source for the new bucket and the
// re-checked region only, and every answer equals a read from scratch.
func TestSteadyStateReadsNewBucketsOnly(t *testing.T) {
	ctx := context.Background()
	c, inner, scratch := steadyCache(t)
	for tick := range 30 {
		to := t0.Add(time.Duration(tick) * time.Minute)
		inner.cutoff, scratch.cutoff = to, to
		w := window(t, to.Add(-6*time.Hour), to)
		inner.asked = nil
		got, err := c.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.Traffic(ctx, w)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("tick %d: cached traffic differs from a read from scratch:\n got %+v\nwant %+v", tick, got, want)
		}
		if tick == 0 {
			if len(inner.asked) != 1 || inner.asked[0] != w {
				t.Fatalf("first tick asked %v, want the whole window", inner.asked)
			}
			continue
		}
		// The new bucket and the two minutes re-checked.
		reread := correlate.Window{From: to.Add(-3 * time.Minute), To: to, Step: time.Minute}
		if len(inner.asked) == 0 || inner.asked[0] != reread {
			t.Fatalf("tick %d asked %v, want %v first", tick, inner.asked, reread)
		}
		for _, a := range inner.asked[1:] {
			if a.Len() != 1 {
				t.Fatalf("tick %d asked %v besides the new buckets: only single-bucket example top-ups may follow", tick, a)
			}
		}
	}
	st := c.Stats()
	if st.TopUps == 0 {
		t.Errorf("no example top-up in 30 ticks after a cold read: the sliding window never needed one, so this test does not exercise them")
	}
	// Once the window has slid past the cold read's examples, top-ups
	// stop: a steady tick is one read.
	for tick := range 10 {
		to := t0.Add(time.Duration(400+tick) * time.Minute)
		inner.cutoff, scratch.cutoff = to, to
		w := window(t, to.Add(-6*time.Hour), to)
		if tick == 0 {
			// Slide the cache over the gap first.
			for m := 30; m < 400; m++ {
				inner.cutoff = t0.Add(time.Duration(m) * time.Minute)
				if _, err := c.Traffic(ctx, window(t, inner.cutoff.Add(-6*time.Hour), inner.cutoff)); err != nil {
					t.Fatal(err)
				}
			}
			inner.cutoff = to
		}
		inner.asked = nil
		got, err := c.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.Traffic(ctx, w)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("steady tick %d: cached traffic differs from a read from scratch", tick)
		}
		if len(inner.asked) != 1 {
			t.Fatalf("steady tick %d asked %v, want one read", tick, inner.asked)
		}
	}
}

// TestIncompleteBuckets: buckets past the cutoff are reported incomplete
// exactly as the source reports them on the whole window, and are read
// again until complete.
func TestIncompleteBuckets(t *testing.T) {
	ctx := context.Background()
	inner := &fake{events: traffic()}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{})
	if err != nil {
		t.Fatal(err)
	}
	to := t0.Add(10 * time.Minute)
	w := window(t, to.Add(-time.Hour), to)
	for _, cut := range []time.Duration{-3 * time.Minute, -3 * time.Minute, -2 * time.Minute, -90 * time.Second, -time.Minute, 0, 0} {
		inner.cutoff, scratch.cutoff = to.Add(cut), to.Add(cut)
		got, err := c.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := scratch.Traffic(ctx, w)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("cutoff %s: got Complete %d, want %d; traffic differs: %v", cut, got.Complete, want.Complete, !reflect.DeepEqual(got.Services, want.Services))
		}
	}
}

// TestLateDocuments: a document indexed into a bucket already read is
// picked up while the bucket is in the re-checked region, and not after:
// that is the trade Recheck sets.
func TestLateDocuments(t *testing.T) {
	ctx := context.Background()
	inner := &fake{events: traffic()}
	c, err := New(inner, Config{Recheck: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	requests := func(tr *correlate.Traffic, at time.Time) float64 {
		i := tr.Window.Index(at)
		for _, s := range tr.Services {
			if s.Service == "web" {
				return s.Requests[i]
			}
		}
		return 0
	}
	tick := func(to time.Time) *correlate.Traffic {
		inner.cutoff = to
		tr, err := c.Traffic(ctx, window(t, to.Add(-time.Hour), to))
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	tick(t0)
	tr := tick(t0.Add(time.Minute))
	inside, outside := t0.Add(-2*time.Minute), t0.Add(-10*time.Minute)
	if requests(tr, inside) != 1 || requests(tr, outside) != 1 {
		t.Fatalf("web requests %v and %v before the late documents, want 1", requests(tr, inside), requests(tr, outside))
	}
	inner.events = append(inner.events,
		event{at: inside.Add(5 * time.Second), service: "web"},
		event{at: outside.Add(5 * time.Second), service: "web"})
	tr = tick(t0.Add(2 * time.Minute))
	if got := requests(tr, inside); got != 2 {
		t.Errorf("bucket %s, in the re-checked region: %v requests, want the late one too (2)", inside.Format("15:04"), got)
	}
	if got := requests(tr, outside); got != 1 {
		t.Errorf("bucket %s, before the re-checked region: %v requests, want 1 (not read again)", outside.Format("15:04"), got)
	}
}

// TestRestart: a new cache over the same source reads its first window
// whole, and answers like the old one from then on.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	inner := &fake{events: traffic()}
	a, _ := New(inner, Config{Recheck: time.Minute})
	b, _ := New(inner, Config{Recheck: time.Minute})
	for tick := range 5 {
		to := t0.Add(time.Duration(tick) * time.Minute)
		inner.cutoff = to
		w := window(t, to.Add(-3*time.Hour), to)
		ta, err := a.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if tick < 3 {
			continue
		}
		inner.asked = nil
		tb, err := b.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		if tick == 3 && (len(inner.asked) != 1 || inner.asked[0] != w) {
			t.Fatalf("the restarted cache asked %v first, want its whole window", inner.asked)
		}
		if !reflect.DeepEqual(ta, tb) {
			t.Fatalf("tick %d: restarted cache differs", tick)
		}
	}
}

func TestBadConfigAndAnswers(t *testing.T) {
	if _, err := New(nil, Config{}); err == nil {
		t.Error("New(nil) succeeded")
	}
	if _, err := New(&fake{}, Config{Recheck: -time.Second}); err == nil {
		t.Error("a negative recheck was accepted")
	}
	c, _ := New(short{}, Config{})
	_, err := c.Traffic(context.Background(), window(t, t0, t0.Add(time.Hour)))
	if err == nil || !strings.Contains(err.Error(), `service "api"`) {
		t.Errorf("an answer of the wrong length gave %v, want an error naming the service", err)
	}
}

// short answers with one bucket whatever the window.
type short struct{}

func (short) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	return &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{{Service: "api", Requests: []float64{1}, Errors: []float64{0}}}}, nil
}

func (short) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	return nil, nil
}

// counting is the fake with a Counter: documents per bucket by time.
type counting struct{ *fake }

func (c counting) Counts(ctx context.Context, w correlate.Window) ([]float64, error) {
	out := make([]float64, w.Len())
	for _, e := range c.events {
		if i := w.Index(e.at); i >= 0 && i < len(out) && e.at.Before(c.cutoff) {
			out[i]++
		}
	}
	return out, nil
}

// TestCounterSkipsUnchangedBuckets: with a source that counts cheaply, a
// steady tick reads the traffic of its new bucket only, and a re-checked
// bucket that received a late document is read again.
func TestCounterSkipsUnchangedBuckets(t *testing.T) {
	ctx := context.Background()
	inner := counting{&fake{events: traffic()}}
	scratch := &fake{events: inner.events}
	c, err := New(inner, Config{Recheck: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tick := func(to time.Time) {
		t.Helper()
		inner.cutoff, scratch.cutoff = to, to
		inner.asked = nil
		w := window(t, to.Add(-time.Hour), to)
		got, err := c.Traffic(ctx, w)
		if err != nil {
			t.Fatal(err)
		}
		scratch.events = inner.events
		if want, _ := scratch.Traffic(ctx, w); !reflect.DeepEqual(got, want) {
			t.Fatalf("at %s: cached traffic differs from a read from scratch", to.Format("15:04"))
		}
	}
	for m := range 70 { // past the first read's examples: no top-ups
		tick(t0.Add(time.Duration(m) * time.Minute))
	}
	to := t0.Add(70 * time.Minute)
	tick(to)
	if want := (correlate.Window{From: to.Add(-time.Minute), To: to, Step: time.Minute}); len(inner.asked) != 1 || inner.asked[0] != want {
		t.Fatalf("a steady tick asked %v, want only the new bucket %v", inner.asked, want)
	}
	late := to.Add(-2 * time.Minute)
	inner.events = append(inner.events, event{at: late.Add(time.Second), service: "web"})
	to = to.Add(time.Minute)
	tick(to)
	var reread bool
	for _, a := range inner.asked {
		reread = reread || a.Index(late) >= 0
	}
	if !reread {
		t.Errorf("the bucket that received a late document was not read again: asked %v", inner.asked)
	}
	if st := c.Stats(); st.Counts != 71 {
		t.Errorf("%d counts, want one per tick after the first (71)", st.Counts)
	}
}

// steadyCache is a cache over the test traffic as the daemon runs it (2
// minutes re-checked, 7 hours kept), its source, and a second source over
// the same events to read from scratch. Its examples are far below
// Config.ExampleBytes, so all are kept and a steady tick is one read; the
// budget's top-ups are tested on their own (TestExampleBudget...).
func steadyCache(t *testing.T) (c *Source, inner, scratch *fake) {
	t.Helper()
	inner = &fake{events: traffic()}
	scratch = &fake{events: inner.events}
	c, err := New(inner, Config{Recheck: 2 * time.Minute, Keep: 7 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return c, inner, scratch
}
