// Package zendesk polls Zendesk's cursor-based incremental ticket export
// (GET /api/v2/incremental/tickets/cursor.json) into culprit's ticket store.
//
// One Poll reads every page up to the end of the stream and persists the
// cursor after each page is stored, so a crash re-reads at most one page,
// which AddTickets' upsert makes harmless. Zendesk allows 10 export requests
// a minute and leaves out tickets changed in the last minute, so polling more
// often than once a minute gains nothing; Run defaults to that.
//
// Errors tell the caller what to do next: a *RateLimitError carries
// Zendesk's Retry-After; ErrTemporary (5xx, network) means try again soon;
// ErrAuth means the credentials are wrong and only an operator can fix it.
// NextDelay turns any of them into the wait before the next poll.
package zendesk

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/file"
)

// TicketStore records tickets. The SQLite store implements it.
type TicketStore interface {
	// AddTickets upserts by ticket id (a later update of the same ticket
	// replaces it). An error means the page may be partly stored; the
	// poller then keeps its cursor and reads the page again.
	AddTickets(ctx context.Context, ts []correlate.Ticket) error
}

// CursorStore persists the export position across restarts.
type CursorStore interface {
	// Cursor returns the value last set under name, "" when none. An error
	// stops the poll: starting over from StartTime would re-read everything.
	Cursor(ctx context.Context, name string) (string, error)
	// SetCursor replaces the value under name. An error stops the poll; the
	// page just stored is read again next time.
	SetCursor(ctx context.Context, name, value string) error
}

// Config is what a Poller needs.
type Config struct {
	// URL is the account's address, such as https://acme.zendesk.com.
	URL string
	// Email and Token are an agent's address and an API token; requests
	// authenticate as Basic "{email}/token:{token}".
	Email, Token string
	// HTTPClient sends the requests; a client with a 60 s timeout when nil.
	HTTPClient *http.Client
	// Tickets receives each page's tickets.
	Tickets TicketStore
	// Cursors keeps the export cursor, under "zendesk/<host>/tickets".
	Cursors CursorStore
	// Now is the clock for the first start_time; time.Now when nil.
	Now func() time.Time
	// Logger receives one line per poll; never credentials. Discarded when nil.
	Logger *slog.Logger
	// StartTime is where the export starts when no cursor is stored yet;
	// 24 hours before the first poll when zero.
	StartTime time.Time
	// Registerer receives the poller's metrics; none when nil.
	Registerer prometheus.Registerer
}

// Poller reads new and changed tickets from Zendesk. Its methods are safe for
// concurrent use; polls run one at a time.
type Poller struct {
	*api
	tickets    TicketStore
	cursors    CursorStore
	log        *slog.Logger
	start      time.Time
	cursorName string

	// wait pauses Run between polls; tests replace it to observe the delays
	// without sleeping.
	wait func(ctx context.Context, d time.Duration) error

	mu sync.Mutex // one poll at a time: two would race on the cursor

	stored      prometheus.Counter
	skipped     prometheus.Counter
	deleted     prometheus.Counter
	lastSuccess prometheus.Gauge
}

// maxPage bounds the response body read per page. Zendesk pages hold up to
// 1000 tickets; descriptions can be long, but not this long.
const maxPage = 64 << 20

// New checks cfg and returns a Poller. Every configuration problem is
// reported at once; none of them quotes the token.
func New(cfg Config) (*Poller, error) {
	a, errs := newAPI(cfg.URL, cfg.Email, cfg.Token, cfg.HTTPClient, cfg.Now)
	if cfg.Tickets == nil {
		errs = append(errs, errors.New("a ticket store is required"))
	}
	if cfg.Cursors == nil {
		errs = append(errs, errors.New("a cursor store is required"))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("zendesk: %w", errors.Join(errs...))
	}
	p := &Poller{
		api:        a,
		tickets:    cfg.Tickets,
		cursors:    cfg.Cursors,
		log:        cfg.Logger,
		start:      cfg.StartTime,
		cursorName: "zendesk/" + a.host + "/tickets",
		wait:       sleepCtx,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if err := p.initMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	return p, nil
}

// api is what every Zendesk export poller shares: the account, the
// credentials, and how a response becomes a page or a classified error.
type api struct {
	base     *url.URL // scheme, host and any path prefix, without a trailing slash
	host     string
	auth     string // the Authorization header value; never logged
	client   *http.Client
	now      func() time.Time
	requests *prometheus.CounterVec
}

// newAPI checks the account's address and credentials; each problem is
// one error, none quoting the token.
func newAPI(rawURL, email, token string, hc *http.Client, now func() time.Time) (*api, []error) {
	var errs []error
	u, err := url.Parse(strings.TrimSpace(rawURL))
	switch {
	case rawURL == "":
		errs = append(errs, errors.New("url is required (like https://acme.zendesk.com)"))
	case err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		errs = append(errs, errors.New("url must be an http(s) address like https://acme.zendesk.com"))
	case u.User != nil:
		errs = append(errs, errors.New("url must not carry credentials: set email and token"))
	case u.RawQuery != "" || u.Fragment != "":
		errs = append(errs, errors.New("url must not have a query or fragment"))
	}
	if strings.TrimSpace(email) == "" {
		errs = append(errs, errors.New("email is required"))
	}
	if strings.TrimSpace(token) == "" {
		errs = append(errs, errors.New("token is required"))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	a := &api{
		base:   u,
		host:   u.Host,
		auth:   "Basic " + base64.StdEncoding.EncodeToString([]byte(strings.TrimSpace(email)+"/token:"+strings.TrimSpace(token))),
		client: hc,
		now:    now,
	}
	if a.client == nil {
		a.client = &http.Client{Timeout: 60 * time.Second}
	}
	if a.now == nil {
		a.now = time.Now
	}
	return a, nil
}

func (p *Poller) initMetrics(reg prometheus.Registerer) error {
	p.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "culprit_zendesk_requests_total",
		Help: "Zendesk incremental export requests by HTTP status code (\"error\" when none came back).",
	}, []string{"code"})
	p.stored = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "culprit_zendesk_tickets_total",
		Help: "Tickets read from the Zendesk export and stored.",
	})
	p.skipped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "culprit_zendesk_tickets_skipped_total",
		Help: "Tickets of the Zendesk export that could not be decoded and were skipped.",
	})
	p.deleted = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "culprit_zendesk_tickets_deleted_total",
		Help: "Deleted (and so spam) tickets of the Zendesk export, dropped.",
	})
	p.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "culprit_zendesk_last_success_timestamp_seconds",
		Help: "When a poll last reached the end of the Zendesk export.",
	})
	if reg == nil {
		return nil
	}
	for _, c := range []prometheus.Collector{p.requests, p.stored, p.skipped, p.deleted, p.lastSuccess} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("zendesk: register metrics: %w", err)
		}
	}
	return nil
}

// exportPage is one page of the cursor-based incremental ticket export.
type exportPage struct {
	Tickets     []json.RawMessage `json:"tickets"`
	AfterCursor *string           `json:"after_cursor"`
	EndOfStream bool              `json:"end_of_stream"`
}

// Poll reads the export from the stored cursor (or from StartTime the first
// time) to the end of the stream, storing each page and then its cursor.
// n counts the tickets stored, also when err is not nil: pages stored before
// a failure stay stored and their cursor is kept.
//
// The next page is always requested from URL with ?cursor=after_cursor,
// never from the after_url in the response, so credentials only ever go to
// the configured host. Tickets that cannot be decoded are skipped with a
// warning and counted: one bad ticket must not stall the export forever.
func (p *Poller) Poll(ctx context.Context) (n int, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cursor, err := p.cursors.Cursor(ctx, p.cursorName)
	if err != nil {
		return 0, fmt.Errorf("zendesk %s: read cursor: %w", p.host, err)
	}
	for pages := 1; ; pages++ {
		// Deleted tickets, spam among them, are no evidence of anything:
		// the export leaves them out when asked, and decode drops any that
		// still come (an export started before a deletion, a proxy that
		// strips the parameter).
		q := url.Values{"exclude_deleted": {"true"}}
		if cursor == "" {
			q.Set("start_time", strconv.FormatInt(p.startTime().Unix(), 10))
		} else {
			q.Set("cursor", cursor)
		}
		page, err := p.get(ctx, q)
		if err != nil {
			return n, err
		}
		tickets := p.decode(page.Tickets)
		if len(tickets) > 0 {
			if err := p.tickets.AddTickets(ctx, tickets); err != nil {
				return n, fmt.Errorf("zendesk %s: store %d tickets: %w", p.host, len(tickets), err)
			}
			n += len(tickets)
			p.stored.Add(float64(len(tickets)))
		}
		next := ""
		if page.AfterCursor != nil {
			next = *page.AfterCursor
		}
		if next != "" && next != cursor {
			if err := p.cursors.SetCursor(ctx, p.cursorName, next); err != nil {
				return n, fmt.Errorf("zendesk %s: save cursor: %w", p.host, err)
			}
			cursor = next
		} else if !page.EndOfStream {
			// More pages promised but no way to ask for them: stop rather
			// than re-read the same page in a loop.
			return n, fmt.Errorf("zendesk %s: page %d has end_of_stream false but no new after_cursor", p.host, pages)
		}
		if page.EndOfStream {
			p.lastSuccess.Set(float64(p.now().Unix()))
			p.log.Info("zendesk: poll done", slog.String("host", p.host), slog.Int("tickets", n), slog.Int("pages", pages))
			return n, nil
		}
	}
}

// startTime is where a first export begins. Zendesk refuses a start_time in
// the last minute or in the future, so it is kept at least a minute back.
func (p *Poller) startTime() time.Time {
	now := p.now()
	st := p.start
	if st.IsZero() {
		st = now.Add(-24 * time.Hour)
	}
	if latest := now.Add(-time.Minute); st.After(latest) {
		st = latest
	}
	return st
}

// decode reads a page's tickets like the file source does. Later copies of
// an id in one page replace earlier ones, as the store's upsert would.
func (p *Poller) decode(raws []json.RawMessage) []correlate.Ticket {
	out := make([]correlate.Ticket, 0, len(raws))
	byID := make(map[int64]int, len(raws))
	for i, raw := range raws {
		t, err := file.DecodeTicket(raw)
		if err != nil {
			p.skipped.Inc()
			p.log.Warn("zendesk: ticket skipped", slog.String("host", p.host), slog.Int("index", i), slog.String("err", err.Error()))
			continue
		}
		if j, ok := byID[t.ID]; ok {
			out[j] = t
			continue
		}
		byID[t.ID] = len(out)
		out = append(out, t)
	}
	// Deleted tickets (spam is deleted too) are dropped after the
	// de-duplication, so that a later copy saying "deleted" wins.
	kept := out[:0]
	for _, t := range out {
		if strings.EqualFold(t.Status, "deleted") {
			p.deleted.Inc()
			continue
		}
		kept = append(kept, t)
	}
	return kept
}

// get requests one page of the ticket export.
func (p *Poller) get(ctx context.Context, q url.Values) (*exportPage, error) {
	var page exportPage
	if err := p.getJSON(ctx, "/api/v2/incremental/tickets/cursor.json", q, &page); err != nil {
		return nil, err
	}
	return &page, nil
}

// getJSON requests one export page at path and decodes it into page,
// classifying failures.
func (a *api) getJSON(ctx context.Context, path string, q url.Values, page any) error {
	u := *a.base
	u.Path += path
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("zendesk %s: build request: %w", a.host, err)
	}
	req.Header.Set("Authorization", a.auth)
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		a.requests.WithLabelValues("error").Inc()
		if ctx.Err() != nil {
			return fmt.Errorf("zendesk %s: %w", a.host, context.Cause(ctx))
		}
		// url.Error repeats the URL, which holds nothing secret (the
		// credentials travel in a header), but the cause alone reads better.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return &apiError{host: a.host, msg: "request failed: " + err.Error(), kind: ErrTemporary}
	}
	defer resp.Body.Close()
	a.requests.WithLabelValues(strconv.Itoa(resp.StatusCode)).Inc()
	if err := a.statusErr(resp); err != nil {
		return err
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxPage)).Decode(page); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("zendesk %s: %w", a.host, context.Cause(ctx))
		}
		// A page cut off mid-transfer is worth another try; its cursor was
		// not advanced.
		return &apiError{host: a.host, msg: "decode export page: " + err.Error(), kind: ErrTemporary}
	}
	return nil
}

// statusErr turns a non-2xx response into an error that says what to do.
func (a *api) statusErr(resp *http.Response) error {
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return nil
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("zendesk %s: %w", a.host, &RateLimitError{RetryAfter: retryAfter(resp.Header.Get("Retry-After"), a.now())})
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return &apiError{host: a.host, msg: fmt.Sprintf("authentication failed (%d): check zendesk.email and zendesk.token", code), kind: ErrAuth}
	case code >= 500:
		return &apiError{host: a.host, msg: fmt.Sprintf("server error (%d)%s", code, detail(resp.Body)), kind: ErrTemporary}
	}
	return &apiError{host: a.host, msg: fmt.Sprintf("export refused (%d)%s", code, detail(resp.Body))}
}

// detail is Zendesk's own explanation of an error, shortened; its error
// bodies are {"error":…,"description":…} and never echo the credentials.
func detail(body io.Reader) string {
	b, _ := io.ReadAll(io.LimitReader(body, 4<<10))
	var e struct {
		Error       json.RawMessage `json:"error"`
		Description string          `json:"description"`
	}
	if json.Unmarshal(b, &e) == nil {
		var s string
		if json.Unmarshal(e.Error, &s) != nil {
			s = ""
		}
		if e.Description != "" {
			s = strings.TrimSpace(s + " " + e.Description)
		}
		if s != "" {
			return ": " + shorten(s)
		}
	}
	return ""
}

func shorten(s string) string {
	if r := []rune(s); len(r) > 200 {
		return string(r[:200]) + "…"
	}
	return s
}

// retryAfter reads Retry-After as seconds or an HTTP date. Zendesk always
// sends seconds; without a usable value a minute is Zendesk's own window.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
		return 0
	}
	return time.Minute
}
