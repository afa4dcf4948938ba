package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/culprithq/culprit/correlate"
)

const (
	testToken         = "s3cret-intake-token-value"
	testGitHubSecret  = "gh-webhook-secret-value"
	testZendeskSecret = "zd-signing-secret-value"
)

var testNow = time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)

// memDeploys is the store's contract in memory: merge by id, hosts added,
// finished_at set.
type memDeploys struct {
	mu      sync.Mutex
	deploys map[string]correlate.Deploy
	order   []string
	err     error // returned by every call when set
}

func (m *memDeploys) AddDeploy(ctx context.Context, d correlate.Deploy) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if m.deploys == nil {
		m.deploys = map[string]correlate.Deploy{}
	}
	old, ok := m.deploys[d.ID]
	if !ok {
		m.deploys[d.ID] = d
		m.order = append(m.order, d.ID)
		return true, nil
	}
	old.Hosts = mergeHosts(old.Hosts, d.Hosts)
	if !d.FinishedAt.IsZero() {
		old.FinishedAt = d.FinishedAt
	}
	m.deploys[d.ID] = old
	return false, nil
}

func (m *memDeploys) AddProgress(ctx context.Context, id string, hosts []correlate.HostRollout, finishedAt time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	d, ok := m.deploys[id]
	if !ok {
		return fmt.Errorf("deploy %q: %w", id, fs.ErrNotExist)
	}
	d.Hosts = mergeHosts(d.Hosts, hosts)
	if !finishedAt.IsZero() {
		d.FinishedAt = finishedAt
	}
	m.deploys[id] = d
	return nil
}

func (m *memDeploys) get(id string) (correlate.Deploy, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.deploys[id]
	return d, ok
}

func (m *memDeploys) ids() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.order)
}

func mergeHosts(old, add []correlate.HostRollout) []correlate.HostRollout {
	out := slices.Clone(old)
	for _, h := range add {
		if !slices.ContainsFunc(out, func(o correlate.HostRollout) bool { return o.Name == h.Name }) {
			out = append(out, h)
		}
	}
	return out
}

type memTickets struct {
	mu      sync.Mutex
	tickets map[int64]correlate.Ticket
	calls   int
	err     error
}

func (m *memTickets) AddTickets(ctx context.Context, ts []correlate.Ticket) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	m.calls++
	if m.tickets == nil {
		m.tickets = map[int64]correlate.Ticket{}
	}
	for _, t := range ts {
		m.tickets[t.ID] = t
	}
	return nil
}

func (m *memTickets) all() map[int64]correlate.Ticket {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64]correlate.Ticket{}
	for k, v := range m.tickets {
		out[k] = v
	}
	return out
}

type memDeliveries struct {
	mu   sync.Mutex
	seen map[string]bool
	err  error
}

func (m *memDeliveries) FirstDelivery(ctx context.Context, source, id string) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return false, m.err
	}
	if m.seen == nil {
		m.seen = map[string]bool{}
	}
	k := source + "/" + id
	if m.seen[k] {
		return false, nil
	}
	m.seen[k] = true
	return true, nil
}

// testEnv is one handler with its stores, registry, clock and log.
type testEnv struct {
	h          http.Handler
	deploys    *memDeploys
	tickets    *memTickets
	deliveries *memDeliveries
	reg        *prometheus.Registry
	logs       *syncBuffer
	now        time.Time
	onDeploy   []correlate.Deploy
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newEnv(t testing.TB, mods ...func(*Config)) *testEnv {
	t.Helper()
	e := &testEnv{
		deploys:    &memDeploys{},
		tickets:    &memTickets{},
		deliveries: &memDeliveries{},
		reg:        prometheus.NewRegistry(),
		logs:       &syncBuffer{},
		now:        testNow,
	}
	cfg := Config{
		Token:         testToken,
		GitHubSecret:  testGitHubSecret,
		ZendeskSecret: testZendeskSecret,
		Deploys:       e.deploys,
		Tickets:       e.tickets,
		Deliveries:    e.deliveries,
		Now:           func() time.Time { return e.now },
		Logger:        slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer:    e.reg,
		OnDeploy:      func(d correlate.Deploy) { e.onDeploy = append(e.onDeploy, d) },
	}
	for _, m := range mods {
		m(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.h = h
	t.Cleanup(func() {
		// No log line may carry a credential, whatever the test did.
		logs := e.logs.String()
		for _, secret := range []string{testToken, testGitHubSecret, testZendeskSecret, "wrong-token-guess"} {
			if strings.Contains(logs, secret) {
				t.Errorf("logs contain a secret %q:\n%s", secret, logs)
			}
		}
	})
	return e
}

func (e *testEnv) do(method, path, body string, header http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	for k, vs := range header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

func bearer(tok string) http.Header {
	return http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"application/json"}}
}

// post sends body with the right token.
func (e *testEnv) post(path, body string) *httptest.ResponseRecorder {
	return e.do(http.MethodPost, path, body, bearer(testToken))
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	var eb errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &eb); err != nil {
		t.Fatalf("response is not a JSON error: %q", w.Body.String())
	}
	return eb.Error
}

func TestNewRejectsIncompleteConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want []string // substrings of the error; none means valid
	}{
		{"nothing enabled", Config{Deploys: &memDeploys{}}, []string{"no endpoint enabled"}},
		{"token without stores", Config{Token: "t"}, []string{"deploy store", "ticket store"}},
		{"github without delivery log", Config{GitHubSecret: "s", Deploys: &memDeploys{}}, []string{"delivery log"}},
		{"zendesk without ticket store", Config{ZendeskSecret: "s"}, []string{"ticket store"}},
		{"negative max body", Config{ZendeskSecret: "s", Tickets: &memTickets{}, MaxBody: -1}, []string{"max body"}},
		{"zendesk only", Config{ZendeskSecret: "s", Tickets: &memTickets{}}, nil},
		{"token only", Config{Token: "t", Deploys: &memDeploys{}, Tickets: &memTickets{}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.cfg)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("New accepted an incomplete config")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestBearerToken(t *testing.T) {
	const dep = `{"id":"dep-1","service":"api","version":"1","started_at":"2026-11-20T16:00:00Z"}`
	tests := []struct {
		name       string
		header     http.Header
		wantCode   int
		wantChalln string
	}{
		{"no header", http.Header{}, 401, `Bearer realm="culprit"`},
		{"basic scheme", http.Header{"Authorization": {"Basic " + testToken}}, 401, `Bearer realm="culprit"`},
		{"empty bearer", http.Header{"Authorization": {"Bearer "}}, 401, `Bearer realm="culprit"`},
		{"wrong token", bearer("wrong-token-guess"), 401, `Bearer realm="culprit", error="invalid_token"`},
		{"token prefix", bearer(testToken[:10]), 401, `Bearer realm="culprit", error="invalid_token"`},
		{"right token", bearer(testToken), 201, ""},
		{"scheme case-insensitive", http.Header{"Authorization": {"bearer " + testToken}}, 201, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(http.MethodPost, "/api/v1/deploys", dep, tc.header)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tc.wantChalln {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.wantChalln)
			}
			if stored := len(e.deploys.ids()); (tc.wantCode == 201) != (stored == 1) {
				t.Errorf("%d deploys stored after a %d", stored, w.Code)
			}
			if strings.Contains(w.Body.String(), testToken) {
				t.Errorf("response echoes the token: %s", w.Body)
			}
		})
	}
}

func TestDisabledEndpoints(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Token, c.GitHubSecret = "", "" })
	for _, path := range []string{"/api/v1/deploys", "/api/v1/deploys/x/progress", "/api/v1/tickets", "/api/v1/webhooks/github"} {
		if w := e.do(http.MethodPost, path, "{}", bearer("")); w.Code != http.StatusNotFound {
			t.Errorf("%s: code %d, want 404 when disabled", path, w.Code)
		}
	}
}

func TestRouting(t *testing.T) {
	tests := []struct {
		name      string
		method    string
		path      string
		header    http.Header
		body      string
		wantCode  int
		wantAllow string
	}{
		{"get deploys", http.MethodGet, "/api/v1/deploys", bearer(testToken), "", 405, "POST"},
		{"put progress", http.MethodPut, "/api/v1/deploys/d/progress", bearer(testToken), "{}", 405, "POST"},
		{"get github", http.MethodGet, "/api/v1/webhooks/github", nil, "", 405, "POST"},
		{"delete tickets", http.MethodDelete, "/api/v1/tickets", bearer(testToken), "", 405, "POST"},
		{"unknown path", http.MethodPost, "/api/v2/deploys", bearer(testToken), "{}", 404, ""},
		{"gzip body", http.MethodPost, "/api/v1/deploys", http.Header{"Authorization": {"Bearer " + testToken}, "Content-Encoding": {"gzip"}}, "x", 415, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.do(tc.method, tc.path, tc.body, tc.header)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if got := w.Header().Get("Allow"); got != tc.wantAllow {
				t.Errorf("Allow %q, want %q", got, tc.wantAllow)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			errorOf(t, w)
		})
	}
}

func TestBodyLimit(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxBody = 64 })
	small := `{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z"}`
	big := `{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z","description":"` + strings.Repeat("x", 100) + `"}`
	tests := []struct {
		name     string
		path     string
		header   http.Header
		body     string
		wantCode int
	}{
		{"under the limit", "/api/v1/deploys", bearer(testToken), small, 201},
		{"deploys over", "/api/v1/deploys", bearer(testToken), big, 413},
		{"tickets over", "/api/v1/tickets", bearer(testToken), big, 413},
		{"github over", "/api/v1/webhooks/github", http.Header{"X-GitHub-Event": {"ping"}}, big, 413},
		{"zendesk over", "/api/v1/webhooks/zendesk", nil, big, 413},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := e.do(http.MethodPost, tc.path, tc.body, tc.header)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if tc.wantCode == 413 && !strings.Contains(errorOf(t, w), "64 bytes") {
				t.Errorf("413 does not name the limit: %s", w.Body)
			}
		})
	}
}

func TestMetricsCountEveryRequest(t *testing.T) {
	e := newEnv(t)
	dep := `{"id":"dep-1","service":"api","version":"1","started_at":"2026-11-20T16:00:00Z"}`
	e.post("/api/v1/deploys", dep)                                                    // 201
	e.post("/api/v1/deploys", dep)                                                    // 200: merged
	e.post("/api/v1/deploys", `{`)                                                    // 400
	e.do(http.MethodPost, "/api/v1/deploys", dep, bearer("wrong-token-guess"))        // 401
	e.do(http.MethodGet, "/api/v1/deploys", "", nil)                                  // 405
	e.post("/api/v1/deploys/nope/progress", `{"finished_at":"2026-11-20T16:10:00Z"}`) // 404
	e.do(http.MethodPost, "/api/v1/webhooks/github", "{}", nil)                       // 401
	e.do(http.MethodGet, "/nowhere", "", nil)                                         // 404

	want := `
# HELP culprit_intake_requests_total Intake API requests by endpoint and HTTP status code.
# TYPE culprit_intake_requests_total counter
culprit_intake_requests_total{code="200",endpoint="deploys"} 1
culprit_intake_requests_total{code="201",endpoint="deploys"} 1
culprit_intake_requests_total{code="400",endpoint="deploys"} 1
culprit_intake_requests_total{code="401",endpoint="deploys"} 1
culprit_intake_requests_total{code="405",endpoint="deploys"} 1
culprit_intake_requests_total{code="404",endpoint="progress"} 1
culprit_intake_requests_total{code="401",endpoint="github"} 1
culprit_intake_requests_total{code="404",endpoint="unknown"} 1
`
	if err := testutil.GatherAndCompare(e.reg, strings.NewReader(want), "culprit_intake_requests_total"); err != nil {
		t.Error(err)
	}
}

func TestMetricsSurviveRebuild(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := Config{Token: testToken, Deploys: &memDeploys{}, Tickets: &memTickets{}, Registerer: reg}
	for i := range 2 {
		h, err := New(cfg)
		if err != nil {
			t.Fatalf("New #%d: %v", i, err)
		}
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	}
	want := `
# HELP culprit_intake_requests_total Intake API requests by endpoint and HTTP status code.
# TYPE culprit_intake_requests_total counter
culprit_intake_requests_total{code="404",endpoint="unknown"} 2
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Errorf("two handlers on one registry: %v", err)
	}
}

func TestStoreFailure(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		path     string
		body     string
		wantCode int
	}{
		{"deploy store down", errors.New("sqlite: disk I/O error at /var/lib/culprit/db"), "/api/v1/deploys",
			`{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z"}`, 500},
		{"ticket store down", errors.New("sqlite: disk I/O error at /var/lib/culprit/db"), "/api/v1/tickets",
			`{"id":1,"created_at":"2026-11-20T16:00:00Z"}`, 500},
		{"request cancelled", context.Canceled, "/api/v1/deploys",
			`{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z"}`, 503},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.deploys.err, e.tickets.err = tc.err, tc.err
			w := e.post(tc.path, tc.body)
			if w.Code != tc.wantCode {
				t.Fatalf("code %d, want %d: %s", w.Code, tc.wantCode, w.Body)
			}
			if strings.Contains(w.Body.String(), "/var/lib") {
				t.Errorf("response leaks the store's error: %s", w.Body)
			}
			if !strings.Contains(e.logs.String(), tc.err.Error()) {
				t.Errorf("log lacks the store's error: %s", e.logs)
			}
		})
	}
}

func TestCancelledRequestStoresNothing(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, "/api/v1/deploys",
		strings.NewReader(`{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z"}`))
	r.Header.Set("Authorization", "Bearer "+testToken)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	if w.Code != http.StatusServiceUnavailable || len(e.deploys.ids()) != 0 {
		t.Errorf("code %d, %d stored; want 503 and nothing", w.Code, len(e.deploys.ids()))
	}
}

func TestSplitBodyPositions(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string
		wantN   int
		wantArr bool
	}{
		{"object", `{"a":1}`, "", 1, false},
		{"array", "[{\"a\":1},\n{\"b\":2}]", "", 2, true},
		{"ndjson", "{\"a\":1}\n{\"b\":2}\n", "", 2, false},
		{"bom", "\uFEFF{\"a\":1}", "", 1, false},
		{"empty", " \n", "empty body", 0, false},
		{"syntax in ndjson", "{\"a\":1}\n{\"b\":2}\n{\"c\":x}", "line 3, column 6 (byte 21)", 0, false},
		{"syntax in array", "[{\"a\":1},\n{\"b\":}]", "line 2, column 6 (byte 15)", 0, false},
		{"missing comma", "[1 2]", "line 1, column 4", 0, false},
		{"truncated object", `{"a":1`, "line 1, column 7 (byte 6): body ends", 0, false},
		{"truncated array", `[1,2`, "body ends", 0, false},
		{"data after array", "[1]\n x", "line 2, column 2: unexpected data after the closing ]", 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, arr, err := splitBody([]byte(tc.body))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(items) != tc.wantN || arr != tc.wantArr {
				t.Errorf("%d items, array %v; want %d, %v", len(items), arr, tc.wantN, tc.wantArr)
			}
		})
	}
}
