package rules

import (
	"strings"
	"testing"
	"time"
)

const vipRoutes = `
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
priority:
  customer_facing_paths: [checkout]
  top_tiers: [enterprise]
  rules:
    - priority: P1
      customer_facing: true
      min_top_customers: 1
      why: a top customer's checkout fails
    - priority: P3
`

func TestRouteImpactVIP(t *testing.T) {
	c, err := Parse([]byte(vipRoutes))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		imp       Impact
		route     string
		pages     bool
		key       string
		oldRouter string
	}{
		{"one enterprise customer", Impact{Service: "edge", Severity: "notify", Customers: 1, Confined: "1", ConfinedTier: "enterprise", Tiers: map[string]int{"enterprise": 1}}, "vip", true, "SUPPORT", "infra"},
		{"one VIP of a small plan", Impact{Service: "edge", Severity: "notify", Customers: 1, Confined: "1", ConfinedTier: "pro", ConfinedVIP: true, VIPs: 1}, "vip", true, "SUPPORT", "infra"},
		{"one customer, not VIP", Impact{Service: "edge", Severity: "notify", Customers: 1, Confined: "1", ConfinedTier: "pro"}, "infra", false, "", "infra"},
		{"spread to others", Impact{Service: "edge", Severity: "page", Customers: 12, Tiers: map[string]int{"enterprise": 3}}, "infra", true, "", "infra"},
		{"unknown customer", Impact{Service: "edge", Severity: "notify", Customers: 1, Confined: "1"}, "infra", false, "", "infra"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := c.RouteImpact(tc.imp, now)
			if d.Route != tc.route || d.Pages != tc.pages || d.Action != ActionPage {
				t.Errorf("RouteImpact = %+v, want route %s pages %v", d, tc.route, tc.pages)
			}
			if got := c.RouteKey(d.Route); got != tc.key {
				t.Errorf("RouteKey(%s) = %q, want %q", d.Route, got, tc.key)
			}
			if _, r := c.Route(tc.imp.Service, now); r != tc.oldRouter {
				t.Errorf("Route without impact chose %q: a customers route must not match without impact", r)
			}
		})
	}
}

func TestRouteCustomersAnyTier(t *testing.T) {
	rc := &RouteCustomers{Tiers: []string{"Enterprise"}}
	if !rc.matches(Impact{Customers: 30, Tiers: map[string]int{"enterprise": 1, "pro": 29}}) {
		t.Error("any enterprise customer affected did not match")
	}
	if rc.matches(Impact{Customers: 30, Tiers: map[string]int{"pro": 30}}) {
		t.Error("matched without an enterprise customer")
	}
	if (&RouteCustomers{Tiers: []string{"enterprise"}, MaxCustomers: 3}).matches(Impact{Customers: 4, Tiers: map[string]int{"enterprise": 1}}) {
		t.Error("max_customers 3 matched 4 customers")
	}
}

func TestPriorityRulesFromFile(t *testing.T) {
	c, err := Parse([]byte(vipRoutes))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Priority.Rules) != 2 {
		t.Fatalf("rules = %+v: the file's rules must replace the defaults", c.Priority.Rules)
	}
	p, why := c.Priority.PriorityFor(Impact{Customers: 1, TopCustomers: 1, CustomerFacing: "/checkout"})
	if p != "P1" || why != "a top customer's checkout fails" {
		t.Errorf("PriorityFor = %s (%s)", p, why)
	}
	if p, _ := c.Priority.PriorityFor(Impact{Customers: 1, TopCustomers: 1}); p != "P3" {
		t.Errorf("without a customer-facing path: %s, want P3", p)
	}
}

func TestDefaultPriority(t *testing.T) {
	p := DefaultPriority()
	for _, tc := range []struct {
		name string
		imp  Impact
		want string
	}{
		{"outage", Impact{Customers: 40, FailingShare: 0.03}, "P1"},
		{"top customer's checkout", Impact{Customers: 1, TopCustomers: 1, CustomerFacing: "/fn/checkout", FailingShare: 0.5}, "P1"},
		{"rollout spreading", Impact{Customers: 6, RollingOut: true, FailingShare: 0.002}, "P1"},
		{"top customer", Impact{Customers: 1, TopCustomers: 1, FailingShare: 0.002}, "P2"},
		{"several customers", Impact{Customers: 7, FailingShare: 0.002}, "P2"},
		{"one small customer", Impact{Customers: 1, FailingShare: 0.2}, "P3"},
		{"nobody", Impact{}, "P4"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why := p.PriorityFor(tc.imp); got != tc.want || why == "" {
				t.Errorf("PriorityFor = %s (%q), want %s", got, why, tc.want)
			}
		})
	}
}

func TestCustomerFacingPath(t *testing.T) {
	p := DefaultPriority()
	for v, want := range map[string]bool{
		"/fn/checkout": true, "/api/v1/checkout/pay": true, "/.fn/resize": true, "/fn/a/b": true,
		"/blog/post": false, "/checkoutx": false,
	} {
		if _, got := p.CustomerFacingPath([]string{v}); got != want {
			t.Errorf("%s: customer-facing = %v, want %v", v, got, want)
		}
	}
}

func TestImpactConfigErrors(t *testing.T) {
	_, err := Parse([]byte(`
priority:
  rules:
    - priority: P5
      min_failing_share: 2
  customer_facing_paths: ["["]
routes:
  - name: r
    action: slack
    min_severity: low
    routing_key: K
customers:
  zendesk: {enabled: true, match_by: name}
`))
	if err == nil {
		t.Fatal("no error")
	}
	for _, w := range []string{
		`priority.rules[0].priority: "P5" is not one of P1, P2, P3, P4`,
		`priority.rules[0].min_failing_share: 2 is not a share`,
		`priority.customer_facing_paths[0]: "[" is not a path pattern`,
		`routes[0].min_severity: "low" is not page or notify`,
		`routes[0].routing_key: only a route whose action is page pages`,
		`customers.zendesk.enabled: needs the zendesk section`,
		`customers.zendesk.match_by: "name" is not external_id or id`,
	} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
