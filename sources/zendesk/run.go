package zendesk

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// DefaultInterval is Run's interval when given none: Zendesk leaves out the
// last minute's changes anyway, and allows 10 export requests a minute.
const DefaultInterval = time.Minute

const (
	// temporaryRetry is the wait after a 5xx or network failure: soon, but
	// slow enough not to add to an outage.
	temporaryRetry = 30 * time.Second
	// authRetry is the least wait after a 401/403, which only an operator
	// fixes; polling on lets the poller recover without a restart once the
	// token or its access is restored.
	authRetry = 5 * time.Minute
	// minDelay keeps a Retry-After of 0 from becoming a busy loop.
	minDelay = time.Second
)

// NextDelay is how long to wait before the next poll after one that ended
// with err (nil for success): interval after success or a permanent
// refusal; the rate limit's Retry-After after a 429 (no earlier, and not
// later either, since a backfill should resume as soon as Zendesk allows);
// the lesser of interval and 30 s after a temporary failure; at least 5
// minutes after an authentication failure.
func NextDelay(err error, interval time.Duration) time.Duration {
	if interval <= 0 {
		interval = DefaultInterval
	}
	if rl, ok := errors.AsType[*RateLimitError](err); ok {
		return max(rl.RetryAfter, minDelay)
	}
	switch {
	case err == nil:
		return interval
	case errors.Is(err, ErrAuth):
		return max(interval, authRetry)
	case errors.Is(err, ErrTemporary):
		return min(interval, temporaryRetry)
	}
	return interval
}

// Run polls until ctx is done: once at once, then after NextDelay each time.
// Failures are logged, not returned: the daemon's poller must outlive a
// Zendesk outage. An interval of 0 or less means DefaultInterval.
func (p *Poller) Run(ctx context.Context, interval time.Duration) {
	runPolls(ctx, interval, p.Poll, p.wait, p.log, p.host)
}

// runPolls is the loop every export poller runs.
func runPolls(ctx context.Context, interval time.Duration, poll func(context.Context) (int, error),
	wait func(context.Context, time.Duration) error, log *slog.Logger, host string) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	for {
		n, err := poll(ctx)
		if ctx.Err() != nil {
			return
		}
		d := NextDelay(err, interval)
		if err != nil {
			level := slog.LevelError
			if _, ok := errors.AsType[*RateLimitError](err); ok {
				level = slog.LevelInfo
			} else if errors.Is(err, ErrTemporary) {
				level = slog.LevelWarn
			}
			log.Log(ctx, level, "zendesk: poll failed", slog.String("host", host), slog.Int("records", n),
				slog.String("err", err.Error()), slog.Duration("next", d))
		}
		if wait(ctx, d) != nil {
			return
		}
	}
}

// sleepCtx waits d or until ctx is done, whichever comes first.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
