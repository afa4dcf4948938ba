package slack

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

const testSecret = "8f742231b10e8888abcd99yyyzzz85a5"

// friday is the fixed clock of these tests: 16:30 UTC on the day of the
// Friday incident.
var friday = time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)

type fakeCorrelator struct {
	mu      sync.Mutex
	calls   []Query
	ctxs    []context.Context
	answer  Answer
	err     error
	started chan struct{} // receives once per call, if set
	release chan struct{} // when set, Correlate blocks until closed or ctx ends
}

func (c *fakeCorrelator) Correlate(ctx context.Context, q Query) (Answer, error) {
	c.mu.Lock()
	c.calls = append(c.calls, q)
	c.ctxs = append(c.ctxs, ctx)
	c.mu.Unlock()
	if c.started != nil {
		c.started <- struct{}{}
	}
	if c.release != nil {
		select {
		case <-c.release:
		case <-ctx.Done():
			return Answer{}, ctx.Err()
		}
	}
	return c.answer, c.err
}

func (c *fakeCorrelator) Calls() []Query {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Query(nil), c.calls...)
}

type pageCall struct {
	incident string
	by       Actor
}

type fakePager struct {
	mu    sync.Mutex
	calls []pageCall
	err   error
}

func (p *fakePager) Page(_ context.Context, id string, by Actor) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, pageCall{id, by})
	return p.err
}

func (p *fakePager) Calls() []pageCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]pageCall(nil), p.calls...)
}

type record struct {
	incident, kind, text string
	by                   Actor
}

type fakeRecorder struct {
	mu   sync.Mutex
	recs []record
}

func (r *fakeRecorder) Record(_ context.Context, id, kind, text string, by Actor) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, record{id, kind, text, by})
	return nil
}

func (r *fakeRecorder) Records() []record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]record(nil), r.recs...)
}

// sleeps records the waits the poster asked for instead of waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) Sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func (s *sleeps) All() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

type harness struct {
	app      *App
	fake     *slackfake.Server
	corr     *fakeCorrelator
	pager    *fakePager
	recorder *fakeRecorder
	sleeps   *sleeps
}

func newHarness(t *testing.T, edit func(*Config)) *harness {
	t.Helper()
	h := &harness{
		fake:     slackfake.New(t),
		corr:     &fakeCorrelator{answer: fridayAnswer()},
		pager:    &fakePager{},
		recorder: &fakeRecorder{},
		sleeps:   &sleeps{},
	}
	cfg := Config{
		SigningSecret: testSecret,
		Correlator:    h.corr,
		Pager:         h.pager,
		Recorder:      h.recorder,
		Now:           func() time.Time { return friday },
		Sleep:         h.sleeps.Sleep,
	}
	if edit != nil {
		edit(&cfg)
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.app = app
	t.Cleanup(app.Wait)
	return h
}

// commandForm is what Slack posts for /correlate text.
func (h *harness) commandForm(text string) url.Values {
	return url.Values{
		"token":        {"deprecated-verification-token"},
		"team_id":      {"T0001"},
		"team_domain":  {"acme"},
		"channel_id":   {"C2147483705"},
		"channel_name": {"support"},
		"user_id":      {"U2147483697"},
		"user_name":    {"jo"},
		"command":      {"/correlate"},
		"text":         {text},
		"response_url": {h.fake.ResponseURL("cmd-1")},
		"trigger_id":   {"13345224609.738474920.8088930838d88f008e0"},
		"api_app_id":   {"A123456"},
	}
}

// signed builds a request Slack would send at ts.
func signed(path string, form url.Values, secret string, ts time.Time) *http.Request {
	body := form.Encode()
	r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range slackfake.Sign(secret, ts, []byte(body)) {
		r.Header[k] = v
	}
	return r
}

func serve(hd http.Handler, r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	hd.ServeHTTP(w, r)
	return w
}

func fridayFinding() correlate.Finding {
	onset := time.Date(2026, 11, 20, 16, 1, 0, 0, time.UTC)
	return correlate.Finding{
		ID: "f-9c1d", Service: "edge-router", Kind: correlate.KindNewError,
		Signature: "function invocation failed: fn-<*> returned <*> from upstream <*>",
		Onset:     onset, Detected: onset.Add(4 * time.Minute),
		Severity:        correlate.SeverityPage,
		SeverityReasons: []string{"37 customers affected", "new error class"},
		Headline:        "edge-router v3.8.0 (deploy dep-1a2b) is the suspected cause of a new error class affecting 37 customers",
		Frequency:       correlate.Frequency{BeforePerMin: 0, AfterPerMin: 12.4, ShareAfter: 0.004, Count: 360},
		Scope: correlate.ScopeSummary{
			Affected:      map[string]int{correlate.FieldCustomer: 37, correlate.FieldSite: 41, correlate.FieldHost: 3},
			Concentration: []correlate.Concentration{{Field: "cloud.provider", Value: "aws", ShareOfErrors: 1, ShareOfRequests: 0.31}},
			Explanations: []correlate.Explanation{{Conditions: []correlate.Condition{{Field: "cloud.provider", Value: "aws"}, {Field: "url.path", Value: "/.fn/*", Prefix: true}},
				ShareOfErrors: 1, ShareOfRequests: 0.06, ErrorRate: 0.067, Versus: "rest", RiskRatio: 900, RiskRatioLow: 200}},
		},
		SuspectedDeploys: []correlate.Suspect{{
			ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", Score: 0.93,
			URL:     "https://github.com/acme/edge-router/releases/tag/v3.8.0",
			Reasons: []string{"errors began on each host within 1m of it receiving 3.8.0", "only version 3.8.0 produces the error", "onset 1m after the rollout started", "fourth reason not shown"},
		}},
		Tickets:      []correlate.TicketRef{{ID: 4711, Subject: "Functions return 502 since 4pm", OrganizationID: 10234, Reason: "mentions function; status 502"}},
		OtherTickets: []int64{4712, 4713},
	}
}

func fridayAnswer() Answer {
	return Answer{
		Headline: "1 finding for edge-router in the last 2h",
		Items: []Item{{Finding: fridayFinding(), IncidentID: "inc-4f2a9c01de",
			EvidenceURL: "https://culprit.example.com/incidents/inc-4f2a9c01de",
			ChartURL:    "https://culprit.example.com/charts/inc-4f2a9c01de.png"}},
	}
}
