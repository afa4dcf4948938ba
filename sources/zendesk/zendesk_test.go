package zendesk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/culprithq/culprit/correlate"
)

const (
	testEmail = "agent@acme.com"
	testToken = "zd-api-token-value-123"
)

var testNow = time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)

// zticket is a ticket as the export API returns it, with the fields culprit
// ignores left in.
func zticket(id int, created, status string) string {
	return fmt.Sprintf(`{"url":"https://acme.zendesk.com/api/v2/tickets/%d.json","id":%d,"external_id":null,
 "via":{"channel":"email","source":{"from":{"address":"c@example.net"},"to":{},"rel":null}},
 "created_at":"%s","updated_at":"%s","type":"incident","subject":"Functions fail %d",
 "raw_subject":"Functions fail %d","description":"502 from upstream","priority":"high","status":"%s",
 "requester_id":20978392,"submitter_id":20978392,"assignee_id":null,"organization_id":10234,"group_id":null,
 "tags":["functions","aws"],"custom_fields":[],"satisfaction_rating":null,"generated_timestamp":1795364970}`,
		id, id, created, created, id, id, status)
}

func wantTicket(id int64, created, status string) correlate.Ticket {
	t, _ := time.Parse(time.RFC3339, created)
	return correlate.Ticket{ID: id, CreatedAt: t.UTC(), Subject: fmt.Sprintf("Functions fail %d", id), Description: "502 from upstream",
		Priority: "high", Status: status, Tags: []string{"functions", "aws"}, OrganizationID: 10234, RequesterID: 20978392, Via: "email"}
}

func page(cursor string, end bool, tickets ...string) string {
	c := "null"
	if cursor != "" {
		c = strconv.Quote(cursor)
	}
	return fmt.Sprintf(`{"tickets":[%s],"after_url":"https://acme.zendesk.com/api/v2/incremental/tickets/cursor.json?cursor=%s","after_cursor":%s,"before_url":null,"before_cursor":null,"end_of_stream":%v}`,
		strings.Join(tickets, ","), cursor, c, end)
}

type fakeResponse struct {
	code   int
	header http.Header
	body   string
}

func ok(body string) fakeResponse { return fakeResponse{code: 200, body: body} }

// fakeZendesk serves scripted responses and checks each request has the
// documented shape: GET on the cursor export path, Basic auth as
// "{email}/token:{token}", and exactly one of start_time or cursor.
type fakeZendesk struct {
	t       *testing.T
	srv     *httptest.Server
	mu      sync.Mutex
	script  *script
	queries []url.Values
}

// script answers requests with scripted responses, in order; a request
// beyond them fails the test.
type script struct {
	mu        sync.Mutex
	responses []fakeResponse
}

func (s *script) reply(t *testing.T, w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if len(s.responses) == 0 {
		s.mu.Unlock()
		t.Errorf("unexpected request %s", r.URL.RawQuery)
		http.Error(w, `{"error":"no more"}`, http.StatusTeapot)
		return
	}
	resp := s.responses[0]
	s.responses = s.responses[1:]
	s.mu.Unlock()
	for k, vs := range resp.header {
		w.Header()[k] = vs
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(resp.code)
	fmt.Fprint(w, resp.body)
}

func newFake(t *testing.T, responses ...fakeResponse) *fakeZendesk {
	f := &fakeZendesk{t: t, script: &script{responses: responses}}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+testToken))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v2/incremental/tickets/cursor.json" {
			t.Errorf("request %s %s, want GET /api/v2/incremental/tickets/cursor.json", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != wantAuth {
			t.Errorf("Authorization %q, want %q", got, wantAuth)
		}
		q := r.URL.Query()
		if q.Get("exclude_deleted") != "true" {
			t.Errorf("query %q lacks exclude_deleted=true", r.URL.RawQuery)
		}
		q.Del("exclude_deleted")
		_, hasStart := q["start_time"]
		_, hasCursor := q["cursor"]
		if hasStart == hasCursor || len(q) != 1 {
			t.Errorf("query %q: want exactly one of start_time and cursor", r.URL.RawQuery)
		}
		if hasStart {
			if _, err := strconv.ParseInt(q.Get("start_time"), 10, 64); err != nil {
				t.Errorf("start_time %q is not Unix seconds", q.Get("start_time"))
			}
		}
		f.mu.Lock()
		f.queries = append(f.queries, q)
		f.mu.Unlock()
		f.script.reply(t, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// requests lists each request's position: "start_time=…" or "cursor=…".
func (f *fakeZendesk) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, q := range f.queries {
		out = append(out, q.Encode())
	}
	return out
}

type memTickets struct {
	mu      sync.Mutex
	tickets map[int64]correlate.Ticket
	batches int
	err     error
}

func (m *memTickets) AddTickets(ctx context.Context, ts []correlate.Ticket) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.batches++
	if m.tickets == nil {
		m.tickets = map[int64]correlate.Ticket{}
	}
	for _, t := range ts {
		m.tickets[t.ID] = t
	}
	return nil
}

type memCursors struct {
	mu     sync.Mutex
	values map[string]string
	sets   []string
	getErr error
}

func (m *memCursors) Cursor(ctx context.Context, name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.values[name], m.getErr
}

func (m *memCursors) SetCursor(ctx context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[name] = value
	m.sets = append(m.sets, value)
	return nil
}

type pollEnv struct {
	p       *Poller
	fake    *fakeZendesk
	tickets *memTickets
	cursors *memCursors
	reg     *prometheus.Registry
}

func newPollEnv(t *testing.T, cursor string, start time.Time, responses ...fakeResponse) *pollEnv {
	t.Helper()
	e := &pollEnv{fake: newFake(t, responses...), tickets: &memTickets{}, cursors: &memCursors{}, reg: prometheus.NewRegistry()}
	p, err := New(Config{URL: e.fake.srv.URL + "/", Email: testEmail, Token: testToken, HTTPClient: e.fake.srv.Client(),
		Tickets: e.tickets, Cursors: e.cursors, Now: func() time.Time { return testNow }, StartTime: start,
		Logger: slog.New(slog.DiscardHandler), Registerer: e.reg})
	if err != nil {
		t.Fatal(err)
	}
	if cursor != "" {
		e.cursors.values = map[string]string{p.cursorName: cursor}
	}
	e.p = p
	return e
}

func (e *pollEnv) cursor() string {
	e.cursors.mu.Lock()
	defer e.cursors.mu.Unlock()
	return e.cursors.values[e.p.cursorName]
}

func TestPoll(t *testing.T) {
	start := time.Date(2026, 11, 19, 0, 0, 0, 0, time.UTC)
	startQ := "start_time=" + strconv.FormatInt(start.Unix(), 10)
	t1 := zticket(101, "2026-11-20T16:05:00Z", "open")
	t2 := zticket(102, "2026-11-20T16:06:00Z", "new")
	t1solved := zticket(101, "2026-11-20T16:05:00Z", "solved")
	tooMany := fakeResponse{code: 429, header: http.Header{"Retry-After": {"42"}}, body: `{"error":"APIRateLimitExceeded"}`}

	tests := []struct {
		name         string
		cursor       string // stored before the poll
		responses    []fakeResponse
		wantRequests []string
		wantN        int
		wantTickets  map[int64]correlate.Ticket
		wantCursor   string
		wantErr      func(error) bool
		wantErrText  string
	}{
		{
			name:         "first poll follows the cursor to the end",
			responses:    []fakeResponse{ok(page("c1", false, t1, t2)), ok(page("c2", false, t1solved)), ok(page("c3", true))},
			wantRequests: []string{startQ, "cursor=c1", "cursor=c2"},
			wantN:        3,
			wantTickets:  map[int64]correlate.Ticket{101: wantTicket(101, "2026-11-20T16:05:00Z", "solved"), 102: wantTicket(102, "2026-11-20T16:06:00Z", "new")},
			wantCursor:   "c3",
		},
		{
			// Zendesk's export lists deletions with status "deleted"
			// (spam is deleted too) unless exclude_deleted holds; a
			// deletion that still comes through is not stored.
			name:         "deleted tickets are dropped",
			responses:    []fakeResponse{ok(page("c1", true, t1, zticket(103, "2026-11-20T16:07:00Z", "deleted"), t2, zticket(102, "2026-11-20T16:06:00Z", "deleted")))},
			wantRequests: []string{startQ},
			wantN:        1,
			wantTickets:  map[int64]correlate.Ticket{101: wantTicket(101, "2026-11-20T16:05:00Z", "open")},
			wantCursor:   "c1",
		},
		{
			name:         "resumes from the stored cursor",
			cursor:       "c7",
			responses:    []fakeResponse{ok(page("c7", true))},
			wantRequests: []string{"cursor=c7"},
			wantCursor:   "c7",
		},
		{
			name:         "429 keeps the cursor",
			cursor:       "c1",
			responses:    []fakeResponse{tooMany},
			wantRequests: []string{"cursor=c1"},
			wantCursor:   "c1",
			wantErr: func(err error) bool {
				rl, ok := errors.AsType[*RateLimitError](err)
				return ok && rl.RetryAfter == 42*time.Second
			},
			wantErrText: "rate limited: retry after 42s",
		},
		{
			name:         "429 after a page keeps that page",
			responses:    []fakeResponse{ok(page("c1", false, t1)), tooMany},
			wantRequests: []string{startQ, "cursor=c1"},
			wantN:        1,
			wantTickets:  map[int64]correlate.Ticket{101: wantTicket(101, "2026-11-20T16:05:00Z", "open")},
			wantCursor:   "c1",
			wantErr:      func(err error) bool { _, ok := errors.AsType[*RateLimitError](err); return ok },
		},
		{
			name:         "500 is temporary",
			cursor:       "c1",
			responses:    []fakeResponse{{code: 503, body: `{"error":"ServiceUnavailable","description":"maintenance"}`}},
			wantRequests: []string{"cursor=c1"},
			wantCursor:   "c1",
			wantErr:      func(err error) bool { return errors.Is(err, ErrTemporary) },
			wantErrText:  "server error (503): ServiceUnavailable maintenance",
		},
		{
			name:         "401 names host and config keys",
			cursor:       "c1",
			responses:    []fakeResponse{{code: 401, body: `{"error":"Couldn't authenticate you"}`}},
			wantRequests: []string{"cursor=c1"},
			wantCursor:   "c1",
			wantErr:      func(err error) bool { return errors.Is(err, ErrAuth) && !errors.Is(err, ErrTemporary) },
			wantErrText:  ": authentication failed (401): check zendesk.email and zendesk.token",
		},
		{
			name:         "403",
			responses:    []fakeResponse{{code: 403, body: `{"error":"Forbidden"}`}},
			wantRequests: []string{startQ},
			wantErr:      func(err error) bool { return errors.Is(err, ErrAuth) },
			wantErrText:  "authentication failed (403)",
		},
		{
			name:         "400 is permanent with Zendesk's reason",
			cursor:       "bogus",
			responses:    []fakeResponse{{code: 400, body: `{"error":"InvalidPaginationParameter","description":"cursor is invalid"}`}},
			wantRequests: []string{"cursor=bogus"},
			wantCursor:   "bogus",
			wantErr:      func(err error) bool { return err != nil && !errors.Is(err, ErrTemporary) && !errors.Is(err, ErrAuth) },
			wantErrText:  "export refused (400): InvalidPaginationParameter cursor is invalid",
		},
		{
			name:         "undecodable ticket is skipped",
			responses:    []fakeResponse{ok(page("c1", true, `{"id":"abc","created_at":"2026-11-20T16:00:00Z"}`, t2))},
			wantRequests: []string{startQ},
			wantN:        1,
			wantTickets:  map[int64]correlate.Ticket{102: wantTicket(102, "2026-11-20T16:06:00Z", "new")},
			wantCursor:   "c1",
		},
		{
			name:         "truncated page is temporary",
			cursor:       "c1",
			responses:    []fakeResponse{ok(`{"tickets":[` + t1)},
			wantRequests: []string{"cursor=c1"},
			wantCursor:   "c1",
			wantErr:      func(err error) bool { return errors.Is(err, ErrTemporary) },
			wantErrText:  "decode export page",
		},
		{
			name:         "more promised without a cursor",
			cursor:       "c1",
			responses:    []fakeResponse{ok(page("c1", false))},
			wantRequests: []string{"cursor=c1"},
			wantCursor:   "c1",
			wantErr:      func(err error) bool { return err != nil },
			wantErrText:  "end_of_stream false but no new after_cursor",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newPollEnv(t, tc.cursor, start, tc.responses...)
			n, err := e.p.Poll(context.Background())
			if tc.wantErr == nil && err != nil {
				t.Fatalf("Poll: %v", err)
			}
			if tc.wantErr != nil && !tc.wantErr(err) {
				t.Fatalf("Poll error %v (%T) is not the expected kind", err, err)
			}
			if err != nil {
				host := strings.TrimPrefix(e.fake.srv.URL, "http://")
				if !strings.HasPrefix(err.Error(), "zendesk "+host+": ") || !strings.Contains(err.Error(), tc.wantErrText) {
					t.Errorf("error %q: want it to start with %q and contain %q", err, "zendesk "+host+": ", tc.wantErrText)
				}
				if strings.Contains(err.Error(), testToken) || strings.Contains(err.Error(), base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+testToken))) {
					t.Errorf("error leaks the token: %v", err)
				}
			}
			if n != tc.wantN {
				t.Errorf("n = %d, want %d", n, tc.wantN)
			}
			if got := e.fake.requests(); !slices.Equal(got, tc.wantRequests) {
				t.Errorf("requests %q, want %q", got, tc.wantRequests)
			}
			if len(tc.wantTickets) > 0 || len(e.tickets.tickets) > 0 {
				if !reflect.DeepEqual(e.tickets.tickets, tc.wantTickets) {
					t.Errorf("stored %+v\nwant   %+v", e.tickets.tickets, tc.wantTickets)
				}
			}
			if got := e.cursor(); got != tc.wantCursor {
				t.Errorf("cursor %q, want %q", got, tc.wantCursor)
			}
		})
	}
}

// The cursor is saved after each page's tickets are stored, never before:
// a store failure must leave the page to be read again.
func TestPollStoreFailureKeepsCursor(t *testing.T) {
	e := newPollEnv(t, "c1", time.Time{}, ok(page("c2", true, zticket(1, "2026-11-20T16:00:00Z", "open"))))
	e.tickets.err = errors.New("database is locked")
	n, err := e.p.Poll(context.Background())
	if err == nil || !strings.Contains(err.Error(), "store 1 tickets: database is locked") || n != 0 {
		t.Fatalf("Poll = %d, %v; want 0 and the store's error", n, err)
	}
	if got := e.cursor(); got != "c1" || len(e.cursors.sets) != 0 {
		t.Errorf("cursor %q after %d saves; want c1 untouched", got, len(e.cursors.sets))
	}
}

func TestPollCursorReadFailure(t *testing.T) {
	e := newPollEnv(t, "", time.Time{})
	e.cursors.getErr = errors.New("no such table: cursors")
	if _, err := e.p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "read cursor: no such table") {
		t.Fatalf("Poll error %v, want the cursor store's", err)
	}
	if len(e.fake.requests()) != 0 {
		t.Error("polled from start_time without knowing the cursor")
	}
}

func TestPollHonoursCancellation(t *testing.T) {
	e := newPollEnv(t, "c1", time.Time{}, ok(page("c2", true)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n, err := e.p.Poll(ctx)
	if !errors.Is(err, context.Canceled) || n != 0 {
		t.Fatalf("Poll = %d, %v; want context.Canceled", n, err)
	}
	if e.cursor() != "c1" {
		t.Errorf("cursor moved to %q", e.cursor())
	}
}

func TestStartTime(t *testing.T) {
	tests := []struct {
		name  string
		start time.Time
		want  time.Time
	}{
		{"configured", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)},
		{"zero: a day back", time.Time{}, testNow.Add(-24 * time.Hour)},
		{"future: clamped a minute back", testNow.Add(time.Hour), testNow.Add(-time.Minute)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newPollEnv(t, "", tc.start, ok(page("c1", true)))
			if _, err := e.p.Poll(context.Background()); err != nil {
				t.Fatal(err)
			}
			want := []string{"start_time=" + strconv.FormatInt(tc.want.Unix(), 10)}
			if got := e.fake.requests(); !slices.Equal(got, want) {
				t.Errorf("requests %q, want %q", got, want)
			}
		})
	}
}

func TestPollMetrics(t *testing.T) {
	e := newPollEnv(t, "", time.Time{},
		ok(page("c1", false, zticket(1, "2026-11-20T16:00:00Z", "open"), `{"id":2}`)),
		fakeResponse{code: 500, body: "oops"})
	if _, err := e.p.Poll(context.Background()); !errors.Is(err, ErrTemporary) {
		t.Fatalf("Poll error %v, want temporary", err)
	}
	want := `
# HELP culprit_zendesk_requests_total Zendesk incremental export requests by HTTP status code ("error" when none came back).
# TYPE culprit_zendesk_requests_total counter
culprit_zendesk_requests_total{code="200"} 1
culprit_zendesk_requests_total{code="500"} 1
# HELP culprit_zendesk_tickets_skipped_total Tickets of the Zendesk export that could not be decoded and were skipped.
# TYPE culprit_zendesk_tickets_skipped_total counter
culprit_zendesk_tickets_skipped_total 1
# HELP culprit_zendesk_tickets_total Tickets read from the Zendesk export and stored.
# TYPE culprit_zendesk_tickets_total counter
culprit_zendesk_tickets_total 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want),
		"culprit_zendesk_requests_total", "culprit_zendesk_tickets_total", "culprit_zendesk_tickets_skipped_total"); err != nil {
		t.Error(err)
	}
}

func TestNewValidates(t *testing.T) {
	good := Config{URL: "https://acme.zendesk.com", Email: testEmail, Token: testToken, Tickets: &memTickets{}, Cursors: &memCursors{}}
	tests := []struct {
		name string
		mod  func(*Config)
		want []string
	}{
		{"valid", func(*Config) {}, nil},
		{"everything missing", func(c *Config) { *c = Config{} }, []string{"url is required", "email is required", "token is required", "ticket store", "cursor store"}},
		{"not a url", func(c *Config) { c.URL = "acme.zendesk.com" }, []string{"http(s) address"}},
		{"credentials in url", func(c *Config) { c.URL = "https://me:" + testToken + "@acme.zendesk.com" }, []string{"must not carry credentials"}},
		{"query in url", func(c *Config) { c.URL = "https://acme.zendesk.com/?x=1" }, []string{"query"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.mod(&cfg)
			_, err := New(cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted a bad config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), testToken) {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name, v string
		want    time.Duration
	}{
		{"seconds", "42", 42 * time.Second},
		{"zero", "0", 0},
		{"http date", testNow.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{"past date", testNow.Add(-time.Hour).Format(http.TimeFormat), 0},
		{"missing", "", time.Minute},
		{"garbage", "soon", time.Minute},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := retryAfter(tc.v, testNow); got != tc.want {
				t.Errorf("retryAfter(%q) = %s, want %s", tc.v, got, tc.want)
			}
		})
	}
}
