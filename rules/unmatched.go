package rules

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// NoRoute says why no route matched a finding of service at t: each route
// with the condition it failed, then what default_action does instead.
// Route gives no name when nothing matched, and an empty "why" left people
// guessing why a page-grade finding was only recorded (the built-in
// configuration has no routes at all); this is the sentence that goes in
// its place.
func (c *Config) NoRoute(service string, t time.Time) string {
	def := c.DefaultAction
	if def == "" {
		def = ActionRecord
	}
	if len(c.Routes) == 0 {
		return fmt.Sprintf("no route configured, so default_action %s applies", def)
	}
	var failed []string
	for i := range c.Routes {
		failed = append(failed, c.Routes[i].unmatched(service, t))
	}
	return fmt.Sprintf("no route matched: %s; default_action %s applies", strings.Join(failed, "; "), def)
}

// unmatched names the route and the first of its conditions that does not
// hold for service at t.
func (r *Route) unmatched(service string, t time.Time) string {
	name := fmt.Sprintf("route %q", r.Name)
	if r.Name == "" {
		name = "an unnamed route"
	}
	switch {
	case len(r.Services) > 0 && !slices.Contains(r.Services, service):
		return fmt.Sprintf("%s is only for %s, not %s", name, strings.Join(r.Services, ", "), service)
	case r.matches(service, t):
		// Matching now but not when Route was asked cannot happen for
		// the same t; say so rather than invent a reason.
		return name + " matches"
	}
	loc, err := r.location()
	if err != nil {
		return fmt.Sprintf("%s has an invalid time zone: %v", name, err)
	}
	local := t.In(loc)
	return fmt.Sprintf("%s is outside its windows at %s %s", name, local.Format("Mon 15:04"), loc)
}
