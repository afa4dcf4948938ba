package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
)

// eventsV2Spec is PagerDuty's own OpenAPI document for the Events API v2,
// kept beside the project (CI has it; a checkout of the module alone may
// not).
var eventsV2Spec = filepath.Join("..", "..", "..", "shared", "vendor-contracts", "pagerduty-events-v2.openapi.json")

// openAPI is the part of an OpenAPI 3.0 document the contract test reads.
type openAPI struct {
	Servers []struct {
		URL string `json:"url"`
	} `json:"servers"`
	Paths map[string]map[string]struct {
		RequestBody struct {
			Content map[string]struct {
				Schema *schema `json:"schema"`
			} `json:"content"`
		} `json:"requestBody"`
	} `json:"paths"`
	Components struct {
		Schemas map[string]*schema `json:"schemas"`
	} `json:"components"`
}

// schema is the subset of OpenAPI's JSON Schema dialect that PagerDuty's
// Events v2 document uses. A keyword the validator does not know fails the
// test rather than being skipped, so a newer document cannot pass by being
// misread.
type schema struct {
	Ref        string             `json:"$ref"`
	Type       string             `json:"type"`
	Format     string             `json:"format"`
	Enum       []any              `json:"enum"`
	Required   []string           `json:"required"`
	Properties map[string]*schema `json:"properties"`
	Items      *schema            `json:"items"`
	MaxLength  *int               `json:"maxLength"`
	Other      map[string]json.RawMessage
}

// schemaKeywords are the keywords validate understands or that carry no
// constraint.
var schemaKeywords = []string{"$ref", "type", "format", "enum", "required", "properties", "items", "maxLength",
	"description", "title", "example", "examples", "x-examples", "nullable"}

func (s *schema) UnmarshalJSON(b []byte) error {
	type plain schema
	if err := json.Unmarshal(b, (*plain)(s)); err != nil {
		return err
	}
	return json.Unmarshal(b, &s.Other)
}

// validate appends to errs every way v (decoded JSON) breaks s.
func (doc *openAPI) validate(s *schema, v any, path string, errs *[]string) {
	fail := func(format string, a ...any) { *errs = append(*errs, path+": "+fmt.Sprintf(format, a...)) }
	for k := range s.Other {
		if !slices.Contains(schemaKeywords, k) {
			fail("schema keyword %q is not supported by this validator", k)
		}
	}
	if s.Ref != "" {
		name, ok := strings.CutPrefix(s.Ref, "#/components/schemas/")
		ref := doc.Components.Schemas[name]
		if !ok || ref == nil {
			fail("unresolvable $ref %q", s.Ref)
			return
		}
		doc.validate(ref, v, path, errs)
		return
	}
	if len(s.Enum) > 0 && !slices.Contains(s.Enum, v) {
		fail("%v is not one of %v", v, s.Enum)
	}
	switch s.Type {
	case "":
	case "object":
		o, ok := v.(map[string]any)
		if !ok {
			fail("expected an object, got %T", v)
			return
		}
		for _, r := range s.Required {
			if _, ok := o[r]; !ok {
				fail("required property %q is missing", r)
			}
		}
		for k, sub := range s.Properties {
			if pv, ok := o[k]; ok {
				doc.validate(sub, pv, path+"."+k, errs)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			fail("expected an array, got %T", v)
			return
		}
		for i, item := range a {
			if s.Items != nil {
				doc.validate(s.Items, item, fmt.Sprintf("%s[%d]", path, i), errs)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			fail("expected a string, got %T", v)
			return
		}
		if s.MaxLength != nil && len([]rune(str)) > *s.MaxLength {
			fail("%d characters, over maxLength %d", len([]rune(str)), *s.MaxLength)
		}
		switch s.Format {
		case "":
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, str); err != nil {
				fail("%q is not an RFC 3339 date-time", str)
			}
		case "url":
			if u, err := url.Parse(str); err != nil || u.Scheme == "" || u.Host == "" {
				fail("%q is not an absolute URL", str)
			}
		default:
			fail("format %q is not supported by this validator", s.Format)
		}
	case "number", "integer":
		if _, ok := v.(float64); !ok {
			fail("expected a number, got %T", v)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			fail("expected true or false, got %T", v)
		}
	default:
		fail("type %q is not supported by this validator", s.Type)
	}
}

func loadEventsV2Spec(t *testing.T) *openAPI {
	t.Helper()
	b, err := os.ReadFile(eventsV2Spec)
	if os.IsNotExist(err) {
		t.Skipf("%s is absent: the Events v2 contract is checked in CI", eventsV2Spec)
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc openAPI
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s: %v", eventsV2Spec, err)
	}
	return &doc
}

// requestSchema is the JSON request body schema of the operation served at
// the fake's path (the document's server URL ends in /v2).
func (doc *openAPI) requestSchema(t *testing.T, fakePath string) *schema {
	t.Helper()
	base := "/v2"
	if len(doc.Servers) > 0 {
		if u, err := url.Parse(doc.Servers[0].URL); err == nil {
			base = u.Path
		}
	}
	op, ok := doc.Paths[strings.TrimPrefix(fakePath, base)]["post"]
	if !ok {
		t.Fatalf("the document has no POST %s under %s", fakePath, base)
	}
	s := op.RequestBody.Content["application/json"].Schema
	if s == nil {
		t.Fatalf("POST %s has no application/json request schema", fakePath)
	}
	return s
}

// TestEventsMatchPagerDutyOpenAPI sends every kind of event culprit sends
// (a page, its resolve, a deploy's change event), built by culprit's own
// code from the Friday incident, through the Notifier, and validates the
// bytes that reached the wire against PagerDuty's published OpenAPI
// document. culprit sends no acknowledge: acknowledging is a person's act
// in PagerDuty.
func TestEventsMatchPagerDutyOpenAPI(t *testing.T) {
	doc := loadEventsV2Spec(t)
	fake := pdfake.New(t)
	n := newNotifier(t, fake.URL(), 5*time.Second)

	bare := fridayFinding()
	bare.Recovered, bare.SuspectedDeploys, bare.Tickets, bare.Samples = nil, nil, nil, nil
	huge := fridayFinding()
	for i := range 400 {
		huge.Examples = append(huge.Examples, strings.Repeat(fmt.Sprintf("example %d ", i), 40))
	}
	minimalDeploy := correlate.Deploy{ID: "d-2", Service: "api", StartedAt: t0}

	ctx := context.Background()
	alerts := []*pd.V2Event{
		Trigger(routingKey, "culprit/edge-router/f-1/dep-1a2b", fridayFinding(), fridayLinks),
		Trigger(routingKey, "culprit/edge-router/f-2", bare, Links{}),
		Trigger(routingKey, "culprit/edge-router/f-3", huge, fridayLinks),
		Resolve(routingKey, "culprit/edge-router/f-1/dep-1a2b"),
	}
	for _, ev := range alerts {
		if _, err := n.Notify(ctx, ev); err != nil {
			t.Fatalf("notify %s: %v", ev.Action, err)
		}
	}
	for _, d := range []correlate.Deploy{fridayDeploy, minimalDeploy} {
		if _, err := n.Change(ctx, ChangeFromDeploy(routingKey, d)); err != nil {
			t.Fatalf("change event for %s: %v", d.ID, err)
		}
	}

	events := fake.Events()
	if len(events) != len(alerts)+2 {
		t.Fatalf("the fake accepted %d events, want %d: %v", len(events), len(alerts)+2, fake.Rejected())
	}
	for _, ev := range events {
		var body any
		if err := json.Unmarshal(ev.Body, &body); err != nil {
			t.Fatalf("event %d: %v", ev.Seq, err)
		}
		var errs []string
		doc.validate(doc.requestSchema(t, ev.Path), body, "body", &errs)
		if len(errs) > 0 {
			t.Errorf("event %d to %s breaks PagerDuty's OpenAPI document:\n  %s\n%s", ev.Seq, ev.Path, strings.Join(errs, "\n  "), ev.Body)
		}
	}
}

// TestOpenAPIValidatorRejects keeps the contract test honest: events that
// break the document must fail it.
func TestOpenAPIValidatorRejects(t *testing.T) {
	doc := loadEventsV2Spec(t)
	tests := []struct {
		name, path, body, want string
	}{
		{"no severity", pdfake.AlertPath, `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x"}}`, `body.payload: required property "severity" is missing`},
		{"unknown action", pdfake.AlertPath, `{"routing_key":"k","event_action":"snooze"}`, "body.event_action: snooze is not one of"},
		{"bad timestamp", pdfake.AlertPath, `{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"info","timestamp":"yesterday"}}`, "body.payload.timestamp"},
		{"relative link", pdfake.ChangePath, `{"routing_key":"k","payload":{"summary":"s"},"links":[{"href":"/incidents/1"}]}`, "body.links[0].href"},
		{"change without summary", pdfake.ChangePath, `{"routing_key":"k","payload":{}}`, `body.payload: required property "summary" is missing`},
	}
	for _, tc := range tests {
		var v any
		if err := json.Unmarshal([]byte(tc.body), &v); err != nil {
			t.Fatal(err)
		}
		var errs []string
		doc.validate(doc.requestSchema(t, tc.path), v, "body", &errs)
		if !strings.Contains(strings.Join(errs, "\n"), tc.want) {
			t.Errorf("%s: errors %q lack %q", tc.name, errs, tc.want)
		}
	}
}
