package pagerduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// RetryDelay is the wait the server asked for, so the outbox can honour
// Retry-After without knowing PagerDuty.
func (e *Error) RetryDelay() time.Duration { return e.RetryAfter }

// Deliverer sends outbox messages for the PagerDuty channel. Events are
// rendered at delivery from the incident as it was when the message was
// queued, so a retry sends the very same page.
type Deliverer struct {
	// Notifier sends the events: the Events API (*Notifier), or a
	// LogSender where no PagerDuty is wanted (the demo, a dry run).
	Notifier Sender
	// RoutingKey is the integration key for a service ("" if none).
	RoutingKey func(service string) string
	// RouteKey is the integration key of a route that has its own (the
	// support on-call's), "" for one that has none; nil, none has.
	RouteKey func(route string) string
	// Links are the evidence URLs of an incident.
	Links func(in *escalate.Incident) Links
}

// Sender is what delivers rendered events; its error contract is
// Notifier.Notify's (retry reports whether a failure is worth retrying).
type Sender interface {
	Notify(ctx context.Context, ev *pd.V2Event) (retry bool, err error)
	Change(ctx context.Context, ev pd.ChangeEvent) (retry bool, err error)
}

// Deliver implements the outbox's Notifier.
func (d *Deliverer) Deliver(ctx context.Context, m escalate.Message) (retry bool, err error) {
	key := d.RoutingKey(m.Service)
	if d.RouteKey != nil && (m.Action == escalate.Trigger || m.Action == escalate.Resolve) {
		// A page and its resolve go where the deciding route sends them.
		var in struct {
			Route string `json:"route"`
		}
		if err := json.Unmarshal(m.Body, &in); err == nil && in.Route != "" {
			if k := d.RouteKey(in.Route); k != "" {
				key = k
			}
		}
	}
	if key == "" {
		return false, fmt.Errorf("no PagerDuty routing key for service %q: set pagerduty.routing_key or the service's routing_key", m.Service)
	}
	switch m.Action {
	case escalate.Trigger:
		var in escalate.Incident
		if err := json.Unmarshal(m.Body, &in); err != nil {
			return false, fmt.Errorf("decode queued incident %s: %w", m.IncidentID, err)
		}
		f := in.Finding
		if f == nil {
			// The blindness meta-incident has no finding; its text is
			// the page, at low urgency (severity warning).
			f = &correlate.Finding{Service: in.Service, Signature: in.Signature, Headline: in.Signature,
				Severity: correlate.SeverityNotify, Kind: "blindness", Onset: in.Onset, Detected: in.OpenedAt}
		}
		var l Links
		if d.Links != nil {
			l = d.Links(&in)
		}
		return d.Notifier.Notify(ctx, Trigger(key, m.Key, f, l))
	case escalate.Resolve:
		return d.Notifier.Notify(ctx, Resolve(key, m.Key))
	case escalate.ChangeEvent:
		var dep correlate.Deploy
		if err := json.Unmarshal(m.Body, &dep); err != nil {
			return false, fmt.Errorf("decode queued deploy: %w", err)
		}
		return d.Notifier.Change(ctx, ChangeFromDeploy(key, dep))
	}
	return false, errors.New("unknown PagerDuty action " + m.Action)
}
