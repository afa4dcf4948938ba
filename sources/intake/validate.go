package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/culprithq/culprit/correlate"
)

// Limits on what intake stores. Everything posted here ends up in the
// store, on incident pages, in Slack posts and in PagerDuty events, so a
// value that could not have come from a real CI system or Zendesk is
// refused with a 400 naming its field rather than stored and shown.
const (
	// maxIDBytes bounds identifiers and short names: deploy ids, services,
	// versions, environments, authors, host names, ticket tags, priorities,
	// statuses and channels. A GitHub sha is 40 bytes, a UUID 36, a
	// Kubernetes name at most 253; 256 leaves room for all of them, while
	// a 900 KB id (which the old intake stored) would have bloated every
	// index, page and event that names the deploy.
	maxIDBytes = 256
	// maxURLBytes bounds links. Browsers and proxies start failing past
	// 8 KB, so a longer URL could not be opened from an incident page.
	maxURLBytes = 8 << 10
	// maxTextBytes bounds free text: deploy descriptions, ticket subjects
	// and descriptions. Zendesk truncates a comment's plain body at 64 KB in
	// its export, and evidence shows only the first lines anyway.
	maxTextBytes = 64 << 10
	// maxFutureSkew is how far ahead of culprit's clock a timestamp may be.
	// CI runners' and Zendesk's clocks drift by seconds, not days; a deploy
	// "starting" next month (or 9999-12-31) would otherwise stay the newest
	// deploy of its service for that long and be blamed for every change
	// until then. A day, not an hour, because `culprit simulate --live`
	// above speed 1 stamps its deploys ahead of the wall clock on purpose
	// (its default six hours at speed 60 run up to six hours ahead).
	maxFutureSkew = 24 * time.Hour
)

// earliestTime is the oldest timestamp accepted. Nothing culprit correlates
// predates it; a time before it is a zero value or a unit mistake (seconds
// read as milliseconds, 0001-01-01, the Unix epoch), not history.
var earliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// problems collects what is wrong with one record, each naming its field.
type problems []string

func (p *problems) add(format string, a ...any) { *p = append(*p, fmt.Sprintf(format, a...)) }

// err is nil without problems, else one error listing them all.
func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%s", strings.Join(p, "; "))
}

// id checks an identifier: bounded and free of control characters. A CR or
// LF in an id splits log lines and headers it is written into, and an
// invisible character makes two ids that look the same distinct.
func (p *problems) id(field, v string) { p.bounded(field, v, maxIDBytes, unicode.IsControl) }

// url checks a link: bounded and without control characters.
func (p *problems) url(field, v string) { p.bounded(field, v, maxURLBytes, unicode.IsControl) }

// text checks free text: bounded, and no control characters but tab and
// line breaks, which descriptions legitimately contain.
func (p *problems) text(field, v string) {
	p.bounded(field, v, maxTextBytes, func(r rune) bool {
		return unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r'
	})
}

// bounded refuses a value longer than limit bytes or holding a rune
// refused says is not allowed, naming the first one and where it is.
func (p *problems) bounded(field, v string, limit int, refused func(rune) bool) {
	if len(v) > limit {
		p.add("%s: %d bytes, over the %d-byte limit", field, len(v), limit)
		return
	}
	if i := strings.IndexFunc(v, refused); i >= 0 {
		r, _ := utf8.DecodeRuneInString(v[i:])
		p.add("%s: control character %U at byte %d is not allowed", field, r, i)
	}
}

// time checks that a timestamp lies between earliestTime and
// maxFutureSkew ahead of now (the injected clock). Call it for required
// times even when zero: 0001-01-01 is what a sender's zero value looks like.
func (p *problems) time(field string, t, now time.Time) {
	if t.Before(earliestTime) {
		p.add("%s %s is before %s: not a real time", field, t.Format(time.RFC3339), earliestTime.Format("2006-01-02"))
	} else if limit := now.Add(maxFutureSkew); t.After(limit) {
		p.add("%s %s is more than %s in the future", field, t.Format(time.RFC3339), maxFutureSkew)
	}
}

// checkDeploy refuses a decoded deploy that would store something no CI
// system sends; see the limits above.
func checkDeploy(d correlate.Deploy, now time.Time) error {
	var p problems
	p.id("id", d.ID)
	p.id("service", d.Service)
	p.id("version", d.Version)
	p.id("environment", d.Environment)
	p.id("author", d.Author)
	p.url("url", d.URL)
	p.text("description", d.Description)
	p.time("started_at", d.StartedAt, now)
	if !d.FinishedAt.IsZero() { // zero is "still rolling out"
		p.time("finished_at", d.FinishedAt, now)
	}
	p.hosts(d.Hosts, now)
	return p.err()
}

// hosts checks rollout progress, naming hosts[i].
func (p *problems) hosts(hosts []correlate.HostRollout, now time.Time) {
	for i, h := range hosts {
		p.id(fmt.Sprintf("hosts[%d].name", i), h.Name)
		p.time(fmt.Sprintf("hosts[%d].at", i), h.At, now)
	}
}

// checkTicket refuses a decoded ticket that Zendesk could not have sent:
// Zendesk ids are positive, and 0 means "none" for an organization or a
// requester, so a negative id is a bug upstream that would otherwise match
// no customer and collide with nothing it should.
func checkTicket(t correlate.Ticket, now time.Time) error {
	var p problems
	if t.ID <= 0 {
		p.add("id: %d is not a Zendesk ticket id (must be positive)", t.ID)
	}
	if t.OrganizationID < 0 {
		p.add("organization_id: %d must not be negative", t.OrganizationID)
	}
	if t.RequesterID < 0 {
		p.add("requester_id: %d must not be negative", t.RequesterID)
	}
	p.text("subject", t.Subject)
	p.text("description", t.Description)
	p.id("priority", t.Priority)
	p.id("status", t.Status)
	p.id("via", t.Via)
	for i, tag := range t.Tags {
		p.id("tags["+strconv.Itoa(i)+"]", tag)
	}
	p.time("created_at", t.CreatedAt, now)
	return p.err()
}

// checkUTF8 refuses a JSON value holding invalid UTF-8, naming where.
// encoding/json replaces every invalid byte with U+FFFD, so two ids that
// differ only in their invalid bytes would be stored as one: this must run
// on the raw bytes, before decoding.
func checkUTF8(raw []byte) error {
	if utf8.Valid(raw) {
		return nil
	}
	return fmt.Errorf("%s: invalid UTF-8", invalidUTF8Path(raw))
}

// frame is one open JSON container while invalidUTF8Path walks a value.
type frame struct {
	object  bool
	key     string // object: the current member's key
	index   int    // array: the current element's index
	wantKey bool   // object: the next string token is a key
}

// invalidUTF8Path names the field (like hosts[2].name) whose key or value
// holds the first invalid UTF-8 of raw. It walks the tokens, checking the
// raw bytes each one spans, so the answer is the field as the sender wrote
// it. It names "body" when the bad byte is outside any field, or when raw
// is not JSON (the decoder then reports the syntax error).
func invalidUTF8Path(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var stack []frame
	for {
		prev := dec.InputOffset()
		tok, err := dec.Token()
		if err != nil {
			return "body"
		}
		var top *frame
		if len(stack) > 0 {
			top = &stack[len(stack)-1]
		}
		s, isString := tok.(string)
		isKey := isString && top != nil && top.object && top.wantKey
		if isKey {
			top.key = s
		}
		if !utf8.Valid(raw[prev:dec.InputOffset()]) {
			return framePath(stack)
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				return "body"
			}
			top = &stack[len(stack)-1]
		}
		switch {
		case isKey:
			top.wantKey = false
		case top == nil:
		case top.object:
			top.wantKey = true
		default:
			top.index++
		}
	}
}

// framePath renders the position of the walk: hosts[2].name.
func framePath(stack []frame) string {
	var b strings.Builder
	for _, f := range stack {
		if f.object {
			if b.Len() > 0 {
				b.WriteByte('.')
			}
			b.WriteString(shortString(strings.ToValidUTF8(f.key, "\uFFFD")))
		} else {
			b.WriteString("[" + strconv.Itoa(f.index) + "]")
		}
	}
	if b.Len() == 0 {
		return "body"
	}
	return b.String()
}
