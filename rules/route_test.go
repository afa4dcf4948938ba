package rules

import (
	"strings"
	"testing"
	"time"
)

func mustParse(t *testing.T, src string) *Config {
	t.Helper()
	c, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type routeCase struct {
	name    string
	service string
	at      string // RFC 3339, UTC; the comment gives the wall clock
	action  Action
	route   string
}

func checkRoutes(t *testing.T, c *Config, cases []routeCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			service := tc.service
			if service == "" {
				service = "edge-router"
			}
			action, route := c.Route(service, mustTime(t, tc.at))
			if action != tc.action || route != tc.route {
				t.Errorf("Route(%s, %s) = %s by %q, want %s by %q", service, tc.at, action, route, tc.action, tc.route)
			}
		})
	}
}

const offHours = `pagerduty: {routing_key: {env: PD}}
routes:
  - name: off-hours
    time_zone: America/Chicago
    when:
      - days: [sat, sun]
      - days: [mon, tue, wed, thu, fri]
        from: "18:00"
        to: "09:00"
    action: page
  - name: business-hours
    action: slack
`

func TestRouteChicagoOffHours(t *testing.T) {
	c := mustParse(t, offHours)
	checkRoutes(t, c, []routeCase{
		// November 2026: CST, UTC-6.
		{"friday 17:59", "", "2026-11-20T23:59:00Z", ActionSlack, "business-hours"},
		{"friday 18:00", "", "2026-11-21T00:00:00Z", ActionPage, "off-hours"},
		{"saturday noon", "", "2026-11-21T18:00:00Z", ActionPage, "off-hours"},
		{"sunday 23:59", "", "2026-11-23T05:59:00Z", ActionPage, "off-hours"},
		{"monday 08:59", "", "2026-11-23T14:59:00Z", ActionPage, "off-hours"},
		{"monday 09:00", "", "2026-11-23T15:00:00Z", ActionSlack, "business-hours"},
		{"wednesday 02:00", "", "2026-11-25T08:00:00Z", ActionPage, "off-hours"},
		{"wednesday noon", "", "2026-11-25T18:00:00Z", ActionSlack, "business-hours"},
		// Clocks spring forward on Sunday 2026-03-08: CST (UTC-6) before, CDT (UTC-5) after.
		{"friday before spring forward 17:59 CST", "", "2026-03-06T23:59:00Z", ActionSlack, "business-hours"},
		{"friday before spring forward 18:00 CST", "", "2026-03-07T00:00:00Z", ActionPage, "off-hours"},
		{"monday after spring forward 08:59 CDT", "", "2026-03-09T13:59:00Z", ActionPage, "off-hours"},
		{"monday after spring forward 09:00 CDT", "", "2026-03-09T14:00:00Z", ActionSlack, "business-hours"},
		// Clocks fall back on Sunday 2026-11-01: CDT before, CST after.
		{"friday before fall back 17:59 CDT", "", "2026-10-30T22:59:00Z", ActionSlack, "business-hours"},
		{"friday before fall back 18:00 CDT", "", "2026-10-30T23:00:00Z", ActionPage, "off-hours"},
		{"monday after fall back 08:59 CST", "", "2026-11-02T14:59:00Z", ActionPage, "off-hours"},
		{"monday after fall back 09:00 CST", "", "2026-11-02T15:00:00Z", ActionSlack, "business-hours"},
	})
}

// Windows are wall clock: a window starting in the hour that spring
// forward skips starts at the first instant after it, and one in the
// repeated autumn hour matches both times round.
func TestRouteAcrossDSTChanges(t *testing.T) {
	c := mustParse(t, `pagerduty: {routing_key: {env: PD}}
routes:
  - name: night
    time_zone: America/Chicago
    when: [{days: [sun], from: "02:30", to: "04:00"}]
    action: page
  - name: repeated
    time_zone: America/Chicago
    when: [{days: [sun], from: "01:00", to: "01:30"}]
    action: slack
`)
	checkRoutes(t, c, []routeCase{
		{"spring forward 01:59 CST", "", "2026-03-08T07:59:00Z", ActionRecord, ""},
		{"spring forward 03:00 CDT, first instant after the gap", "", "2026-03-08T08:00:00Z", ActionPage, "night"},
		{"spring forward 03:59:59 CDT", "", "2026-03-08T08:59:59Z", ActionPage, "night"},
		{"spring forward 04:00 CDT", "", "2026-03-08T09:00:00Z", ActionRecord, ""},
		{"a week later 02:29 CDT", "", "2026-03-15T07:29:00Z", ActionRecord, ""},
		{"a week later 02:30 CDT", "", "2026-03-15T07:30:00Z", ActionPage, "night"},
		{"fall back 01:15 CDT", "", "2026-11-01T06:15:00Z", ActionSlack, "repeated"},
		{"fall back 01:45 CDT", "", "2026-11-01T06:45:00Z", ActionRecord, ""},
		{"fall back 01:15 CST, the repeat", "", "2026-11-01T07:15:00Z", ActionSlack, "repeated"},
		{"fall back 01:30 CST", "", "2026-11-01T07:30:00Z", ActionRecord, ""},
	})
}

// The same instant is evening in Berlin and midday in Chicago, and the
// offset between them changes when only one of them has changed clocks.
func TestRouteTimeZones(t *testing.T) {
	c := mustParse(t, `pagerduty: {routing_key: {env: PD}}
services: [{name: eu-api}, {name: us-api}, {name: other}]
routes:
  - name: berlin-evenings
    time_zone: Europe/Berlin
    services: [eu-api]
    when: [{days: [mon, tue, wed, thu, fri], from: "18:00", to: "09:00"}]
    action: page
  - name: chicago-evenings
    time_zone: America/Chicago
    services: [us-api]
    when: [{days: [mon, tue, wed, thu, fri], from: "18:00", to: "09:00"}]
    action: page
default_action: slack
`)
	checkRoutes(t, c, []routeCase{
		{"berlin 18:30 CET", "eu-api", "2026-11-20T17:30:00Z", ActionPage, "berlin-evenings"},
		{"chicago 11:30 CST at the same instant", "us-api", "2026-11-20T17:30:00Z", ActionSlack, ""},
		{"berlin 17:59 CET", "eu-api", "2026-11-20T16:59:00Z", ActionSlack, ""},
		{"other service at berlin evening", "other", "2026-11-20T17:30:00Z", ActionSlack, ""},
		{"berlin 18:00 CET while chicago is on CDT", "eu-api", "2026-03-20T17:00:00Z", ActionPage, "berlin-evenings"},
		{"chicago 12:00 CDT at the same instant", "us-api", "2026-03-20T17:00:00Z", ActionSlack, ""},
		{"chicago 18:00 CDT", "us-api", "2026-03-20T23:00:00Z", ActionPage, "chicago-evenings"},
		{"berlin 17:30 CET before its change", "eu-api", "2026-03-27T16:30:00Z", ActionSlack, ""},
		{"berlin 18:00 CEST after its change", "eu-api", "2026-03-30T16:00:00Z", ActionPage, "berlin-evenings"},
	})
}

func TestRouteDefaults(t *testing.T) {
	checkRoutes(t, mustParse(t, ""), []routeCase{{"no routes", "", "2026-11-20T12:00:00Z", ActionRecord, ""}})
	// A Config built in code, never validated, still routes.
	c := &Config{Routes: []Route{{Name: "weekend", TimeZone: "Europe/Berlin", When: []Window{{Days: []string{"Sat"}}}, Action: ActionPage}}}
	checkRoutes(t, c, []routeCase{
		{"code-built, saturday", "", "2026-11-21T12:00:00Z", ActionPage, "weekend"},
		{"code-built, friday, default action unset", "", "2026-11-20T12:00:00Z", ActionRecord, ""},
		// 23:30 UTC Friday is 00:30 Saturday in Berlin.
		{"code-built, saturday in berlin only", "", "2026-11-20T23:30:00Z", ActionPage, "weekend"},
	})
}

func TestWindowParsing(t *testing.T) {
	tests := []struct {
		name     string
		w        Window
		problems []string
	}{
		{"whole day", Window{Days: []string{"mon", "Sunday", " SAT "}}, nil},
		{"to may be 24:00", Window{From: "18:00", To: "24:00"}, nil},
		{"from may not be 24:00", Window{From: "24:00", To: "01:00"}, []string{`from: "24:00" is not a time of day (HH:MM)`}},
		{"one digit hour", Window{From: "9:00", To: "17:00"}, []string{`from: "9:00" is not a time of day (HH:MM)`}},
		{"minutes out of range", Window{From: "09:00", To: "17:60"}, []string{`to: "17:60" is not a time of day (HH:MM, or 24:00)`}},
		{"not digits", Window{From: "ab:cd", To: "17:00"}, []string{`from: "ab:cd" is not a time of day (HH:MM)`}},
		{"seconds", Window{From: "09:00:00", To: "17:00"}, []string{`from: "09:00:00" is not a time of day (HH:MM)`}},
		{"from alone", Window{From: "09:00"}, []string{"from and to go together: set both, or neither for the whole day"}},
		{"empty range", Window{From: "00:00", To: "24:00"}, []string{"to: equals from: leave both out for the whole day"}},
		{"bad day", Window{Days: []string{"mon", "weekend"}}, []string{`days[1]: "weekend" is not a day (mon, tue, wed, thu, fri, sat, sun)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := tc.w.compile()
			var got []string
			for _, p := range ps {
				got = append(got, p.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tc.problems, "\n") {
				t.Errorf("problems %q, want %q", got, tc.problems)
			}
		})
	}
}

// Loading parses zones, windows, regexps and schedules once, so that Route
// and Silenced, called for every finding of every evaluation, do not.
func TestParseCompiles(t *testing.T) {
	c := mustParse(t, offHours+`silences:
  - matchers: {signature: "~timeout"}
    starts_at: 2026-11-20T00:00:00Z
    ends_at: 2026-11-21T00:00:00Z
maintenance:
  - schedule: "0 2 * * sun"
    duration: 1h
`)
	if c.Routes[0].loc == nil || c.Routes[0].When[1].compiled == nil || c.Silences[0].signature == nil || c.Maintenance[0].schedule == nil {
		t.Errorf("not compiled: %#v", c)
	}
}
