package slack

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseQuery(t *testing.T) {
	at := func(h, m int) time.Time { return time.Date(2026, 11, 20, h, m, 0, 0, time.UTC) }
	tests := []struct {
		name string
		text string
		want Query
	}{
		{"empty means all services, last 2h", "", Query{From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
		{"service only", "edge-router", Query{Service: "edge-router", From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
		{"since hours", "edge-router since=6h", Query{Service: "edge-router", From: friday.Add(-6 * time.Hour), To: friday, Since: 6 * time.Hour}},
		{"since days and hours", "since=1d12h", Query{From: friday.Add(-36 * time.Hour), To: friday, Since: 36 * time.Hour}},
		{"since minutes, upper-case key", "SINCE=45m api", Query{Service: "api", From: friday.Add(-45 * time.Minute), To: friday, Since: 45 * time.Minute}},
		{"HH:MM range is today UTC", "api 16:00..16:20", Query{Service: "api", From: at(16, 0), To: at(16, 20)}},
		{"open range ends now", "16:00..", Query{From: at(16, 0), To: friday}},
		{"RFC 3339 range", "2026-11-20T14:00:00Z..2026-11-20T17:00:00+01:00", Query{From: at(14, 0), To: at(16, 0)}},
		{"straight quotes keep spaces", `"function invocation failed" since=1d`, Query{Text: "function invocation failed", From: friday.Add(-24 * time.Hour), To: friday, Since: 24 * time.Hour}},
		{"Slack's curly quotes", "edge-router “function invocation failed: fn-8812”", Query{Service: "edge-router", Text: "function invocation failed: fn-8812", From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
		{"customer", "customer=10234", Query{Customer: "10234", From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
		{"everything, any order", `customer=10234 "502 from upstream" 16:00..16:30 edge-router`, Query{Service: "edge-router", Text: "502 from upstream", Customer: "10234", From: at(16, 0), To: at(16, 30)}},
		{"Slack-escaped text", `"a &lt;b&gt; &amp; c"`, Query{Text: "a <b> & c", From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
		{"an end after now means until now", "14:00..20:00", Query{From: at(14, 0), To: friday}},
		{"RFC 3339 start, HH:MM end after now", "2026-11-10T00:00:00Z..20:00", Query{From: time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC), To: friday}},
		{"non-breaking and extra spaces", "  edge-router\u00a0 since=2h ", Query{Service: "edge-router", From: friday.Add(-2 * time.Hour), To: friday, Since: 2 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseQuery(tc.text, friday)
			if err != nil {
				t.Fatalf("ParseQuery(%q): %v", tc.text, err)
			}
			if got != tc.want {
				t.Errorf("ParseQuery(%q)\n got %+v\nwant %+v", tc.text, got, tc.want)
			}
		})
	}
}

func TestParseQueryMistakes(t *testing.T) {
	tests := []struct {
		name string
		text string
		want string // the problem, which must name the bad token
	}{
		{"misspelt key", "edge-router sinse=2h", `unknown argument "sinse=2h"`},
		{"bad duration", "since=2hours", `bad duration in "since=2hours"`},
		{"negative duration", "since=-1h", `bad duration in "since=-1h": must be positive`},
		{"too long", "since=40d", `bad duration in "since=40d": longer than the maximum 31d`},
		{"backwards range", "16:00..15:00", `bad time range "16:00..15:00": the start is not before the end`},
		{"not a time", "25:00..26:00", `bad time range "25:00..26:00": "25:00" is neither RFC 3339 nor HH:MM`},
		{"start after now", "20:00..21:00", `bad time range "20:00..21:00": the start 2026-11-20 20:00 is after now (16:30 UTC)`},
		{"since and range", "since=1h 16:00..16:30", `since= and from..to cannot be combined: "16:00..16:30"`},
		{"two services", "edge-router api", `unexpected "api" after service "edge-router"`},
		{"unterminated quote", `edge-router "function invocation`, `unterminated quote in "\"function invocation"`},
		{"empty customer", "customer=", `bad customer id in "customer="`},
		{"customer twice", "customer=1 customer=2", `customer= given twice`},
		{"not a service name", "edge<router", `"edge<router" is not a service name`},
		{"two texts", `"a" "b"`, `only one quoted error text is allowed, got a second: "b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseQuery(tc.text, friday)
			var ue *UsageError
			if !errors.As(err, &ue) {
				t.Fatalf("ParseQuery(%q) error = %v, want a *UsageError", tc.text, err)
			}
			if !strings.HasPrefix(ue.Problem, tc.want) {
				t.Errorf("problem = %q, want prefix %q", ue.Problem, tc.want)
			}
			if !strings.HasSuffix(err.Error(), "; "+Usage) {
				t.Errorf("error %q does not end with the usage line", err)
			}
		})
	}
}

func TestParseQueryHelp(t *testing.T) {
	for _, text := range []string{"help", " HELP "} {
		if _, err := ParseQuery(text, friday); !errors.Is(err, errHelp) {
			t.Errorf("ParseQuery(%q) error = %v, want errHelp", text, err)
		}
	}
}
