package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/cache"
)

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

func TestAlignedNext(t *testing.T) {
	cases := []struct {
		name string
		a    Aligned
		at   time.Time
		want time.Time
	}{
		{"mid-minute", Aligned{Interval: time.Minute}, t0.Add(90 * time.Second), t0.Add(2 * time.Minute)},
		{"on the boundary", Aligned{Interval: time.Minute}, t0, t0.Add(time.Minute)},
		{"offset", Aligned{Interval: time.Minute, Offset: 5 * time.Second}, t0.Add(3 * time.Second), t0.Add(5 * time.Second)},
		{"five minutes", Aligned{Interval: 5 * time.Minute}, t0.Add(7 * time.Minute), t0.Add(10 * time.Minute)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.a.Next(c.at); !got.Equal(c.want) {
				t.Fatalf("Next(%s) = %s, want %s", c.at, got, c.want)
			}
		})
	}
}

// TestEvaluationSchedule: a tick comes lag past a bucket boundary, so the
// bucket it needs is in the moment it runs, and never before.
func TestEvaluationSchedule(t *testing.T) {
	cases := []struct {
		name                string
		interval, lag, want time.Duration
	}{
		{"one-minute lag ticks on the minute", time.Minute, time.Minute, time.Minute},
		{"no lag ticks on the minute", time.Minute, 0, time.Minute},
		{"30s lag ticks at :30", time.Minute, 30 * time.Second, 30 * time.Second},
		{"90s lag ticks at :30", time.Minute, 90 * time.Second, 30 * time.Second},
		{"five-minute interval, 15s lag", 5 * time.Minute, 15 * time.Second, 15 * time.Second},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a := EvaluationSchedule(c.interval, time.Minute, c.lag)
			got := a.Next(t0.Add(time.Nanosecond))
			if !got.Equal(t0.Add(c.want)) {
				t.Fatalf("first tick after %s = %s, want %s", t0.Format(time.TimeOnly), got.Format(time.TimeOnly), t0.Add(c.want).Format(time.TimeOnly))
			}
			// The bucket ending lag before the tick is whole; the next
			// one is not yet.
			if cut := got.Add(-c.lag); !cut.Truncate(time.Minute).Equal(cut) {
				t.Errorf("tick %s reads up to %s, off the bucket grid", got.Format(time.TimeOnly), cut.Format(time.TimeOnly))
			}
		})
	}
}

// TestScheduleRecoversAndStops runs the real cron on a one-second
// schedule: a panicking run must not stop later runs, and cancelling
// returns once the running job is done.
func TestScheduleRecoversAndStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	calls := make(chan time.Time, 10)
	var n atomic.Int32
	fake := t0
	done := make(chan error)
	go func() {
		done <- Schedule(ctx, Aligned{Interval: time.Second}, func() time.Time { return fake }, discard(), func(ctx context.Context, at time.Time) error {
			if n.Add(1) == 1 {
				panic("first run panics")
			}
			calls <- at
			return nil
		})
	}()
	select {
	case at := <-calls:
		if !at.Equal(fake) {
			t.Fatalf("job got %s, want the injected clock's %s", at, fake)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no run after a panicking one within 10 s")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Schedule returned %v", err)
	}
}

// source serves fixed traffic, or fails.
type source struct {
	tr  correlate.Traffic
	err error
}

func (s *source) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	if s.err != nil {
		return nil, s.err
	}
	tr := s.tr
	tr.Window = w
	tr.Services = nil
	for _, svc := range s.tr.Services {
		svc.Requests = make([]float64, w.Len())
		svc.Errors = make([]float64, w.Len())
		for i := range svc.Requests {
			svc.Requests[i] = 100
		}
		tr.Services = append(tr.Services, svc)
	}
	return &tr, nil
}

func (s *source) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

type allPage struct{}

func (allPage) Route(string, time.Time) (escalate.Action, string) {
	return escalate.ActionPage, "always"
}
func (allPage) Silenced(string, string, time.Time) (bool, string) { return false, "" }

func evaluator(t *testing.T, src correlate.Source, services ...string) (*Evaluator, *store.Store, *prometheus.Registry) {
	t.Helper()
	st, err := store.Open(context.Background(), t.TempDir(), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := prometheus.NewRegistry()
	e, err := New(Config{Source: src, SourceName: "es logs-*", Store: st, Policy: allPage{},
		Settings: escalate.Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour}, Correlate: rules.Default().Correlate,
		Lookback: time.Hour, BlindAfter: 3, Services: services, Registerer: reg, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	return e, st, reg
}

func TestBlindnessAcrossEvaluations(t *testing.T) {
	ctx := context.Background()
	src := &source{err: errors.New("dial tcp 10.0.0.1:9200: connection refused")}
	e, st, reg := evaluator(t, src)
	for i := 1; i <= 4; i++ {
		if err := e.Evaluate(ctx, t0.Add(time.Duration(i)*time.Minute)); err == nil {
			t.Fatalf("evaluation %d with a failing source succeeded", i)
		}
	}
	due, _ := st.Due(ctx, t0.Add(time.Hour), 10)
	if len(due) != 1 || due[0].Action != escalate.Trigger || due[0].Key != "culprit/blind/es logs-*" {
		t.Fatalf("want one blindness trigger after 3 failures, got %+v", due)
	}
	if got := testutil.ToFloat64(e.m.evals.WithLabelValues("error")); got != 4 {
		t.Errorf("error evaluations metric %v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "culprit_evaluations_total", "culprit_open_incidents"); err != nil || n != 2 {
		t.Errorf("registry exposes %d of the evaluator's series (%v), want 2", n, err)
	}
	src.err = nil
	src.tr = correlate.Traffic{Services: []correlate.ServiceTraffic{{Service: "api"}}}
	if err := e.Evaluate(ctx, t0.Add(5*time.Minute)); err != nil {
		t.Fatal(err)
	}
	due, _ = st.Due(ctx, t0.Add(time.Hour), 10)
	if len(due) != 2 || due[1].Action != escalate.Resolve {
		t.Fatalf("want the blindness incident resolved, got %+v", due)
	}
	if !e.LastSuccess().Equal(t0.Add(5 * time.Minute)) {
		t.Errorf("LastSuccess %s", e.LastSuccess())
	}
}

func TestWatchedServicesAndData(t *testing.T) {
	src := &source{tr: correlate.Traffic{Services: []correlate.ServiceTraffic{{Service: "api"}, {Service: "edge-router"}}}}
	w := &watching{Source: src, watched: map[string]bool{"edge-router": true}}
	win, _ := correlate.NewWindow(t0, t0.Add(time.Hour), time.Minute)
	tr, err := w.Traffic(context.Background(), win)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Services) != 1 || tr.Services[0].Service != "edge-router" {
		t.Fatalf("services %+v, want only edge-router", tr.Services)
	}
	if !w.hasData("edge-router") || w.hasData("api") {
		t.Fatalf("hasData wrong: %v", w.live)
	}
}

// stepSource serves one service whose brand-new error class runs at 5 a
// minute from onset until end, against 100 requests a minute, spread over
// ten customers.
type stepSource struct{ onset, end time.Time }

func (s *stepSource) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	svc := correlate.ServiceTraffic{Service: "api", Requests: make([]float64, w.Len()), Errors: make([]float64, w.Len())}
	counts := make([]float64, w.Len())
	for i := range counts {
		svc.Requests[i] = 100
		if at := w.Start(i); !at.Before(s.onset) && at.Before(s.end) {
			counts[i] = 5
		}
	}
	copy(svc.Errors, counts)
	svc.Messages = []correlate.MessageCounts{{Message: "upstream pool exhausted", Counts: correlate.NewCounts(counts), Examples: []string{"upstream pool exhausted"}}}
	return &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{svc}}, nil
}

func (s *stepSource) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	errs, reqs := map[string]float64{}, map[string]float64{}
	for i := range 10 {
		c := fmt.Sprintf("org-%d", i)
		errs[c], reqs[c] = 50, 1000
	}
	return &correlate.Scope{
		Errors:   map[string]map[string]float64{correlate.FieldCustomer: errs},
		Requests: map[string]map[string]float64{correlate.FieldCustomer: reqs},
	}, nil
}

// TestIncidentOutlastsLookback: an incident that goes on for three times
// the lookback stays open, paged once, until its errors stop. Before
// windows were anchored at open incidents, the onset slid out of the
// window after one lookback, the whole window looked elevated, the finding
// vanished and the incident resolved while the errors went on.
func TestIncidentOutlastsLookback(t *testing.T) {
	ctx := context.Background()
	src := &stepSource{onset: t0.Add(90 * time.Minute), end: t0.Add(5 * time.Hour)}
	e, st, _ := evaluator(t, src)
	var opened, resolved time.Time
	for now := t0.Add(time.Hour); now.Before(t0.Add(6 * time.Hour)); now = now.Add(time.Minute) {
		if err := e.Evaluate(ctx, now); err != nil {
			t.Fatalf("evaluate at %s: %v", now.Format("15:04"), err)
		}
		ins, err := st.Incidents(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) > 1 {
			t.Fatalf("%d incidents at %s, want one", len(ins), now.Format("15:04"))
		}
		if len(ins) == 1 {
			if opened.IsZero() {
				opened = now
			}
			if ins[0].Status == escalate.StatusResolved && resolved.IsZero() {
				resolved = now
			}
		}
	}
	if opened.IsZero() || opened.After(src.onset.Add(5*time.Minute)) {
		t.Fatalf("opened at %s, onset %s", opened.Format("15:04"), src.onset.Format("15:04"))
	}
	if resolved.Before(src.end) {
		t.Fatalf("resolved at %s while the errors went on until %s", resolved.Format("15:04"), src.end.Format("15:04"))
	}
	due, _ := st.Due(ctx, t0.Add(24*time.Hour), 10)
	var actions []string
	for _, m := range due {
		actions = append(actions, m.Action)
	}
	if strings.Join(actions, ",") != "trigger,resolve" {
		t.Fatalf("outbox %v, want one trigger then one resolve", actions)
	}
}

// TestMinBaseline: an onset is judged only with a third of the lookback in
// front of it. With a one-hour lookback, an error that began 45 minutes
// before the first evaluation (15 minutes of baseline) opens nothing; one
// that began 35 minutes before (25 minutes of baseline) opens an incident.
func TestMinBaseline(t *testing.T) {
	cases := []struct {
		name     string
		onset    time.Duration
		wantOpen bool
	}{
		{"15m of baseline", 15 * time.Minute, false},
		{"25m of baseline", 25 * time.Minute, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			src := &stepSource{onset: t0.Add(tc.onset), end: t0.Add(5 * time.Hour)}
			e, st, _ := evaluator(t, src)
			if err := e.Evaluate(ctx, t0.Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			ins, err := st.Incidents(ctx, 10)
			if err != nil {
				t.Fatal(err)
			}
			if got := len(ins) == 1; got != tc.wantOpen {
				t.Fatalf("%d incidents, want open = %v", len(ins), tc.wantOpen)
			}
		})
	}
}

// TestWindowStart: the window reaches back a lookback before the onset of
// an open incident someone was told about, unless that is more than 12
// hours back, and never for one that was only recorded.
func TestWindowStart(t *testing.T) {
	to := t0.Add(10 * time.Hour)
	lookback := 6 * time.Hour
	open := func(onset time.Duration, paged, posted bool) escalate.Incident {
		in := escalate.Incident{Status: escalate.StatusOpen, Onset: t0.Add(onset)}
		if paged {
			in.PagedAt = in.Onset.Add(3 * time.Minute)
		}
		if posted {
			in.PostedAt = in.Onset.Add(3 * time.Minute)
		}
		return in
	}
	resolved := open(5*time.Hour, true, false)
	resolved.Status = escalate.StatusResolved
	cases := []struct {
		name  string
		known []escalate.Incident
		want  time.Time
	}{
		{"no incidents: the lookback", nil, to.Add(-lookback)},
		{"a paged incident older than the window", []escalate.Incident{open(5*time.Hour, true, false)}, t0.Add(-time.Hour)},
		{"a posted incident", []escalate.Incident{open(5*time.Hour, false, true)}, t0.Add(-time.Hour)},
		{"a record-only incident does not anchor", []escalate.Incident{open(5*time.Hour, false, false)}, to.Add(-lookback)},
		{"a resolved incident does not anchor", []escalate.Incident{resolved}, to.Add(-lookback)},
		{"an anchor beyond 12 hours is dropped", []escalate.Incident{open(2*time.Hour, true, false)}, to.Add(-lookback)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := windowStart(to, lookback, time.Minute, c.known); !got.Equal(c.want) {
				t.Fatalf("windowStart = %s, want %s", got.Format("15:04"), c.want.Format("15:04"))
			}
		})
	}
}

// lateSource serves 100 requests a bucket, its newest bucket still filling
// (40 so far), plus extra requests in chosen buckets: the ones a pipeline
// running behind the lag delivers after they were judged.
type lateSource struct {
	extra map[time.Time]float64
}

func (s *lateSource) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	svc := correlate.ServiceTraffic{Service: "api", Requests: make([]float64, w.Len()), Errors: make([]float64, w.Len())}
	for i := range svc.Requests {
		svc.Requests[i] = 100 + s.extra[w.Start(i)]
	}
	svc.Requests[w.Len()-1] = 40
	return &correlate.Traffic{Window: w, Complete: w.Len() - 1, Services: []correlate.ServiceTraffic{svc}}, nil
}

func (s *lateSource) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

// TestLateRequests: a bucket that fills up after it was judged (the lag is
// shorter than the pipeline's) is counted and named in a warning; the
// newest bucket filling up, which no evaluation judged, is not late.
func TestLateRequests(t *testing.T) {
	ctx := context.Background()
	src := &lateSource{extra: map[time.Time]float64{}}
	e, _, _ := evaluator(t, src)
	var logs strings.Builder
	e.cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	at := t0.Add(2 * time.Hour)
	for i := range 3 {
		if err := e.Evaluate(ctx, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if got := testutil.ToFloat64(e.m.late); got != 0 || strings.Contains(logs.String(), "WARN") {
		t.Fatalf("with every bucket whole when judged: %v late requests, logs %q", got, logs.String())
	}
	// Two buckets the last evaluation judged complete receive 30 and 2
	// more requests.
	late := at.Add(2*time.Minute - 5*time.Minute)
	src.extra[late] = 30
	src.extra[late.Add(-10*time.Minute)] = 2
	if err := e.Evaluate(ctx, at.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.m.late); got != 32 {
		t.Errorf("%v late requests, want 32", got)
	}
	want := "bucket=" + late.Format(time.RFC3339) + " requests_when_judged=100 requests_now=130 late_requests=32"
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), "sources.elasticsearch.lag") {
		t.Errorf("logs %q, want a warning with %q", logs.String(), want)
	}
	// Counted once: the next read finds them already seen.
	if err := e.Evaluate(ctx, at.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.m.late); got != 32 {
		t.Errorf("%v late requests after a second read, want still 32", got)
	}
}

// TestRecoveredEpisodeRecordedOnce: an episode that was over before the
// first evaluation is recorded once, already resolved, and not opened again
// by every later evaluation that still has it in its lookback. With the
// reopen cooldown (30 m) shorter than the lookback (4 h), the incident used
// to drop out of the known incidents 30 minutes after it was recorded, and
// the same episode opened anew every half hour for as long as its onset
// still had enough baseline in front of it: four times here.
func TestRecoveredEpisodeRecordedOnce(t *testing.T) {
	ctx := context.Background()
	src := &stepSource{onset: t0.Add(3 * time.Hour), end: t0.Add(3*time.Hour + 15*time.Minute)}
	st, err := store.Open(ctx, t.TempDir(), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e, err := New(Config{Source: src, SourceName: "es logs-*", Store: st, Policy: allPage{},
		Settings: escalate.Settings{QuietEvaluations: 3, ReopenCooldown: 30 * time.Minute}, Correlate: rules.Default().Correlate,
		Lookback: 4 * time.Hour, BlindAfter: 3, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	first := t0.Add(4 * time.Hour)
	for now := first; now.Before(first.Add(100 * time.Minute)); now = now.Add(time.Minute) {
		if err := e.Evaluate(ctx, now); err != nil {
			t.Fatalf("evaluate at %s: %v", now.Format("15:04"), err)
		}
	}
	ins, err := st.Incidents(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var opened []string
	for _, in := range ins {
		opened = append(opened, in.OpenedAt.Format("15:04")+" "+string(in.Status)+" ("+in.Why+")")
	}
	if len(ins) != 1 {
		t.Fatalf("%d incidents for one episode, opened %v; want one", len(ins), opened)
	}
	if in := ins[0]; in.Status != escalate.StatusResolved || !in.OpenedAt.Equal(first) || in.Paged() {
		t.Fatalf("incident %s opened %s, paged %v; want it recorded resolved at the first evaluation %s, unpaged",
			in.Status, in.OpenedAt.Format("15:04"), in.Paged(), first.Format("15:04"))
	}
}

// TestEveryFollowsInjectedClock: Every waits on the injected timer and
// runs on the schedule's instants of the injected clock, however fast that
// clock runs; a panicking run does not stop the schedule, and cancelling
// ends it.
func TestEveryFollowsInjectedClock(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	now := t0.Add(10 * time.Second)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	// after advances the clock by d at once: a run's time passes as soon
	// as it is waited for.
	after := func(d time.Duration) <-chan time.Time {
		mu.Lock()
		now = now.Add(d)
		mu.Unlock()
		c := make(chan time.Time, 1)
		c <- now
		return c
	}
	var got []time.Time
	done := make(chan error)
	go func() {
		done <- Every(ctx, Aligned{Interval: time.Minute, Offset: 30 * time.Second}, clock, after, discard(), func(ctx context.Context, at time.Time) error {
			got = append(got, at)
			switch len(got) {
			case 1:
				panic("first run panics")
			case 3:
				cancel()
			}
			return nil
		})
	}()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Every returned %v", err)
	}
	want := []time.Time{t0.Add(30 * time.Second), t0.Add(90 * time.Second), t0.Add(150 * time.Second)}
	if len(got) != len(want) {
		t.Fatalf("runs at %v, want %v", got, want)
	}
	for i := range want {
		if !got[i].Equal(want[i]) {
			t.Errorf("run %d at %s, want %s", i, got[i].Format(time.TimeOnly), want[i].Format(time.TimeOnly))
		}
	}
}

// steadySource serves 100 requests a bucket plus extra, all complete.
type steadySource struct{ extra map[time.Time]float64 }

func (s *steadySource) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	svc := correlate.ServiceTraffic{Service: "api", Requests: make([]float64, w.Len()), Errors: make([]float64, w.Len())}
	for i := range svc.Requests {
		svc.Requests[i] = 100 + s.extra[w.Start(i)]
	}
	return &correlate.Traffic{Window: w, Services: []correlate.ServiceTraffic{svc}}, nil
}

func (s *steadySource) Scope(ctx context.Context, q correlate.ScopeQuery) (*correlate.Scope, error) {
	return &correlate.Scope{}, nil
}

// TestLateRequestsIncremental: with incremental reads, requests indexed
// late into a bucket the cache re-checks are read and counted as late;
// those in a bucket older than that are not read again, so not counted.
func TestLateRequestsIncremental(t *testing.T) {
	ctx := context.Background()
	src := &steadySource{extra: map[time.Time]float64{}}
	c, err := cache.New(src, cache.Config{Recheck: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	e, _, _ := evaluator(t, c)
	at := t0.Add(2 * time.Hour)
	for i := range 3 {
		if err := e.Evaluate(ctx, at.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	// The last evaluation read up to at+2m: at+0m and at+1m are re-checked.
	src.extra[at] = 7
	src.extra[at.Add(-30*time.Minute)] = 5
	if err := e.Evaluate(ctx, at.Add(3*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(e.m.late); got != 7 {
		t.Errorf("%v late requests, want the 7 in the re-checked bucket", got)
	}
}

// Traffic is recorded for the review only while an incident is open: the
// whole window when the incident opens (the hour before it), then on, and
// nothing once it resolved and before it began.
func TestRecordsTrafficWhileOpen(t *testing.T) {
	ctx := context.Background()
	src := &stepSource{onset: t0.Add(90 * time.Minute), end: t0.Add(2 * time.Hour)}
	st, err := store.Open(ctx, t.TempDir(), func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	e, err := New(Config{Source: src, SourceName: "es logs-*", Store: st, Traffic: st, Policy: allPage{},
		Settings: escalate.Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour}, Correlate: rules.Default().Correlate,
		Lookback: time.Hour, BlindAfter: 3, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	var resolved time.Time
	for now := t0.Add(time.Hour); now.Before(t0.Add(4 * time.Hour)); now = now.Add(time.Minute) {
		if err := e.Evaluate(ctx, now); err != nil {
			t.Fatal(err)
		}
		ins, _ := st.Incidents(ctx, 1)
		if len(ins) == 1 && ins[0].Status == escalate.StatusResolved && resolved.IsZero() {
			resolved = now
		}
	}
	if resolved.IsZero() {
		t.Fatal("the incident never resolved")
	}
	got, err := st.Traffic(ctx, t0, t0.Add(24*time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("traffic %v, %v; want api's", got, err)
	}
	b := got[0].Buckets
	first, last := b[0].At, b[len(b)-1].At
	// The first open evaluation (a few minutes after the onset) records
	// its whole lookback; the last records up to the bucket before it.
	if first.After(src.onset.Add(-50*time.Minute)) || first.Before(src.onset.Add(-time.Hour)) {
		t.Errorf("recorded from %s, want about an hour before the onset %s", first.Format("15:04"), src.onset.Format("15:04"))
	}
	if last.After(resolved) || last.Before(src.end) {
		t.Errorf("recorded until %s, want past the errors' end %s and not after the resolve %s", last.Format("15:04"), src.end.Format("15:04"), resolved.Format("15:04"))
	}
	if len(b) != int(last.Sub(first)/time.Minute)+1 {
		t.Errorf("%d buckets from %s to %s: gaps", len(b), first.Format("15:04"), last.Format("15:04"))
	}
}
