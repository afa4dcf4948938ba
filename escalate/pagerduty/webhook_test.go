package pagerduty

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/PagerDuty/go-pagerduty/webhookv3"
)

const (
	whSecret    = "whsec-current-5b1f0c2e9d8a7b6c"
	whOldSecret = "whsec-previous-0a1b2c3d4e5f6a7b"
)

// whNow is the receiver's clock, used only for events without occurred_at.
var whNow = time.Date(2026, 11, 20, 16, 9, 5, 0, time.UTC)

func whSign(secret string, body string) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(body))
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// A v3 incident.acknowledged delivery, shaped like PagerDuty's documented
// example, for the incident culprit paged on the Friday.
const whAckBody = `{"event":{"id":"01DEN0YZ9Q5JSV3TFKM1AZ4C4M","event_type":"incident.acknowledged","resource_type":"incident",` +
	`"occurred_at":"2026-11-20T16:09:00.250Z","agent":{"html_url":"https://acme.pagerduty.com/users/PALICE1","id":"PALICE1",` +
	`"self":"https://api.pagerduty.com/users/PALICE1","summary":"Alice","type":"user_reference"},"client":null,` +
	`"data":{"id":"Q2W3E4R5T6Y7U8","type":"incident","self":"https://api.pagerduty.com/incidents/Q2W3E4R5T6Y7U8",` +
	`"html_url":"https://acme.pagerduty.com/incidents/Q2W3E4R5T6Y7U8","number":4242,"status":"acknowledged",` +
	`"incident_key":"culprit/edge-router/f-5e6f7a8b/dep-1a2b","created_at":"2026-11-20T16:05:03Z","title":"edge-router 3.8.0 is the suspected cause",` +
	`"service":{"html_url":"https://acme.pagerduty.com/services/PEDGE01","id":"PEDGE01","summary":"edge-router","type":"service_reference"},` +
	`"assignees":[{"id":"PALICE1","summary":"Alice","type":"user_reference"}],"urgency":"high","resolve_reason":null}}}`

var whAckEvent = WebhookEvent{
	ID: "01DEN0YZ9Q5JSV3TFKM1AZ4C4M", Type: "incident.acknowledged",
	OccurredAt:  time.Date(2026, 11, 20, 16, 9, 0, 250e6, time.UTC),
	IncidentKey: "culprit/edge-router/f-5e6f7a8b/dep-1a2b", IncidentID: "Q2W3E4R5T6Y7U8",
	HTMLURL: "https://acme.pagerduty.com/incidents/Q2W3E4R5T6Y7U8", Status: "acknowledged", Agent: "Alice",
}

const whNoteBody = `{"event":{"id":"01DEN1A2B3C4D5E6F7G8H9J0K1","event_type":"incident.annotated","resource_type":"incident",` +
	`"occurred_at":"2026-11-20T17:08:00Z","agent":{"id":"PALICE1","summary":"Alice","type":"user_reference"},"client":null,` +
	`"data":{"incident":{"html_url":"https://acme.pagerduty.com/incidents/Q2W3E4R5T6Y7U8","id":"Q2W3E4R5T6Y7U8","summary":"edge-router","type":"incident_reference"},` +
	`"id":"PNOTE01","content":"rolling back to 3.7.4","trimmed":false,"type":"incident_note"}}}`

const whPingBody = `{"event":{"id":"01DEN2PING0000000000000000","event_type":"pagey.ping","resource_type":"pagey","occurred_at":"2026-11-20T15:00:00Z","agent":null,"client":null,"data":{"message":"Hello from your friend Pagey!","type":"ping"}}}`

const whServiceBody = `{"event":{"id":"01DEN3SVC00000000000000000","event_type":"service.updated","resource_type":"service","occurred_at":"2026-11-20T15:00:00Z","agent":null,"client":null,"data":{"id":"PEDGE01","summary":"edge-router","type":"service"}}}`

type whSink struct {
	got []WebhookEvent
	err error
}

type whCtxKey struct{}

func (s *whSink) PagerDutyEvent(ctx context.Context, e WebhookEvent) error {
	if ctx.Value(whCtxKey{}) != "request" {
		return errors.New("sink did not get the request's context")
	}
	if s.err != nil {
		return s.err
	}
	s.got = append(s.got, e)
	return nil
}

func TestWebhook(t *testing.T) {
	signed := func(secrets ...string) func(string) []string {
		return func(body string) []string {
			var sigs []string
			for _, s := range secrets {
				sigs = append(sigs, whSign(s, body))
			}
			return []string{strings.Join(sigs, ",")}
		}
	}
	fixed := func(v ...string) func(string) []string { return func(string) []string { return v } }
	ack := []WebhookEvent{whAckEvent}
	big := `{"event":{"id":"x","event_type":"incident.annotated","pad":"` + strings.Repeat("a", maxWebhookBody) + `"}}`

	cases := []struct {
		name       string
		method     string
		body       string
		headers    func(body string) []string // X-PagerDuty-Signature values
		secrets    []string
		sinkErr    error
		wantStatus int
		wantBody   string
		want       []WebhookEvent
	}{
		{name: "valid signature", body: whAckBody, headers: signed(whSecret), wantStatus: 200, want: ack},
		{name: "rotation: signed by old and new, receiver knows the new",
			body: whAckBody, headers: signed(whOldSecret, whSecret), wantStatus: 200, want: ack},
		{name: "rotation: signed by old only, receiver knows both",
			body: whAckBody, headers: signed(whOldSecret), secrets: []string{whSecret, whOldSecret}, wantStatus: 200, want: ack},
		{name: "signatures in separate header lines", body: whAckBody,
			headers: func(b string) []string { return []string{whSign(whOldSecret, b), whSign(whSecret, b)} }, wantStatus: 200, want: ack},
		{name: "spaces after commas", body: whAckBody,
			headers: func(b string) []string { return []string{whSign(whOldSecret, b) + ", " + whSign(whSecret, b)} }, wantStatus: 200, want: ack},
		{name: "forged with another secret", body: whAckBody, headers: signed("not-the-secret"),
			wantStatus: 401, wantBody: "signature matches no configured secret"},
		{name: "body changed after signing", body: whAckBody,
			headers:    func(b string) []string { return signed(whSecret)(strings.Replace(b, "Alice", "Mallory", 1)) },
			wantStatus: 401},
		{name: "missing header", body: whAckBody, headers: fixed(), wantStatus: 401, wantBody: "missing X-PagerDuty-Signature"},
		{name: "unknown signature version only", body: whAckBody,
			headers: func(b string) []string { return []string{strings.Replace(whSign(whSecret, b), "v1=", "v2=", 1)} }, wantStatus: 401},
		{name: "signature not hex", body: whAckBody, headers: fixed("v1=zz"), wantStatus: 401},
		{name: "empty secret configured signs nothing", body: whAckBody, headers: signed(""), secrets: []string{""}, wantStatus: 401},
		{name: "malformed json", body: `{"event":{"id":"x",`, headers: signed(whSecret),
			wantStatus: 200, wantBody: "ignored: malformed json"},
		{name: "json of the wrong shape", body: `{"event":{"id":42,"event_type":"incident.resolved"}}`, headers: signed(whSecret),
			wantStatus: 200, wantBody: "ignored: malformed json"},
		{name: "no event", body: `{"messages":[]}`, headers: signed(whSecret), wantStatus: 200, wantBody: "missing event"},
		{name: "incident event without id", body: strings.Replace(whAckBody, `"id":"01DEN0YZ9Q5JSV3TFKM1AZ4C4M",`, "", 1),
			headers: signed(whSecret), wantStatus: 200, wantBody: "missing event.id"},
		{name: "bad occurred_at", body: strings.Replace(whAckBody, "2026-11-20T16:09:00.250Z", "yesterday", 1),
			headers: signed(whSecret), wantStatus: 200, wantBody: `event.occurred_at "yesterday"`},
		{name: "incident event naming no incident",
			body:    `{"event":{"id":"e1","event_type":"incident.triggered","occurred_at":"2026-11-20T16:05:03Z","data":{"type":"incident"}}}`,
			headers: signed(whSecret), wantStatus: 200, wantBody: "names no incident"},
		{name: "missing occurred_at takes the receiver's clock",
			body:    `{"event":{"id":"e2","event_type":"incident.resolved","data":{"id":"Q1","type":"incident","status":"resolved"}}}`,
			headers: signed(whSecret), wantStatus: 200,
			want: []WebhookEvent{{ID: "e2", Type: "incident.resolved", OccurredAt: whNow, IncidentID: "Q1", Status: "resolved"}}},
		{name: "note on an incident", body: whNoteBody, headers: signed(whSecret), wantStatus: 200,
			want: []WebhookEvent{{ID: "01DEN1A2B3C4D5E6F7G8H9J0K1", Type: "incident.annotated", OccurredAt: time.Date(2026, 11, 20, 17, 8, 0, 0, time.UTC),
				IncidentID: "Q2W3E4R5T6Y7U8", HTMLURL: "https://acme.pagerduty.com/incidents/Q2W3E4R5T6Y7U8", Agent: "Alice", Note: "rolling back to 3.7.4"}}},
		{name: "ping is not an incident event", body: whPingBody, headers: signed(whSecret), wantStatus: 200},
		{name: "service change is not an incident event", body: whServiceBody, headers: signed(whSecret), wantStatus: 200},
		{name: "ping with a forged signature is still refused", body: whPingBody, headers: signed("nope"), wantStatus: 401},
		{name: "sink failure asks for a retry", body: whAckBody, headers: signed(whSecret),
			sinkErr: errors.New("database is locked"), wantStatus: 500, wantBody: "event not recorded"},
		{name: "body over the limit", body: big, headers: signed(whSecret), wantStatus: 413},
		{name: "GET", method: http.MethodGet, headers: signed(whSecret), wantStatus: 405},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			sink := &whSink{err: c.sinkErr}
			secrets := c.secrets
			if secrets == nil {
				secrets = []string{whSecret}
			}
			h := NewWebhook(WebhookConfig{Secrets: secrets, Sink: sink, Now: func() time.Time { return whNow },
				Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})

			method := whOr(c.method, http.MethodPost)
			req := httptest.NewRequest(method, "/api/v1/webhooks/pagerduty", strings.NewReader(c.body))
			req = req.WithContext(context.WithValue(req.Context(), whCtxKey{}, "request"))
			req.Header.Set("Content-Type", "application/json")
			sigs := c.headers(c.body)
			for _, v := range sigs {
				req.Header.Add("X-PagerDuty-Signature", v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			if rec.Code != c.wantStatus {
				t.Errorf("status = %d, want %d (body %q)", rec.Code, c.wantStatus, rec.Body.String())
			}
			if !strings.Contains(rec.Body.String(), c.wantBody) {
				t.Errorf("body = %q, want it to contain %q", rec.Body.String(), c.wantBody)
			}
			if !reflect.DeepEqual(sink.got, c.want) {
				t.Errorf("recorded %+v, want %+v", sink.got, c.want)
			}
			for _, secret := range []string{whSecret, whOldSecret} {
				if strings.Contains(logs.String(), secret) {
					t.Errorf("logs contain a secret: %s", logs.String())
				}
			}
			for _, v := range sigs {
				if len(v) > 8 && strings.Contains(logs.String(), v[3:]) {
					t.Errorf("logs contain the signature: %s", logs.String())
				}
			}
		})
	}
}

func whOr(s, fallback string) string {
	if s == "" {
		return fallback
	}
	return s
}

// The signatures the tests make are the ones PagerDuty's own Go library
// accepts, so the receiver is checked against the reference algorithm and
// not only against itself.
func TestWebhookSignatureMatchesReference(t *testing.T) {
	for _, body := range []string{whAckBody, whNoteBody, `{"event":{"id":"ü","event_type":"incident.triggered"}}`} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
		req.Header.Set("X-PagerDuty-Signature", whSign(whOldSecret, body)+","+whSign(whSecret, body))
		if err := webhookv3.VerifySignature(req, whSecret); err != nil {
			t.Errorf("reference rejects our signature of %.40q: %v", body, err)
		}
		h := &webhook{secrets: [][]byte{[]byte(whSecret)}}
		if !h.verify(req.Header.Get("X-PagerDuty-Signature"), []byte(body)) {
			t.Errorf("receiver rejects the signature the reference accepts for %.40q", body)
		}
	}
}

func TestWebhookWithoutSinkOrSecrets(t *testing.T) {
	cases := []struct {
		name       string
		cfg        WebhookConfig
		wantStatus int
	}{
		{"no secrets refuses everything", WebhookConfig{Sink: &whSink{}}, 401},
		{"no sink refuses to pretend it recorded", WebhookConfig{Secrets: []string{whSecret}}, 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(whAckBody))
			req.Header.Set("X-PagerDuty-Signature", whSign(whSecret, whAckBody))
			rec := httptest.NewRecorder()
			NewWebhook(c.cfg).ServeHTTP(rec, req)
			if rec.Code != c.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, c.wantStatus)
			}
		})
	}
}
