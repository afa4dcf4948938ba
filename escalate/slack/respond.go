package slack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
)

// maxRetryAfter caps a server's Retry-After: a response URL lives 30
// minutes, so waiting longer than a few minutes cannot help.
const maxRetryAfter = 5 * time.Minute

// PostError is a failed post to a response URL. It names the host, never
// the URL: a response URL is a credential that lets anyone post into the
// conversation for 30 minutes.
type PostError struct {
	Host string
	// Status is the HTTP status, or 0 when no response arrived.
	Status int
	// Attempts is how many posts were made.
	Attempts int
	// Err is the cause: Slack's error text ("invalid_blocks",
	// "expired_url") or the network error.
	Err error
}

func (e *PostError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "post to response url on %s", e.Host)
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%d attempts)", e.Attempts)
	}
	b.WriteString(": ")
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s: ", e.Status, http.StatusText(e.Status))
	}
	fmt.Fprint(&b, e.Err)
	return b.String()
}

// Unwrap exposes the cause, so errors.Is(err, context.Canceled) works.
func (e *PostError) Unwrap() error { return e.Err }

// poster posts messages to response URLs, retrying what may succeed later.
type poster struct {
	client              *http.Client
	sleep               func(context.Context, time.Duration) error
	attempts            int
	backoff, maxBackoff time.Duration
	now                 func() time.Time
	log                 *slog.Logger
}

// post delivers msg to responseURL. It retries 429 (after Retry-After),
// 5xx and network errors with capped exponential backoff, up to the
// configured attempts; any other answer is final. The error is a
// *PostError, or ctx's error when ctx ended while waiting.
func (p *poster) post(ctx context.Context, responseURL string, msg *slackgo.WebhookMessage) error {
	u, err := url.Parse(responseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return &PostError{Host: "?", Err: errors.New("response url is not an absolute http(s) url")}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return &PostError{Host: u.Host, Err: fmt.Errorf("encode message: %w", err)}
	}
	delay := p.backoff
	for attempt := 1; ; attempt++ {
		status, wait, retry, err := p.once(ctx, responseURL, body)
		if err == nil {
			return nil
		}
		perr := &PostError{Host: u.Host, Status: status, Attempts: attempt, Err: err}
		if !retry || attempt >= p.attempts || ctx.Err() != nil {
			return perr
		}
		if wait <= 0 {
			wait = delay
		}
		delay = min(delay*2, p.maxBackoff)
		p.log.Warn("slack: post to response url failed, will retry", "err", perr, "in", wait)
		if err := p.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%w (gave up waiting: %w)", perr, err)
		}
	}
}

// once makes one attempt. wait is the server's Retry-After, if any.
func (p *poster) once(ctx context.Context, target string, body []byte) (status int, wait time.Duration, retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, 0, false, errors.New("build request")
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := p.client.Do(req)
	if err != nil {
		// url.Error repeats the URL, which is a credential.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, 0, ctx.Err() == nil, err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, false, nil
	}
	cause := strings.Join(strings.Fields(string(text)), " ")
	if cause == "" {
		cause = "empty response"
	}
	err = errors.New(clip(cause, 300))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		return resp.StatusCode, retryAfter(resp.Header.Get("Retry-After"), p.now(), maxRetryAfter), true, err
	case resp.StatusCode >= 500, resp.StatusCode == http.StatusRequestTimeout:
		return resp.StatusCode, 0, true, err
	}
	return resp.StatusCode, 0, false, err
}

// retryAfter reads Retry-After in seconds or as an HTTP date, capped at
// limit; anything unreadable or past means no particular wait.
func retryAfter(v string, now time.Time, limit time.Duration) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(min(secs, int64(limit/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), limit)
	}
	return 0
}
