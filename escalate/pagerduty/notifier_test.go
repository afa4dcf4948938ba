package pagerduty

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
)

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name     string
		cfg      Config
		wantErr  string // "" means valid
		wantHost string
	}{
		{name: "default URL", cfg: Config{}, wantHost: "events.pagerduty.com"},
		{name: "explicit https", cfg: Config{URL: "https://events.eu.pagerduty.com"}, wantHost: "events.eu.pagerduty.com"},
		{name: "http with port and prefix", cfg: Config{URL: "http://127.0.0.1:8080/pd/"}, wantHost: "127.0.0.1:8080"},
		{name: "ftp scheme", cfg: Config{URL: "ftp://events.pagerduty.com"}, wantErr: `pagerduty config: URL: scheme must be http or https, got "ftp"`},
		{name: "no scheme", cfg: Config{URL: "events.pagerduty.com"}, wantErr: `pagerduty config: URL: scheme must be http or https, got ""`},
		{name: "no host", cfg: Config{URL: "https:///v2"}, wantErr: "pagerduty config: URL: no host"},
		{name: "credentials", cfg: Config{URL: "https://user:s3cret@events.pagerduty.com"}, wantErr: "pagerduty config: URL: must not carry credentials"},
		{name: "query", cfg: Config{URL: "https://events.pagerduty.com?x=1"}, wantErr: "pagerduty config: URL: must not have a query"},
		{name: "unparsable", cfg: Config{URL: "https://s3cret@[::1"}, wantErr: "pagerduty config: URL: missing ']' in host"},
		{name: "negative timeout", cfg: Config{Timeout: -time.Second}, wantErr: "pagerduty config: Timeout: must not be negative, got -1s"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if n.host != tc.wantHost || n.timeout != DefaultTimeout {
					t.Errorf("host %q timeout %s, want %q %s", n.host, n.timeout, tc.wantHost, DefaultTimeout)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.wantErr) {
				t.Fatalf("New error = %v, want prefix %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error leaks the URL's credentials: %v", err)
			}
		})
	}
}

func newNotifier(t *testing.T, rawURL string, timeout time.Duration) *Notifier {
	t.Helper()
	n, err := New(Config{URL: rawURL, Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Host
}

func TestNotify(t *testing.T) {
	valid := func() *pd.V2Event { return Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks) }
	tests := []struct {
		name           string
		setup          func(f *pdfake.Fake)
		event          func() *pd.V2Event
		slash          bool // configure the URL with a trailing slash
		wantRetry      bool
		wantStatus     int // 0: success expected
		wantRetryAfter time.Duration
		wantErr        []string
		wantAccepted   int
	}{
		{name: "accepted", event: valid, wantAccepted: 1},
		{name: "accepted with trailing slash on URL", event: valid, slash: true, wantAccepted: 1},
		{name: "resolve accepted", event: func() *pd.V2Event { return Resolve(routingKey, "inc-1") }, wantAccepted: 1},
		{
			name: "invalid event is not retried",
			event: func() *pd.V2Event {
				ev := valid()
				ev.Payload.Severity = "fatal"
				ev.Payload.Source = ""
				return ev
			},
			wantStatus: 400,
			wantErr:    []string{"post event to HOST: 400 Bad Request: invalid event: ", `payload.source must not be blank; payload.severity "fatal" must be one of critical, error, warning, info`},
		},
		{
			name:    "short routing key is not retried",
			event:   func() *pd.V2Event { return Trigger("abc", "inc-1", fridayFinding(), fridayLinks) },
			wantErr: []string{"routing_key must be a 32-character integration key"}, wantStatus: 400,
		},
		{
			name: "throttled with Retry-After seconds", setup: func(f *pdfake.Fake) { f.SetMode(pdfake.Mode429); f.SetRetryAfter("1") },
			event: valid, wantRetry: true, wantStatus: 429, wantRetryAfter: time.Second,
			wantErr: []string{"429 Too Many Requests: throttle event: Requests for this service are arriving too quickly", "(retry after 1s)"},
		},
		{
			name: "throttled with Retry-After date", setup: func(f *pdfake.Fake) {
				f.FailWith(429, 1)
				f.SetRetryAfter(t0.Add(90 * time.Second).Format(http.TimeFormat))
			},
			event: valid, wantRetry: true, wantStatus: 429, wantRetryAfter: 90 * time.Second,
		},
		{name: "throttled without Retry-After", setup: func(f *pdfake.Fake) { f.FailWith(429, 1) }, event: valid, wantRetry: true, wantStatus: 429},
		{name: "server error", setup: func(f *pdfake.Fake) { f.SetMode(pdfake.Mode500) }, event: valid, wantRetry: true, wantStatus: 500,
			wantErr: []string{"post event to HOST: 500 Internal Server Error: error: Internal server error"}},
		{name: "bad gateway", setup: func(f *pdfake.Fake) { f.FailWith(502, 1) }, event: valid, wantRetry: true, wantStatus: 502},
		{name: "request timeout status", setup: func(f *pdfake.Fake) { f.FailWith(408, 1) }, event: valid, wantRetry: true, wantStatus: 408},
		{name: "payload too large is a dead letter", setup: func(f *pdfake.Fake) { f.FailWith(413, 1) }, event: valid, wantStatus: 413},
		{name: "not found is a dead letter", setup: func(f *pdfake.Fake) { f.FailWith(404, 1) }, event: valid, wantStatus: 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pdfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			base := f.URL()
			if tc.slash {
				base += "/"
			}
			n := newNotifier(t, base, 0)
			n.now = func() time.Time { return t0 }

			retry, err := n.Notify(context.Background(), tc.event())
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v (err %v)", retry, tc.wantRetry, err)
			}
			if tc.wantStatus == 0 {
				if err != nil {
					t.Fatalf("Notify: %v", err)
				}
			} else {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error %v (%T) is not *Error", err, err)
				}
				if e.Status != tc.wantStatus || e.RetryAfter != tc.wantRetryAfter || e.Host != hostOf(t, f.URL()) {
					t.Errorf("Error = %+v, want status %d, retry after %s, host %s", e, tc.wantStatus, tc.wantRetryAfter, hostOf(t, f.URL()))
				}
				for _, w := range tc.wantErr {
					if w = strings.ReplaceAll(w, "HOST", hostOf(t, f.URL())); !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				if strings.Contains(err.Error(), routingKey) {
					t.Errorf("error leaks the routing key: %v", err)
				}
			}
			if got := len(f.Events()); got != tc.wantAccepted {
				t.Errorf("fake accepted %d events, want %d", got, tc.wantAccepted)
			}
			if tc.wantStatus != 400 {
				if r := f.Rejected(); len(r) != 0 {
					t.Errorf("fake rejected: %v", r)
				}
			}
		})
	}
}

// A retried trigger after a throttle lands once and opens one alert.
func TestNotifyRetryThenAccepted(t *testing.T) {
	f := pdfake.New(t)
	f.FailWith(503, 1)
	n := newNotifier(t, f.URL(), 0)
	ev := Trigger(routingKey, "inc-7", fridayFinding(), fridayLinks)
	if retry, err := n.Notify(context.Background(), ev); !retry || err == nil {
		t.Fatalf("first attempt: retry %v err %v, want a retryable error", retry, err)
	}
	if retry, err := n.Notify(context.Background(), ev); retry || err != nil {
		t.Fatalf("second attempt: retry %v err %v, want success", retry, err)
	}
	in := f.Incidents()["inc-7"]
	if in.State != pdfake.StateTriggered || in.Alerts != 1 || in.Triggers != 1 {
		t.Errorf("incident = %+v, want one triggered alert", in)
	}
}

func TestNotifyTimeout(t *testing.T) {
	f := pdfake.New(t)
	f.SetMode(pdfake.ModeHang)
	n := newNotifier(t, f.URL(), 50*time.Millisecond)

	retry, err := n.Notify(context.Background(), Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks))
	if !retry {
		t.Errorf("retry = false, want true for a timeout")
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want *Error wrapping context.DeadlineExceeded", err)
	}
	want := "post event to " + hostOf(t, f.URL()) + ": no response within 50ms: context deadline exceeded"
	if err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	if f.Requests() != 1 || len(f.Events()) != 0 {
		t.Errorf("fake saw %d requests and accepted %d events, want 1 and 0", f.Requests(), len(f.Events()))
	}
}

func TestNotifyHonoursCancellation(t *testing.T) {
	t.Run("cancelled while in flight", func(t *testing.T) {
		f := pdfake.New(t)
		f.SetMode(pdfake.ModeHang)
		n := newNotifier(t, f.URL(), time.Hour)
		ctx, cancel := context.WithCancel(context.Background())
		type result struct {
			retry bool
			err   error
		}
		done := make(chan result, 1)
		ev := Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks)
		go func() {
			retry, err := n.Notify(ctx, ev)
			done <- result{retry, err}
		}()
		if err := f.WaitFor(context.Background(), func(f *pdfake.Fake) bool { return f.Requests() == 1 }); err != nil {
			t.Fatal(err)
		}
		cancel()
		r := <-done
		if !r.retry || !errors.Is(r.err, context.Canceled) {
			t.Errorf("Notify = %v, %v; want retry and context.Canceled", r.retry, r.err)
		}
	})
	t.Run("cancelled before", func(t *testing.T) {
		f := pdfake.New(t)
		n := newNotifier(t, f.URL(), 0)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		retry, err := n.Notify(ctx, Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks))
		if !retry || !errors.Is(err, context.Canceled) {
			t.Errorf("Notify = %v, %v; want retry and context.Canceled", retry, err)
		}
		if f.Requests() != 0 {
			t.Errorf("a request was sent on a cancelled context")
		}
	})
}

func TestNotifyUnreachable(t *testing.T) {
	f := pdfake.New(t)
	base := f.URL()
	f.Close() // nothing listens on the port any more
	n := newNotifier(t, base, 0)
	retry, err := n.Notify(context.Background(), Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks))
	if !retry {
		t.Errorf("retry = false, want true for a network error")
	}
	var e *Error
	if !errors.As(err, &e) || e.Status != 0 {
		t.Fatalf("error = %v, want *Error without status", err)
	}
	if !strings.HasPrefix(err.Error(), "post event to "+hostOf(t, base)+": ") || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("error = %q, want the host and the cause", err)
	}
}

// Events the library cannot encode never reach the network and are not
// retried: sending them again cannot help.
func TestNotifyUnencodableEvent(t *testing.T) {
	f := pdfake.New(t)
	n := newNotifier(t, f.URL(), 0)
	ev := Resolve(routingKey, "inc-1")
	ev.Payload = &pd.V2Payload{Summary: "x", Source: "x", Severity: "info", Details: map[string]float64{"p": math.NaN()}}
	retry, err := n.Notify(context.Background(), ev)
	if retry || err == nil || !strings.Contains(err.Error(), "encode: ") {
		t.Errorf("Notify = %v, %v; want a non-retryable encode error", retry, err)
	}
	if f.Requests() != 0 {
		t.Errorf("fake saw %d requests, want 0", f.Requests())
	}
	if retry, err := n.Notify(context.Background(), nil); retry || err == nil {
		t.Errorf("Notify(nil) = %v, %v; want a non-retryable error", retry, err)
	}
}

// A proxy in front of PagerDuty may answer with anything, even echo the
// request; the routing key must still stay out of the error.
func TestErrorBodyWithoutPagerDutyShape(t *testing.T) {
	tests := []struct {
		name, contentType, body string
		status                  int
		wantRetry               bool
		want                    string
	}{
		{name: "html from a proxy", contentType: "text/html", body: "<html>\n<body>Service   Unavailable</body></html>", status: 503, wantRetry: true,
			want: "503 Service Unavailable: <html> <body>Service Unavailable</body></html>"},
		{name: "echoed routing key", contentType: "application/json", body: `{"status":"invalid event","errors":["unknown routing_key ` + routingKey + `"]}`, status: 400,
			want: "400 Bad Request: invalid event: unknown routing_key <routing key>"},
		{name: "empty body", contentType: "application/json", status: 502, wantRetry: true, want: "502 Bad Gateway: empty response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", tc.contentType)
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}))
			defer srv.Close()
			n := newNotifier(t, srv.URL, 0)
			retry, err := n.Notify(context.Background(), Resolve(routingKey, "inc-1"))
			if retry != tc.wantRetry || err == nil {
				t.Fatalf("Notify = %v, %v; want retry %v and an error", retry, err, tc.wantRetry)
			}
			if !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), routingKey) {
				t.Errorf("error = %q, want it to contain %q and not the routing key", err, tc.want)
			}
		})
	}
}

func TestChange(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(f *pdfake.Fake)
		key        string
		wantRetry  bool
		wantStatus int
		wantErr    string
	}{
		{name: "accepted", key: routingKey},
		{name: "ruleset key rejected", key: "R" + routingKey[1:], wantStatus: 400, wantErr: "post change event to HOST: 400 Bad Request: invalid event: routing_key is a ruleset key"},
		{name: "throttled", setup: func(f *pdfake.Fake) { f.FailWith(429, 1) }, key: routingKey, wantRetry: true, wantStatus: 429},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pdfake.New(t)
			if tc.setup != nil {
				tc.setup(f)
			}
			n := newNotifier(t, f.URL(), 0)
			retry, err := n.Change(context.Background(), ChangeFromDeploy(tc.key, fridayDeploy))
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v", retry, tc.wantRetry)
			}
			var e *Error
			switch {
			case tc.wantStatus == 0 && err != nil:
				t.Fatalf("Change: %v", err)
			case tc.wantStatus == 0:
				if evs := f.Events(); len(evs) != 1 || evs[0].Change == nil {
					t.Errorf("fake events = %+v, want one change event", evs)
				}
			case !errors.As(err, &e) || e.Status != tc.wantStatus:
				t.Errorf("error = %v, want *Error with status %d", err, tc.wantStatus)
			case !strings.Contains(err.Error(), strings.ReplaceAll(tc.wantErr, "HOST", hostOf(t, f.URL()))):
				t.Errorf("error = %q, want %q", err, tc.wantErr)
			}
		})
	}
}

// A caller's HTTP client keeps its transport (proxies, TLS roots) and is
// not modified.
func TestConfigHTTPClient(t *testing.T) {
	f := pdfake.New(t)
	var calls atomic.Int32
	inner := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		calls.Add(1)
		return http.DefaultTransport.RoundTrip(r)
	})
	hc := &http.Client{Transport: inner}
	n, err := New(Config{URL: f.URL(), HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	f.SetMode(pdfake.Mode429)
	f.SetRetryAfter("7")
	_, err = n.Notify(context.Background(), Resolve(routingKey, "inc-1"))
	var e *Error
	if !errors.As(err, &e) || e.RetryAfter != 7*time.Second {
		t.Errorf("error = %v, want 429 with Retry-After 7s read through the caller's transport", err)
	}
	if calls.Load() != 1 {
		t.Errorf("caller's transport used %d times, want 1", calls.Load())
	}
	if _, ok := hc.Transport.(roundTripFunc); !ok {
		t.Errorf("caller's client was modified: transport is %T", hc.Transport)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestParseRetryAfter(t *testing.T) {
	tests := []struct {
		name, header string
		want         time.Duration
	}{
		{name: "empty", header: "", want: 0},
		{name: "seconds", header: "1", want: time.Second},
		{name: "seconds with spaces", header: " 120 ", want: 2 * time.Minute},
		{name: "zero", header: "0", want: 0},
		{name: "negative", header: "-5", want: 0},
		{name: "absurd seconds are capped", header: "99999999999999999", want: maxRetryAfter},
		{name: "HTTP date", header: t0.Add(45 * time.Second).Format(http.TimeFormat), want: 45 * time.Second},
		{name: "HTTP date in the past", header: t0.Add(-time.Minute).Format(http.TimeFormat), want: 0},
		{name: "HTTP date far ahead is capped", header: t0.Add(90 * 24 * time.Hour).Format(http.TimeFormat), want: maxRetryAfter},
		{name: "garbage", header: "soon", want: 0},
		{name: "fraction", header: "1.5", want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseRetryAfter(tc.header, t0); got != tc.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tc.header, got, tc.want)
			}
		})
	}
}
