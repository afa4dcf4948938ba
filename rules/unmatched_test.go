package rules

import (
	"testing"
	"time"
)

// TestNoRoute: when no route matches, the explanation names every route
// with the condition it failed, and what the default does instead.
func TestNoRoute(t *testing.T) {
	c, err := Parse([]byte(`
routes:
  - name: edge-nights
    services: [edge-router]
    time_zone: America/Chicago
    when:
      - days: [mon, tue, wed, thu, fri]
        from: "18:00"
        to: "09:00"
    action: page
  - name: api-only
    services: [api]
    action: slack
default_action: record
pagerduty:
  routing_key: {env: PD_KEY}
`))
	if err != nil {
		t.Fatal(err)
	}
	// Friday 16:06 UTC is 10:06 in Chicago: inside no window.
	at := time.Date(2026, 11, 20, 16, 6, 0, 0, time.UTC)
	if a, name := c.Route("edge-router", at); a != ActionRecord || name != "" {
		t.Fatalf("Route = %s %q, want record from no route", a, name)
	}
	want := `no route matched: route "edge-nights" is outside its windows at Fri 10:06 America/Chicago; ` +
		`route "api-only" is only for api, not edge-router; default_action record applies`
	if got := c.NoRoute("edge-router", at); got != want {
		t.Errorf("NoRoute =\n%s\nwant\n%s", got, want)
	}
	def := Default()
	if got, want := def.NoRoute("api", at), "no route configured, so default_action record applies"; got != want {
		t.Errorf("built-in NoRoute = %q, want %q", got, want)
	}
}
