package rules

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Customers configures where culprit learns who the customers are. Both
// sources may be set: the file is loaded first and Zendesk Organizations
// then add and update customers as they change. With neither, customers
// stay organization ids and nothing else changes.
type Customers struct {
	// File is a CSV or JSON file of customers (see README, customers).
	File string `yaml:"file"`
	// Zendesk syncs organizations from the zendesk section's account.
	Zendesk ZendeskOrganizations `yaml:"zendesk"`
}

// ZendeskOrganizations maps Zendesk organizations onto customers.
type ZendeskOrganizations struct {
	// Enabled turns the sync on; it needs the zendesk section.
	Enabled bool `yaml:"enabled"`
	// MatchBy is the organization field that holds the logs'
	// organization.id: external_id (default: the id of the organization
	// in your own systems, which is what logs usually carry) or id
	// (Zendesk's own number).
	MatchBy string `yaml:"match_by"`
	// TierField is the key of the organization_fields entry that holds
	// the plan or tier (a dropdown's value); default "tier".
	TierField string `yaml:"tier_field"`
	// VIPTags are tags that mark a VIP organization; default [vip].
	VIPTags []string `yaml:"vip_tags"`
	// OwnerField is the organization_fields key holding the account
	// owner; default "owner".
	OwnerField string `yaml:"owner_field"`
}

// Priority is how culprit computes a finding's support priority, P1 to
// P4, from its impact. Rules are tried in order and the first whose
// conditions all hold gives the priority; none holding, P4.
type Priority struct {
	// CustomerFacingPaths are url.path patterns whose failure customers
	// see at once (checkout, their functions): path.Match globs, where a
	// pattern without a slash also matches any path segment (checkout
	// matches /api/checkout/pay).
	CustomerFacingPaths []string `yaml:"customer_facing_paths"`
	// TopTiers are the tiers with the fastest service-level agreements;
	// a VIP customer counts as top whatever its tier.
	TopTiers []string `yaml:"top_tiers"`
	// Rules decide the priority; see DefaultPriority for the defaults
	// and why.
	Rules []PriorityRule `yaml:"rules"`
}

// PriorityRule gives Priority when all its set conditions hold.
type PriorityRule struct {
	// Priority is P1 (urgent), P2 (high), P3 (normal) or P4 (a question).
	Priority string `yaml:"priority"`
	// Why is said with the priority, so support knows the rule behind it.
	Why string `yaml:"why"`
	// MinCustomers: at least this many customers affected.
	MinCustomers int `yaml:"min_customers"`
	// MinTopCustomers: at least this many customers of TopTiers (or VIPs).
	MinTopCustomers int `yaml:"min_top_customers"`
	// MinFailingShare: at least this share (0–1) of the affected
	// customers' requests fails.
	MinFailingShare float64 `yaml:"min_failing_share"`
	// CustomerFacing: a customer-facing path is (true) or is not (false)
	// among the failing ones.
	CustomerFacing *bool `yaml:"customer_facing"`
	// RollingOut: the suspected deploy is (true) or is not (false) still
	// rolling out, so the problem is still spreading.
	RollingOut *bool `yaml:"rolling_out"`
}

// Impact is what priority and routing weigh about a finding. correlate
// fills it; rules cannot import correlate.
type Impact struct {
	Service string
	// Severity is the finding's severity: page, notify or info.
	Severity string
	// Customers is how many customers are affected.
	Customers int
	// Confined is set when one customer carries the errors, and names it.
	Confined string
	// Tiers are the tiers of the affected customers the directory knows,
	// with how many customers of each.
	Tiers map[string]int
	// VIPs counts the affected VIP customers.
	VIPs int
	// ConfinedTier and ConfinedVIP describe the confined customer.
	ConfinedTier string
	ConfinedVIP  bool
	// TopCustomers counts affected customers of Priority.TopTiers or VIP.
	TopCustomers int
	// FailingShare is the share of the affected traffic that fails.
	FailingShare float64
	// CustomerFacing names the customer-facing path that fails, if any.
	CustomerFacing string
	// RollingOut is set while the suspected deploy is still rolling out.
	RollingOut bool
}

// Priorities in order, most urgent first.
var Priorities = []string{"P1", "P2", "P3", "P4"}

func boolPtr(b bool) *bool { return &b }

// DefaultPriority is the priority policy when the file sets none. Each
// rule's Why is the reason it is a default.
func DefaultPriority() Priority {
	return Priority{
		CustomerFacingPaths: []string{"checkout", "cart", "/fn/*", "/.fn/*", "/api/*/checkout*"},
		TopTiers:            []string{"enterprise", "premium"},
		Rules: []PriorityRule{
			{Priority: "P1", MinCustomers: 20, MinFailingShare: 0.01,
				Why: "20 or more customers see failures: an outage as support counts them"},
			{Priority: "P1", MinTopCustomers: 1, CustomerFacing: boolPtr(true), MinFailingShare: 0.05,
				Why: "a top-tier customer's customer-facing path fails: their own customers see it, and their SLA is the shortest"},
			{Priority: "P1", RollingOut: boolPtr(true), MinCustomers: 5,
				Why: "a deploy still rolling out is breaking several customers: every minute adds hosts"},
			{Priority: "P2", MinTopCustomers: 1,
				Why: "a top-tier or VIP customer is affected: their SLA is the shortest"},
			{Priority: "P2", MinCustomers: 5,
				Why: "several customers are affected"},
			{Priority: "P2", CustomerFacing: boolPtr(true), MinFailingShare: 0.05,
				Why: "a customer-facing path fails for a noticeable share of requests"},
			{Priority: "P3", MinCustomers: 1, MinFailingShare: 0.001,
				Why: "customers are affected, narrowly"},
		},
	}
}

// PriorityFor gives imp's priority and why, by the first matching rule;
// P4 when none matches (a question: recorded, nobody is waiting).
func (p Priority) PriorityFor(imp Impact) (string, string) {
	for _, r := range p.Rules {
		if r.holds(imp) {
			return r.Priority, r.Why
		}
	}
	return "P4", "no priority rule matched: a question rather than a failure customers wait on"
}

func (r PriorityRule) holds(imp Impact) bool {
	switch {
	case imp.Customers < r.MinCustomers,
		imp.TopCustomers < r.MinTopCustomers,
		imp.FailingShare < r.MinFailingShare,
		r.CustomerFacing != nil && *r.CustomerFacing != (imp.CustomerFacing != ""),
		r.RollingOut != nil && *r.RollingOut != imp.RollingOut:
		return false
	}
	return true
}

// Top reports whether a customer of tier (VIP or not) is top tier.
func (p Priority) Top(tier string, vip bool) bool {
	return vip || slices.Contains(p.TopTiers, strings.ToLower(tier))
}

// CustomerFacingPath returns the first of paths that is customer-facing.
func (p Priority) CustomerFacingPath(paths []string) (string, bool) {
	for _, v := range paths {
		for _, pat := range p.CustomerFacingPaths {
			if matchPath(pat, v) {
				return v, true
			}
		}
	}
	return "", false
}

// matchPath matches a path.Match glob against the whole path, or, for a
// pattern without a slash, against each of its segments.
func matchPath(pat, v string) bool {
	if ok, _ := path.Match(pat, v); ok {
		return true
	}
	if strings.Contains(pat, "/") {
		// A prefix glob such as /fn/* also covers deeper paths.
		if strings.HasSuffix(pat, "/*") && strings.HasPrefix(v, strings.TrimSuffix(pat, "*")) {
			return true
		}
		return false
	}
	for _, seg := range strings.Split(v, "/") {
		if ok, _ := path.Match(pat, seg); ok && seg != "" {
			return true
		}
	}
	return false
}

// RouteCustomers limits a route to findings by who is affected. Set
// conditions must all hold.
type RouteCustomers struct {
	// Tiers: an affected customer (the confined one, with
	// max_customers: 1) is of one of these tiers.
	Tiers []string `yaml:"tiers"`
	// VIP: an affected customer (the confined one, with max_customers: 1)
	// is a VIP. With Tiers too, either one suffices.
	VIP bool `yaml:"vip"`
	// MaxCustomers: at most this many customers affected; 1 means one
	// customer carries the errors, so the route stops matching as soon as
	// the problem spreads to others.
	MaxCustomers int `yaml:"max_customers"`
}

func (rc *RouteCustomers) matches(imp Impact) bool {
	if rc.MaxCustomers == 1 {
		if imp.Confined == "" {
			return false
		}
		return rc.who(imp.ConfinedTier, imp.ConfinedVIP)
	}
	if rc.MaxCustomers > 0 && imp.Customers > rc.MaxCustomers {
		return false
	}
	if len(rc.Tiers) == 0 && !rc.VIP {
		return true
	}
	if rc.VIP && imp.VIPs > 0 {
		return true
	}
	for _, t := range rc.Tiers {
		if imp.Tiers[strings.ToLower(t)] > 0 {
			return true
		}
	}
	return false
}

func (rc *RouteCustomers) who(tier string, vip bool) bool {
	if len(rc.Tiers) == 0 && !rc.VIP {
		return true
	}
	return rc.VIP && vip || slices.Contains(rc.Tiers, strings.ToLower(tier))
}

// Decision is a route's verdict on a finding.
type Decision struct {
	Action Action
	// Route is the name of the route that decided; "" for default_action.
	Route string
	// Pages says the action pages findings of this severity: a route
	// with min_severity notify pages narrow findings too.
	Pages bool
}

// RouteImpact is Route for a finding whose impact is known: routes with a
// customers condition match only when it holds, and a route's
// min_severity decides whether a page action pages a finding of
// imp.Severity. Route (without impact) never matches a route with a
// customers condition.
func (c *Config) RouteImpact(imp Impact, t time.Time) Decision {
	for i := range c.Routes {
		r := &c.Routes[i]
		if !r.matches(imp.Service, t) {
			continue
		}
		if r.Customers != nil && !r.Customers.matches(imp) {
			continue
		}
		return Decision{Action: r.Action, Route: r.Name, Pages: severityAtLeast(imp.Severity, r.minSeverity())}
	}
	a := c.DefaultAction
	if a == "" {
		a = ActionRecord
	}
	return Decision{Action: a, Pages: severityAtLeast(imp.Severity, "page")}
}

func (r *Route) minSeverity() string {
	if r.MinSeverity == "" {
		return "page"
	}
	return r.MinSeverity
}

func severityAtLeast(s, min string) bool {
	rank := map[string]int{"info": 1, "notify": 2, "page": 3}
	return rank[s] >= rank[min]
}

// RouteKey is the PagerDuty routing key of the route named name when it
// has its own (the support on-call's, say); "" otherwise, and then the
// service's key applies.
func (c *Config) RouteKey(name string) string {
	for _, r := range c.Routes {
		if r.Name == name && name != "" && r.RoutingKey.IsSet() {
			return r.RoutingKey.Reveal()
		}
	}
	return ""
}

// SamePager reports whether pages decided by the routes named a and b
// reach the same PagerDuty service: both page with the service's key, or
// with the same key of their own. It compares the keys as configured
// ({env: NAME} by name), so it needs no resolved secrets.
func (c *Config) SamePager(a, b string) bool {
	return c.routeSecret(a) == c.routeSecret(b)
}

func (c *Config) routeSecret(name string) Secret {
	for _, r := range c.Routes {
		if r.Name == name && name != "" {
			return r.RoutingKey
		}
	}
	return Secret{}
}

// RouteChannel is the Slack channel of the route named name when it has
// its own; "" otherwise, and then slack.channel applies.
func (c *Config) RouteChannel(name string) string {
	for _, r := range c.Routes {
		if r.Name == name && name != "" {
			return r.SlackChannel
		}
	}
	return ""
}

func (ck *checker) priority(p Priority) {
	for i, r := range p.Rules {
		at := fmt.Sprintf("priority.rules[%d]", i)
		if !slices.Contains(Priorities, r.Priority) {
			ck.errf(at+".priority", "%q is not one of P1, P2, P3, P4", r.Priority)
		}
		if r.MinFailingShare < 0 || r.MinFailingShare > 1 {
			ck.errf(at+".min_failing_share", "%g is not a share between 0 and 1", r.MinFailingShare)
		}
		if r.MinCustomers < 0 {
			ck.errf(at+".min_customers", "must not be negative")
		}
		if r.MinTopCustomers < 0 {
			ck.errf(at+".min_top_customers", "must not be negative")
		}
	}
	for i, pat := range p.CustomerFacingPaths {
		if _, err := path.Match(pat, ""); err != nil || strings.TrimSpace(pat) == "" {
			ck.errf(fmt.Sprintf("priority.customer_facing_paths[%d]", i), "%q is not a path pattern (path.Match glob)", pat)
		}
	}
}

func (ck *checker) customers(c *Config) {
	z := c.Customers.Zendesk
	if z.Enabled && c.Zendesk.URL == "" {
		ck.errf("customers.zendesk.enabled", "needs the zendesk section (url, email, token)")
	}
	switch z.MatchBy {
	case "", "external_id", "id":
	default:
		ck.errf("customers.zendesk.match_by", "%q is not external_id or id", z.MatchBy)
	}
}

func (ck *checker) routeImpact(p string, r *Route) {
	switch r.MinSeverity {
	case "", "page", "notify":
	default:
		ck.errf(p+".min_severity", "%q is not page or notify", r.MinSeverity)
	}
	if r.Customers != nil && r.Customers.MaxCustomers < 0 {
		ck.errf(p+".customers.max_customers", "must not be negative")
	}
	if r.RoutingKey.IsSet() && r.Action != ActionPage {
		ck.errf(p+".routing_key", "only a route whose action is page pages")
	}
	if r.SlackChannel != "" && r.Action == ActionRecord {
		ck.errf(p+".slack_channel", "a record route posts nothing")
	}
}
