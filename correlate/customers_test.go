package correlate

import (
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

type mapDir map[string]Customer

func (m mapDir) Customer(id string) (Customer, bool) { c, ok := m[id]; return c, ok }

func TestCustomerSummaryNamesTopTiersFirst(t *testing.T) {
	dir := mapDir{
		"1": {Name: "Acme Corp", Tier: "enterprise"},
		"2": {Name: "Globex", Tier: "enterprise", VIP: true},
		"3": {Name: "Initech", Tier: "premium"},
		"4": {Name: "Hooli", Tier: "pro"},
		"5": {Name: "Small Shop", Tier: "free", VIP: true},
	}
	errs := map[string]float64{"1": 5, "2": 30, "3": 2, "4": 90, "5": 1, "6": 7}
	for id := 7; id < 38; id++ {
		errs[string(rune('a'+id))] = 1
	}
	ci := customerImpact(errs, dir, rules.DefaultPriority(), len(errs))
	want := "2 enterprise, 1 premium and 1 VIP customers, including Globex (enterprise, VIP), Acme Corp (enterprise) and Initech (premium); 37 customers in all"
	if ci.Summary != want {
		t.Errorf("summary\n got %q\nwant %q", ci.Summary, want)
	}
	if ci.Top != 4 || ci.VIPs != 2 || ci.Tiers["enterprise"] != 2 || ci.Tiers[""] != 32 || ci.Total != 37 {
		t.Errorf("counts = %+v", ci)
	}
	if ci.Named[0].ID != "2" || ci.Named[4].ID != "4" {
		t.Errorf("order: %+v", ci.Named)
	}
}

func TestCustomerSummaryOneCustomer(t *testing.T) {
	ci := customerImpact(map[string]float64{"1": 40}, mapDir{"1": {Name: "Acme Corp", Tier: "enterprise", VIP: true}}, rules.DefaultPriority(), 1)
	if want := "1 enterprise customer: Acme Corp (enterprise, VIP)"; ci.Summary != want {
		t.Errorf("got %q, want %q", ci.Summary, want)
	}
	ci = customerImpact(map[string]float64{"1": 40, "2": 3}, mapDir{"1": {Name: "Hooli", Tier: "pro"}}, rules.DefaultPriority(), 2)
	if want := "2 customers, including Hooli (pro)"; ci.Summary != want {
		t.Errorf("got %q, want %q", ci.Summary, want)
	}
}

func TestNoDirectoryNoCustomers(t *testing.T) {
	if ci := customerImpact(map[string]float64{"1": 4}, nil, rules.DefaultPriority(), 1); ci != nil {
		t.Errorf("without a directory: %+v", ci)
	}
	if ci := customerImpact(map[string]float64{"1": 4}, mapDir{}, rules.DefaultPriority(), 1); ci != nil {
		t.Errorf("knowing nobody: %+v", ci)
	}
}

func TestAssessPriority(t *testing.T) {
	now := time.Date(2026, 12, 4, 16, 0, 0, 0, time.UTC)
	dir := mapDir{"1": {Name: "Acme Corp", Tier: "enterprise"}}
	one := &Scope{
		Errors:   map[string]map[string]float64{FieldCustomer: {"1": 40}, FieldPath: {"/fn/checkout": 38, "/": 2}},
		Requests: map[string]map[string]float64{FieldCustomer: {"1": 400}},
	}
	for _, tc := range []struct {
		name     string
		sc       *Scope
		dir      Directory
		suspects []Suspect
		want     string
	}{
		{"enterprise checkout", one, dir, nil, "P1"},
		{"same without a directory: no top tier known", one, nil, nil, "P2"},
		{"rollout under way, many customers", &Scope{
			Errors:   map[string]map[string]float64{FieldCustomer: {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1}},
			Requests: map[string]map[string]float64{FieldCustomer: {"1": 100, "2": 100, "3": 100, "4": 100, "5": 100, "6": 100}},
		}, nil, []Suspect{{ID: "d1", StartedAt: now.Add(-10 * time.Minute)}}, "P1"},
		{"rollout finished, many customers", &Scope{
			Errors:   map[string]map[string]float64{FieldCustomer: {"1": 1, "2": 1, "3": 1, "4": 1, "5": 1, "6": 1}},
			Requests: map[string]map[string]float64{FieldCustomer: {"1": 100, "2": 100, "3": 100, "4": 100, "5": 100, "6": 100}},
		}, nil, []Suspect{{ID: "d1", StartedAt: now.Add(-30 * time.Minute), FinishedAt: now.Add(-10 * time.Minute)}}, "P2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := Finding{Scope: summarizeScope(tc.sc), SuspectedDeploys: tc.suspects}
			assess(&f, tc.sc, tc.dir, rules.DefaultPriority(), now)
			if f.Priority == nil || f.Priority.Level != tc.want {
				t.Fatalf("priority = %+v, want %s", f.Priority, tc.want)
			}
			if f.Priority.Why == "" || f.Priority.Facts == "" {
				t.Errorf("priority without its reasons: %+v", f.Priority)
			}
		})
	}
}

func TestImpactOfConfinedCustomer(t *testing.T) {
	sc := &Scope{Errors: map[string]map[string]float64{FieldCustomer: {"1": 40}}, Requests: map[string]map[string]float64{FieldCustomer: {"1": 400}}}
	f := Finding{Service: "edge", Severity: SeverityNotify, Scope: summarizeScope(sc)}
	assess(&f, sc, mapDir{"1": {Name: "Acme", Tier: "enterprise", VIP: true}}, rules.DefaultPriority(), time.Time{})
	imp := ImpactOf(&f)
	if imp.Confined != "1" || imp.ConfinedTier != "enterprise" || !imp.ConfinedVIP || imp.Customers != 1 || imp.Severity != "notify" {
		t.Errorf("ImpactOf = %+v", imp)
	}
}

func TestConfinedEvidence(t *testing.T) {
	sc := &Scope{
		Errors:   map[string]map[string]float64{FieldCustomer: {"42": 40}, FieldPath: {"/checkout": 40}},
		Requests: map[string]map[string]float64{FieldCustomer: {"42": 400}, FieldPath: {"/checkout": 100}},
	}
	f := Finding{Service: "edge", Severity: SeverityNotify, Scope: summarizeScope(sc),
		Samples: []Sample{{Customer: "42", Site: "shop-42.example.com", Message: "x509"}, {Customer: "7", Site: "other.example.com"}, {Customer: "42", Site: "shop-42.example.com"}},
		Tickets: []TicketRef{{ID: 1, OrganizationID: 42, Subject: "cert"}, {ID: 2, OrganizationID: 7}}}
	assess(&f, sc, mapDir{"42": {Name: "Acme", Tier: "enterprise"}}, rules.DefaultPriority(), time.Time{})
	ev, ok := ConfinedEvidence(&f)
	if !ok || ev.Name != "Acme" || ev.Tier != "enterprise" {
		t.Fatalf("ConfinedEvidence = %+v, %v", ev, ok)
	}
	if len(ev.Sites) != 1 || ev.Sites[0] != "shop-42.example.com" || len(ev.Samples) != 2 || len(ev.Tickets) != 1 || ev.Tickets[0].ID != 1 {
		t.Errorf("evidence %+v", ev)
	}
	if len(ev.Paths) != 1 || ev.Paths[0] != "/checkout" {
		t.Errorf("paths %v", ev.Paths)
	}
	f.Scope.Affected[FieldCustomer] = 30
	f.Scope.Concentration = nil
	if _, ok := ConfinedEvidence(&f); ok {
		t.Error("evidence of one customer for a finding thirty carry")
	}
}
