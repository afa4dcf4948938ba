package slack

import (
	"errors"
	"net/http"
	"net/url"
	"testing"
	"unicode/utf8"
)

// FuzzParseQuery feeds /correlate arbitrary text. A query is either refused
// with a usage error or has a window that ends at or before the question's
// time and starts before it ends, and says the same when asked again.
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{"", "help", "edge-router", `edge-router since=2h "function invocation failed" customer=10234`,
		"api 14:00..16:00", "since=90m", `"unterminated`, "customer=", "since=-1h", "2026-11-20T14:00:00Z..2026-11-20T16:00:00Z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		q, err := ParseQuery(text, friday)
		if err != nil {
			var ue *UsageError
			if !errors.As(err, &ue) && !errors.Is(err, errHelp) {
				t.Fatalf("ParseQuery(%q): error %v is not a usage error", text, err)
			}
			return
		}
		if !q.From.Before(q.To) || q.To.After(friday) {
			t.Fatalf("ParseQuery(%q): window %s..%s is not before %s", text, q.From, q.To, friday)
		}
		if utf8.ValidString(text) && (!utf8.ValidString(q.Text) || !utf8.ValidString(q.Service)) {
			t.Fatalf("ParseQuery(%q) made invalid UTF-8: %+v", text, q)
		}
		again, err := ParseQuery(text, friday)
		if err != nil || again != q {
			t.Fatalf("ParseQuery(%q) is not stable: %+v then %+v, %v", text, q, again, err)
		}
	})
}

// refuseNetwork is the response URL client of the interaction fuzzer: a
// fuzzed payload names any URL it likes, and nothing may leave the machine.
type refuseNetwork struct{}

func (refuseNetwork) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("fuzz: no network")
}

// FuzzInteraction signs arbitrary interaction payloads, as Slack would send
// them, and checks the handler: 200 or a 400 for a payload that is not
// JSON, never a panic, and a page only for a Page button with an incident
// id of acceptable length.
func FuzzInteraction(f *testing.F) {
	for _, s := range []string{
		`{"type":"block_actions","user":{"id":"U2147483697","name":"jo"},"team":{"id":"T0001"},"channel":{"id":"C2147483705"},"response_url":"https://hooks.slack.com/actions/T0001/1/x","actions":[{"action_id":"page","value":"inc-1","type":"button"}]}`,
		`{"type":"block_actions","actions":[{"action_id":"open_evidence","value":"inc-1"},null]}`,
		`{"type":"view_submission"}`,
		`not json`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, payload string) {
		h := newHarness(t, func(c *Config) {
			c.HTTPClient = &http.Client{Transport: refuseNetwork{}}
			c.MaxAttempts = 1
		})
		w := serve(h.app.Interactions(), signed("/slack/interactions", url.Values{"payload": {payload}}, testSecret, friday))
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		h.app.Wait()
		for _, c := range h.pager.Calls() {
			if c.incident == "" || len(c.incident) > MaxButtonValue {
				t.Fatalf("paged for incident id %q", c.incident)
			}
		}
	})
}
