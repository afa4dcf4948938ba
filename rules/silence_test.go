package rules

import (
	"testing"
	"time"
)

type silenceCase struct {
	name      string
	service   string
	signature string
	at        string
	silenced  bool
	why       string
}

func checkSilenced(t *testing.T, c *Config, cases []silenceCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := c.Silenced(tc.service, tc.signature, mustTime(t, tc.at))
			if ok != tc.silenced || why != tc.why {
				t.Errorf("Silenced(%s, %q, %s) = %v, %q; want %v, %q", tc.service, tc.signature, tc.at, ok, why, tc.silenced, tc.why)
			}
		})
	}
}

func TestSilences(t *testing.T) {
	c := mustParse(t, `services: [{name: edge-router}, {name: api}]
silences:
  - matchers: {service: edge-router, signature: "~^upstream timeout"}
    starts_at: 2026-11-20T00:00:00Z
    ends_at: 2026-11-21T00:00:00Z
    comment: known issue INC-123
    created_by: alice
  - matchers: {signature: disk full}
    starts_at: 2026-11-20T00:00:00+01:00
    ends_at: 2026-11-27T00:00:00+01:00
  - matchers: {service: "~^(api|edge-.*)$", signature: "~(?i)certificate"}
    starts_at: 2026-11-20T00:00:00Z
    ends_at: 2026-11-21T00:00:00Z
`)
	const inc123 = "silences[0] known issue INC-123 (by alice) until 2026-11-21T00:00:00Z"
	checkSilenced(t, c, []silenceCase{
		{"matching", "edge-router", "upstream timeout after <*>s", "2026-11-20T12:00:00Z", true, inc123},
		{"at the start", "edge-router", "upstream timeout", "2026-11-20T00:00:00Z", true, inc123},
		{"just before the start", "edge-router", "upstream timeout", "2026-11-19T23:59:59Z", false, ""},
		{"at the end, which is excluded", "edge-router", "upstream timeout", "2026-11-21T00:00:00Z", false, ""},
		{"regexp is anchored only where it says", "edge-router", "gateway upstream timeout", "2026-11-20T12:00:00Z", false, ""},
		{"other service", "api", "upstream timeout", "2026-11-20T12:00:00Z", false, ""},
		{"exact signature, any service", "api", "disk full", "2026-11-19T23:00:00Z", true, "silences[1] until 2026-11-26T23:00:00Z"},
		{"exact means exact", "api", "disk full!", "2026-11-20T12:00:00Z", false, ""},
		{"both regexps", "edge-gw", "TLS Certificate expired", "2026-11-20T12:00:00Z", true, "silences[2] until 2026-11-21T00:00:00Z"},
		{"service regexp is anchored by the user", "edge", "certificate expired", "2026-11-20T12:00:00Z", false, ""},
	})
}

// Maintenance windows start at each time their cron schedule names, in
// its CRON_TZ, and last their duration.
func TestMaintenance(t *testing.T) {
	c := mustParse(t, `maintenance:
  - services: [edge-router]
    schedule: "CRON_TZ=Europe/Berlin 0 2 * * sun"
    duration: 2h
  - schedule: "30 23 * * *"
    duration: 1h
`)
	checkSilenced(t, c, []silenceCase{
		// Sunday 2026-11-22, CET (UTC+1): 02:00–04:00 is 01:00–03:00 UTC.
		{"just before", "edge-router", "x", "2026-11-22T00:59:59Z", false, ""},
		{"at the start", "edge-router", "x", "2026-11-22T01:00:00Z", true, `maintenance[0] "CRON_TZ=Europe/Berlin 0 2 * * sun" until 2026-11-22T03:00:00Z`},
		{"inside", "edge-router", "x", "2026-11-22T02:59:59Z", true, `maintenance[0] "CRON_TZ=Europe/Berlin 0 2 * * sun" until 2026-11-22T03:00:00Z`},
		{"at the end", "edge-router", "x", "2026-11-22T03:00:00Z", false, ""},
		{"other service", "api", "x", "2026-11-22T01:30:00Z", false, ""},
		{"a saturday", "edge-router", "x", "2026-11-21T01:30:00Z", false, ""},
		// Summer, CEST (UTC+2): 02:00–04:00 is 00:00–02:00 UTC.
		{"summer", "edge-router", "x", "2026-07-05T00:30:00Z", true, `maintenance[0] "CRON_TZ=Europe/Berlin 0 2 * * sun" until 2026-07-05T02:00:00Z`},
		{"summer, winter's hours", "edge-router", "x", "2026-07-05T02:30:00Z", false, ""},
		// 2026-03-29: Berlin springs forward from 02:00 to 03:00; like
		// cron, the 02:00 start does not happen that day.
		{"spring forward skips the window", "edge-router", "x", "2026-03-29T01:30:00Z", false, ""},
		// 2026-10-25: 02:00–03:00 happens twice; each 02:00 starts a window.
		{"fall back, first 02:00 CEST", "edge-router", "x", "2026-10-25T00:30:00Z", true, `maintenance[0] "CRON_TZ=Europe/Berlin 0 2 * * sun" until 2026-10-25T02:00:00Z`},
		{"fall back, second 02:00 CET", "edge-router", "x", "2026-10-25T02:30:00Z", true, `maintenance[0] "CRON_TZ=Europe/Berlin 0 2 * * sun" until 2026-10-25T03:00:00Z`},
		// No services: every service; a window that runs past midnight.
		{"every service, past midnight", "api", "x", "2026-11-25T00:15:00Z", true, `maintenance[1] "30 23 * * *" until 2026-11-25T00:30:00Z`},
		{"every service, after", "api", "x", "2026-11-25T00:30:00Z", false, ""},
	})
}

func TestSilencesBeforeMaintenance(t *testing.T) {
	c := mustParse(t, `silences:
  - matchers: {service: api}
    starts_at: 2026-11-20T00:00:00Z
    ends_at: 2026-11-21T00:00:00Z
maintenance:
  - schedule: "0 * * * *"
    duration: 1h
`)
	checkSilenced(t, c, []silenceCase{
		{"both apply, the silence is named", "api", "x", "2026-11-20T12:00:00Z", true, "silences[0] until 2026-11-21T00:00:00Z"},
		{"only maintenance", "edge", "x", "2026-11-20T12:34:00Z", true, `maintenance[0] "0 * * * *" until 2026-11-20T13:00:00Z`},
	})
}

// A Config built in code, never validated, still silences.
func TestSilencedInCode(t *testing.T) {
	start := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	c := &Config{
		Silences:    []Silence{{Matchers: Matchers{Signature: "~timeout$"}, StartsAt: Time{start}, EndsAt: Time{start.Add(time.Hour)}}},
		Maintenance: []Maintenance{{Schedule: "0 12 * * *", Duration: Duration(time.Hour)}, {Schedule: "not cron", Duration: Duration(time.Hour)}},
	}
	checkSilenced(t, c, []silenceCase{
		{"regexp compiled on the fly", "api", "read timeout", "2026-11-20T00:30:00Z", true, "silences[0] until 2026-11-20T01:00:00Z"},
		{"regexp does not match", "api", "timeout reading", "2026-11-20T00:30:00Z", false, ""},
		{"schedule parsed on the fly", "api", "x", "2026-11-20T12:30:00Z", true, `maintenance[0] "0 12 * * *" until 2026-11-20T13:00:00Z`},
		{"an invalid schedule never matches", "api", "x", "2026-11-20T14:00:00Z", false, ""},
	})
}
