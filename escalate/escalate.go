// Package escalate turns findings into incidents and incidents into pages.
//
// The decision of what to do with one evaluation's findings is a pure
// function, Decide, so paging, updating, resolving and flapping can be
// tested without a clock, a store or a network. Everything Decide asks for
// (a trigger, a resolve) is an outbox Message, written in the same
// transaction as the incident change that caused it; the outbox worker
// delivers it later and retries until the vendor has it. That is what makes
// a page survive a vendor outage or culprit being killed mid-way.
package escalate

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

// Status is where an incident is in its life.
type Status string

const (
	// StatusOpen: the change is ongoing (or has not been seen to end).
	StatusOpen Status = "open"
	// StatusResolved: the series is back at baseline, or the finding has
	// not been seen for long enough while data kept arriving.
	StatusResolved Status = "resolved"
)

// Action is what routing decided for an incident; the routes in the
// configuration speak the same words.
type Action = rules.Action

const (
	// ActionPage wakes on-call through PagerDuty.
	ActionPage = rules.ActionPage
	// ActionSlack posts to the support channel.
	ActionSlack = rules.ActionSlack
	// ActionRecord only records the incident.
	ActionRecord = rules.ActionRecord
)

// Incident is one change culprit keeps track of across evaluations. It is
// identified by Key while open, so the same error class seen again in the
// next evaluation updates it instead of opening (and paging) a new one.
type Incident struct {
	ID        string         `json:"id"`
	Key       string         `json:"key"`
	Service   string         `json:"service"`
	Signature string         `json:"signature"`
	Kind      correlate.Kind `json:"kind"`
	Status    Status         `json:"status"`
	// Meta marks the "culprit cannot read its source" incident.
	Meta bool `json:"meta,omitempty"`
	// Action is what routing decided the last time it was asked, and
	// Why says which route or silence decided it.
	Action Action `json:"action"`
	Why    string `json:"why"`
	// Route is the name of the route that decided Action; its own
	// routing key or Slack channel, if it has one, delivers the messages.
	Route    string             `json:"route,omitempty"`
	Severity correlate.Severity `json:"severity"`
	OpenedAt time.Time          `json:"opened_at"`
	Onset    time.Time          `json:"onset"`
	// PagedAt is when a trigger was queued; zero if none was.
	PagedAt time.Time `json:"paged_at,omitzero"`
	// PostedAt is when a Slack post was queued; zero if none was.
	PostedAt   time.Time `json:"posted_at,omitzero"`
	LastSeen   time.Time `json:"last_seen"`
	Recovered  time.Time `json:"recovered,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// Flaps counts reopenings; each one doubles how long the series must
	// stay quiet before the incident resolves again.
	Flaps int `json:"flaps,omitempty"`
	// Quiet counts evaluations in a row that had data but no longer saw the
	// finding.
	Quiet int `json:"quiet,omitempty"`
	// Finding is the latest evidence.
	Finding *correlate.Finding `json:"finding,omitempty"`
}

// Paged reports whether a trigger was ever queued for the incident.
func (in *Incident) Paged() bool { return !in.PagedAt.IsZero() }

// Channel names who delivers a message.
type Channel string

const (
	ChannelPagerDuty Channel = "pagerduty"
	ChannelSlack     Channel = "slack"
)

// Message is one outgoing notification in the outbox.
type Message struct {
	ID         int64   `json:"id"`
	Channel    Channel `json:"channel"`
	Action     string  `json:"action"` // trigger, resolve, change, post
	IncidentID string  `json:"incident_id,omitempty"`
	// Key is the vendor-side deduplication key (PagerDuty dedup_key).
	Key     string `json:"key,omitempty"`
	Service string `json:"service,omitempty"`
	// Body is what the notifier renders from: the incident for triggers
	// and resolves, the deploy for change events.
	Body      json.RawMessage `json:"body"`
	CreatedAt time.Time       `json:"created_at"`
	NextAt    time.Time       `json:"next_at"`
	Attempts  int             `json:"attempts"`
	LastError string          `json:"last_error,omitempty"`
	// InDoubt says an earlier attempt started and its outcome was never
	// recorded (culprit died mid-delivery): the vendor may have it.
	InDoubt bool `json:"in_doubt,omitempty"`
}

// Message actions.
const (
	Trigger     = "trigger"
	Resolve     = "resolve"
	ChangeEvent = "change"
	Post        = "post"
)

// Event is one line of an incident's timeline.
type Event struct {
	IncidentID string    `json:"incident_id"`
	At         time.Time `json:"at"`
	Kind       string    `json:"kind"`
	Text       string    `json:"text"`
	Actor      string    `json:"actor,omitempty"`
}

// Timeline event kinds written by the daemon itself. Deploy and ticket
// events are derived from the stored deploys and tickets when a timeline
// is exported, so they are never duplicated here.
const (
	EventOnset      = "onset"
	EventDetected   = "detected"
	EventEscalated  = "escalated"
	EventSuspect    = "suspect"
	EventPageQueued = "page_queued"
	EventPageSent   = "page_sent"
	EventPageFailed = "page_failed"
	EventRecovered  = "recovered"
	EventResolved   = "resolved"
	EventReopened   = "reopened"
	EventSilenced   = "silenced"
	EventPostQueued = "post_queued"
	// EventPageRequested is a person asking for the page (the Slack
	// button), with the person as the event's actor.
	EventPageRequested = "page_requested"
	// EventAsked is someone asking about the incident's finding
	// (/correlate), with the person as the actor.
	EventAsked = "asked"
	// EventPriority records the support priority (P1–P4) and who is
	// affected, when an incident opens and whenever the priority changes.
	EventPriority = "priority"
)

// Change is what one evaluation does to one incident: its new state, what
// to send, and what to write on its timeline. A store applies a batch of
// changes in one transaction.
type Change struct {
	Incident Incident
	Messages []Message
	Events   []Event
}

// IncidentKey is the stable identity of an incident: its service and error
// signature, plus the deploy suspected when it opened. It is the PagerDuty
// dedup_key, so it must stay the same for the whole incident (a suspect
// found later does not change it) and stay under PagerDuty's 255 bytes.
func IncidentKey(service, signature, deployID string) string {
	k := "culprit/" + service + "/" + correlate.FindingID(service, signature)
	if deployID != "" {
		k += "/" + deployID
	}
	if len(k) > 255 {
		h := sha256.Sum256([]byte(k))
		k = "culprit/" + hex.EncodeToString(h[:16])
	}
	return k
}

// incidentID is short and readable in URLs, and unique per opening: the
// same key reopened much later is another incident.
func incidentID(key string, opened time.Time) string {
	h := sha256.Sum256([]byte(key + "\x00" + opened.UTC().Format(time.RFC3339Nano)))
	return "inc-" + hex.EncodeToString(h[:5])
}

// Lane is a message's delivery class. The outbox delivers each lane on a
// worker of its own, in this order when one worker must choose, so a
// burst of one class never waits in front of a more urgent one: a deploy
// batch of 15,000 change events must not hold back a page.
type Lane int

// Lanes, most urgent first.
const (
	// LanePage: PagerDuty triggers and resolves, which wake people.
	LanePage Lane = iota
	// LaneSlack: channel posts.
	LaneSlack
	// LaneChange: PagerDuty change events, context for responders.
	LaneChange
)

// Lanes lists every lane, most urgent first.
var Lanes = []Lane{LanePage, LaneSlack, LaneChange}

// String names the lane for logs and metrics.
func (l Lane) String() string {
	switch l {
	case LanePage:
		return "page"
	case LaneSlack:
		return "slack"
	case LaneChange:
		return "change"
	}
	return fmt.Sprintf("lane(%d)", int(l))
}

// Lane is the class the message is delivered in. Anything unknown rides
// with pages: delivering a message early is harmless, late is not.
func (m Message) Lane() Lane {
	switch {
	case m.Action == ChangeEvent:
		return LaneChange
	case m.Channel == ChannelSlack:
		return LaneSlack
	}
	return LanePage
}
