package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate/slack/slackfake"
	"github.com/culprithq/culprit/rules"
)

// TestServeRefusesBadInput sends every endpoint that writes what a
// careless or hostile client would: no token, a wrong token, forged and
// stale signatures, malformed and invalid bodies. Each gets a 4xx that
// says what was wrong, and the store is byte-for-byte the same afterwards
// (as far as its readers can tell: deploys, tickets, incidents, their
// timelines and the outbox).
func TestServeRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	now := time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)
	y := fmt.Sprintf(`
sources:
  elasticsearch:
    urls: [http://127.0.0.1:1]
    index: logs-*
routes:
  - name: always
    action: page
pagerduty:
  url: http://127.0.0.1:1
  routing_key: {env: E2E_PD_KEY}
  webhook_secrets: [{env: E2E_PD_WEBHOOK}]
slack:
  signing_secret: {env: E2E_SLACK_SECRET}
intake:
  listen: "127.0.0.1:0"
  token: {env: E2E_TOKEN}
  github_secret: {env: E2E_GH}
  zendesk_webhook_secret: {env: E2E_ZD}
store:
  dir: %s
`, dir)
	p := filepath.Join(t.TempDir(), "culprit.yml")
	os.WriteFile(p, []byte(y), 0o600)
	getenv := func(k string) string {
		switch k {
		case "E2E_GH":
			return "gh-secret"
		case "E2E_ZD":
			return "zd-secret"
		}
		return e2eGetenv(k)
	}
	cfg, err := rules.LoadWith(p, getenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := assemble(ctx, &cfg, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Something accepted before, which must survive untouched.
	good := `{"id":"dep-1","service":"edge-router","version":"3.8.0","started_at":"2026-11-20T16:00:00Z","hosts":[{"name":"edge-1","at":"2026-11-20T16:00:40Z"}]}`
	if w := do(s, "POST", "/api/v1/deploys", good, bearer("intake-token")); w.Code != http.StatusCreated {
		t.Fatalf("good deploy: %d %s", w.Code, w.Body)
	}
	if w := do(s, "POST", "/api/v1/tickets", `{"id":7,"created_at":"2026-11-20T16:10:00Z","subject":"502s","organization_id":42}`, bearer("intake-token")); w.Code != http.StatusOK {
		t.Fatalf("good ticket: %d %s", w.Code, w.Body)
	}
	before := fingerprint(t, s)

	ghBody := `{"action":"created","deployment_status":{"state":"success"`
	sl := slackfake.New(t)
	slackForm := url.Values{"command": {"/correlate"}, "text": {"edge-router"}, "user_id": {"U1"}, "response_url": {sl.ResponseURL("x")}}.Encode()
	pdRole := `{"event":{"id":"E2","event_type":"incident.role.assigned","resource_type":"incident","occurred_at":"2026-11-20T16:20:00Z","data":{"type":"incident_role_assignment","incident_role_assignments":[{"incident":{"id":"Q1","type":"incident_reference"},"status":"active"}]}}}`
	pdBody := `{"event":{"id":"E1","event_type":"incident.acknowledged","resource_type":"incident","occurred_at":"2026-11-20T16:20:00Z","data":{"id":"Q1","type":"incident","incident_key":"culprit/edge-router/f-1"}}}`
	cases := []struct {
		name, method, path, body string
		headers                  http.Header
		status                   int
		says                     string
	}{
		{"deploy without a token", "POST", "/api/v1/deploys", good, nil, 401, "bearer"},
		{"deploy with a wrong token", "POST", "/api/v1/deploys", strings.Replace(good, "dep-1", "dep-2", 1), bearer("guess"), 401, "token"},
		{"deploy not JSON", "POST", "/api/v1/deploys", `{"id":"dep-3",`, bearer("intake-token"), 400, "invalid json at line 1"},
		{"deploy without a service", "POST", "/api/v1/deploys", `{"id":"dep-4","version":"1","started_at":"2026-11-20T16:00:00Z"}`, bearer("intake-token"), 400, "service"},
		{"deploy batch with one bad record", "POST", "/api/v1/deploys", `[{"id":"dep-5","service":"a","version":"1","started_at":"2026-11-20T16:00:00Z"},{"id":"dep-6","service":"a","version":"1","started_at":"yesterday"}]`, bearer("intake-token"), 400, "started_at"},
		{"progress for an unknown deploy", "POST", "/api/v1/deploys/dep-nope/progress", `{"hosts":[{"name":"edge-2","at":"2026-11-20T16:01:00Z"}]}`, bearer("intake-token"), 404, "dep-nope"},
		{"progress not JSON", "POST", "/api/v1/deploys/dep-1/progress", `{"hosts":[`, bearer("intake-token"), 400, ""},
		{"progress without a token", "POST", "/api/v1/deploys/dep-1/progress", `{"hosts":[{"name":"edge-2","at":"2026-11-20T16:01:00Z"}]}`, nil, 401, ""},
		{"ticket with a wrong token", "POST", "/api/v1/tickets", `{"id":8,"created_at":"2026-11-20T16:10:00Z","subject":"x"}`, bearer("guess"), 401, ""},
		{"ticket without created_at", "POST", "/api/v1/tickets", `{"id":9,"subject":"x"}`, bearer("intake-token"), 400, "created_at"},
		{"github without a signature", "POST", "/api/v1/webhooks/github", ghBody, http.Header{"X-Github-Event": {"deployment_status"}, "X-Github-Delivery": {"d1"}}, 401, "signature"},
		{"github with a forged signature", "POST", "/api/v1/webhooks/github", ghBody, http.Header{"X-Github-Event": {"deployment_status"}, "X-Github-Delivery": {"d2"}, "X-Hub-Signature-256": {"sha256=" + strings.Repeat("0", 64)}}, 401, "signature"},
		{"github signed but malformed", "POST", "/api/v1/webhooks/github", ghBody, http.Header{"X-Github-Event": {"deployment_status"}, "X-Github-Delivery": {"d3"}, "X-Hub-Signature-256": {"sha256=" + hexMAC("gh-secret", ghBody)}}, 400, ""},
		{"zendesk with a forged signature", "POST", "/api/v1/webhooks/zendesk", `{"ticket":{"id":10}}`, http.Header{"X-Zendesk-Webhook-Signature": {"Zm9yZ2Vk"}, "X-Zendesk-Webhook-Signature-Timestamp": {now.Format(time.RFC3339)}}, 401, "signature"},
		{"pagerduty with a forged signature", "POST", "/api/v1/webhooks/pagerduty", pdBody, http.Header{"X-Pagerduty-Signature": {"v1=" + strings.Repeat("ab", 32)}}, 401, ""},
		// Signed by PagerDuty: a 4xx would only make PagerDuty drop it and,
		// three in a row, disable the subscription; it is logged instead.
		{"pagerduty signed but malformed", "POST", "/api/v1/webhooks/pagerduty", `{"event":`, http.Header{"X-Pagerduty-Signature": {"v1=" + hexMAC(e2ePDWebhookSecret, `{"event":`)}}, 200, "ignored: malformed json"},
		{"pagerduty role assignment", "POST", "/api/v1/webhooks/pagerduty", pdRole, http.Header{"X-Pagerduty-Signature": {"v1=" + hexMAC(e2ePDWebhookSecret, pdRole)}}, 200, ""},
		{"deploy from year 9999", "POST", "/api/v1/deploys", `{"id":"dep-7","service":"a","version":"1","started_at":"9999-12-31T00:00:00Z"}`, bearer("intake-token"), 400, "started_at 9999-12-31t00:00:00z is more than 24h0m0s in the future"},
		{"deploy id with CR LF", "POST", "/api/v1/deploys", `[{"id":"dep-8","service":"a","started_at":"2026-11-20T16:00:00Z"},{"id":"dep-9\r\n","service":"a","started_at":"2026-11-20T16:00:00Z"}]`, bearer("intake-token"), 400, "deploys[1]"},
		{"ticket with a negative id", "POST", "/api/v1/tickets", `{"id":-7,"created_at":"2026-11-20T16:10:00Z"}`, bearer("intake-token"), 400, "id: -7"},
		{"deploy id with invalid UTF-8", "POST", "/api/v1/deploys", "{\"id\":\"dep-\xff\",\"service\":\"a\",\"started_at\":\"2026-11-20T16:00:00Z\"}", bearer("intake-token"), 400, "id: invalid utf-8"},
		{"slack forged", "POST", "/slack/commands", slackForm, slackfake.Sign("not-the-secret", now, []byte(slackForm)), 401, "signature"},
		{"slack expired", "POST", "/slack/commands", slackForm, slackfake.Sign(e2eSlackSecret, now.Add(-6*time.Minute), []byte(slackForm)), 401, "window"},
		{"slack button forged", "POST", "/slack/interactions", "payload=%7B%7D", slackfake.Sign("not-the-secret", now, []byte("payload=%7B%7D")), 401, "signature"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := do(s, c.method, c.path, c.body, c.headers)
			if w.Code != c.status {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), c.status)
			}
			if msg := strings.TrimSpace(w.Body.String()); (msg == "" && c.status >= 400) || !strings.Contains(strings.ToLower(msg), c.says) {
				t.Errorf("answer %q does not say what was wrong (want %q)", msg, c.says)
			}
		})
	}
	s.slack.Wait()
	if after := fingerprint(t, s); after != before {
		t.Fatalf("the store changed:\nbefore %s\nafter  %s", before, after)
	}
	if n := len(sl.Posts()); n != 0 {
		t.Fatalf("a refused Slack request still answered %d times", n)
	}

	// Bad configuration is refused before anything starts, naming where.
	bad := filepath.Join(t.TempDir(), "bad.yml")
	os.WriteFile(bad, []byte("evaluation:\n  interval: soon\nslack:\n  channel: C1\n"), 0o600)
	_, err = rules.LoadWith(bad, getenv)
	for _, want := range []string{"line 2", "interval", "slack.bot_token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("bad config error %v does not name %q", err, want)
		}
	}
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

func hexMAC(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return hex.EncodeToString(m.Sum(nil))
}

// do sends a request to the public listener's handler.
func do(s *server, method, path, body string, h http.Header) *httptest.ResponseRecorder {
	return doOn(s.handler, method, path, body, h)
}

// doOn sends a request to handler h (the public or the private listener's).
func doOn(handler http.Handler, method, path, body string, h http.Header) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if strings.HasPrefix(path, "/slack/") {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range h {
		r.Header[http.CanonicalHeaderKey(k)] = v
	}
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, r)
	return w
}

// fingerprint is everything the store's readers can see.
func fingerprint(t *testing.T, s *server) string {
	t.Helper()
	ctx := context.Background()
	far := [2]time.Time{time.Unix(0, 0), time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}
	deploys, err1 := s.store.Deploys(ctx, far[0], far[1])
	tickets, err2 := s.store.Tickets(ctx, far[0], far[1])
	incidents, err3 := s.store.Incidents(ctx, 1000)
	depth, err4 := s.store.Depth(ctx)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			t.Fatal(err)
		}
	}
	events := map[string]any{}
	for _, in := range incidents {
		evs, err := s.store.Events(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		events[in.ID] = evs
	}
	b, _ := json.Marshal(map[string]any{"deploys": deploys, "tickets": tickets, "incidents": incidents, "events": events, "outbox": depth})
	return string(b)
}
