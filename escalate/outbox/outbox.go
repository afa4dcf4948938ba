// Package outbox delivers queued notifications until the vendor has them.
//
// It is the one place that owns retries: notifiers only say whether a
// failure is worth retrying. A message leaves the outbox when it is
// delivered or refused for good (dead letter), never because culprit
// restarted, so a page queued before a crash is sent after it, once.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/escalate"
)

// Queue is the durable outbox.
type Queue interface {
	// DueIn returns one lane's pending messages due at now, oldest first.
	DueIn(ctx context.Context, lane escalate.Lane, now time.Time, limit int) ([]escalate.Message, error)
	// Delivered and Dead end a message, writing ev (if any) to its
	// incident's timeline in the same transaction.
	Delivered(ctx context.Context, m escalate.Message, at time.Time, ev *escalate.Event) error
	Dead(ctx context.Context, m escalate.Message, at time.Time, reason string, ev *escalate.Event) error
	// Retry schedules the next attempt.
	Retry(ctx context.Context, m escalate.Message, next time.Time, reason string) error
	// Attempting durably records that an attempt starts, before the
	// vendor is called, so a crash mid-delivery leaves the message
	// InDoubt rather than looking untried.
	Attempting(ctx context.Context, m escalate.Message) error
	// NextDueIn is when one lane's earliest pending message is due.
	NextDueIn(ctx context.Context, lane escalate.Lane) (time.Time, bool, error)
}

// Notifier sends one message to its vendor. retry reports whether a
// failure is transient (429, 5xx, timeouts, network errors); anything
// else is final and the message goes to the dead letters. An error may
// carry the vendor's Retry-After through a RetryDelay() method.
type Notifier interface {
	Deliver(ctx context.Context, m escalate.Message) (retry bool, err error)
}

// Config tunes a Worker.
type Config struct {
	Queue     Queue
	Notifiers map[escalate.Channel]Notifier
	Now       func() time.Time
	Logger    *slog.Logger
	// Registerer gets the delivery metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Backoff is the first retry delay, doubled on each attempt up to
	// MaxBackoff. Defaults: 5s and 5m.
	Backoff, MaxBackoff time.Duration
	// GiveUpAfter bounds how long a message is retried. Default 24h: a
	// page a day late is worse than a dead letter someone looks at.
	GiveUpAfter time.Duration
}

// Worker delivers due messages, one lane (escalate.Lane) per goroutine in
// Run: a vendor that hangs or a deploy batch of thousands of change events
// holds up only its own lane, never a page.
type Worker struct {
	cfg  Config
	kick map[escalate.Lane]chan struct{}
	sent *prometheus.CounterVec
}

// batch is how many messages one lane takes per query. In Flush it is
// also the most lower-lane messages a newly due page can wait behind.
const batch = 20

// New builds a worker.
func New(cfg Config) (*Worker, error) {
	if cfg.Queue == nil {
		return nil, errors.New("outbox: no queue")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 5 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 5 * time.Minute
	}
	if cfg.GiveUpAfter <= 0 {
		cfg.GiveUpAfter = 24 * time.Hour
	}
	kick := map[escalate.Lane]chan struct{}{}
	for _, l := range escalate.Lanes {
		kick[l] = make(chan struct{}, 1)
	}
	w := &Worker{cfg: cfg, kick: kick,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "culprit_notifications_total",
			Help: "Outbox delivery attempts by channel, action and result (delivered, retry, dead).",
		}, []string{"channel", "action", "result"}),
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(w.sent); err != nil {
			return nil, fmt.Errorf("outbox: register metrics: %w", err)
		}
	}
	return w, nil
}

// Kick wakes Run early: a message was just queued.
func (w *Worker) Kick() {
	for _, k := range w.kick {
		select {
		case k <- struct{}{}:
		default:
		}
	}
}

// Run delivers messages as they fall due until ctx ends, each lane on its
// own goroutine. after is the timer (time.After in production), injected
// so tests control time.
func (w *Worker) Run(ctx context.Context, after func(time.Duration) <-chan time.Time) error {
	var wg sync.WaitGroup
	for _, l := range escalate.Lanes {
		wg.Go(func() { w.runLane(ctx, l, after) })
	}
	wg.Wait()
	return ctx.Err()
}

func (w *Worker) runLane(ctx context.Context, lane escalate.Lane, after func(time.Duration) <-chan time.Time) {
	for {
		for {
			n, _, err := w.flushLane(ctx, lane)
			if err != nil && ctx.Err() == nil {
				w.cfg.Logger.Error("outbox flush failed", "lane", lane.String(), "err", err)
			}
			if err != nil || n == 0 {
				break
			}
		}
		wait := time.Minute
		if at, ok, err := w.cfg.Queue.NextDueIn(ctx, lane); err == nil && ok {
			wait = min(wait, max(0, at.Sub(w.cfg.Now())))
		}
		select {
		case <-ctx.Done():
			return
		case <-w.kick[lane]:
		case <-after(wait):
		}
	}
}

// Flush attempts every message due now once, and returns how many were
// delivered. It is what Run does on each wake-up, in one goroutine and in
// lane order: after each batch it starts again from the most urgent lane,
// so a page that falls due mid-way waits behind one batch at most. It is
// exposed so a caller with its own clock can deliver synchronously.
func (w *Worker) Flush(ctx context.Context) (int, error) {
	delivered := 0
	for {
		moved := 0
		for _, l := range escalate.Lanes {
			n, ok, err := w.flushLane(ctx, l)
			delivered += ok
			if err != nil {
				return delivered, err
			}
			if n > 0 {
				moved = n
				break
			}
		}
		if moved == 0 {
			return delivered, nil
		}
	}
}

// flushLane attempts one batch of a lane's due messages and reports how
// many left the due set (moved) and how many of those were delivered.
func (w *Worker) flushLane(ctx context.Context, lane escalate.Lane) (moved, delivered int, err error) {
	due, err := w.cfg.Queue.DueIn(ctx, lane, w.cfg.Now(), batch)
	if err != nil {
		return 0, 0, err
	}
	for _, m := range due {
		if ctx.Err() != nil {
			return moved, delivered, ctx.Err()
		}
		ok, mv, err := w.deliver(ctx, m)
		if err != nil {
			return moved, delivered, err
		}
		if ok {
			delivered++
		}
		if mv {
			moved++
		}
	}
	return moved, delivered, nil
}

// deliver makes one attempt. moved reports whether the message left the
// due set (delivered, dead, or rescheduled into the future).
func (w *Worker) deliver(ctx context.Context, m escalate.Message) (ok, moved bool, err error) {
	log := w.cfg.Logger.With("channel", m.Channel, "action", m.Action, "incident", m.IncidentID, "message", m.ID)
	n := w.cfg.Notifiers[m.Channel]
	if n == nil {
		reason := fmt.Sprintf("no %s notifier is configured", m.Channel)
		w.sent.WithLabelValues(string(m.Channel), m.Action, "dead").Inc()
		log.Error("outbox: dead letter", "reason", reason)
		return false, true, w.cfg.Queue.Dead(ctx, m, w.cfg.Now(), reason, failedEvent(m, w.cfg.Now(), reason))
	}
	if err := w.cfg.Queue.Attempting(ctx, m); err != nil {
		return false, false, err
	}
	retry, derr := n.Deliver(ctx, m)
	now := w.cfg.Now()
	// What the vendor was told must be recorded even if we are shutting
	// down, or the message would be sent again after the restart.
	rec := context.WithoutCancel(ctx)
	if derr == nil {
		w.sent.WithLabelValues(string(m.Channel), m.Action, "delivered").Inc()
		log.Info("outbox: delivered", "attempts", m.Attempts+1)
		return true, true, w.cfg.Queue.Delivered(rec, m, now, sentEvent(m, now))
	}
	if ctx.Err() != nil {
		// Shutting down: the attempt did not count; it stays due.
		return false, false, ctx.Err()
	}
	if !retry || now.Sub(m.CreatedAt) >= w.cfg.GiveUpAfter {
		reason := derr.Error()
		if retry {
			reason = fmt.Sprintf("gave up after %s and %d attempts: %s", w.cfg.GiveUpAfter, m.Attempts+1, reason)
		}
		w.sent.WithLabelValues(string(m.Channel), m.Action, "dead").Inc()
		log.Error("outbox: dead letter", "err", reason)
		return false, true, w.cfg.Queue.Dead(rec, m, now, reason, failedEvent(m, now, reason))
	}
	delay := w.backoff(m.Attempts)
	var ra interface{ RetryDelay() time.Duration }
	if errors.As(derr, &ra) && ra.RetryDelay() > delay {
		delay = ra.RetryDelay()
	}
	w.sent.WithLabelValues(string(m.Channel), m.Action, "retry").Inc()
	log.Warn("outbox: delivery failed, will retry", "err", derr, "in", delay, "attempts", m.Attempts+1)
	return false, true, w.cfg.Queue.Retry(rec, m, now.Add(delay), derr.Error())
}

func (w *Worker) backoff(attempts int) time.Duration {
	d := w.cfg.Backoff
	for range min(attempts, 30) {
		d *= 2
		if d >= w.cfg.MaxBackoff {
			return w.cfg.MaxBackoff
		}
	}
	return d
}

func sentEvent(m escalate.Message, at time.Time) *escalate.Event {
	if m.IncidentID == "" {
		return nil
	}
	text := fmt.Sprintf("%s %s delivered", m.Channel, m.Action)
	kind := escalate.EventPageSent
	switch {
	case m.Channel == escalate.ChannelPagerDuty && m.Action == escalate.Trigger:
		text = "paged on-call through PagerDuty (dedup_key " + m.Key + ")"
	case m.Channel == escalate.ChannelPagerDuty && m.Action == escalate.Resolve:
		text, kind = "resolved in PagerDuty (dedup_key "+m.Key+")", "page_resolved"
	case m.Channel == escalate.ChannelSlack:
		kind = "slack_posted"
	}
	return &escalate.Event{IncidentID: m.IncidentID, At: at, Kind: kind, Text: text}
}

func failedEvent(m escalate.Message, at time.Time, reason string) *escalate.Event {
	if m.IncidentID == "" {
		return nil
	}
	return &escalate.Event{IncidentID: m.IncidentID, At: at, Kind: escalate.EventPageFailed,
		Text: fmt.Sprintf("%s %s could not be delivered: %s", m.Channel, m.Action, reason)}
}
