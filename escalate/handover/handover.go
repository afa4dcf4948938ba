// Package handover builds the digest one support shift leaves the next —
// what is open, what was paged and who acknowledged it, which customers
// are still waiting — and queues it for the incoming shift's Slack channel
// at each shift boundary.
//
// Boundaries are found by asking each shift's cron schedule for its next
// start after the last boundary handled, which is kept as a store cursor,
// rather than by a timer of their own: Run is called after every
// evaluation with the evaluation's (injected) clock, so a boundary is
// posted within one evaluation interval, a boundary missed while culprit
// was down is posted after the restart, and a test moves through daylight
// saving time minute by minute without sleeping. The outbox queues one
// message per shift and boundary, so nothing is posted twice.
package handover

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/timeline"
)

// Reader is what a digest is built from; the daemon's store satisfies it.
type Reader interface {
	// Known returns the open incidents and those resolved at or after
	// since.
	Known(ctx context.Context, since time.Time) ([]escalate.Incident, error)
	// Events returns one incident's timeline, oldest first.
	Events(ctx context.Context, incidentID string) ([]escalate.Event, error)
	// EventsBetween returns every incident's events in [from, to).
	EventsBetween(ctx context.Context, from, to time.Time) ([]escalate.Event, error)
	// Tickets returns the tickets created in [from, to).
	Tickets(ctx context.Context, from, to time.Time) ([]correlate.Ticket, error)
}

// Customers names customers by their organization id. It is optional: a
// nil Customers leaves tickets with their organization id alone.
type Customers interface {
	Customer(id string) (correlate.Customer, bool)
}

// Options shape a digest beyond what the store holds.
type Options struct {
	// EvidenceURL gives an incident's evidence page; nil or "" means no
	// link.
	EvidenceURL func(id string) string
	// Customers, when set, names the waiting tickets' organizations.
	Customers Customers
}

// ticketLookBack bounds how far before the shift the tickets of its
// incidents are read: an incident open for longer has its older tickets
// answered, or on its evidence page.
const ticketLookBack = 7 * 24 * time.Hour

// Build is the digest of the shift from since to until, as the store has
// it at until.
//
// It names the incidents that told someone (paged, or routed to Slack) or
// say culprit is blind, and leaves out the record-only ones: nobody was
// told of those, and the incident list shows them.
func Build(ctx context.Context, r Reader, since, until time.Time, opt Options) (escalate.Handover, error) {
	h := escalate.Handover{Since: since.UTC(), Until: until.UTC(), Open: []escalate.HandoverIncident{},
		Resolved: []escalate.HandoverIncident{}, Pages: []escalate.HandoverPage{}, Waiting: []escalate.HandoverTicket{}}
	known, err := r.Known(ctx, since)
	if err != nil {
		return h, fmt.Errorf("handover: %w", err)
	}
	var named []escalate.Incident
	for _, in := range known {
		if in.OpenedAt.After(until) || !told(in) {
			continue
		}
		open := in.Status == escalate.StatusOpen || in.ResolvedAt.After(until)
		if !open && (in.ResolvedAt.Before(since) || in.ResolvedAt.IsZero()) {
			continue
		}
		evs, err := r.Events(ctx, in.ID)
		if err != nil {
			return h, fmt.Errorf("handover: %w", err)
		}
		hi := incident(in, evs, until, opt)
		if open {
			hi.Status = escalate.StatusOpen
			hi.ResolvedAt = time.Time{}
			h.Open = append(h.Open, hi)
		} else {
			h.Resolved = append(h.Resolved, hi)
		}
		named = append(named, in)
	}
	byOnset := func(a, b escalate.HandoverIncident) int {
		return cmp.Or(a.Onset.Compare(b.Onset), strings.Compare(a.ID, b.ID))
	}
	slices.SortFunc(h.Open, byOnset)
	slices.SortFunc(h.Resolved, byOnset)

	evs, err := r.EventsBetween(ctx, since, until)
	if err != nil {
		return h, fmt.Errorf("handover: %w", err)
	}
	for _, e := range evs {
		if paging(e.Kind) {
			h.Pages = append(h.Pages, escalate.HandoverPage{At: e.At.UTC(), IncidentID: e.IncidentID, Kind: e.Kind, Text: e.Text, Actor: e.Actor})
		}
	}

	if len(named) == 0 {
		return h, nil
	}
	from := since
	for _, in := range named {
		if t := cmp.Or(in.Onset, in.OpenedAt); !t.IsZero() && t.Before(from) {
			from = t
		}
	}
	from = later(from, since.Add(-ticketLookBack))
	tickets, err := r.Tickets(ctx, from, until)
	if err != nil {
		return h, fmt.Errorf("handover: %w", err)
	}
	seen := map[int64]bool{}
	for _, in := range named {
		for _, tk := range timeline.Tickets(in, tickets) {
			if seen[tk.ID] || answered(tk.Status) || tk.CreatedAt.After(until) {
				continue
			}
			seen[tk.ID] = true
			ht := escalate.HandoverTicket{ID: tk.ID, Subject: tk.Subject, Status: tk.Status, CreatedAt: tk.CreatedAt.UTC(),
				IncidentID: in.ID, Organization: tk.OrganizationID}
			if opt.Customers != nil && tk.OrganizationID != 0 {
				if c, ok := opt.Customers.Customer(strconv.FormatInt(tk.OrganizationID, 10)); ok {
					ht.Customer, ht.Tier = c.Name, c.Tier
				}
			}
			h.Waiting = append(h.Waiting, ht)
		}
	}
	slices.SortFunc(h.Waiting, func(a, b escalate.HandoverTicket) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return h, nil
}

// utc keeps a zero time zero (UTC() of a zero time is not IsZero-equal
// in JSON's omitzero sense on every platform) and moves the rest to UTC.
func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// told reports whether anyone was told of the incident, or it is
// culprit's own blindness.
func told(in escalate.Incident) bool {
	return in.Meta || in.Paged() || !in.PostedAt.IsZero() || in.Action == escalate.ActionPage || in.Action == escalate.ActionSlack
}

// answered reports whether a ticket's Zendesk status means nobody is
// waiting on it any more.
func answered(status string) bool {
	switch strings.ToLower(strings.TrimSpace(status)) {
	case "solved", "closed":
		return true
	}
	return false
}

// paging reports whether a timeline event kind belongs in the shift's
// pages: culprit's pages and page requests, and PagerDuty's incident
// events (acknowledged, escalated, resolved, …) from its webhook.
func paging(kind string) bool {
	switch kind {
	case escalate.EventPageSent, escalate.EventPageFailed, escalate.EventPageRequested, timeline.KindAcknowledged:
		return true
	}
	return strings.HasPrefix(kind, "incident.") || strings.HasPrefix(kind, "pagerduty.")
}

// acknowledged reports whether an event is PagerDuty's acknowledgement.
func acknowledged(kind string) bool {
	return kind == timeline.KindAcknowledged || kind == "incident.acknowledged" || kind == "pagerduty.acknowledged"
}

func incident(in escalate.Incident, evs []escalate.Event, until time.Time, opt Options) escalate.HandoverIncident {
	hi := escalate.HandoverIncident{ID: in.ID, Service: in.Service, Headline: headline(in), Status: in.Status,
		Severity: string(in.Severity), Action: in.Action, Onset: utc(in.Onset), PagedAt: utc(in.PagedAt),
		ResolvedAt: utc(in.ResolvedAt)}
	if in.Finding != nil {
		hi.Customers = in.Finding.Scope.Affected[correlate.FieldCustomer]
		if p := in.Finding.Priority; p != nil {
			hi.Priority = p.Level
		}
	}
	for _, e := range evs {
		if acknowledged(e.Kind) && !e.At.After(until) {
			hi.Acknowledged, hi.AcknowledgedAt = cmp.Or(e.Actor, "someone"), e.At.UTC()
			break
		}
	}
	if opt.EvidenceURL != nil {
		hi.URL = opt.EvidenceURL(in.ID)
	}
	return hi
}

// headline is the incident's one-line story.
func headline(in escalate.Incident) string {
	h := in.Service
	switch {
	case in.Finding != nil && in.Finding.Headline != "":
		h = in.Finding.Headline
	case in.Signature != "":
		h = strings.TrimPrefix(in.Service+": "+in.Signature, ": ")
	}
	return strings.Join(strings.Fields(h), " ")
}
