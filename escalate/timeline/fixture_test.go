package timeline

import (
	"fmt"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// day is the Friday of the incident; at(h, m) is a moment on it.
var day = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

const signature = "function invocation failed: fn-<*> returned <*> from upstream <*>"

// friday is the whole Friday incident: a proxy deploy at 16:02 breaks
// function invocations host by host, culprit pages at 16:05, Alice
// acknowledges at 16:09, a customer files #101 at 16:20, the rollback
// starts at 17:10, errors stop at 17:14 and the incident resolves at 17:28.
func friday() (escalate.Incident, []escalate.Event, []correlate.Deploy, []correlate.Ticket) {
	recovered := at(17, 14)
	in := escalate.Incident{
		ID: "inc-0f1e2d3c4b", Key: "culprit/edge-router/f-5e6f7a8b/dep-1a2b", Service: "edge-router",
		Signature: signature, Kind: correlate.KindNewError, Status: escalate.StatusResolved,
		Action: escalate.ActionPage, Why: "route always", Severity: correlate.SeverityPage,
		OpenedAt: at(16, 5), Onset: at(16, 2), PagedAt: at(16, 5), LastSeen: at(17, 14),
		Recovered: recovered, ResolvedAt: at(17, 28),
		Finding: &correlate.Finding{
			ID: "f-5e6f7a8b", Service: "edge-router", Kind: correlate.KindNewError, Signature: signature,
			Onset: at(16, 2), Detected: at(16, 5), Recovered: &recovered, Severity: correlate.SeverityPage,
			Headline: "edge-router 3.8.0 (deploy dep-1a2b, rolled out 16:02–16:22 UTC) is the suspected cause of a new error class '" +
				signature + "' affecting 37 customers; started 16:02; 1 related ticket",
			Scope: correlate.ScopeSummary{Concentration: []correlate.Concentration{
				{Field: correlate.FieldProvider, Value: "aws", ShareOfErrors: 1, ShareOfRequests: 0.4},
			}},
			SuspectedDeploys: []correlate.Suspect{{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", StartedAt: at(16, 2), Score: 0.97}},
			Tickets:          []correlate.TicketRef{{ID: 101, Subject: "Functions return 502 since 4pm", CreatedAt: at(16, 20), OrganizationID: 10234}},
		},
	}
	ev := func(t time.Time, kind, text, actor string) escalate.Event {
		return escalate.Event{IncidentID: in.ID, At: t, Kind: kind, Text: text, Actor: actor}
	}
	events := []escalate.Event{
		ev(at(16, 2), escalate.EventOnset, "errors of '"+signature+"' on edge-router start", ""),
		ev(at(16, 5), escalate.EventDetected, in.Finding.Headline, ""),
		ev(at(16, 5), escalate.EventSuspect, "suspected deploy dep-1a2b (edge-router 3.8.0, score 0.97): hosts broke in rollout order", ""),
		ev(at(16, 5), escalate.EventPageQueued, "page queued (route always)", ""),
		ev(at(16, 5).Add(2*time.Second), escalate.EventPageSent, "PagerDuty accepted the trigger", ""),
		ev(at(16, 9), KindAcknowledged, "acknowledged in PagerDuty", "Alice"),
		ev(at(17, 14), escalate.EventRecovered, "errors back at baseline", ""),
		ev(at(17, 28), escalate.EventResolved, "resolved: back at baseline for 10 buckets", ""),
	}

	var suspectHosts, rollbackHosts []correlate.HostRollout
	for i := range 8 {
		name := fmt.Sprintf("edge-aws-use1-%02d", i+1)
		suspectHosts = append(suspectHosts, correlate.HostRollout{Name: name, At: at(16, 2).Add(time.Duration(i+1) * 150 * time.Second)})
		rollbackHosts = append(rollbackHosts, correlate.HostRollout{Name: name, At: at(17, 10).Add(time.Duration(i+1) * 30 * time.Second)})
	}
	deploys := []correlate.Deploy{
		// The release before the suspect, two days earlier: too old to
		// show, but it tells which version a rollback returns to.
		{ID: "dep-0c0c", Service: "edge-router", Version: "3.7.4", StartedAt: day.Add(-46 * time.Hour), FinishedAt: day.Add(-45 * time.Hour), Author: "sam"},
		{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", Environment: "production", StartedAt: at(16, 2), FinishedAt: at(16, 22),
			Author: "jo", Description: "faster upstream pool", Hosts: suspectHosts},
		// Another service deploying during the incident is not part of it.
		{ID: "dep-api7", Service: "api", Version: "2026.11.20", StartedAt: at(16, 30), FinishedAt: at(16, 34), Author: "kim"},
		{ID: "dep-9f9f", Service: "edge-router", Version: "3.7.4", Environment: "production", StartedAt: at(17, 10), FinishedAt: at(17, 14),
			Author: "jo", Hosts: rollbackHosts},
	}
	tickets := []correlate.Ticket{
		{ID: 101, CreatedAt: at(16, 20), Subject: "Functions return 502 since 4pm", OrganizationID: 10234, Priority: "high"},
		// Another customer's unrelated question.
		{ID: 102, CreatedAt: at(16, 40), Subject: "Invoice address", OrganizationID: 20001},
	}
	return in, events, deploys, tickets
}
