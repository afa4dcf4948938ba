package slack

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// DefaultSince is the look-back of a /correlate without a time range: long
// enough to hold a deploy and its fallout, short enough to answer quickly.
const DefaultSince = 2 * time.Hour

// MaxRange bounds what one question may ask the log store for. A month of
// aggregations is already heavy; anything longer is almost always a typo
// (since=200h meant as 20h) and would hold Elasticsearch for minutes.
const MaxRange = 31 * 24 * time.Hour

// Query is what a support engineer asked for with /correlate.
type Query struct {
	// Service is the service to look at; empty means all services.
	Service string
	// From and To bound the analysis, in UTC. They are always set: with
	// since= (or by default) To is the time of the question and From is
	// Since before it.
	From, To time.Time
	// Since is the look-back when the question gave one (or the default),
	// and zero for an explicit from..to range.
	Since time.Duration
	// Text is the quoted error text to look for; empty means any error.
	Text string
	// Customer is an organization id (the logs' organization.id, the
	// tickets' organization_id); empty means all customers.
	Customer string
}

// Usage is the one-line grammar of the command, shown with every mistake.
const Usage = `usage: /correlate [service] [since=2h | from..to] ["error text"] [customer=ID]`

// helpText answers /correlate help.
const helpText = Usage + `

• service: one service name, e.g. edge-router; omit it for all services
• since=2h: how far back to look (Go durations plus days: 30m, 2h, 1d12h); the default is 2h
• from..to: an explicit range in UTC, RFC 3339 or HH:MM today; an empty end means now
• "error text": only errors whose message contains this text (Slack's curly quotes work too)
• customer=ID: only this customer (organization id)

Examples:
  /correlate edge-router
  /correlate edge-router since=6h
  /correlate api 16:00..16:45 customer=10234
  /correlate "function invocation failed" since=1d
  /correlate 2026-11-20T15:00:00Z..2026-11-20T18:00:00Z`

// UsageError is a mistake in the command's arguments. Its message names
// the offending token and ends with the usage line, because it goes back
// to the person who typed it.
type UsageError struct {
	// Problem says what is wrong, e.g. `unknown argument "sinse=2h"`.
	Problem string
}

func (e *UsageError) Error() string { return e.Problem + "; " + Usage }

// errHelp is returned by ParseQuery for "help": not a mistake, but not a
// query either.
var errHelp = errors.New("help requested")

// ParseQuery reads the text after /correlate. now is the time of the
// question; HH:MM times are on its UTC date. Mistakes come back as a
// *UsageError.
func ParseQuery(text string, now time.Time) (Query, error) {
	now = now.UTC()
	text = unescapeSlack(text)
	if strings.EqualFold(strings.TrimSpace(text), "help") {
		return Query{}, errHelp
	}
	toks, err := tokenize(text)
	if err != nil {
		return Query{}, err
	}
	var (
		q                      Query
		haveSince, haveRange   bool
		haveText, haveCustomer bool
		usage                  = func(format string, a ...any) error { return &UsageError{Problem: fmt.Sprintf(format, a...)} }
	)
	for _, t := range toks {
		switch {
		case t.quoted:
			if haveText {
				return Query{}, usage("only one quoted error text is allowed, got a second: %q", t.s)
			}
			if strings.TrimSpace(t.s) == "" {
				return Query{}, usage("the quoted error text is empty")
			}
			q.Text, haveText = strings.TrimSpace(t.s), true
		case strings.Contains(t.s, "="):
			key, val, _ := strings.Cut(t.s, "=")
			switch strings.ToLower(key) {
			case "since":
				if haveSince {
					return Query{}, usage("since= given twice")
				}
				if haveRange {
					return Query{}, usage("since= and from..to cannot be combined: %q", t.s)
				}
				d, err := parseSince(val)
				if err != nil {
					return Query{}, usage("bad duration in %q: %v", t.s, err)
				}
				q.Since, haveSince = d, true
			case "customer":
				if haveCustomer {
					return Query{}, usage("customer= given twice")
				}
				if val == "" || !isWord(val) {
					return Query{}, usage("bad customer id in %q", t.s)
				}
				q.Customer, haveCustomer = val, true
			default:
				return Query{}, usage("unknown argument %q", t.s)
			}
		case strings.Contains(t.s, ".."):
			if haveRange {
				return Query{}, usage("two time ranges given, the second is %q", t.s)
			}
			if haveSince {
				return Query{}, usage("since= and from..to cannot be combined: %q", t.s)
			}
			from, to, err := parseRange(t.s, now)
			if err != nil {
				return Query{}, usage("bad time range %q: %v", t.s, err)
			}
			q.From, q.To, haveRange = from, to, true
		default:
			if q.Service != "" {
				return Query{}, usage("unexpected %q after service %q (quote error text: \"...\")", t.s, q.Service)
			}
			if !isWord(t.s) {
				return Query{}, usage("%q is not a service name", t.s)
			}
			q.Service = t.s
		}
	}
	if !haveRange {
		if !haveSince {
			q.Since = DefaultSince
		}
		q.From, q.To = now.Add(-q.Since), now
	}
	return q, nil
}

type token struct {
	s      string
	quoted bool
}

// tokenize splits on white space, keeping "quoted text" (straight or
// Slack's curly quotes, which its clients substitute as you type) as one
// token.
func tokenize(text string) ([]token, error) {
	var toks []token
	rs := []rune(text)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case unicode.IsSpace(r):
			i++
		case r == '"' || r == '“' || r == '”':
			j := i + 1
			for j < len(rs) && rs[j] != '"' && rs[j] != '”' && rs[j] != '“' {
				j++
			}
			if j == len(rs) {
				return nil, &UsageError{Problem: fmt.Sprintf("unterminated quote in %q", string(rs[i:]))}
			}
			toks = append(toks, token{s: string(rs[i+1 : j]), quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(rs) && !unicode.IsSpace(rs[j]) && rs[j] != '"' && rs[j] != '“' && rs[j] != '”' {
				j++
			}
			toks = append(toks, token{s: string(rs[i:j])})
			i = j
		}
	}
	return toks, nil
}

// parseSince accepts Go durations plus a leading whole number of days
// ("1d", "1d12h"), which is how people say "since yesterday".
func parseSince(v string) (time.Duration, error) {
	if v == "" {
		return 0, errors.New("empty")
	}
	var d time.Duration
	if days, rest, ok := strings.Cut(v, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%q is not a number of days", days+"d")
		}
		if n > int(MaxRange/(24*time.Hour)) {
			return 0, fmt.Errorf("longer than the maximum %s", fmtDuration(MaxRange))
		}
		d = time.Duration(n) * 24 * time.Hour
		v = rest
	}
	if v != "" {
		x, err := time.ParseDuration(v)
		if err != nil {
			return 0, errors.New("use e.g. 30m, 2h or 1d")
		}
		d += x
	}
	switch {
	case d <= 0:
		return 0, errors.New("must be positive")
	case d > MaxRange:
		return 0, fmt.Errorf("longer than the maximum %s", fmtDuration(MaxRange))
	}
	return d, nil
}

// parseRange reads from..to. Each end is RFC 3339 or HH:MM on now's UTC
// date; an empty end means now.
func parseRange(v string, now time.Time) (from, to time.Time, err error) {
	a, b, _ := strings.Cut(v, "..")
	if a == "" {
		return from, to, errors.New("no start")
	}
	if from, err = parseInstant(a, now); err != nil {
		return from, to, err
	}
	to = now
	if b != "" {
		if to, err = parseInstant(b, now); err != nil {
			return from, to, err
		}
	}
	// Nothing is logged after now: an end later than now (today's 20:00
	// asked at 16:30) means "until now", and the answer's headline says
	// the window it used.
	if to.After(now) {
		to = now
	}
	switch {
	case from.After(now):
		return from, to, fmt.Errorf("the start %s is after now (%s UTC)", from.Format("2006-01-02 15:04"), now.Format("15:04"))
	case !from.Before(to):
		return from, to, errors.New("the start is not before the end")
	case to.Sub(from) > MaxRange:
		return from, to, fmt.Errorf("longer than the maximum %s", fmtDuration(MaxRange))
	}
	return from, to, nil
}

func parseInstant(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse("15:04", s); err == nil {
		y, m, d := now.Date()
		return time.Date(y, m, d, t.Hour(), t.Minute(), 0, 0, time.UTC), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor HH:MM", s)
}

// isWord is what a service name or customer id may look like; anything
// else is more likely a mistyped argument than a name.
func isWord(s string) bool {
	if s == "" || len(s) > 200 {
		return false
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// unescapeSlack undoes the only escaping Slack applies to command text.
func unescapeSlack(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

// fmtDuration writes 2h rather than 2h0m0s, and days as days.
func fmtDuration(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
