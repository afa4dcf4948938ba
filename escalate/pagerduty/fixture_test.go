package pagerduty

import (
	"time"

	"github.com/culprithq/culprit/correlate"
)

// routingKey has the shape of a real integration key; the tests check it
// never shows up in an error.
const routingKey = "e93facc04764012d7bfb002500d5d1a6"

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

// fridayFinding is the README's Friday incident as the correlator reports
// it: a proxy deploy that breaks function invocations on AWS hosts.
func fridayFinding() *correlate.Finding {
	recovered := t0.Add(95 * time.Minute)
	return &correlate.Finding{
		ID:        correlate.FindingID("edge-router", "function invocation failed: fn-<*> returned <*> from upstream <*>"),
		Service:   "edge-router",
		Kind:      correlate.KindNewError,
		Signature: "function invocation failed: fn-<*> returned <*> from upstream <*>",
		Examples: []string{
			"function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080",
			"function invocation failed: fn-1204 returned 502 from upstream 10.0.3.9:8080",
		},
		Onset:     t0.Add(1 * time.Minute),
		Detected:  t0.Add(12 * time.Minute),
		Recovered: &recovered,
		Severity:  correlate.SeverityPage,
		SeverityReasons: []string{
			"37 customers on 8 hosts affected (page needs 5 customers)",
			"q=1e-29 across 412 series (fdr 0.01)",
		},
		Headline: "edge-router 3.8.0 (deploy dep-1a2b, rolled out 16:00–16:21 UTC) is the suspected cause of a new error class " +
			"'function invocation failed: fn-<*> …' affecting 37 customers, 0.4% of requests on cloud.provider=aws; started 16:01; 4 related tickets.",
		Frequency:    correlate.Frequency{BeforePerMin: 0, AfterPerMin: 4.2, ShareBefore: 0, ShareAfter: 0.004, Count: 420},
		Significance: correlate.Significance{Method: correlate.Method, PValue: 1e-30, QValue: 1e-29, Tests: 412},
		Scope: correlate.ScopeSummary{
			Affected: map[string]int{correlate.FieldCustomer: 37, correlate.FieldSite: 40, correlate.FieldHost: 8},
			Concentration: []correlate.Concentration{
				{Field: correlate.FieldCustomer, Value: "10234", ShareOfErrors: 0.21, ShareOfRequests: 0.02},
				{Field: correlate.FieldProvider, Value: "aws", ShareOfErrors: 1, ShareOfRequests: 0.41},
				{Field: correlate.FieldVersion, Value: "3.8.0", ShareOfErrors: 1, ShareOfRequests: 0.35},
				{Field: correlate.FieldHost, Value: "edge-aws-use1-03", ShareOfErrors: 0.3, ShareOfRequests: 0.05},
			},
			Explanations: []correlate.Explanation{{
				Conditions: []correlate.Condition{{Field: correlate.FieldProvider, Value: "aws"}, {Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}},
				Errors:     420, Requests: 8400, ShareOfErrors: 1, ShareOfRequests: 0.08, ErrorRate: 0.05,
				Versus: "rest", VersusErrorRate: 0.0001, RiskRatio: 500, RiskRatioLow: 300,
			}},
		},
		SuspectedDeploys: []correlate.Suspect{{
			ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0",
			StartedAt: t0, FinishedAt: t0.Add(21 * time.Minute),
			URL:   "https://github.com/acme/edge-router/releases/tag/v3.8.0",
			Score: 0.97,
			Reasons: []string{
				"rollout alignment: errors fell on hosts running 3.8.0 (p=1e-12)",
				"version split: 100% of errors on 3.8.0, 35% of requests",
			},
		}},
		Tickets: []correlate.TicketRef{
			{ID: 88121, Subject: "Functions returning 502 since 4pm", CreatedAt: t0.Add(9 * time.Minute), OrganizationID: 10234, Reason: "organization affected"},
			{ID: 88130, Subject: "edge-router errors on resize endpoint", CreatedAt: t0.Add(14 * time.Minute), OrganizationID: 10301, Reason: "names the service", Score: 2.5},
		},
		OtherTickets: []int64{88122, 88123, 88124},
		Samples: []correlate.Sample{{
			Time: t0.Add(4*time.Minute + 5*time.Second), Host: "edge-aws-use1-03", Customer: "10234",
			Site: "shop-10234.example.net", Version: "3.8.0",
			Message: "function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080",
		}},
	}
}

var fridayDeploy = correlate.Deploy{
	ID: "dep-775a8f", Service: "edge-router", Version: "2.42.0", Environment: "production",
	StartedAt: t0, FinishedAt: t0.Add(21 * time.Minute), Author: "jo",
	URL:         "https://github.com/acme/edge-router/releases/tag/v2.42.0",
	Description: "proxy: pool upstream connections",
	Hosts: []correlate.HostRollout{
		{Name: "edge-aws-use1-03", At: t0.Add(40 * time.Second)},
		{Name: "edge-aws-use1-04", At: t0.Add(3 * time.Minute)},
	},
}

var fridayLinks = Links{
	Evidence: "https://culprit.example.com/findings/f-1",
	Kibana:   "https://kibana.example.com/app/discover#/?q=edge-router",
	Chart:    "https://culprit.example.com/findings/f-1/chart.png",
}
