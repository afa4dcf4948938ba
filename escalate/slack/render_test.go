package slack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

// blocksJSON marshals and re-reads blocks the way Slack will see them.
func blocksJSON(t *testing.T, a Answer) (json.RawMessage, []map[string]any) {
	t.Helper()
	// Without HTML escaping, so tests can look for "&lt;" and "<url|x>".
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(Blocks(a)); err != nil {
		t.Fatal(err)
	}
	raw := json.RawMessage(bytes.TrimSpace(buf.Bytes()))
	var bs []map[string]any
	if err := json.Unmarshal(raw, &bs); err != nil {
		t.Fatal(err)
	}
	return raw, bs
}

func TestBlocksFriday(t *testing.T) {
	raw, bs := blocksJSON(t, fridayAnswer())
	if p := slackfake.CheckBlocks(raw); len(p) > 0 {
		t.Fatalf("Slack would refuse: %v", p)
	}
	text := string(raw)
	for _, want := range []string{
		`"type":"header"`, "1 finding for edge-router in the last 2h",
		"[PAGE]", "edge-router v3.8.0 (deploy dep-1a2b)",
		"12.4/min after onset (order 10^1)", "0.4% of all edge-router requests after onset (about 1 in 250, order 10^-3)",
		"37 customers, 41 sites, 3 hosts", "`cloud.provider=aws` 100% of the errors, 31% of edge-router requests",
		"explained by: `cloud.provider=aws ∧ url.path=/.fn/*` 100% of the errors, 6.0% of edge-router requests; 6.7% of these requests failed, none of the rest",
		"<https://github.com/acme/edge-router/releases/tag/v3.8.0|dep-1a2b> edge-router 3.8.0 (score 0.93)",
		"only version 3.8.0 produces the error", "#4711 “Functions return 502 since 4pm” (org 10234) _mentions function; status 502_",
		"<https://culprit.example.com/incidents/inc-4f2a9c01de#other-tickets|2 more tickets from affected customers, not obviously related>",
		`"image_url":"https://culprit.example.com/charts/inc-4f2a9c01de.png"`,
		"onset 2026-11-20 16:01 UTC", "page: 37 customers affected; new error class",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("blocks lack %q", want)
		}
	}
	if strings.Contains(text, "fourth reason not shown") {
		t.Errorf("more than %d reasons shown", maxReasons)
	}
	var page, evidence map[string]any
	for _, b := range bs {
		if b["type"] != "actions" {
			continue
		}
		for _, e := range b["elements"].([]any) {
			el := e.(map[string]any)
			switch el["action_id"] {
			case ActionPage:
				page = el
			case ActionOpenEvidence:
				evidence = el
			}
		}
	}
	if page == nil || page["value"] != "inc-4f2a9c01de" || page["style"] != "danger" || page["confirm"] == nil {
		t.Errorf("page button = %v, want value inc-4f2a9c01de, style danger, a confirm dialog", page)
	}
	if evidence == nil || evidence["url"] != "https://culprit.example.com/incidents/inc-4f2a9c01de" {
		t.Errorf("evidence button = %v", evidence)
	}
}

func TestBlocksOptionalParts(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*Item)
		absent   []string
		present  []string
		wantType []string // block types in order
	}{
		{name: "everything", wantType: []string{"header", "section", "section", "image", "context", "actions"}},
		{name: "no chart", edit: func(it *Item) { it.ChartURL = "" },
			wantType: []string{"header", "section", "section", "context", "actions"}},
		{name: "http chart is not shown (Slack fetches https)", edit: func(it *Item) { it.ChartURL = "http://culprit.internal/c.png" },
			absent: []string{"culprit.internal"}, wantType: []string{"header", "section", "section", "context", "actions"}},
		{name: "no incident: no page button", edit: func(it *Item) { it.IncidentID = "" },
			absent: []string{`"action_id":"page"`}, present: []string{`"action_id":"open_evidence"`}},
		{name: "no buttons at all", edit: func(it *Item) { it.IncidentID, it.EvidenceURL = "", "" },
			wantType: []string{"header", "section", "section", "image", "context"}},
		{name: "evidence url that is not a url", edit: func(it *Item) { it.EvidenceURL = "javascript:alert(1)" },
			absent: []string{"javascript"}},
		{name: "no suspect", edit: func(it *Item) { it.Finding.SuspectedDeploys = nil },
			present: []string{"*Suspect:* none: no deploy is tied"}},
		{name: "mrkdwn control characters are escaped", edit: func(it *Item) { it.Finding.Headline = "<!channel> a & b" },
			present: []string{"&lt;!channel&gt; a &amp; b"}, absent: []string{"<!channel>"}},
		{name: "ticket surge", edit: func(it *Item) {
			it.Finding.Kind = correlate.KindTicketSurge
			it.Finding.Frequency = correlate.Frequency{AfterPerMin: 0.1, BeforePerMin: 0.01, Count: 12}
		}, present: []string{"6.0 tickets/h after onset, 0.6/h before; 12 tickets", "tickets only"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := fridayAnswer()
			if tc.edit != nil {
				tc.edit(&a.Items[0])
			}
			raw, bs := blocksJSON(t, a)
			if p := slackfake.CheckBlocks(raw); len(p) > 0 {
				t.Fatalf("Slack would refuse: %v", p)
			}
			for _, s := range tc.absent {
				if strings.Contains(string(raw), s) {
					t.Errorf("blocks contain %q", s)
				}
			}
			for _, s := range tc.present {
				if !strings.Contains(string(raw), s) {
					t.Errorf("blocks lack %q", s)
				}
			}
			if tc.wantType != nil {
				var types []string
				for _, b := range bs {
					types = append(types, b["type"].(string))
				}
				if strings.Join(types, ",") != strings.Join(tc.wantType, ",") {
					t.Errorf("block types %v, want %v", types, tc.wantType)
				}
			}
		})
	}
}

// TestBlocksStayWithinLimits feeds the renderer far more than fits and
// checks every documented limit on the JSON Slack would receive.
func TestBlocksStayWithinLimits(t *testing.T) {
	huge := strings.Repeat("x&<>`", 2000) // 10k characters, each escaping to several
	var tickets []correlate.TicketRef
	for i := range 500 {
		tickets = append(tickets, correlate.TicketRef{ID: int64(1000 + i), Subject: huge, OrganizationID: int64(i)})
	}
	var suspects []correlate.Suspect
	for i := range 40 {
		suspects = append(suspects, correlate.Suspect{ID: fmt.Sprintf("dep-%d-%s", i, huge[:200]), Service: huge, Version: huge,
			URL: "https://example.com/" + huge, Reasons: []string{huge, huge, huge, huge}})
	}
	var items []Item
	for i := range 50 {
		f := fridayFinding()
		f.ID, f.Signature, f.Headline, f.Service = huge, huge, huge, huge
		f.SeverityReasons = []string{huge, huge}
		f.Tickets, f.SuspectedDeploys = tickets, suspects
		f.Scope.Concentration = []correlate.Concentration{{Field: huge, Value: huge}}
		items = append(items, Item{Finding: f, IncidentID: fmt.Sprintf("inc-%03d", i),
			EvidenceURL: "https://culprit.example.com/incidents/" + strings.Repeat("a", 2900),
			ChartURL:    "https://culprit.example.com/c/" + strings.Repeat("b", 3000)}) // too long: dropped
	}
	a := Answer{Headline: huge, Items: items}
	raw, bs := blocksJSON(t, a)

	if p := slackfake.CheckBlocks(raw); len(p) > 0 {
		t.Errorf("slackfake finds %d problems, first: %v", len(p), p[:min(len(p), 5)])
	}
	// The same limits, walked here directly.
	if len(bs) > MaxBlocks {
		t.Errorf("%d blocks, max %d", len(bs), MaxBlocks)
	}
	check := func(where string, s any, limit int) {
		str, _ := s.(string)
		if n := utf8.RuneCountInString(str); n > limit {
			t.Errorf("%s: %d characters, max %d", where, n, limit)
		}
	}
	pages := 0
	for i, b := range bs {
		at := fmt.Sprintf("block %d (%s)", i, b["type"])
		switch b["type"] {
		case "header":
			check(at, b["text"].(map[string]any)["text"], MaxHeaderText)
		case "section":
			if txt, ok := b["text"].(map[string]any); ok {
				check(at+" text", txt["text"], MaxSectionText)
			}
			fields, _ := b["fields"].([]any)
			if len(fields) > MaxSectionFields {
				t.Errorf("%s: %d fields", at, len(fields))
			}
			for _, f := range fields {
				check(at+" field", f.(map[string]any)["text"], MaxFieldText)
			}
		case "context":
			els := b["elements"].([]any)
			if len(els) > MaxContextElements {
				t.Errorf("%s: %d elements", at, len(els))
			}
			for _, e := range els {
				check(at+" element", e.(map[string]any)["text"], MaxContextText)
			}
		case "image":
			check(at+" url", b["image_url"], MaxURL)
			check(at+" alt", b["alt_text"], MaxImageAlt)
		case "actions":
			els := b["elements"].([]any)
			if len(els) > MaxActionElements {
				t.Errorf("%s: %d elements", at, len(els))
			}
			for _, e := range els {
				el := e.(map[string]any)
				check(at+" button text", el["text"].(map[string]any)["text"], MaxButtonText)
				check(at+" button value", el["value"], MaxButtonValue)
				check(at+" button url", el["url"], MaxURL)
				if el["action_id"] == ActionPage {
					pages++
				}
			}
		}
	}
	if pages != MaxFindings {
		t.Errorf("%d findings with a page button, want the first %d", pages, MaxFindings)
	}
	if !strings.Contains(string(raw), "…and 42 more findings not shown here") {
		t.Errorf("no closing line counting the findings left out")
	}
	if strings.Contains(string(raw), strings.Repeat("b", 3000)) {
		t.Errorf("a chart URL over %d characters was kept", MaxURL)
	}
	if fb := FallbackText(a); utf8.RuneCountInString(fb) > MaxFallbackText || !strings.Contains(fb, "…and 42 more") {
		t.Errorf("fallback text has %d characters, max %d, and must count what it leaves out", utf8.RuneCountInString(fb), MaxFallbackText)
	}
}

func TestClipMrkdwnNeverSplitsEntitiesOrLinks(t *testing.T) {
	tests := []struct {
		name, in string
		n        int
		want     string
	}{
		{"fits", "a &amp; b", 20, "a &amp; b"},
		{"cut inside an entity", "abc &amp; def", 7, "abc …"},
		{"cut inside a link", "see <https://x.example/abc|here> now", 12, "see …"},
		{"cut after a whole entity", "a &lt;bc", 7, "a &lt;…"},
		{"runes, not bytes", "ééééé", 4, "ééé…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clipMrkdwn(tc.in, tc.n); got != tc.want {
				t.Errorf("clipMrkdwn(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestBlocksNameTheConfinedCustomersSites(t *testing.T) {
	f := fridayFinding()
	f.Scope = correlate.ScopeSummary{Affected: map[string]int{correlate.FieldCustomer: 1},
		Concentration: []correlate.Concentration{{Field: correlate.FieldCustomer, Value: "42", ShareOfErrors: 1, ShareOfRequests: 0.01}}}
	f.Samples = []correlate.Sample{{Customer: "42", Site: "shop-42.example.com", Message: "x509"}}
	f.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer: Acme Corp (enterprise)", Top: 1, Total: 1,
		Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "42", Name: "Acme Corp", Tier: "enterprise", Owner: "dana"}, Top: true}}}
	b, err := json.Marshal(Blocks(Answer{Headline: "h", Items: []Item{{Finding: f}}}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "their sites: shop-42.example.com · owner dana") {
		t.Errorf("blocks lack the customer's sites and owner: %s", b)
	}
}

func TestContextNamesAPreDeployCustomerBurst(t *testing.T) {
	f := fridayFinding()
	f.PreDeployExcess = &correlate.PreDeployExcess{DeployID: "dep-9", Customer: "42", Share: 0.93, Excess: 18,
		From: f.Onset.Add(-10 * time.Minute), To: f.Onset}
	b, err := json.Marshal(contextElements(f))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "one customer (organization.id=42) carried 93% of the 18 excess errors") {
		t.Errorf("Slack context lacks the pre-deploy burst: %s", b)
	}
}
