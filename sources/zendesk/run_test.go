package zendesk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"
)

func TestNextDelay(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		interval time.Duration
		want     time.Duration
	}{
		{"success", nil, 2 * time.Minute, 2 * time.Minute},
		{"default interval", nil, 0, DefaultInterval},
		{"rate limited", fmt.Errorf("zendesk x: %w", &RateLimitError{RetryAfter: 7 * time.Second}), 2 * time.Minute, 7 * time.Second},
		{"rate limited longer than interval", &RateLimitError{RetryAfter: 10 * time.Minute}, time.Minute, 10 * time.Minute},
		{"retry-after zero", &RateLimitError{}, time.Minute, time.Second},
		{"temporary", &apiError{host: "x", msg: "server error (502)", kind: ErrTemporary}, 2 * time.Minute, 30 * time.Second},
		{"temporary, short interval", &apiError{host: "x", kind: ErrTemporary}, 10 * time.Second, 10 * time.Second},
		{"auth", &apiError{host: "x", kind: ErrAuth}, time.Minute, 5 * time.Minute},
		{"auth, long interval", &apiError{host: "x", kind: ErrAuth}, time.Hour, time.Hour},
		{"permanent", errors.New("export refused (400)"), 2 * time.Minute, 2 * time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := NextDelay(tc.err, tc.interval); got != tc.want {
				t.Errorf("NextDelay = %s, want %s", got, tc.want)
			}
		})
	}
}

// Run waits what NextDelay says after each poll, and stops when the context
// ends; the wait is observed, not slept.
func TestRunHonoursRetryAfter(t *testing.T) {
	e := newPollEnv(t, "c1", time.Time{},
		fakeResponse{code: 429, header: http.Header{"Retry-After": {"7"}}},
		fakeResponse{code: 502},
		ok(page("c2", true, zticket(1, "2026-11-20T16:00:00Z", "open"))),
		fakeResponse{code: 401},
	)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var delays []time.Duration
	e.p.wait = func(ctx context.Context, d time.Duration) error {
		delays = append(delays, d)
		if len(delays) == 4 {
			cancel()
			return ctx.Err()
		}
		return nil
	}
	e.p.Run(ctx, 2*time.Minute)
	want := []time.Duration{7 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	if !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	if got := e.fake.requests(); !slices.Equal(got, []string{"cursor=c1", "cursor=c1", "cursor=c1", "cursor=c2"}) {
		t.Errorf("requests %q", got)
	}
	if len(e.tickets.tickets) != 1 {
		t.Errorf("stored %d tickets, want 1", len(e.tickets.tickets))
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	e := newPollEnv(t, "c1", time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	waits := 0
	e.p.wait = func(context.Context, time.Duration) error { waits++; return nil }
	e.p.Run(ctx, time.Minute) // returns: the poll fails on the cancelled context
	if waits != 0 || len(e.fake.requests()) != 0 {
		t.Errorf("%d waits and %d requests after cancel, want none", waits, len(e.fake.requests()))
	}
}

func TestSleepCtx(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := sleepCtx(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("sleepCtx on a cancelled context = %v, want context.Canceled", err)
	}
	if err := sleepCtx(context.Background(), 0); err != nil {
		t.Errorf("sleepCtx(0) = %v", err)
	}
}
