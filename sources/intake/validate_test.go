package intake

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestRefusesInvalidInput posts each kind of bad value the intake used to
// store, on every endpoint that stores it, and checks that the 400 names the
// record and the field and that nothing of the request was stored.
func TestRefusesInvalidInput(t *testing.T) {
	goodDep := `{"id":"dep-ok","service":"api","version":"2","started_at":"2026-11-20T16:00:00Z"}`
	dep := func(field, value string) string {
		return `{"id":"dep-x","service":"api","version":"2","started_at":"2026-11-20T16:00:00Z",` + fmt.Sprintf("%q:%s", field, value) + `}`
	}
	goodTicket := `{"id":201,"created_at":"2026-11-20T14:10:00Z","subject":"ok"}`
	longID := `"` + strings.Repeat("a", 900<<10) + `"`
	fresh := testNow.Add(-30 * time.Second).Format(time.RFC3339)

	tests := []struct {
		name string
		path string
		body string
		want []string // substrings of the error
	}{
		{"invalid UTF-8 in a deploy id", "/api/v1/deploys", "[" + goodDep + ",\n" + `{"id":"dep-` + "\xff\xfe" + `","service":"api","started_at":"2026-11-20T16:00:00Z"}]`,
			[]string{"1 of 2 deploys invalid, nothing stored", "deploys[1] (line 2", "id: invalid UTF-8"}},
		{"invalid UTF-8 in a nested field", "/api/v1/deploys", dep("hosts", `[{"name":"h1","at":"2026-11-20T16:00:00Z"},{"name":"h`+"\xc3"+`","at":"2026-11-20T16:00:00Z"}]`),
			[]string{"hosts[1].name: invalid UTF-8"}},
		{"invalid UTF-8 in a key", "/api/v1/deploys", `{"id":"d","service":"s","started_at":"2026-11-20T16:00:00Z","x` + "\x80" + `":1}`,
			[]string{"x\uFFFD: invalid UTF-8"}},
		{"900 KB id", "/api/v1/deploys", "[" + goodDep + "," + `{"id":` + longID + `,"service":"api","started_at":"2026-11-20T16:00:00Z"}]`,
			[]string{"deploys[1]", "id: 921600 bytes, over the 256-byte limit"}},
		{"far future started_at", "/api/v1/deploys", dep("finished_at", `"9999-12-31T00:00:00Z"`),
			[]string{`deploy (id "dep-x"): finished_at 9999-12-31T00:00:00Z is more than 24h0m0s in the future`}},
		{"absurdly old", "/api/v1/deploys", `{"id":"d","service":"s","started_at":"0001-01-01T00:00:00Z"}`,
			[]string{"started_at 0001-01-01T00:00:00Z is before 2000-01-01"}},
		{"CR LF in a deploy id", "/api/v1/deploys", "[" + goodDep + "," + `{"id":"dep-1\r\nX-Evil: 1","service":"api","started_at":"2026-11-20T16:00:00Z"}]`,
			[]string{"deploys[1]", "id: control character U+000D at byte 5 is not allowed"}},
		{"control character in a host", "/api/v1/deploys", dep("hosts", `[{"name":"h\u0000","at":"2026-11-20T16:00:00Z"}]`),
			[]string{"hosts[0].name: control character U+0000"}},
		{"long description", "/api/v1/deploys", dep("description", `"`+strings.Repeat("d", maxTextBytes+1)+`"`),
			[]string{"description: 65537 bytes, over the 65536-byte limit"}},
		{"negative ticket id", "/api/v1/tickets", "[" + goodTicket + `,{"id":-5,"created_at":"2026-11-20T14:10:00Z"}]`,
			[]string{"1 of 2 tickets invalid, nothing stored", "tickets[1] (line 1, id -5): id: -5 is not a Zendesk ticket id"}},
		{"negative organization", "/api/v1/tickets", `{"tickets":[` + goodTicket + `,{"id":7,"created_at":"2026-11-20T14:10:00Z","organization_id":-1}]}`,
			[]string{"tickets[1] (id 7): organization_id: -1 must not be negative"}},
		{"invalid UTF-8 in a ticket tag", "/api/v1/tickets", `{"id":8,"created_at":"2026-11-20T14:10:00Z","tags":["ok","b` + "\xff" + `d"]}`,
			[]string{"tags[1]: invalid UTF-8"}},
		{"newline in a ticket tag", "/api/v1/tickets", `{"id":8,"created_at":"2026-11-20T14:10:00Z","tags":["a\nb"]}`,
			[]string{"tags[0]: control character U+000A"}},
		{"future ticket", "/api/v1/tickets", `{"id":9,"created_at":"2026-11-22T16:30:00Z"}`,
			[]string{"created_at 2026-11-22T16:30:00Z is more than 24h0m0s in the future"}},
		{"future progress", "/api/v1/deploys/dep-1/progress", `{"hosts":[{"name":"h1","at":"9999-12-31T00:00:00Z"}]}`,
			[]string{"hosts[0].at 9999-12-31T00:00:00Z is more than 24h0m0s in the future"}},
		{"control character in the progress path", "/api/v1/deploys/dep%0A1/progress", `{"finished_at":"2026-11-20T16:10:00Z"}`,
			[]string{"path deploy id: control character U+000A"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			w := e.post(tc.path, tc.body)
			if w.Code != http.StatusBadRequest {
				t.Fatalf("code %d, want 400: %.300s", w.Code, w.Body)
			}
			msg := errorOf(t, w)
			for _, s := range tc.want {
				if !strings.Contains(msg, s) {
					t.Errorf("error %.400q lacks %q", msg, s)
				}
			}
			if len(msg) > 4<<10 {
				t.Errorf("error is %d bytes: it echoes the input", len(msg))
			}
			if ids := e.deploys.ids(); len(ids) != 0 {
				t.Errorf("stored deploys %v from a refused request", ids)
			}
			if got := e.tickets.all(); len(got) != 0 {
				t.Errorf("stored tickets %v from a refused request", got)
			}
			if len(e.onDeploy) != 0 {
				t.Errorf("OnDeploy called for a refused request")
			}
		})
	}

	// The webhooks apply the same limits behind their signatures.
	t.Run("github webhook with a future deployment", func(t *testing.T) {
		e := newEnv(t)
		body := strings.Replace(ghPayload("success", `{}`), `"created_at": "2026-11-20T16:00:00Z"`, `"created_at": "9999-12-31T00:00:00Z"`, 1)
		w := e.do(http.MethodPost, "/api/v1/webhooks/github", body, ghHeaders("deployment_status", "d-1", ghSign(testGitHubSecret, body)))
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), "deployment: started_at 9999-12-31T00:00:00Z is more than 24h0m0s in the future") {
			t.Fatalf("code %d: %s", w.Code, w.Body)
		}
		if ids := e.deploys.ids(); len(ids) != 0 {
			t.Errorf("stored %v", ids)
		}
	})
	t.Run("github delivery id over the limit", func(t *testing.T) {
		e := newEnv(t)
		body := ghPayload("success", `{}`)
		w := e.do(http.MethodPost, "/api/v1/webhooks/github", body, ghHeaders("deployment_status", strings.Repeat("d", maxIDBytes+1), ghSign(testGitHubSecret, body)))
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), "X-GitHub-Delivery header: 257 bytes") {
			t.Fatalf("code %d: %s", w.Code, w.Body)
		}
		if ids := e.deploys.ids(); len(ids) != 0 || len(e.deliveries.seen) != 0 {
			t.Errorf("stored %v, deliveries %v", ids, e.deliveries.seen)
		}
	})
	t.Run("zendesk webhook with invalid UTF-8", func(t *testing.T) {
		e := newEnv(t)
		body := `{"ticket":{"id":"35436","created_at":"2026-11-20T16:12Z","subject":"bad ` + "\xff" + `"}}`
		w := e.do(http.MethodPost, "/api/v1/webhooks/zendesk", body, zdHeaders(fresh, zdSign(testZendeskSecret, fresh, body)))
		if w.Code != http.StatusBadRequest || !strings.Contains(errorOf(t, w), "ticket.subject: invalid UTF-8") {
			t.Fatalf("code %d: %s", w.Code, w.Body)
		}
		if got := e.tickets.all(); len(got) != 0 {
			t.Errorf("stored %v", got)
		}
	})
}

// TestAcceptsValuesAtTheLimits keeps the limits from refusing what real
// senders send: an id of exactly maxIDBytes, multi-line descriptions, a
// timestamp just inside the allowed clock skew, unicode names.
func TestAcceptsValuesAtTheLimits(t *testing.T) {
	e := newEnv(t)
	id := strings.Repeat("é", maxIDBytes/2)
	soon := testNow.Add(maxFutureSkew).Format(time.RFC3339)
	body := fmt.Sprintf(`{"id":%q,"service":"größe-api","version":"2","started_at":%q,"description":"line 1\r\nline 2\ttab"}`, id, soon)
	if w := e.post("/api/v1/deploys", body); w.Code != http.StatusCreated {
		t.Fatalf("deploy: code %d: %s", w.Code, w.Body)
	}
	if _, ok := e.deploys.get(id); !ok {
		t.Errorf("deploy %q not stored", id)
	}
	tk := `{"id":1,"created_at":"2000-01-01T00:00:00Z","subject":"Ünïcode ✓","description":"a\nb","organization_id":0}`
	if w := e.post("/api/v1/tickets", tk); w.Code != http.StatusOK {
		t.Fatalf("ticket: code %d: %s", w.Code, w.Body)
	}
}

func TestInvalidUTF8Path(t *testing.T) {
	tests := []struct{ raw, want string }{
		{`{"a":"` + "\xff" + `"}`, "a"},
		{`{"a":1,"b":{"c":[1,"x","` + "\xff" + `"]}}`, "b.c[2]"},
		{`[{"a":1},{"b":"` + "\xff" + `"}]`, "[1].b"},
		{`"` + "\xff" + `"`, "body"},
		{`{"a":` + "\xff" + `}`, "body"},
	}
	for _, tc := range tests {
		if got := invalidUTF8Path([]byte(tc.raw)); got != tc.want {
			t.Errorf("invalidUTF8Path(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
