// Package timeline assembles an incident's retrospective timeline, the
// record a post-incident review starts from, and exports it as Markdown,
// JSON, CSV or HTML.
//
// The store keeps only culprit's own decisions as events. Deploys and
// tickets are stored once, as themselves, so Build derives their lines
// here at export time: a deploy that is later updated (more hosts, a finish
// time) then shows up correctly in every past incident's timeline, and
// nothing is written twice.
//
// Events that came from elsewhere are recognised by their kind:
// PagerDuty webhook events may be stored with their event type
// ("incident.acknowledged") or the short form ("acknowledged"), Slack and
// Zendesk ones with a "slack." or "zendesk." prefix. The agent who acted
// belongs in Event.Actor.
package timeline

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// Sources of timeline entries.
const (
	SourceCulprit   = "culprit"
	SourceDeploy    = "deploy"
	SourcePagerDuty = "pagerduty"
	SourceSlack     = "slack"
	SourceZendesk   = "zendesk"
)

// Kinds of the entries Build derives from deploys and tickets, and the
// short kind of a PagerDuty acknowledgement. Daemon events keep the kinds
// of package escalate.
const (
	KindDeployStarted  = "deploy_started"
	KindHostUpdated    = "host_updated"
	KindDeployFinished = "deploy_finished"
	KindTicketCreated  = "ticket_created"
	KindAcknowledged   = "acknowledged"
)

// Windows around the incident in which deploys of its service are shown.
// Two hours before the onset catches the deploy that set the change up
// even when the correlator did not implicate it; an hour after the end
// catches a rollback finished after the incident was resolved.
const (
	deployLookBefore = 2 * time.Hour
	deployLookAfter  = time.Hour
)

// Entry is one line of the timeline.
type Entry struct {
	At   time.Time `json:"at"`
	Kind string    `json:"kind"`
	Text string    `json:"text"`
	// Actor is who acted: a deploy's author, the PagerDuty agent, the
	// ticket's organization. Empty for culprit's own decisions.
	Actor string `json:"actor,omitempty"`
	// Source is one of the Source constants.
	Source string `json:"source"`
}

// Timeline is an incident with everything that happened around it, in
// order, and the response times a review asks about.
type Timeline struct {
	Incident escalate.Incident
	Entries  []Entry
	Metrics  Metrics
	// Review is the review's sections; nil until AddReview, and then
	// the exports leave them out.
	Review *Review
}

// Metrics are the moments of an incident and the intervals between them.
// A zero time is unknown. A duration is meaningful only when its Known
// flag is set: zero is a legitimate value (a page sent at the onset) and
// must not be confused with "never happened".
type Metrics struct {
	Onset, Detected, Paged, Acknowledged, Recovered, Resolved time.Time
	// Rollback is when the first rollback deploy started.
	Rollback time.Time

	// TimeToDetect, TimeToPage and TimeToRecover are measured from the
	// onset. TimeToAcknowledge is measured from the page, because it is
	// how long on-call took to respond, not how long the incident ran.
	// RollbackToRecover is from the rollback's start to the recovery.
	TimeToDetect, TimeToPage, TimeToAcknowledge, TimeToRecover, RollbackToRecover time.Duration

	KnownTimeToDetect, KnownTimeToPage, KnownTimeToAcknowledge, KnownTimeToRecover, KnownRollbackToRecover bool
}

// Build assembles the timeline of in from its stored events and the stored
// deploys and tickets, which may be a superset: Build keeps the ones that
// belong to the incident. Events of another incident (a non-empty,
// different IncidentID) are ignored.
//
// Deploys shown: the suspected ones, and every deploy of the incident's
// service that started from two hours before the onset to an hour after
// the incident ended (resolved, else last seen). Tickets shown: the ones
// the finding links, and those created while the incident lasted by an
// organization the finding names as affected.
func Build(in escalate.Incident, events []escalate.Event, deploys []correlate.Deploy, tickets []correlate.Ticket) Timeline {
	var entries []Entry
	for _, ev := range events {
		if ev.IncidentID != "" && in.ID != "" && ev.IncidentID != in.ID {
			continue
		}
		src, kind := classify(ev.Kind)
		entries = append(entries, Entry{At: ev.At.UTC(), Kind: kind, Text: ev.Text, Actor: ev.Actor, Source: src})
	}

	shown := relevantDeploys(in, deploys)
	for _, d := range shown {
		entries = append(entries, deployEntries(d.deploy, d.label)...)
	}
	for _, tk := range relevantTickets(in, tickets) {
		e := Entry{At: tk.CreatedAt.UTC(), Kind: KindTicketCreated, Text: fmt.Sprintf("#%d %s", tk.ID, tk.Subject), Source: SourceZendesk}
		if tk.OrganizationID != 0 {
			e.Actor = fmt.Sprintf("org %d", tk.OrganizationID)
		}
		entries = append(entries, e)
	}

	slices.SortFunc(entries, compareEntries)
	entries = slices.CompactFunc(entries, func(a, b Entry) bool { return compareEntries(a, b) == 0 })

	var rollback time.Time
	for _, d := range shown {
		if d.label == labelRollback && !d.deploy.StartedAt.IsZero() {
			rollback = d.deploy.StartedAt.UTC()
			break
		}
	}
	return Timeline{Incident: in, Entries: entries, Metrics: metrics(in, entries, rollback)}
}

// culpritKinds are the kinds the daemon writes itself.
var culpritKinds = map[string]bool{
	escalate.EventOnset: true, escalate.EventDetected: true, escalate.EventEscalated: true,
	escalate.EventSuspect: true, escalate.EventPageQueued: true, escalate.EventPageSent: true,
	escalate.EventPageFailed: true, escalate.EventRecovered: true, escalate.EventResolved: true,
	escalate.EventReopened: true, escalate.EventSilenced: true, escalate.EventPriority: true,
}

// pagerDutyKinds are PagerDuty incident events whose short form does not
// collide with one of culprit's kinds; "resolved" and "escalated" need the
// "incident." or "pagerduty." prefix to be told apart.
var pagerDutyKinds = map[string]bool{
	KindAcknowledged: true, "unacknowledged": true, "reassigned": true, "delegated": true,
	"annotated": true, "triggered": true, "priority_updated": true, "status_update_published": true,
	"responder.added": true, "responder.replied": true,
}

// classify says where a stored event came from, and its kind without the
// source's prefix.
func classify(kind string) (source, short string) {
	if culpritKinds[kind] {
		return SourceCulprit, kind
	}
	if prefix, rest, ok := strings.Cut(kind, "."); ok && rest != "" {
		switch prefix {
		case "incident", SourcePagerDuty:
			return SourcePagerDuty, rest
		case SourceSlack, SourceZendesk, SourceCulprit:
			return prefix, rest
		}
	}
	if pagerDutyKinds[kind] {
		return SourcePagerDuty, kind
	}
	return SourceCulprit, kind
}

// Deploy labels, which say why a deploy is on the timeline.
const (
	labelSuspect  = "suspect deploy"
	labelRollback = "rollback"
	labelLater    = "later deploy"
	labelEarlier  = "earlier deploy"
)

type labelled struct {
	deploy correlate.Deploy
	label  string
}

// relevantDeploys picks and labels the deploys to show, in start order.
func relevantDeploys(in escalate.Incident, deploys []correlate.Deploy) []labelled {
	var suspects []correlate.Suspect
	if in.Finding != nil {
		suspects = in.Finding.SuspectedDeploys
	}
	isSuspect := make(map[string]bool, len(suspects))
	for _, s := range suspects {
		isSuspect[s.ID] = true
	}

	// The primary suspect is the best-ranked one we know about; rollbacks
	// are judged against it.
	byID := make(map[string]correlate.Deploy, len(deploys))
	for _, d := range deploys {
		if _, dup := byID[d.ID]; !dup {
			byID[d.ID] = d
		}
	}
	var primary *correlate.Deploy
	for _, s := range suspects {
		d, ok := byID[s.ID]
		if !ok {
			// A suspect the store no longer has still belongs on the
			// timeline, with what the finding remembers of it.
			d = correlate.Deploy{ID: s.ID, Service: s.Service, Version: s.Version, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
			byID[s.ID] = d
		}
		if primary == nil {
			primary = &d
		}
	}
	prevVersion := ""
	if primary != nil {
		var prev *correlate.Deploy
		for i, d := range deploys {
			if d.Service == primary.Service && d.ID != primary.ID && d.StartedAt.Before(primary.StartedAt) &&
				(prev == nil || d.StartedAt.After(prev.StartedAt)) {
				prev = &deploys[i]
			}
		}
		if prev != nil {
			prevVersion = prev.Version
		}
	}

	from, to := in.Onset.Add(-deployLookBefore), incidentEnd(in)
	if !to.IsZero() {
		to = to.Add(deployLookAfter)
	}
	pivot := in.Onset
	if primary != nil {
		pivot = primary.StartedAt
	}

	var out []labelled
	for _, d := range byID {
		switch {
		case isSuspect[d.ID]:
			out = append(out, labelled{d, labelSuspect})
		case d.Service != in.Service || in.Onset.IsZero() || d.StartedAt.Before(from) || (!to.IsZero() && d.StartedAt.After(to)):
			continue
		case in.Finding != nil && in.Finding.Recovery != nil && in.Finding.Recovery.Rollback && d.ID == in.Finding.Recovery.DeployID:
			out = append(out, labelled{d, labelRollback})
		case d.StartedAt.After(pivot) && (saysRollback(d) || (primary != nil && d.Service == primary.Service && prevVersion != "" && d.Version == prevVersion)):
			out = append(out, labelled{d, labelRollback})
		case d.StartedAt.After(pivot):
			out = append(out, labelled{d, labelLater})
		default:
			out = append(out, labelled{d, labelEarlier})
		}
	}
	slices.SortFunc(out, func(a, b labelled) int {
		return cmp.Or(a.deploy.StartedAt.Compare(b.deploy.StartedAt), strings.Compare(a.deploy.ID, b.deploy.ID))
	})
	return out
}

// saysRollback reports whether a deploy's own words call it a rollback.
func saysRollback(d correlate.Deploy) bool { return correlate.SaysRollback(d) }

// incidentEnd is when the incident stopped: resolved, else last seen, else
// recovered. Zero when none is known, meaning "still going".
func incidentEnd(in escalate.Incident) time.Time {
	for _, t := range []time.Time{in.ResolvedAt, in.LastSeen, in.Recovered} {
		if !t.IsZero() {
			return t
		}
	}
	return time.Time{}
}

func deployEntries(d correlate.Deploy, label string) []Entry {
	what := strings.TrimSpace(d.Service + " " + d.Version)
	head := fmt.Sprintf("%s %s: %s", label, d.ID, what)
	var out []Entry
	if !d.StartedAt.IsZero() {
		text := head
		if n := len(d.Hosts); n > 0 {
			text += fmt.Sprintf(" (%d %s)", n, plural(n, "host", "hosts"))
		}
		if d.Description != "" {
			text += " — " + d.Description
		}
		out = append(out, Entry{At: d.StartedAt.UTC(), Kind: KindDeployStarted, Text: text, Actor: d.Author, Source: SourceDeploy})
	}
	for _, h := range d.Hosts {
		if h.At.IsZero() {
			continue
		}
		out = append(out, Entry{At: h.At.UTC(), Kind: KindHostUpdated, Text: fmt.Sprintf("%s on %s (%s)", h.Name, what, d.ID), Source: SourceDeploy})
	}
	if !d.FinishedAt.IsZero() {
		text := head
		if !d.StartedAt.IsZero() && !d.FinishedAt.Before(d.StartedAt) {
			text += ", rolled out in " + formatDuration(d.FinishedAt.Sub(d.StartedAt))
		}
		out = append(out, Entry{At: d.FinishedAt.UTC(), Kind: KindDeployFinished, Text: text, Actor: d.Author, Source: SourceDeploy})
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// relevantTickets are the finding's linked tickets plus tickets created
// during the incident by an affected organization, in creation order.
func relevantTickets(in escalate.Incident, tickets []correlate.Ticket) []correlate.Ticket {
	linked := map[int64]bool{}
	orgs := map[int64]bool{}
	if f := in.Finding; f != nil {
		for _, r := range f.Tickets {
			linked[r.ID] = true
			if r.OrganizationID != 0 {
				orgs[r.OrganizationID] = true
			}
		}
		for _, c := range f.Scope.Concentration {
			if c.Field == correlate.FieldCustomer {
				addOrg(orgs, c.Value)
			}
		}
		for _, s := range f.Samples {
			addOrg(orgs, s.Customer)
		}
	}
	end := incidentEnd(in)
	seen := map[int64]bool{}
	var out []correlate.Ticket
	for _, tk := range tickets {
		if seen[tk.ID] {
			continue
		}
		during := !in.Onset.IsZero() && !tk.CreatedAt.Before(in.Onset) && (end.IsZero() || !tk.CreatedAt.After(end))
		if linked[tk.ID] || (during && tk.OrganizationID != 0 && orgs[tk.OrganizationID]) {
			seen[tk.ID] = true
			out = append(out, tk)
		}
	}
	slices.SortFunc(out, func(a, b correlate.Ticket) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out
}

func addOrg(orgs map[int64]bool, v string) {
	if id, err := strconv.ParseInt(v, 10, 64); err == nil && id != 0 {
		orgs[id] = true
	}
}

// kindOrder breaks ties between entries at the same instant so that cause
// reads before effect: a deploy before the onset it caused, a detection
// before the page it led to.
var kindOrder = map[string]int{
	KindDeployStarted:        0,
	KindHostUpdated:          1,
	KindDeployFinished:       2,
	escalate.EventOnset:      3,
	escalate.EventDetected:   4,
	escalate.EventPriority:   4,
	escalate.EventSuspect:    5,
	escalate.EventEscalated:  6,
	escalate.EventSilenced:   7,
	escalate.EventPageQueued: 8,
	escalate.EventPageSent:   9,
	escalate.EventPageFailed: 10,
	"triggered":              11,
	KindAcknowledged:         12,
	// A question in Slack comes before the button pressed on its answer.
	"query":                 13,
	"page_requested":        14,
	KindTicketCreated:       16,
	escalate.EventRecovered: 17,
	escalate.EventResolved:  18,
	escalate.EventReopened:  19,
}

func rank(e Entry) int {
	if r, ok := kindOrder[e.Kind]; ok {
		return r
	}
	return 15 // other vendor events sit between the page and the tickets
}

func compareEntries(a, b Entry) int {
	return cmp.Or(
		a.At.Compare(b.At),
		cmp.Compare(rank(a), rank(b)),
		strings.Compare(a.Kind, b.Kind),
		strings.Compare(a.Source, b.Source),
		strings.Compare(a.Text, b.Text),
		strings.Compare(a.Actor, b.Actor),
	)
}

func metrics(in escalate.Incident, entries []Entry, rollback time.Time) Metrics {
	first := func(source, kind string) time.Time {
		for _, e := range entries {
			if e.Source == source && e.Kind == kind && !e.At.IsZero() {
				return e.At
			}
		}
		return time.Time{}
	}
	or := func(ts ...time.Time) time.Time {
		for _, t := range ts {
			if !t.IsZero() {
				return t.UTC()
			}
		}
		return time.Time{}
	}
	var findingRecovered time.Time
	if in.Finding != nil && in.Finding.Recovered != nil {
		findingRecovered = *in.Finding.Recovered
	}
	m := Metrics{
		Onset:        or(in.Onset, first(SourceCulprit, escalate.EventOnset)),
		Detected:     or(first(SourceCulprit, escalate.EventDetected), in.OpenedAt),
		Paged:        or(first(SourceCulprit, escalate.EventPageSent), first(SourceCulprit, escalate.EventPageQueued), in.PagedAt),
		Acknowledged: first(SourcePagerDuty, KindAcknowledged),
		Recovered:    or(in.Recovered, first(SourceCulprit, escalate.EventRecovered), findingRecovered),
		Resolved:     or(in.ResolvedAt),
		Rollback:     rollback,
	}
	m.TimeToDetect, m.KnownTimeToDetect = between(m.Onset, m.Detected)
	m.TimeToPage, m.KnownTimeToPage = between(m.Onset, m.Paged)
	m.TimeToAcknowledge, m.KnownTimeToAcknowledge = between(m.Paged, m.Acknowledged)
	m.TimeToRecover, m.KnownTimeToRecover = between(m.Onset, m.Recovered)
	m.RollbackToRecover, m.KnownRollbackToRecover = between(m.Rollback, m.Recovered)
	return m
}

func between(from, to time.Time) (time.Duration, bool) {
	if from.IsZero() || to.IsZero() {
		return 0, false
	}
	return to.Sub(from), true
}

// Tickets are the tickets of tickets that belong to in, in creation order:
// the ones its finding links, and those its affected organizations filed
// while it lasted. The timeline shows them; a handover lists the ones
// still waiting.
func Tickets(in escalate.Incident, tickets []correlate.Ticket) []correlate.Ticket {
	return relevantTickets(in, tickets)
}
