package pdfake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	pd "github.com/PagerDuty/go-pagerduty"
)

// PagerDuty's documented limits for the Events API v2
// (developer.pagerduty.com: "Send an Alert Event", "Send a Change Event",
// "Events API v2 Overview").
const (
	// MaxBody is the largest request body accepted: "Events API payloads
	// are limited to 512 KB".
	MaxBody = 512 << 10
	// MaxSummary is the longest payload.summary, in characters.
	MaxSummary = 1024
	// MaxDedupKey is the longest dedup_key, in characters.
	MaxDedupKey = 255
	// RoutingKeyLen is the length of an integration key.
	RoutingKeyLen = 32
)

var (
	alertFields        = []string{"routing_key", "event_action", "dedup_key", "payload", "images", "links", "client", "client_url"}
	alertPayloadFields = []string{"summary", "source", "severity", "timestamp", "component", "group", "class", "custom_details"}
	changeFields       = []string{"routing_key", "payload", "links"}
	changePayload      = []string{"summary", "source", "timestamp", "custom_details"}
	severities         = []string{"critical", "error", "warning", "info"}
	actions            = []string{"trigger", "acknowledge", "resolve"}
)

// timestampLayouts are the ISO 8601 forms PagerDuty's examples use
// ("2015-07-17T08:42:58.315+0000") and RFC 3339. time.Parse accepts a
// fractional second after the seconds field in each of them.
var timestampLayouts = []string{
	time.RFC3339,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04:05Z07",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04:05",
}

// object is one JSON object, its values still raw so that types and
// unknown fields can be checked before decoding.
type object map[string]json.RawMessage

// checker collects every reason an event is invalid, as PagerDuty's
// errors array does, instead of stopping at the first.
type checker struct{ reasons []string }

func (c *checker) failf(format string, a ...any) {
	c.reasons = append(c.reasons, fmt.Sprintf(format, a...))
}

func isNull(raw json.RawMessage) bool {
	return raw == nil || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// obj reads an object-valued field; absent or null gives nil.
func (c *checker) obj(raw json.RawMessage, path string) (object, bool) {
	if isNull(raw) {
		return nil, true
	}
	var o object
	if err := json.Unmarshal(raw, &o); err != nil {
		c.failf("%s must be an object", path)
		return nil, false
	}
	return o, true
}

// str reads a string-valued field; absent or null gives "", false.
func (c *checker) str(o object, name, path string, required bool) (string, bool) {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		if required {
			c.failf("%s is required", path)
		}
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		c.failf("%s must be a string", path)
		return "", false
	}
	if required && strings.TrimSpace(s) == "" {
		c.failf("%s must not be blank", path)
		return "", false
	}
	return s, true
}

func (c *checker) unknown(o object, known []string, path string) {
	var extra []string
	for k := range o {
		if !slices.Contains(known, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	for _, k := range extra {
		c.failf("unknown field %s%q", path, k)
	}
}

func (c *checker) maxLen(s string, n int, path string) {
	if l := utf8.RuneCountInString(s); l > n {
		c.failf("%s is %d characters, more than %d", path, l, n)
	}
}

func (c *checker) routingKey(o object) string {
	key, ok := c.str(o, "routing_key", "routing_key", true)
	if ok && utf8.RuneCountInString(key) != RoutingKeyLen {
		c.failf("routing_key must be a %d-character integration key, got %d characters", RoutingKeyLen, utf8.RuneCountInString(key))
	}
	return key
}

func (c *checker) timestamp(o object, path string) {
	ts, ok := c.str(o, "timestamp", path, false)
	if !ok {
		return
	}
	for _, layout := range timestampLayouts {
		if _, err := time.Parse(layout, ts); err == nil {
			return
		}
	}
	c.failf("%s %q is not an ISO 8601 timestamp", path, ts)
}

// webURL reports whether s is an absolute http(s) URL; httpsOnly narrows
// it to https, as PagerDuty requires for image sources.
func webURL(s string, httpsOnly bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	if httpsOnly {
		return u.Scheme == "https"
	}
	return u.Scheme == "http" || u.Scheme == "https"
}

// array reads an array of objects; absent or null gives nil.
func (c *checker) array(o object, name string) []object {
	raw, ok := o[name]
	if !ok || isNull(raw) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		c.failf("%s must be an array", name)
		return nil
	}
	out := make([]object, 0, len(items))
	for i, it := range items {
		if o, ok := c.obj(it, fmt.Sprintf("%s[%d]", name, i)); ok && o != nil {
			out = append(out, o)
		} else if ok {
			c.failf("%s[%d] must be an object", name, i)
		}
	}
	return out
}

func (c *checker) links(o object) {
	for i, l := range c.array(o, "links") {
		path := fmt.Sprintf("links[%d]", i)
		if href, ok := c.str(l, "href", path+".href", true); ok && !webURL(href, false) {
			c.failf("%s.href %q is not an absolute http(s) URL", path, href)
		}
		c.str(l, "text", path+".text", false)
	}
}

func (c *checker) images(o object) {
	for i, img := range c.array(o, "images") {
		path := fmt.Sprintf("images[%d]", i)
		if src, ok := c.str(img, "src", path+".src", true); ok && !webURL(src, true) {
			c.failf("%s.src %q must be an https URL", path, src)
		}
		if href, ok := c.str(img, "href", path+".href", false); ok && !webURL(href, false) {
			c.failf("%s.href %q is not an absolute http(s) URL", path, href)
		}
		c.str(img, "alt", path+".alt", false)
	}
}

func (c *checker) customDetails(p object, path string) {
	if raw, ok := p["custom_details"]; ok {
		c.obj(raw, path)
	}
}

// checkAlert validates an alert event (trigger, acknowledge or resolve)
// against the documented schema and decodes it.
func checkAlert(o object) (pd.V2Event, []string) {
	c := &checker{}
	c.unknown(o, alertFields, "")
	c.routingKey(o)
	action, ok := c.str(o, "event_action", "event_action", true)
	if ok && !slices.Contains(actions, action) {
		c.failf("event_action %q must be one of %s", action, strings.Join(actions, ", "))
	}
	key, _ := c.str(o, "dedup_key", "dedup_key", false)
	c.maxLen(key, MaxDedupKey, "dedup_key")
	if (action == "acknowledge" || action == "resolve") && key == "" {
		c.failf("dedup_key is required for %s events", action)
	}
	p, ok := c.obj(o["payload"], "payload")
	switch {
	case !ok:
	case action == "trigger" && p == nil:
		c.failf("payload is required for trigger events")
	case action == "trigger":
		c.unknown(p, alertPayloadFields, "payload.")
		if s, ok := c.str(p, "summary", "payload.summary", true); ok {
			c.maxLen(s, MaxSummary, "payload.summary")
		}
		c.str(p, "source", "payload.source", true)
		if sev, ok := c.str(p, "severity", "payload.severity", true); ok && !slices.Contains(severities, sev) {
			c.failf("payload.severity %q must be one of %s", sev, strings.Join(severities, ", "))
		}
		c.timestamp(p, "payload.timestamp")
		for _, f := range []string{"component", "group", "class"} {
			c.str(p, f, "payload."+f, false)
		}
		c.customDetails(p, "payload.custom_details")
	}
	c.images(o)
	c.links(o)
	c.str(o, "client", "client", false)
	if cu, ok := c.str(o, "client_url", "client_url", false); ok && !webURL(cu, false) {
		c.failf("client_url %q is not an absolute http(s) URL", cu)
	}
	var ev pd.V2Event
	if len(c.reasons) == 0 {
		if err := remarshal(o, &ev); err != nil {
			c.failf("cannot decode event: %v", err)
		}
	}
	return ev, c.reasons
}

// checkChange validates a change event and decodes it.
func checkChange(o object) (pd.ChangeEvent, []string) {
	c := &checker{}
	c.unknown(o, changeFields, "")
	if key := c.routingKey(o); strings.HasPrefix(key, "R") {
		// PagerDuty: "change events cannot be sent to ruleset integration
		// keys (these keys begin with the character R)".
		c.failf("routing_key is a ruleset key (starts with R); change events need a service integration key")
	}
	p, ok := c.obj(o["payload"], "payload")
	switch {
	case !ok:
	case p == nil:
		c.failf("payload is required")
	default:
		c.unknown(p, changePayload, "payload.")
		if s, ok := c.str(p, "summary", "payload.summary", true); ok {
			c.maxLen(s, MaxSummary, "payload.summary")
		}
		c.str(p, "source", "payload.source", false)
		c.timestamp(p, "payload.timestamp")
		c.customDetails(p, "payload.custom_details")
	}
	c.links(o)
	var ev pd.ChangeEvent
	if len(c.reasons) == 0 {
		if err := remarshal(o, &ev); err != nil {
			c.failf("cannot decode change event: %v", err)
		}
	}
	return ev, c.reasons
}

func remarshal(o object, v any) error {
	b, err := json.Marshal(o)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
