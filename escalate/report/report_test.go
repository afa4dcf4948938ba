package report

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
)

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

func sample() *correlate.Result {
	return &correlate.Result{From: t0.Add(-4 * time.Hour), To: t0.Add(2 * time.Hour), Findings: []correlate.Finding{{
		ID: "f-1", Service: "edge-router", Kind: correlate.KindNewError, Signature: "boom <*>",
		Examples: []string{"boom 1"}, Onset: t0, Severity: correlate.SeverityPage,
		Headline:     "edge-router v2 (deploy d1) is the suspected cause of a new error class 'boom <*>'",
		Frequency:    correlate.Frequency{AfterPerMin: 4.2, ShareAfter: 0.004, Count: 420},
		Significance: correlate.Significance{Method: correlate.Method, PValue: 1e-30, QValue: 1e-29, Tests: 12},
		Scope: correlate.ScopeSummary{Affected: map[string]int{"organization.id": 37, "url.domain": 40, "host.name": 8}, Concentration: []correlate.Concentration{{Field: "cloud.provider", Value: "aws", ShareOfErrors: 1, ShareOfRequests: 0.41}},
			Explanations: []correlate.Explanation{{Conditions: []correlate.Condition{{Field: "cloud.provider", Value: "aws"}, {Field: "url.path", Value: "/.fn/*", Prefix: true}},
				Errors: 420, Requests: 8400, ShareOfErrors: 1, ShareOfRequests: 0.08, ErrorRate: 0.05, Versus: "rest", VersusErrorRate: 0.0001, RiskRatio: 500, RiskRatioLow: 300}}},
		SuspectedDeploys: []correlate.Suspect{},
		Tickets:          []correlate.TicketRef{},
	}}}
}

// The JSON shape is a contract that tests outside this repository rely on.
func TestJSONContract(t *testing.T) {
	var b bytes.Buffer
	if err := JSON(&b, sample()); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		From, To string
		Findings []map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	f := doc.Findings[0]
	for _, k := range []string{"id", "service", "kind", "signature", "examples", "onset", "recovered", "severity", "frequency", "significance", "scope", "suspected_deploys", "tickets"} {
		if _, ok := f[k]; !ok {
			t.Errorf("finding lacks %q", k)
		}
	}
	if f["recovered"] != nil {
		t.Errorf("recovered = %v, want null while not recovered", f["recovered"])
	}
	if sd, ok := f["suspected_deploys"].([]any); !ok || len(sd) != 0 {
		t.Errorf("suspected_deploys = %#v, want []", f["suspected_deploys"])
	}
	if ex, ok := f["scope"].(map[string]any)["explanations"].([]any); !ok || len(ex) != 1 || ex[0].(map[string]any)["risk_ratio"] != 500.0 {
		t.Errorf("scope.explanations = %#v, want the one explanation with its risk ratio", f["scope"].(map[string]any)["explanations"])
	}
	aff := f["scope"].(map[string]any)["affected"].(map[string]any)
	if aff["organization.id"] != 37.0 {
		t.Errorf("affected = %v", aff)
	}
	for _, k := range []string{"before_per_min", "after_per_min", "share_before", "share_after", "count"} {
		if _, ok := f["frequency"].(map[string]any)[k]; !ok {
			t.Errorf("frequency lacks %q", k)
		}
	}
}

func TestTextOpensWithHeadline(t *testing.T) {
	var b bytes.Buffer
	if err := Text(&b, sample()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	first := strings.SplitN(out, "\n\n", 3)[1]
	if !strings.HasPrefix(first, "[PAGE] edge-router v2 (deploy d1)") {
		t.Errorf("first finding line = %q", first)
	}
	for _, want := range []string{"cloud.provider=aws", "100% of the errors", "41% of edge-router requests", "0.4% of all edge-router requests after onset",
		"Explained by  1. cloud.provider=aws ∧ url.path=/.fn/*: 100% of the errors, 8.0% of edge-router requests; 5.0% of these requests failed, 500× the rest (0.01%)", "order 10^0", "about 1 in 250", "37 customers", "none: no deploy"} {
		if !strings.Contains(out, want) {
			t.Errorf("text report lacks %q:\n%s", want, out)
		}
	}
	b.Reset()
	if err := Text(&b, &correlate.Result{From: t0, To: t0.Add(time.Hour), Stats: correlate.RunStats{Tested: 5, Services: 2}}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(b.String(), "No significant change in 5 series from 2 services") {
		t.Errorf("quiet report = %q", b.String())
	}
}

func TestSparklineAndMagnitude(t *testing.T) {
	if got := Sparkline([]float64{0, 0, 1, 8}, 4); got != "│  ▂█│" {
		t.Errorf("sparkline = %q", got)
	}
	if got := Magnitude(0.004); got != "order 10^-3" {
		t.Errorf("magnitude = %q", got)
	}
}

func TestLinks(t *testing.T) {
	links := []correlate.Link{
		{Title: "Kibana Discover", URL: "http://localhost:5601/app/discover#/?_g=(time:(from:'x',to:'y'))"},
		{URL: "https://grafana.example.com/d/edge"},
	}
	tests := []struct {
		name      string
		links     []correlate.Link
		wantText  []string
		wantJSON  string // the "links" value, "" when absent
		forbidden []string
	}{
		{
			name:  "two links",
			links: links,
			wantText: []string{
				"  Links         Kibana Discover: http://localhost:5601/app/discover#/?_g=(time:(from:'x',to:'y'))\n",
				"                -: https://grafana.example.com/d/edge\n",
			},
			wantJSON: `[{"title":"Kibana Discover","url":"http://localhost:5601/app/discover#/?_g=(time:(from:'x',to:'y'))"},{"title":"","url":"https://grafana.example.com/d/edge"}]`,
		},
		{name: "none", forbidden: []string{"Links"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := sample()
			r.Findings[0].Links = tc.links
			var b bytes.Buffer
			if err := Text(&b, r); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			for _, w := range tc.wantText {
				if !strings.Contains(out, w) {
					t.Errorf("text report lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.forbidden {
				if strings.Contains(out, w) {
					t.Errorf("text report has %q:\n%s", w, out)
				}
			}
			b.Reset()
			if err := JSON(&b, r); err != nil {
				t.Fatal(err)
			}
			var doc struct{ Findings []map[string]json.RawMessage }
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			raw, ok := doc.Findings[0]["links"]
			if tc.wantJSON == "" {
				if ok {
					t.Errorf("links = %s, want the key absent", raw)
				}
				return
			}
			var got, want any
			if err := json.Unmarshal(raw, &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tc.wantJSON), &want); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("links = %s, want %s", raw, tc.wantJSON)
			}
		})
	}
}

func TestTextNamesTheRecovery(t *testing.T) {
	r := sample()
	rec := t0.Add(73 * time.Minute)
	r.Findings[0].Recovered = &rec
	r.Findings[0].Recovery = &correlate.Recovery{DeployID: "dep-e5fb72", Service: "edge-router", Version: "2.41.4", Rollback: true,
		ReachedAffected: t0.Add(70 * time.Minute), Reasons: []string{"recovery alignment: errors stopped host by host"}}
	var b bytes.Buffer
	if err := Text(&b, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Recovery      recovered 17:13 UTC, 3 min after rollback dep-e5fb72 (edge-router 2.41.4) reached the last affected host",
		"- recovery alignment: errors stopped host by host",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, b.String())
		}
	}
}

// Related tickets come ranked with their reasons; the affected customers'
// other tickets come as a count with their ids, in text and JSON alike.
func TestTicketsRankedWithOthers(t *testing.T) {
	r := sample()
	r.Findings[0].Tickets = []correlate.TicketRef{
		{ID: 7, Subject: "Checkout broken - functions returning 502", CreatedAt: t0.Add(12 * time.Minute), OrganizationID: 9, Reason: "mentions function; status 502", Score: 3.5},
		{ID: 5, Subject: "Our functions fail", CreatedAt: t0.Add(9 * time.Minute), OrganizationID: 42, Reason: "mentions function; organization 42 is affected", Score: 3, Affected: true},
	}
	r.Findings[0].OtherTickets = []int64{6, 8}
	var b bytes.Buffer
	if err := Text(&b, r); err != nil {
		t.Fatal(err)
	}
	text := b.String()
	first := strings.Index(text, "#7 16:12 org 9 \"Checkout broken - functions returning 502\" (mentions function; status 502)")
	second := strings.Index(text, "#5 16:09 org 42 \"Our functions fail\" (mentions function; organization 42 is affected)")
	if first < 0 || second < first {
		t.Errorf("tickets not listed best first with reasons:\n%s", text)
	}
	if !strings.Contains(text, "2 more tickets from affected customers, not obviously related: #6 #8") {
		t.Errorf("text lacks the other tickets:\n%s", text)
	}
	b.Reset()
	if err := JSON(&b, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []struct {
			Tickets      []map[string]any `json:"tickets"`
			OtherTickets []int64          `json:"other_tickets"`
		}
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	f := doc.Findings[0]
	if f.Tickets[1]["score"] != 3.0 || f.Tickets[1]["affected"] != true || f.Tickets[0]["reason"] != "mentions function; status 502" {
		t.Errorf("json tickets = %v", f.Tickets)
	}
	if !reflect.DeepEqual(f.OtherTickets, []int64{6, 8}) {
		t.Errorf("json other_tickets = %v", f.OtherTickets)
	}
}

func TestPriorityAndCustomers(t *testing.T) {
	r := sample()
	f := &r.Findings[0]
	f.Priority = &correlate.PriorityLevel{Level: "P1", Why: "20 or more customers see failures: an outage as support counts them", Facts: "37 customers affected, 5.0% of their requests failing"}
	f.Customers = &correlate.CustomerImpact{Summary: "3 enterprise customers, including Acme Corp (enterprise), Globex (enterprise) and Initech (enterprise); 37 customers in all",
		Top: 3, Total: 37, Tiers: map[string]int{"enterprise": 3, "": 34},
		Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "101", Name: "Acme Corp", Tier: "enterprise", Owner: "dana"}, Errors: 40, Top: true}}}
	var txt, js bytes.Buffer
	if err := Text(&txt, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  Priority      P1: 20 or more customers see failures",
		"  Customers     3 enterprise customers, including Acme Corp (enterprise)",
		"Acme Corp (enterprise)                 40 errors  organization.id=101  owner dana",
	} {
		if !strings.Contains(txt.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, txt.String())
		}
	}
	if err := JSON(&js, r); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Findings []struct {
			Priority  struct{ Level string }
			Customers struct {
				Named []struct{ ID, Name, Tier string }
			}
		}
	}
	if err := json.Unmarshal(js.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got := doc.Findings[0]; got.Priority.Level != "P1" || len(got.Customers.Named) != 1 || got.Customers.Named[0].Name != "Acme Corp" || got.Customers.Named[0].ID != "101" {
		t.Errorf("JSON finding: %+v", got)
	}
}

func TestTextNamesAPreDeployCustomerBurst(t *testing.T) {
	r := sample()
	r.Findings[0].PreDeployExcess = &correlate.PreDeployExcess{DeployID: "dep-9", Customer: "42", Share: 0.93, Excess: 18,
		From: t0.Add(-10 * time.Minute), To: t0}
	var b bytes.Buffer
	if err := Text(&b, r); err != nil {
		t.Fatal(err)
	}
	want := "Before deploy before dep-9 began rolling out at " + t0.UTC().Format("15:04") + " UTC, one customer (organization.id=42) carried 93% of the 18 excess errors"
	if !strings.Contains(b.String(), want) {
		t.Errorf("text report lacks %q:\n%s", want, b.String())
	}
	var j bytes.Buffer
	if err := JSON(&j, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j.String(), `"pre_deploy_excess"`) || !strings.Contains(j.String(), `"customer": "42"`) {
		t.Errorf("JSON report lacks pre_deploy_excess:\n%s", j.String())
	}
}
