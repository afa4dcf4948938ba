package pagerduty

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"
)

// maxWebhookBody bounds a webhook body. PagerDuty guarantees delivery up
// to 55 KB and drops anything over 256 KB, so 1 MiB never refuses a real
// event while keeping a forged flood from filling memory before the
// signature is checked.
const maxWebhookBody = 1 << 20

// signatureHeader carries one "v1=<hex>" HMAC per active signing secret.
const signatureHeader = "X-PagerDuty-Signature"

// WebhookConfig configures the receiver of PagerDuty's v3 webhooks.
type WebhookConfig struct {
	// Secrets are the subscription's signing secrets. More than one is
	// accepted so that a secret can be rotated without a gap: configure
	// the new one next to the old, rotate in PagerDuty, then drop the old.
	// Empty strings are ignored; with no secret every request is refused.
	Secrets []string
	// Sink records the events; nil refuses them with 500.
	Sink Sink
	// Now stamps an event that arrives without occurred_at; nil is
	// time.Now.
	Now func() time.Time
	// Logger receives refusals and sink failures; nil discards them.
	Logger *slog.Logger
}

// Sink records what happened to an incident in PagerDuty (who
// acknowledged it, when it was resolved there) for the incident's
// timeline.
type Sink interface {
	// PagerDutyEvent records e. PagerDuty delivers at least once, so the
	// same event can arrive again after a timeout or a retry: the sink
	// must deduplicate by e.ID and return nil for an event it already
	// has. A non-nil error means e was not recorded; the receiver answers
	// 500 and PagerDuty retries periodically for up to 48 hours, queueing
	// later events about the same incident behind it (developer.pagerduty.com,
	// Webhooks "Behavior"). PagerDuty waits only five seconds for an
	// answer, so the sink should be quick.
	PagerDutyEvent(ctx context.Context, e WebhookEvent) error
}

// WebhookEvent is the part of a v3 webhook event a timeline needs.
type WebhookEvent struct {
	// ID is PagerDuty's event id, unique per event and stable across
	// redeliveries.
	ID string `json:"id"`
	// Type is the event type, such as "incident.acknowledged".
	Type       string    `json:"type"`
	OccurredAt time.Time `json:"occurred_at"`
	// IncidentKey is the incident's dedup key, which is culprit's
	// Incident.Key for incidents culprit opened. Only events whose data is
	// the incident itself carry it; notes and responder requests do not,
	// and must be matched by IncidentID.
	IncidentKey string `json:"incident_key,omitempty"`
	IncidentID  string `json:"incident_id"`
	HTMLURL     string `json:"html_url,omitempty"`
	// Status is the incident's status after the event (triggered,
	// acknowledged, resolved), when the event carries it.
	Status string `json:"status,omitempty"`
	// Agent is who or what acted: a user's name, or a service for
	// automatic resolution.
	Agent string `json:"agent,omitempty"`
	// Note is what a person wrote: the note of incident.annotated, the
	// message of a status update or a responder request.
	Note string `json:"note,omitempty"`
}

// NewWebhook returns the handler for PagerDuty's v3 webhooks. It answers
// 401 to a request whose X-PagerDuty-Signature matches none of the
// secrets, 413 to a body over 1 MiB, 500 when the sink fails (so that
// PagerDuty retries) and 200 once the sink has the event. Nothing is
// recorded unless the signature matches.
//
// Every well-signed delivery that culprit does not record gets a 200 too,
// with a log line: events about something other than an incident or its
// notes, status updates and responders (pings, service.*, incident.task.*,
// incident.role.assigned, types PagerDuty adds later), and bodies culprit
// cannot read. PagerDuty drops a delivery on any 4xx and, after three in a
// row, disables the whole subscription for 24 hours; a 4xx for an event
// culprit has no use for (role assignments arrive in bursts when a major
// incident is declared) would cost the acknowledgements and resolutions
// that follow it. A bad signature is still a 401: that request is not
// PagerDuty's.
func NewWebhook(cfg WebhookConfig) http.Handler {
	h := &webhook{sink: cfg.Sink, now: cfg.Now, log: cfg.Logger}
	for _, s := range cfg.Secrets {
		if s != "" {
			h.secrets = append(h.secrets, []byte(s))
		}
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if len(h.secrets) == 0 {
		h.log.Warn("pagerduty webhook has no signing secret; every request will be refused")
	}
	return h
}

type webhook struct {
	secrets [][]byte
	sink    Sink
	now     func() time.Time
	log     *slog.Logger
}

func (h *webhook) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	sigs := strings.Join(r.Header.Values(signatureHeader), ",")
	if sigs == "" {
		h.refuse(w, r, http.StatusUnauthorized, "missing "+signatureHeader+" header")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxWebhookBody))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			h.refuse(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", maxWebhookBody))
			return
		}
		h.refuse(w, r, http.StatusBadRequest, fmt.Sprintf("read body: %v", err))
		return
	}
	if !h.verify(sigs, body) {
		h.refuse(w, r, http.StatusUnauthorized, "signature matches no configured secret")
		return
	}

	ev, ignore, err := parseWebhook(body, h.now)
	if err != nil {
		// Signed by PagerDuty, so a 4xx would only count towards disabling
		// the subscription: log it for the operator and let it go.
		h.log.Warn("pagerduty webhook body not understood; ignored", "reason", err.Error(), "remote", r.RemoteAddr)
		http.Error(w, "ignored: "+err.Error(), http.StatusOK)
		return
	}
	if ignore != "" {
		h.log.Debug("pagerduty webhook event ignored", "event_type", ignore)
		w.WriteHeader(http.StatusOK)
		return
	}
	if h.sink == nil {
		h.log.Error("pagerduty webhook has no sink", "event_id", ev.ID, "event_type", ev.Type)
		http.Error(w, "event not recorded", http.StatusInternalServerError)
		return
	}
	if err := h.sink.PagerDutyEvent(r.Context(), ev); err != nil {
		h.log.Error("record pagerduty webhook event", "event_id", ev.ID, "event_type", ev.Type, "incident_id", ev.IncidentID, "err", err)
		http.Error(w, "event not recorded", http.StatusInternalServerError)
		return
	}
	w.WriteHeader(http.StatusOK)
}

// refuse answers a request that records nothing. The log line names the
// problem and the sender, never the signature or the secrets.
func (h *webhook) refuse(w http.ResponseWriter, r *http.Request, status int, why string) {
	h.log.Warn("pagerduty webhook refused", "status", status, "reason", why, "remote", r.RemoteAddr)
	http.Error(w, why, status)
}

// verify reports whether any v1 signature in the header is the
// HMAC-SHA256 of body under any secret. Entries of other versions and
// entries that are not hex are skipped, as PagerDuty's reference
// implementation does, so that a future v2 scheme does not break us.
func (h *webhook) verify(header string, body []byte) bool {
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		hexSig, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		if sig, err := hex.DecodeString(hexSig); err == nil && len(sig) == sha256.Size {
			sigs = append(sigs, sig)
		}
	}
	ok := false
	for _, secret := range h.secrets {
		mac := hmac.New(sha256.New, secret)
		mac.Write(body)
		want := mac.Sum(nil)
		for _, sig := range sigs {
			// No early return: every comparison is made, so the time
			// taken does not say which secret or signature matched.
			if hmac.Equal(want, sig) {
				ok = true
			}
		}
	}
	return ok
}

// webhookPayload is the v3 envelope: one event per delivery.
type webhookPayload struct {
	Event *struct {
		ID         string          `json:"id"`
		EventType  string          `json:"event_type"`
		OccurredAt string          `json:"occurred_at"`
		Agent      *reference      `json:"agent"`
		Data       json.RawMessage `json:"data"`
	} `json:"event"`
}

type reference struct {
	ID      string `json:"id"`
	Summary string `json:"summary"`
	HTMLURL string `json:"html_url"`
}

// webhookData covers the data types of incident events: the incident
// itself, or an incident_note, incident_status_update or
// incident_responder that points at it.
type webhookData struct {
	ID          string     `json:"id"`
	Type        string     `json:"type"`
	HTMLURL     string     `json:"html_url"`
	Status      string     `json:"status"`
	IncidentKey string     `json:"incident_key"`
	Incident    *reference `json:"incident"`
	Content     string     `json:"content"`
	Message     string     `json:"message"`
}

// recordedData are the event.data types whose events culprit records: the
// incident itself (triggered, acknowledged, resolved, reassigned, …) and
// what people write on it. Deciding by data type rather than by event type
// keeps working when PagerDuty adds an event type about the incident, and
// ignores the ones whose data has no top-level incident
// (incident_role_assignment, incident_task, incident_workflow_instance, …).
var recordedData = map[string]bool{
	"incident":               true,
	"incident_note":          true,
	"incident_status_update": true,
	"incident_responder":     true,
}

// parseWebhook decodes a verified body. It returns the event type in
// ignore for events culprit does not record, and an error naming the
// problem for a body that is not a v3 event it can read.
func parseWebhook(body []byte, now func() time.Time) (ev WebhookEvent, ignore string, err error) {
	if !utf8.Valid(body) {
		return ev, "", errors.New("body is not valid UTF-8")
	}
	var p webhookPayload
	if err := json.Unmarshal(body, &p); err != nil {
		if se, ok := errors.AsType[*json.SyntaxError](err); ok {
			return ev, "", fmt.Errorf("malformed json at byte %d: %v", se.Offset, err)
		}
		return ev, "", fmt.Errorf("malformed json: %v", err)
	}
	e := p.Event
	switch {
	case e == nil:
		return ev, "", errors.New("missing event")
	case e.EventType == "":
		return ev, "", errors.New("missing event.event_type")
	case !strings.HasPrefix(e.EventType, "incident."):
		return ev, e.EventType, nil
	case len(e.Data) == 0 || string(e.Data) == "null":
		return ev, "", errors.New("missing event.data")
	case !recordedData[dataType(e.Data)]:
		return ev, e.EventType, nil
	case e.ID == "":
		return ev, "", errors.New("missing event.id")
	}
	ev = WebhookEvent{ID: e.ID, Type: e.EventType}
	if e.OccurredAt == "" {
		ev.OccurredAt = now().UTC()
	} else if ev.OccurredAt, err = time.Parse(time.RFC3339Nano, e.OccurredAt); err != nil {
		return WebhookEvent{}, "", fmt.Errorf("event.occurred_at %q is not an RFC 3339 time", e.OccurredAt)
	}
	if a := e.Agent; a != nil {
		ev.Agent = a.Summary
		if ev.Agent == "" {
			ev.Agent = a.ID
		}
	}

	var d webhookData
	if err := json.Unmarshal(e.Data, &d); err != nil {
		return WebhookEvent{}, "", fmt.Errorf("malformed event.data: %v", err)
	}
	if d.Type == "incident" {
		ev.IncidentID, ev.HTMLURL, ev.Status, ev.IncidentKey = d.ID, d.HTMLURL, d.Status, d.IncidentKey
	} else if d.Incident != nil {
		ev.IncidentID, ev.HTMLURL = d.Incident.ID, d.Incident.HTMLURL
		ev.Note = d.Content
		if ev.Note == "" {
			ev.Note = d.Message
		}
	}
	if ev.IncidentID == "" {
		return WebhookEvent{}, "", fmt.Errorf("event.data of %s names no incident", e.EventType)
	}
	return ev, "", nil
}

// dataType is event.data.type, or "" when data is missing or not an object.
func dataType(raw json.RawMessage) string {
	var d struct {
		Type string `json:"type"`
	}
	if json.Unmarshal(raw, &d) != nil {
		return ""
	}
	return d.Type
}
