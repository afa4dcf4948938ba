package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/pagerduty"
	"github.com/culprithq/culprit/escalate/slack"
)

// This file joins what people do (ask in Slack, press "Page on-call",
// acknowledge in PagerDuty) to the incidents the daemon keeps. Every
// change to an incident goes through the evaluator's exclusive section, so
// an evaluation in progress never writes back a copy older than the
// person's change.

// slackBridge answers /correlate and the Slack buttons from the daemon's
// own source, store and outbox.
type slackBridge struct{ s *server }

// Correlate runs one correlation for a question from Slack. It reads the
// same source and deploys as the daemon, narrowed to what was asked, and
// gives every finding an incident (the daemon's own when it already has
// one) so the answer can link its evidence page and offer the page button.
func (b slackBridge) Correlate(ctx context.Context, q slack.Query) (slack.Answer, error) {
	s := b.s
	now := s.now()
	to, from := q.To, q.From
	if to.IsZero() {
		to = now
	}
	if from.IsZero() {
		from = to.Add(-q.Since)
	}
	step := s.cfg.Correlate.Bucket.D()
	w, err := correlate.NewWindow(from, to, step)
	if err != nil {
		return slack.Answer{}, fmt.Errorf("window: %w", err)
	}
	deploys, err := s.store.Deploys(ctx, w.From.Add(-s.cfg.Correlate.AttributionWindow.D()), w.To)
	if err != nil {
		return slack.Answer{}, err
	}
	tickets, err := s.store.Tickets(ctx, w.From, w.To)
	if err != nil {
		return slack.Answer{}, err
	}
	var src correlate.Source = s.source
	if q.Service != "" {
		src = oneService{Source: s.source, service: q.Service}
	}
	res, err := correlate.Run(ctx, src, correlate.Input{Window: w, Deploys: deploys, Tickets: tickets, Now: now,
		Customers: s.customers, Priority: &s.cfg.Priority}, s.cfg.Correlate)
	if err != nil {
		return slack.Answer{}, fmt.Errorf("correlate %s: %w", describeQuery(q, w), err)
	}
	var keep []correlate.Finding
	for _, f := range res.Findings {
		if matchesQuery(f, q) {
			keep = append(keep, f)
		}
	}
	ans := slack.Answer{Headline: answerHeadline(q, w, len(keep))}
	if len(keep) == 0 {
		return ans, nil
	}
	err = s.eval.Exclusive(func() error {
		known, err := s.store.Known(ctx, now.Add(-s.cfg.Evaluation.ReopenCooldown.D()))
		if err != nil {
			return err
		}
		var changes []escalate.Change
		for i := range keep {
			in, ch := escalate.Asked(known, &keep[i], now, "", "/correlate in Slack")
			changes = append(changes, ch)
			known = append(known, in)
			ans.Items = append(ans.Items, slack.Item{Finding: keep[i], IncidentID: in.ID,
				EvidenceURL: s.evidenceURL(in.ID), ChartURL: s.chartURL(in.ID)})
		}
		return s.store.Apply(ctx, changes)
	})
	if err != nil {
		return slack.Answer{}, fmt.Errorf("record findings: %w", err)
	}
	return ans, nil
}

// Page is the "Page on-call" button.
func (b slackBridge) Page(ctx context.Context, incidentID string, by slack.Actor) error {
	s := b.s
	err := s.eval.Exclusive(func() error {
		in, err := s.store.Incident(ctx, incidentID)
		if err != nil {
			return err
		}
		ch, err := escalate.PageByHand(in, s.now(), actorName(by), "Slack")
		if err != nil {
			return err
		}
		return s.store.Apply(ctx, []escalate.Change{ch})
	})
	if err != nil {
		return err
	}
	s.outbox.Kick()
	return nil
}

// Record writes what happened in Slack on the incident's timeline. A
// question not yet tied to an incident is only logged: the findings it
// produces get their own "asked" event.
func (b slackBridge) Record(ctx context.Context, incidentID, kind, text string, by slack.Actor) error {
	if incidentID == "" {
		b.s.log.Info("slack", "kind", kind, "text", text, "user", actorName(by), "channel", by.ChannelID)
		return nil
	}
	// The timeline tells Slack's events by their "slack." prefix.
	return b.s.store.AddEvent(ctx, escalate.Event{IncidentID: incidentID, At: b.s.now(), Kind: "slack." + strings.TrimPrefix(kind, "slack_"), Text: text, Actor: actorName(by)})
}

func actorName(a slack.Actor) string {
	switch {
	case a.UserName != "" && a.UserID != "":
		return "@" + a.UserName + " (" + a.UserID + ")"
	case a.UserName != "":
		return "@" + a.UserName
	case a.UserID != "":
		return a.UserID
	}
	return "someone in Slack"
}

// matchesQuery keeps the findings a question is about: its error text in
// the signature or an example, and its customer among those affected.
func matchesQuery(f correlate.Finding, q slack.Query) bool {
	if q.Text != "" {
		t := strings.ToLower(q.Text)
		hit := strings.Contains(strings.ToLower(f.Signature), t)
		for _, e := range f.Examples {
			hit = hit || strings.Contains(strings.ToLower(e), t)
		}
		if !hit {
			return false
		}
	}
	if q.Customer != "" {
		for _, v := range f.Scope.Top[correlate.FieldCustomer] {
			if v.Value == q.Customer {
				return true
			}
		}
		return false
	}
	return true
}

func describeQuery(q slack.Query, w correlate.Window) string {
	what := "every service"
	if q.Service != "" {
		what = q.Service
	}
	return fmt.Sprintf("%s from %s to %s UTC", what, w.From.Format("Jan 2 15:04"), w.To.Format("Jan 2 15:04"))
}

func answerHeadline(q slack.Query, w correlate.Window, n int) string {
	var b strings.Builder
	switch n {
	case 0:
		b.WriteString("Nothing changed")
	default:
		b.WriteString(correlate.Plural(n, "change"))
		b.WriteString(" found")
	}
	fmt.Fprintf(&b, " for %s", describeQuery(q, w))
	if q.Text != "" {
		fmt.Fprintf(&b, ` matching "%s"`, q.Text)
	}
	if q.Customer != "" {
		if n == 0 {
			fmt.Fprintf(&b, " involving customer %s: their errors are not part of a wider change", q.Customer)
		} else {
			fmt.Fprintf(&b, " involving customer %s: their errors are part of it", q.Customer)
		}
	}
	b.WriteString(".")
	return b.String()
}

// oneService narrows a source to the service a question names.
type oneService struct {
	correlate.Source
	service string
}

// Unwrap is the narrowed source, for the capabilities oneService passes
// through untouched.
func (o oneService) Unwrap() correlate.Source { return o.Source }

func (o oneService) Traffic(ctx context.Context, w correlate.Window) (*correlate.Traffic, error) {
	tr, err := o.Source.Traffic(ctx, w)
	if err != nil {
		return nil, err
	}
	kept := tr.Services[:0]
	for _, sv := range tr.Services {
		if sv.Service == o.service {
			kept = append(kept, sv)
		}
	}
	tr.Services = kept
	return tr, nil
}

// pdSink writes PagerDuty's webhook events (acknowledged, resolved,
// reassigned...) on the timeline of the incident whose dedup key PagerDuty
// names. PagerDuty retries deliveries, so each event id is taken once.
type pdSink struct{ s *server }

func (p pdSink) PagerDutyEvent(ctx context.Context, e pagerduty.WebhookEvent) error {
	s := p.s
	if e.IncidentKey == "" {
		s.log.Debug("pagerduty webhook: incident without a dedup key, not culprit's", "event", e.ID, "type", e.Type)
		return nil
	}
	in, err := s.store.IncidentByKey(ctx, e.IncidentKey)
	if errors.Is(err, fs.ErrNotExist) {
		s.log.Debug("pagerduty webhook: no incident with that key", "event", e.ID, "type", e.Type)
		return nil
	}
	if err != nil {
		return err
	}
	first, err := s.store.FirstDelivery(ctx, "pagerduty", e.ID)
	if err != nil || !first {
		return err
	}
	text := strings.TrimPrefix(e.Type, "incident.") + " in PagerDuty"
	if e.Note != "" {
		text += ": " + e.Note
	}
	if e.HTMLURL != "" {
		text += " (" + e.HTMLURL + ")"
	}
	return s.store.AddEvent(ctx, escalate.Event{IncidentID: in.ID, At: e.OccurredAt, Kind: e.Type, Text: text, Actor: e.Agent})
}
