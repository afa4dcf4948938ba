package outbox

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/store"
)

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

type clock struct{ t time.Time }

func (c *clock) Now() time.Time { return c.t }

// script answers each delivery from a list of outcomes.
type script struct {
	outcomes []error
	// then answers once outcomes run out (nil: success).
	then   error
	calls  int
	called chan struct{}
}

type transient struct{ after time.Duration }

func (e transient) Error() string             { return "503 service unavailable" }
func (e transient) RetryDelay() time.Duration { return e.after }
func (e transient) Is(target error) bool      { return target == errTransient }
func (s *script) Deliver(ctx context.Context, m escalate.Message) (bool, error) {
	s.calls++
	if s.called != nil {
		defer func() { s.called <- struct{}{} }()
	}
	if len(s.outcomes) == 0 {
		return errors.Is(s.then, errTransient), s.then
	}
	err := s.outcomes[0]
	s.outcomes = s.outcomes[1:]
	return errors.Is(err, errTransient), err
}

var errTransient = errors.New("transient")

func setup(t *testing.T, n Notifier) (*Worker, *store.Store, *clock, *prometheus.Registry) {
	t.Helper()
	c := &clock{t: t0}
	s, err := store.Open(context.Background(), t.TempDir(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	reg := prometheus.NewRegistry()
	w, err := New(Config{Queue: s, Notifiers: map[escalate.Channel]Notifier{escalate.ChannelPagerDuty: n}, Now: c.Now, Registerer: reg,
		Backoff: 10 * time.Second, MaxBackoff: time.Minute, GiveUpAfter: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	in := escalate.Incident{ID: "inc-1", Key: "k", Service: "edge-router", Status: escalate.StatusOpen, OpenedAt: t0}
	err = s.Apply(context.Background(), []escalate.Change{{Incident: in, Messages: []escalate.Message{{
		Channel: escalate.ChannelPagerDuty, Action: escalate.Trigger, IncidentID: "inc-1", Key: "k", Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}}}})
	if err != nil {
		t.Fatal(err)
	}
	return w, s, c, reg
}

func TestRetriesWithBackoffAndRetryAfter(t *testing.T) {
	ctx := context.Background()
	n := &script{outcomes: []error{transient{}, transient{after: 45 * time.Second}, nil}}
	w, s, c, _ := setup(t, n)
	mustFlush := func(want int) {
		t.Helper()
		got, err := w.Flush(ctx)
		if err != nil || got != want {
			t.Fatalf("at %s: Flush delivered %d (%v), want %d", c.t.Sub(t0), got, err, want)
		}
	}
	mustFlush(0) // 503: retry in 10s
	c.t = t0.Add(9 * time.Second)
	mustFlush(0)
	if n.calls != 1 {
		t.Fatalf("retried before the backoff: %d calls", n.calls)
	}
	c.t = t0.Add(10 * time.Second)
	mustFlush(0) // 503 with Retry-After 45s beats the 20s backoff
	c.t = t0.Add(54 * time.Second)
	mustFlush(0)
	c.t = t0.Add(55 * time.Second)
	mustFlush(1)
	c.t = t0.Add(time.Hour)
	mustFlush(0)
	if n.calls != 3 {
		t.Fatalf("%d delivery calls, want 3", n.calls)
	}
	if got := testutil.ToFloat64(w.sent.WithLabelValues("pagerduty", "trigger", "retry")); got != 2 {
		t.Errorf("retry metric %v, want 2", got)
	}
	if got := testutil.ToFloat64(w.sent.WithLabelValues("pagerduty", "trigger", "delivered")); got != 1 {
		t.Errorf("delivered metric %v, want 1", got)
	}
	evs, _ := s.Events(ctx, "inc-1")
	if len(evs) != 1 || evs[0].Kind != escalate.EventPageSent || !evs[0].At.Equal(t0.Add(55*time.Second)) {
		t.Errorf("timeline %+v, want one page_sent at +55s", evs)
	}
}

func TestPermanentFailureIsDeadLetter(t *testing.T) {
	ctx := context.Background()
	n := &script{outcomes: []error{errors.New("400 invalid event: routing_key is invalid")}}
	w, s, c, _ := setup(t, n)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	c.t = t0.Add(time.Hour)
	w.Flush(ctx)
	if n.calls != 1 {
		t.Fatalf("a 400 was retried: %d calls", n.calls)
	}
	if d, _ := s.Depth(ctx); d != 0 {
		t.Fatalf("depth %d, want the message dead", d)
	}
	evs, _ := s.Events(ctx, "inc-1")
	if len(evs) != 1 || evs[0].Kind != escalate.EventPageFailed {
		t.Fatalf("timeline %+v, want page_failed", evs)
	}
}

func TestGivesUpAfterDeadline(t *testing.T) {
	ctx := context.Background()
	n := &script{then: transient{}}
	w, s, c, _ := setup(t, n)
	for c.t.Before(t0.Add(2 * time.Hour)) {
		if _, err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		c.t = c.t.Add(time.Minute)
	}
	if d, _ := s.Depth(ctx); d != 0 {
		t.Fatalf("still pending after the give-up deadline")
	}
	if n.calls < 50 || n.calls > 70 {
		t.Fatalf("%d attempts in an hour at a 1-minute cap", n.calls)
	}
}

func TestNoNotifierIsDeadLetter(t *testing.T) {
	w, s, _, _ := setup(t, nil)
	w.cfg.Notifiers = nil
	if _, err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Depth(context.Background()); d != 0 {
		t.Fatal("message without a notifier stayed pending")
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	n := &script{called: make(chan struct{})}
	w, s, _, _ := setup(t, n)
	ctx, cancel := context.WithCancel(context.Background())
	timer := make(chan time.Time)
	done := make(chan error)
	go func() { done <- w.Run(ctx, func(time.Duration) <-chan time.Time { return timer }) }()
	<-n.called // Run flushes as soon as it starts.
	w.Kick()   // nothing more is due: a kick must not deliver again
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run returned %v", err)
	}
	if d, _ := s.Depth(context.Background()); d != 0 || n.calls != 1 {
		t.Fatalf("depth %d, calls %d: the due message was not delivered exactly once", d, n.calls)
	}
}
