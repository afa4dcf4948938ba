package pagerduty

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// FuzzWebhook signs every body, as PagerDuty would, and checks the
// receiver's contract with PagerDuty: a well-signed delivery always gets a
// 2xx (a 4xx drops it and counts towards disabling the subscription), and
// what is recorded names an event and an incident. Seeds: the tests'
// deliveries, the documented ones (testdata/webhooks) and
// testdata/fuzz/FuzzWebhook.
func FuzzWebhook(f *testing.F) {
	for _, b := range []string{whAckBody, whNoteBody, whPingBody, whServiceBody} {
		f.Add([]byte(b))
	}
	doc, err := os.ReadFile(filepath.Join("testdata", "webhooks", "pagerduty-01-Overview.md"))
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range pdBlock.FindAllSubmatch(doc, -1) {
		if strings.Contains(string(m[1]), `"event"`) {
			f.Add(m[1])
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		sink := &whSink{}
		h := NewWebhook(WebhookConfig{Secrets: []string{whSecret}, Sink: sink, Now: func() time.Time { return whNow }})
		req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/pagerduty", strings.NewReader(string(body)))
		req = req.WithContext(context.WithValue(req.Context(), whCtxKey{}, "request"))
		req.Header.Set("X-PagerDuty-Signature", whSign(whSecret, string(body)))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d for a well-signed delivery: %s", rec.Code, rec.Body)
		}
		for _, ev := range sink.got {
			if ev.ID == "" || ev.IncidentID == "" || !strings.HasPrefix(ev.Type, "incident.") {
				t.Fatalf("recorded an event without its id, incident or incident type: %+v", ev)
			}
			if !utf8.ValidString(ev.Note) || !utf8.ValidString(ev.Agent) {
				t.Fatalf("recorded invalid UTF-8: %+v", ev)
			}
		}
	})
}
