package slack

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"

	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

func TestPostRetries(t *testing.T) {
	tests := []struct {
		name       string
		script     []slackfake.Reply
		wantPosts  int
		wantSleeps []time.Duration
		wantErr    string // "" means delivered
	}{
		{name: "first try", wantPosts: 1},
		{name: "500 then 200", script: []slackfake.Reply{slackfake.ServerError()},
			wantPosts: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "429 honours Retry-After seconds", script: []slackfake.Reply{slackfake.TooManyRequests("7")},
			wantPosts: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "429 honours Retry-After date", script: []slackfake.Reply{slackfake.TooManyRequests(friday.Add(90 * time.Second).Format(http.TimeFormat))},
			wantPosts: 2, wantSleeps: []time.Duration{90 * time.Second}},
		{name: "429 without Retry-After backs off", script: []slackfake.Reply{slackfake.TooManyRequests("")},
			wantPosts: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "huge Retry-After is capped", script: []slackfake.Reply{slackfake.TooManyRequests("86400")},
			wantPosts: 2, wantSleeps: []time.Duration{5 * time.Minute}},
		{name: "backoff doubles and is capped", script: []slackfake.Reply{slackfake.ServerError(), {Status: 503}, {Status: 502}, slackfake.ServerError()},
			wantPosts: 5, wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second}},
		{name: "gives up after 5 attempts", script: slices.Repeat([]slackfake.Reply{slackfake.ServerError()}, 6),
			wantPosts: 5, wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second},
			wantErr: "(5 attempts): 500 Internal Server Error"},
		{name: "expired url is final", script: []slackfake.Reply{slackfake.SlackError("expired_url")},
			wantPosts: 1, wantErr: "404 Not Found: expired_url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(t)
			f.Script(tc.script...)
			sl := &sleeps{}
			p := &poster{client: http.DefaultClient, sleep: sl.Sleep, attempts: 5, backoff: time.Second,
				maxBackoff: 5 * time.Second, now: func() time.Time { return friday }, log: slog.New(slog.DiscardHandler)}
			target := f.ResponseURL("secret-hook-token")
			err := p.post(context.Background(), target, &slackgo.WebhookMessage{ResponseType: "ephemeral", Text: "hello"})
			if tc.wantErr == "" && err != nil {
				t.Fatalf("post: %v", err)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				if strings.Contains(err.Error(), "secret-hook-token") {
					t.Errorf("error leaks the response url: %v", err)
				}
			}
			if got := len(f.Posts()); got != tc.wantPosts {
				t.Errorf("%d posts, want %d", got, tc.wantPosts)
			}
			if got := sl.All(); !slices.Equal(got, tc.wantSleeps) {
				t.Errorf("sleeps %v, want %v", got, tc.wantSleeps)
			}
			for _, p := range f.Posts() {
				if len(p.Problems) > 0 {
					t.Errorf("post %d: %v", p.Seq, p.Problems)
				}
			}
		})
	}
}

func TestPostNetworkErrorRetriesWithoutLeakingURL(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	target := srv.URL + "/response/secret-hook-token"
	srv.Close() // connection refused from now on
	sl := &sleeps{}
	p := &poster{client: http.DefaultClient, sleep: sl.Sleep, attempts: 3, backoff: time.Second,
		maxBackoff: time.Minute, now: time.Now, log: slog.New(slog.DiscardHandler)}
	err := p.post(context.Background(), target, &slackgo.WebhookMessage{Text: "x"})
	var perr *PostError
	if !errors.As(err, &perr) || perr.Attempts != 3 || perr.Status != 0 {
		t.Fatalf("error = %#v, want a PostError after 3 attempts without status", err)
	}
	if strings.Contains(err.Error(), "secret-hook-token") {
		t.Errorf("error leaks the response url: %v", err)
	}
	if got := sl.All(); !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second}) {
		t.Errorf("sleeps %v", got)
	}
}

func TestPostStopsWhenContextEnds(t *testing.T) {
	f := slackfake.New(t)
	f.SetDefault(slackfake.ServerError())
	ctx, cancel := context.WithCancel(context.Background())
	p := &poster{client: http.DefaultClient, attempts: 5, backoff: time.Second, maxBackoff: time.Minute,
		now: time.Now, log: slog.New(slog.DiscardHandler),
		sleep: func(ctx context.Context, d time.Duration) error { cancel(); return sleep(ctx, d) }}
	err := p.post(ctx, f.ResponseURL("x"), &slackgo.WebhookMessage{Text: "x"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error = %v, want context.Canceled", err)
	}
	if n := len(f.Posts()); n != 1 {
		t.Errorf("%d posts after cancellation, want 1", n)
	}
}
