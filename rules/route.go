package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"
	_ "time/tzdata" // time zones must resolve in a minimal container image too
)

// Action is what the daemon does with a finding.
type Action string

const (
	// ActionPage triggers a PagerDuty incident.
	ActionPage Action = "page"
	// ActionSlack posts to Slack without waking anyone.
	ActionSlack Action = "slack"
	// ActionRecord only records the finding.
	ActionRecord Action = "record"
)

func (a Action) valid() bool { return a == ActionPage || a == ActionSlack || a == ActionRecord }

// Route picks an action for findings detected during its windows. Routes
// are tried in order and the first that matches wins.
type Route struct {
	// Name is recorded with every decision the route makes.
	Name string `yaml:"name"`
	// TimeZone is an IANA name such as America/Chicago, in which When is
	// read; default UTC.
	TimeZone string `yaml:"time_zone"`
	// Services limits the route to these services; empty, every service.
	Services []string `yaml:"services"`
	// When lists the windows in which the route applies; empty, always.
	When []Window `yaml:"when"`
	// Customers limits the route by who is affected (tiers, VIPs, how
	// many); nil, anyone. Only RouteImpact honours it.
	Customers *RouteCustomers `yaml:"customers"`
	Action    Action          `yaml:"action"`
	// MinSeverity is the least severity a page action pages: page
	// (default) or notify. A customer-confined finding is graded notify,
	// so a route for one VIP customer sets notify.
	MinSeverity string `yaml:"min_severity"`
	// RoutingKey is the PagerDuty key this route pages with (the support
	// on-call's service) instead of the service's key.
	RoutingKey Secret `yaml:"routing_key"`
	// SlackChannel is the channel this route posts to instead of
	// slack.channel.
	SlackChannel string `yaml:"slack_channel"`

	loc *time.Location // set when loaded from a file
}

// Window is a span of wall-clock time on some days of the week, read in
// the route's time zone.
//
// From later than To wraps past midnight: the window is From to 24:00 and
// 00:00 to To of each listed day (days: [mon..fri], from 18:00, to 09:00
// covers Monday 00:00–09:00 and Friday 18:00–24:00). Times are wall clock,
// so on the day clocks spring forward a window starting inside the skipped
// hour starts at the first instant after it, and in the hour repeated in
// autumn a window matches both times round.
type Window struct {
	// Days are mon, tue, wed, thu, fri, sat, sun (or full names); empty,
	// every day.
	Days []string `yaml:"days"`
	// From and To are HH:MM, To may be 24:00; both empty, the whole day.
	From string `yaml:"from"`
	To   string `yaml:"to"`

	compiled *window // set when loaded from a file
}

// window is a Window parsed: a weekday bitmask (0 = every day) and seconds
// since midnight, from < 0 for the whole day.
type window struct {
	days     uint8
	from, to int
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// compile parses w; each error names the key it is about.
func (w Window) compile() (*window, []Problem) {
	var ps []Problem
	c := &window{from: -1, to: -1}
	for i, d := range w.Days {
		wd, ok := weekdays[strings.ToLower(strings.TrimSpace(d))]
		if !ok {
			ps = append(ps, Problem{Path: fmt.Sprintf("days[%d]", i), Msg: fmt.Sprintf("%q is not a day (mon, tue, wed, thu, fri, sat, sun)", d)})
			continue
		}
		c.days |= 1 << wd
	}
	if (w.From == "") != (w.To == "") {
		ps = append(ps, Problem{Msg: "from and to go together: set both, or neither for the whole day"})
		return c, ps
	}
	if w.From == "" {
		return c, ps
	}
	from, okFrom := timeOfDay(w.From, false)
	if !okFrom {
		ps = append(ps, Problem{Path: "from", Msg: fmt.Sprintf("%q is not a time of day (HH:MM)", w.From)})
	}
	to, okTo := timeOfDay(w.To, true)
	if !okTo {
		ps = append(ps, Problem{Path: "to", Msg: fmt.Sprintf("%q is not a time of day (HH:MM, or 24:00)", w.To)})
	}
	if okFrom && okTo && from == to%86400 {
		ps = append(ps, Problem{Path: "to", Msg: "equals from: leave both out for the whole day"})
	}
	c.from, c.to = from, to
	return c, ps
}

// timeOfDay parses HH:MM into seconds since midnight; 24:00 only as an end.
func timeOfDay(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	for _, c := range s[:2] + s[3:] {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	h := int(s[0]-'0')*10 + int(s[1]-'0')
	m := int(s[3]-'0')*10 + int(s[4]-'0')
	if h == 24 && m == 0 && end {
		return 86400, true
	}
	if h > 23 || m > 59 {
		return 0, false
	}
	return h*3600 + m*60, true
}

// contains reports whether local, already in the route's zone, falls in w.
func (w *window) contains(local time.Time) bool {
	if w.days != 0 && w.days&(1<<local.Weekday()) == 0 {
		return false
	}
	if w.from < 0 {
		return true
	}
	tod := local.Hour()*3600 + local.Minute()*60 + local.Second()
	if w.from < w.to {
		return tod >= w.from && tod < w.to
	}
	return tod >= w.from || tod < w.to
}

// location loads the route's zone; "" is UTC. The process's Local zone is
// refused: where the daemon happens to run must not change who is paged.
func (r *Route) location() (*time.Location, error) {
	if r.loc != nil {
		return r.loc, nil
	}
	if r.TimeZone == "Local" {
		return nil, fmt.Errorf("%q depends on the server: use an IANA name such as Europe/Berlin", r.TimeZone)
	}
	loc, err := time.LoadLocation(r.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q", r.TimeZone)
	}
	return loc, nil
}

// matches reports whether the route applies to service at t. A route whose
// zone or windows are invalid (possible only for a Config built in code
// and never validated) matches nothing.
func (r *Route) matches(service string, t time.Time) bool {
	if len(r.Services) > 0 && !slices.Contains(r.Services, service) {
		return false
	}
	if len(r.When) == 0 {
		return true
	}
	loc, err := r.location()
	if err != nil {
		return false
	}
	local := t.In(loc)
	for i := range r.When {
		w := r.When[i].compiled
		if w == nil {
			var ps []Problem
			if w, ps = r.When[i].compile(); len(ps) > 0 {
				continue
			}
		}
		if w.contains(local) {
			return true
		}
	}
	return false
}

// Route decides what to do with a finding of service detected at t: the
// first route that applies to the service and whose When matches t in the
// route's time zone wins, and route is its name. When none matches, the
// action is DefaultAction (record when that is unset) and route is "".
// Route and Silenced only read c, so they are safe for concurrent use.
func (c *Config) Route(service string, t time.Time) (action Action, route string) {
	for i := range c.Routes {
		if r := &c.Routes[i]; r.Customers == nil && r.matches(service, t) {
			return r.Action, r.Name
		}
	}
	if c.DefaultAction == "" {
		return ActionRecord, ""
	}
	return c.DefaultAction, ""
}

// RoutingKey is the PagerDuty routing key for service's pages: the
// service's own, else pagerduty.routing_key. It is "" when neither is set,
// or when the configuration was loaded without resolving secrets.
func (c *Config) RoutingKey(service string) string {
	for _, s := range c.Services {
		if s.Name == service && s.RoutingKey.IsSet() {
			return s.RoutingKey.Reveal()
		}
	}
	return c.PagerDuty.RoutingKey.Reveal()
}

// Watches reports whether service is one the daemon watches: every
// service when the services list is empty.
func (c *Config) Watches(service string) bool {
	if len(c.Services) == 0 {
		return true
	}
	for _, s := range c.Services {
		if s.Name == service {
			return true
		}
	}
	return false
}
