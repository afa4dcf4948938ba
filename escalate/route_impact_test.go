package escalate

import (
	"encoding/json"
	"testing"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/rules"
)

const vipPolicy = `
pagerduty:
  routing_key: INFRA
routes:
  - name: vip
    customers: {tiers: [enterprise], vip: true, max_customers: 1}
    action: page
    min_severity: notify
    routing_key: SUPPORT
  - name: infra
    action: page
`

// confined is a finding one enterprise customer carries, graded notify as
// the correlator grades a customer-specific problem.
func confined(customers int) correlate.Finding {
	f := finding(correlate.SeverityNotify, t0.Add(-5*60e9), "")
	f.Scope = correlate.ScopeSummary{Affected: map[string]int{correlate.FieldCustomer: customers},
		Concentration: []correlate.Concentration{{Field: correlate.FieldCustomer, Value: "42", ShareOfErrors: 1, ShareOfRequests: 0.02}}}
	f.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer: Acme Corp (enterprise)", Tiers: map[string]int{"enterprise": 1}, Top: 1, Total: 1,
		Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "42", Name: "Acme Corp", Tier: "enterprise"}, Errors: 40, Top: true}}}
	f.Priority = &correlate.PriorityLevel{Level: "P2", Why: "a top-tier or VIP customer is affected"}
	return f
}

func routeOf(t *testing.T, m Message) string {
	t.Helper()
	var in Incident
	if err := json.Unmarshal(m.Body, &in); err != nil {
		t.Fatal(err)
	}
	return in.Route
}

func TestVIPCustomerPagesSupportNotInfra(t *testing.T) {
	cfg, err := rules.Parse([]byte(vipPolicy))
	if err != nil {
		t.Fatal(err)
	}
	var known []Incident
	msgs := step(t, &known, t0, &cfg, Settings{Slack: true}, confined(1))
	if len(msgs) != 1 || msgs[0].Channel != ChannelPagerDuty || msgs[0].Action != Trigger || routeOf(t, msgs[0]) != "vip" {
		t.Fatalf("messages = %+v, want one trigger on route vip", msgs)
	}
	if known[0].Route != "vip" || known[0].Action != ActionPage {
		t.Fatalf("incident route %q action %s", known[0].Route, known[0].Action)
	}
	if got := cfg.RouteKey(known[0].Route); got != "SUPPORT" {
		t.Errorf("route key %q, want SUPPORT", got)
	}
	// Still one customer: nothing more.
	if msgs := step(t, &known, t0.Add(60e9), &cfg, Settings{Slack: true}, confined(1)); len(msgs) != 0 {
		t.Fatalf("same impact sent %+v", msgs)
	}
	// It spreads to many customers and is graded page: infra hears of it,
	// and the support page is resolved.
	spread := finding(correlate.SeverityPage, t0.Add(-5*60e9), "")
	spread.Scope.Affected = map[string]int{correlate.FieldCustomer: 30}
	spread.Priority = &correlate.PriorityLevel{Level: "P1", Why: "20 or more customers see failures"}
	msgs = step(t, &known, t0.Add(2*60e9), &cfg, Settings{Slack: true}, spread)
	if actions(msgs) != "resolve,trigger" || routeOf(t, msgs[0]) != "vip" || routeOf(t, msgs[1]) != "infra" {
		t.Fatalf("after spreading: %s on routes %s, %s", actions(msgs), routeOf(t, msgs[0]), routeOf(t, msgs[1]))
	}
}

func TestNonVIPConfinedIsNotPaged(t *testing.T) {
	cfg, err := rules.Parse([]byte(vipPolicy))
	if err != nil {
		t.Fatal(err)
	}
	f := confined(1)
	f.Customers.Named[0].Tier, f.Customers.Named[0].Top = "pro", false
	f.Customers.Tiers = map[string]int{"pro": 1}
	var known []Incident
	msgs := step(t, &known, t0, &cfg, Settings{Slack: true}, f)
	if len(msgs) != 1 || msgs[0].Channel != ChannelSlack || known[0].Route != "infra" {
		t.Fatalf("a pro customer's problem: %+v on route %q; want a Slack post, never infra's pager", msgs, known[0].Route)
	}
}

func TestPriorityOnTheTimeline(t *testing.T) {
	f := confined(1)
	ch := Decide(nil, Evaluation{Now: t0, Findings: []correlate.Finding{f}, HasData: always}, policy{action: ActionRecord}, Settings{})
	var got string
	for _, e := range ch[0].Events {
		if e.Kind == EventPriority {
			got = e.Text
		}
	}
	if want := "P2 (a top-tier or VIP customer is affected); 1 enterprise customer: Acme Corp (enterprise)"; got != want {
		t.Errorf("priority event %q, want %q", got, want)
	}
}

// A page pressed by hand on a Slack-routed incident, then the finding
// grows into a page route with the same pager: nothing is paged again.
func TestSamePagerNeverPagesTwice(t *testing.T) {
	cfg, err := rules.Parse([]byte(`
pagerduty:
  routing_key: INFRA
routes:
  - name: narrow
    customers: {max_customers: 3}
    action: slack
  - name: infra
    action: page
`))
	if err != nil {
		t.Fatal(err)
	}
	var known []Incident
	f := confined(1)
	f.Customers = nil
	step(t, &known, t0, &cfg, Settings{Slack: true}, f)
	if known[0].Action != ActionSlack || known[0].Route != "narrow" {
		t.Fatalf("action %s by %q, want slack by narrow", known[0].Action, known[0].Route)
	}
	ch, err := PageByHand(known[0], t0.Add(60e9), "alice", "Slack")
	if err != nil {
		t.Fatal(err)
	}
	known[0] = ch.Incident
	grown := finding(correlate.SeverityPage, t0.Add(-5*60e9), "")
	grown.Scope.Affected = map[string]int{correlate.FieldCustomer: 30}
	if msgs := step(t, &known, t0.Add(2*60e9), &cfg, Settings{Slack: true}, grown); len(msgs) != 0 {
		t.Fatalf("paged again: %s", actions(msgs))
	}
}
