package zendesk

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// vendorOrgPage is Zendesk's own example response of the organization
// export, verbatim from its API reference (see testdata).
func vendorOrgPage(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/incremental-organizations.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// orgFake serves scripted pages and checks every request against the
// published contract of GET /api/v2/incremental/organizations: the path,
// Basic auth as "{email}/token:{token}", start_time an integer at least
// one minute in the past, per_page (if sent) an integer of at most 1000,
// and nothing else.
type orgFake struct {
	srv     *httptest.Server
	mu      sync.Mutex
	script  *script
	starts  []int64
	perPage []string
}

func newOrgFake(t *testing.T, now func() time.Time, responses ...fakeResponse) *orgFake {
	f := &orgFake{script: &script{responses: responses}}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte(testEmail+"/token:"+testToken))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/api/v2/incremental/organizations" {
			t.Errorf("request %s %s, want GET /api/v2/incremental/organizations", r.Method, r.URL.Path)
		}
		if got := r.Header.Get("Authorization"); got != wantAuth {
			t.Errorf("Authorization %q, want %q", got, wantAuth)
		}
		q := r.URL.Query()
		st, err := strconv.ParseInt(q.Get("start_time"), 10, 64)
		switch {
		case err != nil:
			t.Errorf("start_time %q is not an integer", q.Get("start_time"))
		case st < 0 || st > now().Add(-time.Minute).Unix():
			t.Errorf("start_time %d is not at least one minute in the past (now %d)", st, now().Unix())
		}
		if pp, ok := q["per_page"]; ok {
			if n, err := strconv.Atoi(pp[0]); err != nil || n < 1 || n > 1000 {
				t.Errorf("per_page %q is not an integer in 1–1000", pp[0])
			}
		}
		for k := range q {
			if k != "start_time" && k != "per_page" {
				t.Errorf("undocumented parameter %q", k)
			}
		}
		f.mu.Lock()
		f.starts = append(f.starts, st)
		f.perPage = append(f.perPage, q.Get("per_page"))
		f.mu.Unlock()
		f.script.reply(t, w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// memCustomers is a CustomerStore in memory.
type memCustomers struct {
	mu   sync.Mutex
	byID map[string]correlate.Customer
	err  error
}

func (m *memCustomers) ApplyCustomers(_ context.Context, put []correlate.Customer, removed []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if m.byID == nil {
		m.byID = map[string]correlate.Customer{}
	}
	for _, c := range put {
		m.byID[c.ID] = c
	}
	for _, id := range removed {
		delete(m.byID, id)
	}
	return nil
}

type orgEnv struct {
	p         *OrgPoller
	fake      *orgFake
	customers *memCustomers
	cursors   *memCursors
	changes   int
}

func newOrgEnv(t *testing.T, cfg OrgConfig, responses ...fakeResponse) *orgEnv {
	t.Helper()
	now := func() time.Time { return testNow }
	e := &orgEnv{fake: newOrgFake(t, now, responses...), customers: &memCustomers{}, cursors: &memCursors{}}
	cfg.URL, cfg.Email, cfg.Token, cfg.HTTPClient = e.fake.srv.URL, testEmail, testToken, e.fake.srv.Client()
	cfg.Customers, cfg.Cursors, cfg.Now = e.customers, e.cursors, now
	cfg.OnChange = func(put []correlate.Customer, removed []string) { e.changes += len(put) + len(removed) }
	p, err := NewOrganizations(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.p = p
	return e
}

func TestOrganizationsVendorExample(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  OrgConfig
		want correlate.Customer
	}{
		{"by external_id", OrgConfig{TierField: "org_field_2", VIPTags: []string{"SMILEY"}},
			correlate.Customer{ID: "ABC198", Name: "Groablet Enterprises", Tier: "teapot_kettle", VIP: true}},
		{"by id", OrgConfig{MatchBy: "id", OwnerField: "org_field_1"},
			correlate.Customer{ID: "4112492", Name: "Groablet Enterprises", Owner: "happy happy"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newOrgEnv(t, tc.cfg, ok(vendorOrgPage(t)))
			n, err := e.p.Poll(context.Background())
			if err != nil || n != 1 {
				t.Fatalf("Poll = %d, %v", n, err)
			}
			if got := e.customers.byID[tc.want.ID]; got != tc.want {
				t.Errorf("customer %+v, want %+v", got, tc.want)
			}
			if c := e.cursors.values[e.p.cursorName]; c != "1601357503" {
				t.Errorf("cursor %q, want the page's end_time 1601357503", c)
			}
			if e.fake.starts[0] != 0 || e.changes != 1 {
				t.Errorf("first start_time %d (want 0: every organization), %d changes", e.fake.starts[0], e.changes)
			}
		})
	}
}

func orgJSON(id int64, ext, name, tier string, tags []string, deleted bool) string {
	d := "null"
	if deleted {
		d = `"2026-12-06T10:00:00Z"`
	}
	tagJSON := `[]`
	if len(tags) > 0 {
		tagJSON = `["` + strings.Join(tags, `","`) + `"]`
	}
	return fmt.Sprintf(`{"id":%d,"external_id":%q,"name":%q,"tags":%s,"organization_fields":{"tier":%q},"deleted_at":%s}`,
		id, ext, name, tagJSON, tier, d)
}

func orgPageJSON(end int64, eos bool, orgs ...string) string {
	return fmt.Sprintf(`{"count":%d,"end_of_stream":%v,"end_time":%d,"next_page":"https://evil.example.com/api/v2/incremental/organizations?start_time=%d","organizations":[%s]}`,
		len(orgs), eos, end, end, strings.Join(orgs, ","))
}

func TestOrganizationsIncremental(t *testing.T) {
	t1 := testNow.Add(-2 * time.Hour).Unix()
	t2 := testNow.Add(-time.Hour).Unix()
	e := newOrgEnv(t, OrgConfig{PerPage: 2},
		// First sync, two pages.
		ok(orgPageJSON(t1-10, false, orgJSON(1, "10001", "Acme Corp", "Enterprise", []string{"vip"}, false), orgJSON(2, "10002", "Globex", "pro", nil, false))),
		ok(orgPageJSON(t1, true, orgJSON(3, "", "No External Id", "pro", nil, false))),
		// Later: Globex is deleted, Acme changes plan; the last copy wins.
		ok(orgPageJSON(t2, true, orgJSON(1, "10001", "Acme Corp", "premium", nil, false), orgJSON(2, "10002", "Globex", "pro", nil, true),
			orgJSON(1, "10001", "Acme Corp", "premium", []string{"vip"}, false))),
	)
	if _, err := e.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(e.customers.byID) != 2 {
		t.Fatalf("customers %+v: want 2 (the one without external_id is skipped)", e.customers.byID)
	}
	if _, err := e.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.customers.byID["10002"]; ok {
		t.Error("deleted organization kept")
	}
	if got := e.customers.byID["10001"]; got != (correlate.Customer{ID: "10001", Name: "Acme Corp", Tier: "premium", VIP: true}) {
		t.Errorf("Acme = %+v", got)
	}
	if want := []int64{0, t1 - 10, t1}; fmt.Sprint(e.fake.starts) != fmt.Sprint(want) {
		t.Errorf("start_times %v, want %v (each the previous end_time, never next_page's host)", e.fake.starts, want)
	}
	if e.fake.perPage[0] != "2" {
		t.Errorf("per_page %q, want 2", e.fake.perPage[0])
	}
}

func TestOrganizationsRecentCursorKeptAMinuteBack(t *testing.T) {
	e := newOrgEnv(t, OrgConfig{}, ok(orgPageJSON(testNow.Add(-time.Minute).Unix(), true)))
	e.cursors.values = map[string]string{e.p.cursorName: strconv.FormatInt(testNow.Add(-10*time.Second).Unix(), 10)}
	if _, err := e.p.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, want := e.fake.starts[0], testNow.Add(-time.Minute).Unix(); got != want {
		t.Errorf("start_time %d, want %d", got, want)
	}
}

func TestOrganizationsFailures(t *testing.T) {
	t.Run("rate limited", func(t *testing.T) {
		e := newOrgEnv(t, OrgConfig{}, fakeResponse{code: 429, header: http.Header{"Retry-After": {"42"}}, body: `{}`})
		_, err := e.p.Poll(context.Background())
		if rl, ok := errors.AsType[*RateLimitError](err); !ok || rl.RetryAfter != 42*time.Second {
			t.Fatalf("err %v, want a 42 s rate limit", err)
		}
	})
	t.Run("bad token", func(t *testing.T) {
		e := newOrgEnv(t, OrgConfig{}, fakeResponse{code: 401, body: `{"error":"Couldn't authenticate you"}`})
		if _, err := e.p.Poll(context.Background()); !errors.Is(err, ErrAuth) || strings.Contains(err.Error(), testToken) {
			t.Fatalf("err %v, want ErrAuth without the token", err)
		}
	})
	t.Run("store fails: cursor kept", func(t *testing.T) {
		e := newOrgEnv(t, OrgConfig{}, ok(vendorOrgPage(t)))
		e.customers.err = errors.New("disk full")
		if _, err := e.p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("err %v", err)
		}
		if c := e.cursors.values[e.p.cursorName]; c != "" {
			t.Errorf("cursor advanced to %q past an unstored page", c)
		}
	})
	t.Run("no progress", func(t *testing.T) {
		e := newOrgEnv(t, OrgConfig{}, ok(orgPageJSON(0, false)))
		if _, err := e.p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), "does not advance") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("bad stored cursor", func(t *testing.T) {
		e := newOrgEnv(t, OrgConfig{})
		e.cursors.values = map[string]string{e.p.cursorName: "yesterday"}
		if _, err := e.p.Poll(context.Background()); err == nil || !strings.Contains(err.Error(), `"yesterday" is not a Unix time`) {
			t.Fatalf("err %v", err)
		}
	})
}

func TestNewOrganizationsValidates(t *testing.T) {
	_, err := NewOrganizations(OrgConfig{URL: "ftp://x", MatchBy: "name", PerPage: 5000})
	for _, want := range []string{"url must be an http(s) address", "email is required", "token is required",
		"a customer store is required", "a cursor store is required", `match_by "name"`, "per_page 5000"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v lacks %q", err, want)
		}
	}
}
