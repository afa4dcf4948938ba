package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"
)

// LogSender writes every event it is given as one JSON line instead of
// sending it to PagerDuty (pagerduty.deliver: log). It goes through the
// same outbox, rendering and retries as real pages, so what it writes is
// exactly what PagerDuty would have received: the demo runs the real
// daemon with it, and a new installation can watch what it would page
// before it is given a routing key.
type LogSender struct {
	mu  sync.Mutex
	w   io.Writer
	now func() time.Time
}

// NewLogSender writes to w, stamping each line with now.
func NewLogSender(w io.Writer, now func() time.Time) *LogSender {
	return &LogSender{w: w, now: now}
}

// logLine is one event as written: when, which kind, and the event's
// Events API v2 body with the routing key left out (a log is no place for
// a secret).
type logLine struct {
	At     time.Time `json:"at"`
	Type   string    `json:"type"`
	Action string    `json:"action,omitempty"`
	Event  any       `json:"event"`
}

// Notify implements Sender.
func (l *LogSender) Notify(ctx context.Context, ev *pd.V2Event) (bool, error) {
	if ev == nil {
		return false, fmt.Errorf("log page: nil event")
	}
	e := *ev
	e.RoutingKey = ""
	return l.write(ctx, logLine{Type: "event", Action: e.Action, Event: e})
}

// Change implements Sender.
func (l *LogSender) Change(ctx context.Context, ev pd.ChangeEvent) (bool, error) {
	ev.RoutingKey = ""
	return l.write(ctx, logLine{Type: "change", Event: ev})
}

// write appends one line. A failed write is retried by the outbox, like
// a network error: the page is not lost because a disk was full.
func (l *LogSender) write(ctx context.Context, line logLine) (bool, error) {
	if err := ctx.Err(); err != nil {
		return true, err
	}
	line.At = l.now().UTC()
	b, err := json.Marshal(line)
	if err != nil {
		return false, fmt.Errorf("log page: encode: %w", err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, err := l.w.Write(append(b, '\n')); err != nil {
		return true, fmt.Errorf("log page: write: %w", err)
	}
	return false, nil
}
