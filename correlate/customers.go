package correlate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/culprithq/culprit/rules"
)

// Directory is what the correlator asks about customers: the
// customers source (sources/customers) implements it. The boolean is
// false for an organization it does not know.
type Directory interface {
	Customer(id string) (Customer, bool)
}

// CustomerImpact names the affected customers support knows, so a page
// can say "3 enterprise customers, including Acme Corp" rather than "37
// customers". Ids stay in Scope.Top.
type CustomerImpact struct {
	// Summary is the sentence every output uses.
	Summary string `json:"summary"`
	// Named are the affected customers the directory knows: top tiers
	// and VIPs first, then by errors; at most MaxTop.
	Named []AffectedCustomer `json:"named"`
	// Tiers counts the affected customers per tier; customers the
	// directory does not know, or knows without a tier, count as "".
	Tiers map[string]int `json:"tiers"`
	// VIPs counts the affected VIP customers.
	VIPs int `json:"vips,omitempty"`
	// Top counts affected customers of the priority policy's top tiers,
	// or VIP.
	Top int `json:"top"`
	// Total is every affected customer, known or not.
	Total int `json:"total"`
}

// AffectedCustomer is a known customer with the finding's errors.
type AffectedCustomer struct {
	Customer
	Errors int64 `json:"errors"`
	// Top says the customer is of a top tier or VIP.
	Top bool `json:"top,omitempty"`
}

// Label is "Acme Corp (enterprise, VIP)": the name (the id when it has
// none) and what support prioritises by.
func (c AffectedCustomer) Label() string {
	name := c.Name
	if name == "" {
		name = "organization.id=" + c.ID
	}
	var tags []string
	if c.Tier != "" {
		tags = append(tags, c.Tier)
	}
	if c.VIP {
		tags = append(tags, "VIP")
	}
	if len(tags) == 0 {
		return name
	}
	return name + " (" + strings.Join(tags, ", ") + ")"
}

// PriorityLevel is a finding's support priority with the facts it was
// computed from, so support can see why it is not one level higher.
type PriorityLevel struct {
	// Level is P1 (urgent), P2 (high), P3 (normal) or P4 (a question).
	Level string `json:"level"`
	// Why is the rule that decided it.
	Why string `json:"why"`
	// Facts are the impact it weighed, as a sentence.
	Facts        string  `json:"facts"`
	Customers    int     `json:"customers"`
	TopCustomers int     `json:"top_customers"`
	FailingShare float64 `json:"failing_share"`
	// CustomerFacingPath is the failing customer-facing path, if any.
	CustomerFacingPath string `json:"customer_facing_path,omitempty"`
	// RollingOut says the suspected deploy was still rolling out.
	RollingOut bool `json:"rolling_out,omitempty"`
}

// String is "P2 (a top-tier or VIP customer is affected)".
func (p *PriorityLevel) String() string {
	if p == nil {
		return ""
	}
	return p.Level + " (" + p.Why + ")"
}

// minPathShare is the share of a finding's errors a customer-facing path
// must carry to count as failing: one stray error on /checkout in a
// class that is about something else must not make a P1.
const minPathShare = 0.1

// assess fills f's customers and priority from the scope the source
// gave. sc is nil for a ticket surge, which has counts but no traffic.
func assess(f *Finding, sc *Scope, dir Directory, pol rules.Priority, now time.Time) {
	var perCustomer map[string]float64
	if sc != nil {
		perCustomer = sc.Errors[FieldCustomer]
	}
	f.Customers = customerImpact(perCustomer, dir, pol, f.Scope.Affected[FieldCustomer])
	imp := rules.Impact{Service: f.Service, Severity: string(f.Severity), Customers: f.Scope.Affected[FieldCustomer]}
	if f.Customers != nil {
		imp.TopCustomers = f.Customers.Top
	}
	if sc != nil {
		var e, r float64
		for id, n := range sc.Errors[FieldCustomer] {
			e += n
			r += sc.Requests[FieldCustomer][id]
		}
		imp.FailingShare = safeDiv(e, r)
		if imp.FailingShare == 0 {
			imp.FailingShare = f.Frequency.ShareAfter
		}
		imp.CustomerFacing, _ = pol.CustomerFacingPath(failingPaths(sc.Errors[FieldPath]))
	}
	if f.Recovered == nil && len(f.SuspectedDeploys) > 0 {
		s := f.SuspectedDeploys[0]
		imp.RollingOut = s.FinishedAt.IsZero() || s.FinishedAt.After(now)
	}
	level, why := pol.PriorityFor(imp)
	f.Priority = &PriorityLevel{Level: level, Why: why, Customers: imp.Customers, TopCustomers: imp.TopCustomers,
		FailingShare: imp.FailingShare, CustomerFacingPath: imp.CustomerFacing, RollingOut: imp.RollingOut}
	f.Priority.Facts = facts(imp, sc != nil)
}

// facts says what the priority weighed, in support's words; traffic is
// false for a ticket surge, which has no requests to fail.
func facts(imp rules.Impact, traffic bool) string {
	parts := []string{Plural(imp.Customers, "customer") + " affected"}
	if imp.TopCustomers > 0 {
		parts = append(parts, fmt.Sprintf("%d top-tier or VIP", imp.TopCustomers))
	}
	if traffic {
		parts = append(parts, Percent(imp.FailingShare)+" of their requests failing")
	}
	if imp.CustomerFacing != "" {
		parts = append(parts, "customer-facing "+imp.CustomerFacing+" failing")
	}
	if imp.RollingOut {
		parts = append(parts, "the suspected deploy is still rolling out")
	}
	return strings.Join(parts, ", ")
}

// failingPaths are the paths carrying at least minPathShare of the
// errors, most errors first.
func failingPaths(errs map[string]float64) []string {
	total := sumMap(errs)
	var out []ValueCount
	for _, vc := range topValues(errs, len(errs)) {
		if total > 0 && float64(vc.Errors) >= minPathShare*total {
			out = append(out, vc)
		}
	}
	paths := make([]string, len(out))
	for i, vc := range out {
		paths[i] = vc.Value
	}
	return paths
}

// customerImpact looks the affected customers up; nil when the directory
// knows none of them (or there is none), so outputs without a customers
// source are as they were.
func customerImpact(errs map[string]float64, dir Directory, pol rules.Priority, total int) *CustomerImpact {
	if dir == nil || len(errs) == 0 {
		return nil
	}
	ci := &CustomerImpact{Tiers: map[string]int{}, Total: total}
	for id, n := range errs {
		c, ok := dir.Customer(id)
		if !ok {
			ci.Tiers[""]++
			continue
		}
		c.ID = id
		ac := AffectedCustomer{Customer: c, Errors: int64(n + 0.5), Top: pol.Top(c.Tier, c.VIP)}
		ci.Tiers[c.Tier]++
		if c.VIP {
			ci.VIPs++
		}
		if ac.Top {
			ci.Top++
		}
		ci.Named = append(ci.Named, ac)
	}
	if len(ci.Named) == 0 {
		return nil
	}
	slices.SortFunc(ci.Named, func(a, b AffectedCustomer) int {
		if a.Top != b.Top {
			if a.Top {
				return -1
			}
			return 1
		}
		return cmp.Or(cmp.Compare(b.Errors, a.Errors), strings.Compare(a.ID, b.ID))
	})
	if len(ci.Named) > MaxTop {
		ci.Named = ci.Named[:MaxTop]
	}
	ci.Summary = customerSummary(ci, pol)
	return ci
}

// namedInSummary is how many customers the summary names.
const namedInSummary = 3

// customerSummary is "3 enterprise customers, including Acme Corp
// (enterprise), Globex (enterprise, VIP) and Initech (enterprise); 37
// customers in all": the customers support reads a page for first.
func customerSummary(ci *CustomerImpact, pol rules.Priority) string {
	var head string
	if ci.Top > 0 {
		var groups []string
		counted := 0
		for _, t := range pol.TopTiers {
			if n := ci.Tiers[t]; n > 0 {
				groups = append(groups, fmt.Sprintf("%d %s", n, t))
				counted += n
			}
		}
		if rest := ci.Top - counted; rest > 0 {
			groups = append(groups, fmt.Sprintf("%d VIP", rest))
		}
		noun := " customers"
		if ci.Top == 1 {
			noun = " customer"
		}
		head = joinAnd(groups) + noun
	} else {
		head = Plural(ci.Total, "customer")
	}
	var names []string
	for _, c := range ci.Named {
		if len(names) == namedInSummary || (ci.Top > 0 && !c.Top) {
			break
		}
		names = append(names, c.Label())
	}
	s := head
	if len(names) > 0 {
		if ci.Top == 1 || ci.Total == 1 {
			s += ": " + names[0]
		} else {
			s += ", including " + joinAnd(names)
		}
	}
	if ci.Top > 0 && ci.Total > ci.Top {
		s += fmt.Sprintf("; %d customers in all", ci.Total)
	}
	return s
}

func joinAnd(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	return strings.Join(xs[:len(xs)-1], ", ") + " and " + xs[len(xs)-1]
}

// ImpactOf is what routing weighs about f: who is affected and whether
// one customer carries it. Routes read it through rules.Config.RouteImpact.
func ImpactOf(f *Finding) rules.Impact {
	imp := rules.Impact{Service: f.Service, Severity: string(f.Severity), Customers: f.Scope.Affected[FieldCustomer]}
	if org, ok := singleCustomer(*f); ok {
		imp.Confined = org
		if org == "" && len(f.Scope.Top[FieldCustomer]) > 0 {
			imp.Confined = f.Scope.Top[FieldCustomer][0].Value
		}
	}
	if p := f.Priority; p != nil {
		imp.TopCustomers, imp.FailingShare, imp.CustomerFacing, imp.RollingOut = p.TopCustomers, p.FailingShare, p.CustomerFacingPath, p.RollingOut
	}
	if ci := f.Customers; ci != nil {
		imp.Tiers, imp.VIPs = ci.Tiers, ci.VIPs
		for _, c := range ci.Named {
			if c.ID == imp.Confined {
				imp.ConfinedTier, imp.ConfinedVIP = c.Tier, c.VIP
			}
		}
	}
	return imp
}

// CustomerEvidence is one customer's share of a finding's evidence: what
// the support on-call needs when a problem is confined to that customer
// (the VIP route), without reading the rest.
type CustomerEvidence struct {
	Customer
	// Sites are the customer's sites among the error samples, and
	// Paths the failing paths the scope names.
	Sites   []string `json:"sites,omitempty"`
	Paths   []string `json:"paths,omitempty"`
	Samples []Sample `json:"samples,omitempty"`
	// Tickets are the customer's related tickets.
	Tickets []TicketRef `json:"tickets,omitempty"`
}

// ConfinedEvidence is the evidence of the one customer that carries f,
// when one does (see ImpactOf): its name and tier when the directory knew
// them, its sites and error samples, the failing paths, and its tickets.
func ConfinedEvidence(f *Finding) (CustomerEvidence, bool) {
	id := ImpactOf(f).Confined
	if id == "" {
		return CustomerEvidence{}, false
	}
	ev := CustomerEvidence{Customer: Customer{ID: id}}
	if f.Customers != nil {
		for _, c := range f.Customers.Named {
			if c.ID == id {
				ev.Customer = c.Customer
			}
		}
	}
	seen := map[string]bool{}
	for _, s := range f.Samples {
		if s.Customer != id {
			continue
		}
		ev.Samples = append(ev.Samples, s)
		if s.Site != "" && !seen[s.Site] {
			seen[s.Site] = true
			ev.Sites = append(ev.Sites, s.Site)
		}
	}
	for _, c := range f.Scope.Concentration {
		if c.Field == FieldPath {
			ev.Paths = append(ev.Paths, c.Value)
		}
	}
	if p := f.Priority; p != nil && p.CustomerFacingPath != "" && !slices.Contains(ev.Paths, p.CustomerFacingPath) {
		ev.Paths = append(ev.Paths, p.CustomerFacingPath)
	}
	for _, t := range f.Tickets {
		if fmt.Sprint(t.OrganizationID) == id {
			ev.Tickets = append(ev.Tickets, t)
		}
	}
	return ev, true
}
