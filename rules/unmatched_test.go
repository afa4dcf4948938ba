package rules

import (
	"strings"
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

// TestDeliverLog: pagerduty.deliver: log needs no routing key for a page
// route; an unknown mode, or a log file without it, is refused by name.
func TestDeliverLog(t *testing.T) {
	const route = "routes:\n  - name: all\n    action: page\n"
	if _, err := Parse([]byte(route + "pagerduty:\n  deliver: log\n  log_file: pages.ndjson\n")); err != nil {
		t.Errorf("deliver: log without a key: %v", err)
	}
	for _, tc := range []struct{ yaml, want string }{
		{route, "page needs a PagerDuty routing key"},
		{route + "pagerduty:\n  deliver: email\n", `pagerduty.deliver: "email" is not one of api, log`},
		{"pagerduty:\n  log_file: pages.ndjson\n", "pagerduty.log_file: is only used with deliver: log"},
	} {
		if _, err := Parse([]byte(tc.yaml)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
