package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/robfig/cron/v3"
)

// Aligned fires on multiples of Interval (plus Offset) since the Unix
// epoch, so every evaluation ends on a bucket boundary whatever time the
// daemon started. cron's own "@every" counts from start-up instead.
type Aligned struct {
	Interval, Offset time.Duration
}

// EvaluationSchedule ticks every interval as soon as the newest bucket is
// fully ingested: lag past a bucket boundary. Ticking on the boundary
// instead would leave a bucket that is in, under a 30s lag, unread for
// another half minute, and every page that much later.
func EvaluationSchedule(interval, bucket, lag time.Duration) Aligned {
	a := Aligned{Interval: interval}
	if bucket > 0 && lag > 0 {
		a.Offset = lag % bucket
	}
	return a
}

// Next implements cron.Schedule.
func (a Aligned) Next(t time.Time) time.Time {
	n := t.Add(-a.Offset).Truncate(a.Interval).Add(a.Interval).Add(a.Offset)
	if !n.After(t) {
		n = n.Add(a.Interval)
	}
	return n
}

// Schedule runs fn on the schedule until ctx ends, through robfig/cron
// with panic recovery and skip-if-still-running: a slow evaluation delays
// the next one instead of piling up. fn gets the evaluation time from now,
// the injected clock, not from cron.
func Schedule(ctx context.Context, s cron.Schedule, now func() time.Time, log *slog.Logger, fn func(ctx context.Context, at time.Time) error) error {
	logger := cronLogger{log}
	// Order matters: in robfig/cron v3.0.1 SkipIfStillRunning does not
	// release its slot when the job panics, so Recover must sit inside it
	// or one panic skips every later run (TestScheduleRecoversAndStops).
	c := cron.New(cron.WithLocation(time.UTC), cron.WithLogger(logger),
		cron.WithChain(cron.SkipIfStillRunning(logger), cron.Recover(logger)))
	c.Schedule(s, cron.FuncJob(func() {
		if err := fn(ctx, now()); err != nil && ctx.Err() == nil {
			log.Error("scheduled run failed", "err", err)
		}
	}))
	c.Start()
	<-ctx.Done()
	// Wait for a running evaluation to see the cancellation and return.
	<-c.Stop().Done()
	return ctx.Err()
}

// cronLogger adapts slog to cron.Logger; cron reports recovered panics
// and skipped runs through it.
type cronLogger struct{ l *slog.Logger }

func (c cronLogger) Info(msg string, kv ...any) { c.l.Debug("cron: "+msg, kv...) }
func (c cronLogger) Error(err error, msg string, kv ...any) {
	c.l.Error("cron: "+msg, append(kv, "err", fmt.Sprint(err))...)
}

// Every runs fn on the schedule until ctx ends, like Schedule, but waits
// on the injected clock and timer instead of cron's wall clock: after(d)
// fires once d has passed on now's clock. The demo runs the daemon on an
// accelerated clock with it; a minute of its time passes in a second, and
// cron, which sleeps in wall time, would evaluate once a simulated hour.
// A run that overruns its slot delays the next one, as Schedule's skip
// does, and a panicking run is logged and the schedule goes on.
func Every(ctx context.Context, s Aligned, now func() time.Time, after func(time.Duration) <-chan time.Time,
	log *slog.Logger, fn func(ctx context.Context, at time.Time) error) error {
	for {
		t := now()
		next := s.Next(t)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-after(next.Sub(t)):
		}
		// The timer and the cancellation can be ready together, and select
		// picks either: a run must not start once shutdown has begun.
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := runRecovered(ctx, next, fn); err != nil && ctx.Err() == nil {
			log.Error("scheduled run failed", "err", err)
		}
	}
}

// runRecovered runs fn, turning a panic into an error.
func runRecovered(ctx context.Context, at time.Time, fn func(ctx context.Context, at time.Time) error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("panic in scheduled run at %s: %v", at.UTC().Format(time.RFC3339), r)
		}
	}()
	return fn(ctx, at)
}
