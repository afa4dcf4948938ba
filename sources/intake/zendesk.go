package intake

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// handleZendesk takes one ticket from a Zendesk webhook: the trigger body
// documented in the package comment, or a ticket event.
func (s *server) handleZendesk() http.Handler {
	secret := []byte(s.cfg.ZendeskSecret)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(secret) == 0 {
			writeError(w, http.StatusNotFound, "zendesk webhook is disabled: no zendesk secret is configured")
			return
		}
		body, ok := s.readBody(w, r)
		if !ok {
			return
		}
		if msg := checkZendeskSignature(secret, body, r.Header.Get("X-Zendesk-Webhook-Signature"),
			r.Header.Get("X-Zendesk-Webhook-Signature-Timestamp"), s.now()); msg != "" {
			s.reject(w, r, http.StatusUnauthorized, msg)
			return
		}
		t, err := decodeZendeskWebhook(body, s.now())
		if err != nil {
			s.reject(w, r, http.StatusBadRequest, err.Error())
			return
		}
		s.storeTickets(w, r, []correlate.Ticket{t})
	})
}

// checkZendeskSignature verifies base64(HMAC-SHA256(secret, timestamp+body))
// (developer.zendesk.com, "Verifying webhook authenticity") and that the
// signed timestamp is within zendeskMaxSkew of now. It says what is wrong,
// or "" when all is right.
func checkZendeskSignature(secret, body []byte, sig, ts string, now time.Time) string {
	if sig == "" || ts == "" {
		return "missing X-Zendesk-Webhook-Signature or X-Zendesk-Webhook-Signature-Timestamp header"
	}
	got, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return "X-Zendesk-Webhook-Signature is not base64"
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write(body)
	if !hmac.Equal(mac.Sum(nil), got) {
		return "X-Zendesk-Webhook-Signature does not match the body: check the signing secret"
	}
	at, ok := parseZendeskTimestamp(ts)
	if !ok {
		return "X-Zendesk-Webhook-Signature-Timestamp is not a time"
	}
	if skew := now.Sub(at); skew > zendeskMaxSkew || skew < -zendeskMaxSkew {
		return fmt.Sprintf("signature timestamp %s is more than %s from now: replayed or clock skew", at.UTC().Format(time.RFC3339), zendeskMaxSkew)
	}
	return ""
}

// parseZendeskTimestamp reads the signature timestamp: ISO 8601 in Zendesk's
// documentation (2021-03-25T05:09:27Z); Unix seconds are accepted too.
func parseZendeskTimestamp(ts string) (time.Time, bool) {
	ts = strings.TrimSpace(ts)
	if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
		return t, true
	}
	if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
		return time.Unix(n, 0), true
	}
	return time.Time{}, false
}

// decodeZendeskWebhook finds the ticket in a webhook body and reads it like
// every other ticket, after undoing what placeholder rendering does to it;
// now bounds its timestamps.
func decodeZendeskWebhook(body []byte, now time.Time) (correlate.Ticket, error) {
	items, array, err := splitBody(body)
	if err != nil {
		return correlate.Ticket{}, err
	}
	if err := checkUTF8(body); err != nil {
		return correlate.Ticket{}, err
	}
	if array || len(items) != 1 || !isObject(items[0].raw) {
		return correlate.Ticket{}, errors.New(`expected one JSON object {"ticket":{…}}`)
	}
	var env struct {
		Ticket json.RawMessage `json:"ticket"`
		Type   string          `json:"type"`
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(items[0].raw, &env); err != nil {
		return correlate.Ticket{}, typeErr(err)
	}
	raw, field := env.Ticket, "ticket"
	if raw == nil && strings.HasPrefix(env.Type, "zen:event-type:ticket.") {
		raw, field = env.Detail, "detail"
	}
	if raw == nil {
		return correlate.Ticket{}, errors.New(`expected {"ticket":{…}} (see the trigger body in the intake docs) or a Zendesk ticket event`)
	}
	norm, err := normalizeRendered(raw)
	if err != nil {
		return correlate.Ticket{}, fmt.Errorf("%s: %w", field, err)
	}
	t, err := decodeTicket(norm, now)
	if err != nil {
		if n := idNote(raw); n != "" {
			field += " (" + n + ")"
		}
		return correlate.Ticket{}, fmt.Errorf("%s: %w", field, err)
	}
	return t, nil
}

// renderedTimeLayouts are the forms created_at takes in a webhook:
// {{ticket.created_at_with_timestamp}} has no seconds (2013-12-12T05:35Z).
var renderedTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04Z07:00", "2006-01-02 15:04:05 -0700"}

// normalizeRendered rewrites placeholder-rendered fields into the API's
// shape: created_at as RFC 3339, tags as an array, priority and status
// lower-case ("-", Zendesk's rendering of none, as empty).
func normalizeRendered(raw json.RawMessage) (json.RawMessage, error) {
	if !isObject(raw) {
		return nil, fmt.Errorf("expected an object, got %s", short(raw))
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, typeErr(err)
	}
	if s, ok := jsonString(m["created_at"]); ok {
		for _, layout := range renderedTimeLayouts {
			if t, err := time.Parse(layout, strings.TrimSpace(s)); err == nil {
				m["created_at"] = mustJSON(t.UTC().Format(time.RFC3339))
				break
			}
		}
	}
	if s, ok := jsonString(m["tags"]); ok {
		m["tags"] = mustJSON(strings.Fields(strings.ReplaceAll(s, ",", " ")))
	}
	for _, k := range []string{"priority", "status"} {
		if s, ok := jsonString(m[k]); ok {
			s = strings.ToLower(strings.TrimSpace(s))
			if s == "-" {
				s = ""
			}
			m[k] = mustJSON(s)
		}
	}
	return json.Marshal(m)
}

func jsonString(raw json.RawMessage) (string, bool) {
	b := bytes.TrimSpace(raw)
	if len(b) == 0 || b[0] != '"' {
		return "", false
	}
	var s string
	if json.Unmarshal(b, &s) != nil {
		return "", false
	}
	return s, true
}

// mustJSON marshals strings and string slices, which cannot fail.
func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage(`null`)
	}
	return b
}
