package outbox

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/store"
)

// recorder records the order of deliveries. Change events block while
// hang is open, as a vendor that stops answering would.
type recorder struct {
	mu      sync.Mutex
	order   []string
	hang    chan struct{}
	changed chan struct{} // gets one value per change-event call
	paged   chan struct{} // closed when the trigger is delivered
}

func (r *recorder) Deliver(ctx context.Context, m escalate.Message) (bool, error) {
	r.mu.Lock()
	r.order = append(r.order, m.Action+":"+m.Key)
	r.mu.Unlock()
	if m.Action == escalate.ChangeEvent {
		if r.changed != nil {
			select {
			case r.changed <- struct{}{}:
			default:
			}
		}
		if r.hang != nil {
			select {
			case <-r.hang:
			case <-ctx.Done():
				return true, ctx.Err()
			}
		}
		return false, nil
	}
	if m.Action == escalate.Trigger && r.paged != nil {
		close(r.paged)
	}
	return false, nil
}

type notifierFunc func(context.Context, escalate.Message) (bool, error)

func (f notifierFunc) Deliver(ctx context.Context, m escalate.Message) (bool, error) {
	return f(ctx, m)
}

// deployBatch queues n change events as one big deploy batch does.
func deployBatch(t *testing.T, s *store.Store, n int) {
	t.Helper()
	ms := make([]escalate.Message, n)
	for i := range ms {
		ms[i] = escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Key: fmt.Sprintf("deploy-%05d", i),
			Service: "edge-router", Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}
	}
	if err := s.Enqueue(context.Background(), ms...); err != nil {
		t.Fatal(err)
	}
}

func lanesSetup(t *testing.T, r *recorder) (*Worker, *store.Store) {
	t.Helper()
	c := &clock{t: t0}
	s, err := store.Open(context.Background(), t.TempDir(), c.Now)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	w, err := New(Config{Queue: s, Notifiers: map[escalate.Channel]Notifier{escalate.ChannelPagerDuty: r}, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return w, s
}

func queueTrigger(t *testing.T, s *store.Store) {
	t.Helper()
	in := escalate.Incident{ID: "inc-1", Key: "k", Service: "edge-router", Status: escalate.StatusOpen, OpenedAt: t0}
	err := s.Apply(context.Background(), []escalate.Change{{Incident: in, Messages: []escalate.Message{{
		Channel: escalate.ChannelPagerDuty, Action: escalate.Trigger, IncidentID: "inc-1", Key: "k", Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// A page queued after a 15,000-record deploy batch goes out first: the
// batch is in a lane of its own.
func TestFlushDeliversPageBeforeDeployBatch(t *testing.T) {
	r := &recorder{}
	w, s := lanesSetup(t, r)
	deployBatch(t, s, 15000)
	queueTrigger(t, s)
	// Stop after the first batch: the order so far is what matters.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w.cfg.Notifiers[escalate.ChannelPagerDuty] = notifierFunc(func(c context.Context, m escalate.Message) (bool, error) {
		ok, err := r.Deliver(c, m)
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.order) == batch+1 {
			cancel()
		}
		return ok, err
	})
	w.Flush(ctx)
	if len(r.order) == 0 || r.order[0] != "trigger:k" {
		t.Fatalf("first deliveries %v, want the trigger first", r.order[:min(3, len(r.order))])
	}
}

// With the change-event vendor hanging on the first of 15,000 change
// events, a page queued afterwards is still delivered: Run gives every
// lane its own goroutine.
func TestRunPageNotHeldByHungChangeLane(t *testing.T) {
	r := &recorder{hang: make(chan struct{}), changed: make(chan struct{}, 1), paged: make(chan struct{})}
	defer close(r.hang)
	w, s := lanesSetup(t, r)
	deployBatch(t, s, 15000)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	never := make(chan time.Time)
	go func() { done <- w.Run(ctx, func(time.Duration) <-chan time.Time { return never }) }()
	defer func() { cancel(); <-done }()
	<-r.changed // the change lane is now stuck on its first event
	queueTrigger(t, s)
	w.Kick()
	select {
	case <-r.paged:
	case <-time.After(10 * time.Second):
		t.Fatal("the page was not delivered within 10s while the change lane hung")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.order) != 2 || r.order[1] != "trigger:k" {
		t.Fatalf("deliveries %v, want one (hung) change event then the trigger", r.order)
	}
}

// A trigger waiting out a retry holds back its incident's resolve: sent
// first, the resolve would find no alert in PagerDuty and be dropped, and
// the late trigger's alert would stay open.
func TestResolveWaitsForItsRetriedTrigger(t *testing.T) {
	ctx := context.Background()
	var order []string
	failed := false
	n := notifierFunc(func(_ context.Context, m escalate.Message) (bool, error) {
		if m.Action == escalate.Trigger && !failed {
			failed = true
			return true, transient{}
		}
		order = append(order, m.Action)
		return false, nil
	})
	w, s, c, _ := setup(t, n)
	err := s.Enqueue(ctx, escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.Resolve, IncidentID: "inc-1", Key: "k",
		Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(order) != 0 {
		t.Fatalf("delivered %v while the trigger waited to be retried, want nothing", order)
	}
	if at, ok, _ := s.NextDueIn(ctx, escalate.LanePage); !ok || !at.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next due %v %v, want the trigger's retry at +10s (not the held resolve)", at, ok)
	}
	c.t = t0.Add(10 * time.Second)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if len(order) != 2 || order[0] != escalate.Trigger || order[1] != escalate.Resolve {
		t.Fatalf("delivered %v, want trigger then resolve", order)
	}
}
