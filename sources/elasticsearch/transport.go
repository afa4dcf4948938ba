package elasticsearch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/elastic/go-elasticsearch/v8/typedapi/core/search"
	"github.com/elastic/go-elasticsearch/v8/typedapi/types"
)

// attempt is what the transport saw of one HTTP attempt. The typed client
// turns responses into Go values and drops the headers, and a proxy's 429
// may not even carry a JSON body, so the status and Retry-After are
// recorded here, below the client, for call to decide on a retry.
type attempt struct {
	status     int
	retryAfter time.Duration
}

type attemptKey struct{}

// recorder is the client's http.RoundTripper: it passes every request on
// and notes the answer in the attempt found in the request's context.
type recorder struct{ next http.RoundTripper }

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := r.next.RoundTrip(req)
	if a, ok := req.Context().Value(attemptKey{}).(*attempt); ok && res != nil {
		a.status = res.StatusCode
		a.retryAfter = parseRetryAfter(res.Header.Get("Retry-After"), time.Now())
	}
	return res, err
}

// parseRetryAfter reads both forms RFC 9110 allows: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// maxRetryAfter caps how long a Retry-After may hold a call: a server asking
// for an hour is better answered with an error than with a hung run.
const maxRetryAfter = 30 * time.Second

// call runs one API request with culprit's retry policy: 429, 5xx and
// connection failures are retried up to s.retries times with exponential
// backoff and full jitter, never sooner than Retry-After asks. Timeouts are
// not retried: a query that did not finish in Timeout will not finish on a
// second try either, and repeating it only loads the cluster further. Each
// attempt has its own deadline (s.timeout); ctx bounds the whole call.
func (s *Source) call(ctx context.Context, op string, fn func(ctx context.Context) (took int64, err error)) error {
	for n := 0; ; n++ {
		a := &attempt{}
		actx, cancel := context.WithTimeout(context.WithValue(ctx, attemptKey{}, a), s.timeout)
		start := time.Now()
		took, err := fn(actx)
		lat := time.Since(start)
		cancel()
		s.requests.Add(1)
		s.took.Add(int64(time.Duration(took) * time.Millisecond))
		s.latency.Add(int64(lat))
		s.log.LogAttrs(ctx, slog.LevelDebug, "elasticsearch request",
			slog.Any("op", op), slog.Any("index", s.index), slog.Any("attempt", n+1), slog.Any("status", a.status),
			slog.Any("took_ms", took), slog.Any("latency", lat.Round(time.Microsecond).String()), slog.Any("ok", err == nil))
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("elasticsearch %s: %s on index %q: %w", s.name, op, s.index, ctx.Err())
		}
		retry, wait := s.retryable(a, err, n)
		if !retry || n >= s.retries {
			return s.describe(op, a, err, n+1)
		}
		s.retried.Add(1)
		s.log.LogAttrs(ctx, slog.LevelDebug, "elasticsearch retry", slog.Any("op", op), slog.Any("status", a.status),
			slog.Any("wait", wait.String()), slog.Any("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("elasticsearch %s: %s on index %q: %w (while waiting to retry after: %v)", s.name, op, s.index, ctx.Err(), s.describe(op, a, err, n+1))
		case <-t.C:
		}
	}
}

// retryable decides whether attempt n failed in a way worth repeating, and
// how long to wait first.
func (s *Source) retryable(a *attempt, err error, n int) (bool, time.Duration) {
	if isTimeout(err) {
		return false, 0
	}
	switch {
	case a.status == http.StatusTooManyRequests || a.status >= 500:
	case a.status == 0 && isNetError(err):
	default:
		return false, 0
	}
	d := s.backoff << min(n, 10)
	d = d/2 + rand.N(d/2+1) // jitter spreads retries of concurrent callers
	if a.retryAfter > d {
		d = min(a.retryAfter, maxRetryAfter)
	}
	return true, d
}

func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isNetError(err error) bool {
	var ne net.Error
	var oe *net.OpError
	return errors.As(err, &ne) || errors.As(err, &oe) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// describe turns a failed call into an error that names the cluster, the
// index and the cause in an operator's terms, with Elasticsearch's reason.
// The client's own error stays reachable through errors.As/Is but is not
// repeated in the text when it only restates Elasticsearch's answer.
func (s *Source) describe(op string, a *attempt, err error, attempts int) error {
	where := fmt.Sprintf("elasticsearch %s: %s on index %q", s.name, op, s.index)
	tries := ""
	if attempts > 1 {
		tries = fmt.Sprintf(" (after %d attempts)", attempts)
	}
	wrap := func(format string, args ...any) error {
		return &sourceError{msg: where + ": " + fmt.Sprintf(format, args...), err: err}
	}
	var ee *types.ElasticsearchError
	var pe *partialError
	switch {
	case errors.As(err, &pe):
		return wrap("%v", pe)
	case errors.As(err, &ee):
		reason := causeText(ee.ErrorCause)
		switch {
		case ee.Status == http.StatusUnauthorized:
			return wrap("authentication failed (401): check the username and password or API key (%s)", reason)
		case ee.Status == http.StatusForbidden:
			return wrap("permission denied (403): the user needs the read and view_index_metadata privileges on the index (%s)", reason)
		case ee.Status == http.StatusNotFound && ee.ErrorCause.Type == "index_not_found_exception":
			return wrap("index not found (404): %s", reason)
		case ee.Status == http.StatusBadRequest:
			return wrap("query rejected (400): %s", reason)
		case ee.Status == http.StatusTooManyRequests || ee.Status >= 500:
			return wrap("cluster overloaded or failing (HTTP %d)%s: %s", ee.Status, tries, reason)
		}
		return wrap("HTTP %d: %s", ee.Status, reason)
	case a.status == http.StatusTooManyRequests || a.status >= 500:
		// The body was not Elasticsearch's JSON (a proxy's answer, say).
		return wrap("cluster overloaded or failing (HTTP %d)%s", a.status, tries)
	case strings.Contains(err.Error(), "not Elasticsearch") || strings.Contains(err.Error(), "unknown product"):
		return wrap("the server is not Elasticsearch (no X-Elastic-Product header): %v", err)
	case isTimeout(err):
		return wrap("no answer within %s (Timeout): %v", s.timeout, err)
	case a.status == 0 && isNetError(err):
		return wrap("cluster unreachable%s: %v", tries, err)
	case a.status != 0:
		return wrap("HTTP %d: %v", a.status, err)
	}
	return wrap("%v", err)
}

// sourceError is a failed request explained; Unwrap gives the client's error.
type sourceError struct {
	msg string
	err error
}

func (e *sourceError) Error() string { return e.msg }
func (e *sourceError) Unwrap() error { return e.err }

// causeText is Elasticsearch's own explanation: the root cause when there is
// one (it names the failing setting or field), else the deepest caused_by.
func causeText(c types.ErrorCause) string {
	for _, rc := range c.RootCause {
		if rc.Reason != nil && *rc.Reason != "" {
			return rc.Type + ": " + *rc.Reason
		}
	}
	best := c.Type
	if c.Reason != nil && *c.Reason != "" {
		best = c.Type + ": " + *c.Reason
	}
	for cb := c.CausedBy; cb != nil; cb = cb.CausedBy {
		if cb.Reason != nil && *cb.Reason != "" {
			best = cb.Type + ": " + *cb.Reason
		}
	}
	return best
}

// partialError is a 200 answer that is not whole: some shards failed or the
// search timed out. Counting on it would understate errors silently.
type partialError struct {
	failed, total uint
	reason        string
	timedOut      bool
}

func (e *partialError) Error() string {
	if e.timedOut {
		return "search timed out on the cluster; results would be partial"
	}
	return fmt.Sprintf("%d of %d shards failed, results would be partial: %s", e.failed, e.total, e.reason)
}

func newSearch() *search.Request {
	zero := 0
	return &search.Request{Size: &zero, TrackTotalHits: false}
}

// search runs one search on the configured index.
//
// It bypasses the shard request cache. culprit's windows move with the clock,
// so the same search never comes twice and caching it would only evict the
// entries of those whose searches do repeat (dashboards); it would also let
// a benchmark that repeats one window measure the cache instead of the query.
func (s *Source) search(ctx context.Context, op string, req *search.Request) (*search.Response, error) {
	var res *search.Response
	err := s.call(ctx, op, func(ctx context.Context) (int64, error) {
		r, err := s.es.Search().Index(s.index).AllowNoIndices(true).RequestCache(false).Request(req).Do(ctx)
		if err != nil {
			return 0, err
		}
		if r.Shards_.Failed > 0 {
			pe := &partialError{failed: r.Shards_.Failed, total: r.Shards_.Total}
			if len(r.Shards_.Failures) > 0 {
				f := r.Shards_.Failures[0] // one names the cause; the rest repeat it
				if f.Index != nil {
					pe.reason = "index " + *f.Index + ": "
				}
				pe.reason += causeText(f.Reason)
			}
			return r.Took, pe
		}
		if r.TimedOut {
			return r.Took, &partialError{timedOut: true}
		}
		res = r
		return r.Took, nil
	})
	return res, err
}
