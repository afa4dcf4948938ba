// Package pagerduty delivers culprit's pages through PagerDuty's Events API
// v2, and builds the events so that every caller pages with the same words.
//
// Delivery (Notifier) and content (Trigger, Resolve, ChangeFromDeploy) are
// separate on purpose: the outbox stores what to send and retries it, and it
// needs to know whether a failure is worth retrying without knowing HTTP.
package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"
)

// DefaultURL is PagerDuty's Events API base, used when Config.URL is empty.
const DefaultURL = "https://events.pagerduty.com"

// DefaultTimeout bounds one request when Config.Timeout is zero. PagerDuty
// answers in well under a second; ten seconds leaves room for a slow network
// while keeping a stuck request from holding the outbox.
const DefaultTimeout = 10 * time.Second

// maxRetryAfter caps what a server may ask us to wait, so that a garbled
// header cannot park a page for days.
const maxRetryAfter = 24 * time.Hour

// maxErrorBody is how much of a failed response is kept to explain it.
const maxErrorBody = 64 << 10

// Config says where events go and how long one attempt may take.
type Config struct {
	// URL is the Events API base without /v2/enqueue; empty means DefaultURL.
	// A path prefix is kept, for a proxy in front of PagerDuty.
	URL string
	// HTTPClient is optional; its transport is reused (proxies, TLS roots)
	// but wrapped so that Notifier can read status, Retry-After and the
	// error body that go-pagerduty does not expose.
	HTTPClient *http.Client
	// Timeout bounds each request; zero means DefaultTimeout.
	Timeout time.Duration
}

// Notifier sends events to one Events API endpoint. It is safe for
// concurrent use. It never retries itself: the caller owns retries and
// backoff, guided by the retry result and Error.RetryAfter.
type Notifier struct {
	client  *pd.Client
	host    string
	timeout time.Duration
	now     func() time.Time // reads HTTP-date Retry-After headers
}

// New checks the configuration and builds a Notifier. Errors name the
// offending Config field.
func New(cfg Config) (*Notifier, error) {
	raw := strings.TrimSpace(cfg.URL)
	if raw == "" {
		raw = DefaultURL
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error repeats the whole URL, which may carry credentials.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("pagerduty config: URL: %w", err)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("pagerduty config: URL: scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return nil, errors.New("pagerduty config: URL: no host")
	case u.User != nil:
		return nil, errors.New("pagerduty config: URL: must not carry credentials; the routing key authenticates events")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("pagerduty config: URL: must not have a query or fragment; the event path is appended to it")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("pagerduty config: Timeout: must not be negative, got %s", cfg.Timeout)
	}
	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}

	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport.(*http.Transport).Clone()
	}
	hc.Transport = recorder{next: next}

	base := strings.TrimRight(raw, "/")
	client := pd.NewClient("", pd.WithV2EventsAPIEndpoint(base))
	client.HTTPClient = &hc
	return &Notifier{client: client, host: u.Host, timeout: timeout, now: time.Now}, nil
}

// Notify sends one Events v2 event (trigger, acknowledge or resolve).
//
// On failure the error is an *Error. retry reports whether the failure is
// worth retrying: true for 429, 408, 5xx, timeouts, network errors and a
// cancelled ctx (the event was not at fault); false for any other 4xx and
// for events that cannot be encoded, which belong in a dead letter queue.
func (n *Notifier) Notify(ctx context.Context, ev *pd.V2Event) (retry bool, err error) {
	const op = "post event"
	if ev == nil {
		return false, &Error{Op: op, Host: n.host, Err: errors.New("nil event")}
	}
	return n.send(ctx, op, ev.RoutingKey, func(ctx context.Context) error {
		_, err := n.client.ManageEventWithContext(ctx, ev)
		return err
	})
}

// Change sends a Change Event, which PagerDuty shows next to incidents so
// responders see recent deploys. Its error contract is Notify's.
func (n *Notifier) Change(ctx context.Context, ev pd.ChangeEvent) (retry bool, err error) {
	return n.send(ctx, "post change event", ev.RoutingKey, func(ctx context.Context) error {
		_, err := n.client.CreateChangeEventWithContext(ctx, ev)
		return err
	})
}

func (n *Notifier) send(ctx context.Context, op, routingKey string, call func(context.Context) error) (bool, error) {
	fail := func(retry bool, cause error) (bool, error) {
		return retry, &Error{Op: op, Host: n.host, Err: cause}
	}
	if err := ctx.Err(); err != nil {
		return fail(true, err)
	}
	rctx, cancel := context.WithTimeout(ctx, n.timeout)
	defer cancel()
	x := &exchange{}
	err := call(context.WithValue(rctx, exchangeKey{}, x))

	switch {
	case x.status >= 200 && x.status < 300:
		// Accepted: PagerDuty has the event even if the body was odd, and
		// retrying would only add a duplicate trigger.
		return false, nil
	case x.status != 0:
		return retryable(x.status), &Error{
			Op:         op,
			Host:       n.host,
			Status:     x.status,
			RetryAfter: parseRetryAfter(x.header.Get("Retry-After"), n.now()),
			Err:        statusCause(x.body, routingKey),
		}
	case err == nil:
		return false, nil
	case ctx.Err() != nil:
		return fail(true, ctx.Err())
	case rctx.Err() != nil:
		return fail(true, fmt.Errorf("no response within %s: %w", n.timeout, context.DeadlineExceeded))
	case x.err != nil:
		return fail(true, x.err)
	default:
		// Nothing reached the network: go-pagerduty could not encode the
		// event (NaN in custom_details, say). Sending it again cannot help.
		return fail(false, fmt.Errorf("encode: %w", err))
	}
}

// retryable follows PagerDuty's guidance: retry throttling and server
// errors, never a rejected event.
func retryable(status int) bool {
	return status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500
}

// Error is a failed delivery. It names the host and the cause, never the
// routing key.
type Error struct {
	// Op is what failed: "post event" or "post change event".
	Op string
	// Host is the Events API host the request went to.
	Host string
	// Status is the HTTP status, or 0 when no response arrived.
	Status int
	// RetryAfter is the server's requested wait (Retry-After header, in
	// seconds or as an HTTP date), or 0 when it asked for none.
	RetryAfter time.Duration
	// Err is the cause: PagerDuty's own explanation for a rejected event,
	// or the network error, timeout or cancellation.
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s to %s: ", e.Op, e.Host)
	if e.Status != 0 {
		fmt.Fprintf(&b, "%d %s: ", e.Status, http.StatusText(e.Status))
	}
	fmt.Fprint(&b, e.Err)
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// Unwrap exposes the cause, so errors.Is(err, context.DeadlineExceeded)
// works.
func (e *Error) Unwrap() error { return e.Err }

// statusCause turns an error response into a sentence, preferring
// PagerDuty's errors array ("invalid event: 'payload.summary' is missing")
// because that is what the person fixing the event needs.
func statusCause(body []byte, routingKey string) error {
	var doc struct {
		Status  string   `json:"status"`
		Message string   `json:"message"`
		Errors  []string `json:"errors"`
	}
	var msg string
	if json.Unmarshal(body, &doc) == nil && (doc.Status != "" || doc.Message != "" || len(doc.Errors) > 0) {
		head := doc.Status
		if head == "" {
			head = "error"
		}
		detail := doc.Message
		if len(doc.Errors) > 0 {
			detail = strings.Join(doc.Errors, "; ")
		}
		msg = head
		if detail != "" {
			msg += ": " + detail
		}
	} else {
		msg = strings.Join(strings.Fields(string(body)), " ")
		if msg == "" {
			msg = "empty response"
		}
	}
	// PagerDuty does not echo routing keys, but a proxy in between might.
	if routingKey != "" {
		msg = strings.ReplaceAll(msg, routingKey, "<routing key>")
	}
	return errors.New(clip(msg, 1000))
}

// parseRetryAfter reads a Retry-After value, in delay-seconds or as an
// HTTP date; anything unreadable or in the past means no wait.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		if secs > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d <= 0 {
			return 0
		}
		return min(d, maxRetryAfter)
	}
	return 0
}

// exchange is what recorder saw of one request. go-pagerduty returns its
// own error types, which drop the response headers and, for the Events API,
// the errors array; recorder keeps them for the Notifier call that set the
// exchange in the request context.
type exchange struct {
	status int
	header http.Header
	body   []byte // error responses only
	err    error  // transport error
}

type exchangeKey struct{}

// recorder is an http.RoundTripper that fills the request's exchange.
// http.Client calls RoundTrip on the caller's goroutine, so the exchange is
// complete when the go-pagerduty call returns.
type recorder struct{ next http.RoundTripper }

func (r recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.next.RoundTrip(req)
	x, _ := req.Context().Value(exchangeKey{}).(*exchange)
	if x == nil {
		return resp, err
	}
	if err != nil {
		x.status, x.err = 0, err
		return resp, err
	}
	x.status, x.header = resp.StatusCode, resp.Header
	if resp.StatusCode >= 300 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		_ = resp.Body.Close()
		x.body = body
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}
