package pagerduty

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	pd "github.com/PagerDuty/go-pagerduty"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
)

// deliver sends ev to a fresh fake and returns the event as PagerDuty
// received it, failing the test if the fake found it invalid.
func deliver(t *testing.T, ev *pd.V2Event) pdfake.Event {
	t.Helper()
	f := pdfake.New(t)
	n := newNotifier(t, f.URL(), 0)
	if _, err := n.Notify(context.Background(), ev); err != nil {
		t.Fatalf("Notify: %v (rejections %v)", err, f.Rejected())
	}
	evs := f.Events()
	if len(evs) != 1 || evs[0].Alert == nil {
		t.Fatalf("fake events = %+v, want one alert", evs)
	}
	return evs[0]
}

// received decodes custom_details as PagerDuty would store them.
func received(t *testing.T, e pdfake.Event) map[string]any {
	t.Helper()
	var doc struct {
		Payload struct {
			Details map[string]any `json:"custom_details"`
		} `json:"payload"`
	}
	if err := json.Unmarshal(e.Body, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Payload.Details
}

// at walks a decoded JSON document: at(d, "scope", "affected", "host.name").
func at(t *testing.T, doc any, path ...any) any {
	t.Helper()
	cur := doc
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := cur.(map[string]any)
			if !ok {
				t.Fatalf("at %v: %T is not an object", path, cur)
			}
			cur = m[k]
		case int:
			a, ok := cur.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("at %v: %v has no index %d", path, cur, k)
			}
			cur = a[k]
		}
	}
	return cur
}

func TestTriggerFromFinding(t *testing.T) {
	f := fridayFinding()
	got := deliver(t, Trigger(routingKey, "inc-1", f, fridayLinks))
	ev := got.Alert
	if ev.Action != "trigger" || ev.DedupKey != "inc-1" || ev.RoutingKey != routingKey || ev.Client != "culprit" || ev.ClientURL != fridayLinks.Evidence {
		t.Errorf("envelope = %+v", ev)
	}
	p := ev.Payload
	want := pd.V2Payload{
		Summary: f.Headline, Source: "culprit/edge-router", Severity: "error", Timestamp: "2026-11-20T16:12:00Z",
		Component: "edge-router", Group: "cloud.provider=aws", Class: "new_error",
	}
	p.Details = nil
	if *p != want {
		t.Errorf("payload = %+v\nwant      %+v", *p, want)
	}

	wantLinks := []map[string]any{
		{"href": fridayLinks.Evidence, "text": "culprit evidence for finding " + f.ID},
		{"href": fridayLinks.Kibana, "text": "Kibana: matching errors of edge-router"},
		{"href": "https://github.com/acme/edge-router/releases/tag/v3.8.0", "text": "Suspected deploy dep-1a2b: edge-router 3.8.0"},
	}
	if fmt.Sprint(ev.Links) != fmt.Sprint(wantLinks) {
		t.Errorf("links = %v\nwant    %v", ev.Links, wantLinks)
	}
	wantImages := []map[string]any{{"src": fridayLinks.Chart, "href": fridayLinks.Evidence, "alt": "errors per minute of edge-router around onset"}}
	if fmt.Sprint(ev.Images) != fmt.Sprint(wantImages) {
		t.Errorf("images = %v\nwant     %v", ev.Images, wantImages)
	}

	d := received(t, got)
	checks := []struct {
		path []any
		want any
	}{
		{[]any{"finding_id"}, f.ID},
		{[]any{"signature"}, f.Signature},
		{[]any{"severity"}, "page"},
		{[]any{"severity_reasons", 0}, "37 customers on 8 hosts affected (page needs 5 customers)"},
		{[]any{"onset"}, "2026-11-20T16:01:00Z"},
		{[]any{"detected"}, "2026-11-20T16:12:00Z"},
		{[]any{"recovered"}, "2026-11-20T17:35:00Z"},
		{[]any{"frequency", "text"}, "4.2/min after onset (order 10^0), 0/min before; 0.4% of all edge-router requests after onset (about 1 in 250, order 10^-3), 0% before; 420 errors since onset"},
		{[]any{"frequency", "after_per_min"}, 4.2},
		{[]any{"frequency", "share_after"}, 0.004},
		{[]any{"frequency", "count"}, 420.0},
		{[]any{"frequency", "magnitude"}, "order 10^0"},
		{[]any{"significance", "method"}, correlate.Method},
		{[]any{"significance", "p_value"}, 1e-30},
		{[]any{"significance", "q_value"}, 1e-29},
		{[]any{"significance", "tests"}, 412.0},
		{[]any{"scope", "affected", "organization.id"}, 37.0},
		{[]any{"scope", "affected", "host.name"}, 8.0},
		{[]any{"scope", "concentration", "cloud.provider", 0, "value"}, "aws"},
		{[]any{"scope", "concentration", "cloud.provider", 0, "share_of_requests"}, 0.41},
		{[]any{"scope", "concentration", "organization.id", 0, "value"}, "10234"},
		{[]any{"scope", "text", 0}, "affected: 37 organization.id, 40 url.domain, 8 host.name"},
		{[]any{"scope", "text", 1}, "explained by: cloud.provider=aws ∧ url.path=/.fn/*: 100% of the errors, 8.0% of edge-router requests; 5.0% of these requests failed, 500× the rest (0.01%)"},
		{[]any{"scope", "text", 3}, "cloud.provider=aws: 100% of the errors, 41% of edge-router requests"},
		{[]any{"scope", "explanations", 0, "conditions"}, "cloud.provider=aws ∧ url.path=/.fn/*"},
		{[]any{"scope", "explanations", 0, "risk_ratio"}, 500.0},
		{[]any{"suspects", 0, "id"}, "dep-1a2b"},
		{[]any{"suspects", 0, "score"}, 0.97},
		{[]any{"suspects", 0, "started_at"}, "2026-11-20T16:00:00Z"},
		{[]any{"suspects", 0, "reasons", 1}, "version split: 100% of errors on 3.8.0, 35% of requests"},
		{[]any{"tickets", 1, "id"}, 88130.0},
		{[]any{"tickets", 1, "subject"}, "edge-router errors on resize endpoint"},
		{[]any{"tickets", 1, "score"}, 2.5},
		{[]any{"other_tickets", "count"}, 3.0},
		{[]any{"other_tickets", "note"}, "3 more tickets from affected customers, not obviously related"},
		{[]any{"other_tickets", "url"}, fridayLinks.Evidence + "#other-tickets"},
		{[]any{"examples", 0}, f.Examples[0]},
		{[]any{"samples", 0, "host"}, "edge-aws-use1-03"},
		{[]any{"omitted"}, nil},
		{[]any{"truncated"}, nil},
	}
	for _, c := range checks {
		if g := at(t, d, c.path...); fmt.Sprint(g) != fmt.Sprint(c.want) {
			t.Errorf("custom_details%v = %v, want %v", c.path, g, c.want)
		}
	}
}

func TestTriggerSeverity(t *testing.T) {
	tests := []struct {
		name string
		in   correlate.Severity
		want string
	}{
		{name: "page", in: correlate.SeverityPage, want: "error"},
		{name: "notify", in: correlate.SeverityNotify, want: "warning"},
		{name: "info", in: correlate.SeverityInfo, want: "info"},
		{name: "unset", in: "", want: "warning"},
		{name: "unknown", in: "sev1", want: "warning"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fridayFinding()
			f.Severity = tc.in
			if got := Trigger(routingKey, "k", f, fridayLinks).Payload.Severity; got != tc.want {
				t.Errorf("severity = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTriggerGroup(t *testing.T) {
	c := func(field, value string) correlate.Concentration {
		return correlate.Concentration{Field: field, Value: value, ShareOfErrors: 0.9, ShareOfRequests: 0.2}
	}
	tests := []struct {
		name string
		in   []correlate.Concentration
		want string
	}{
		{name: "none", in: nil, want: ""},
		{name: "provider", in: []correlate.Concentration{c(correlate.FieldProvider, "aws")}, want: "cloud.provider=aws"},
		{name: "customer, site and path skipped", in: []correlate.Concentration{
			c(correlate.FieldCustomer, "10234"), c(correlate.FieldSite, "shop.example.net"), c(correlate.FieldPath, "/fn"), c(correlate.FieldRegion, "us-east-1"),
		}, want: "cloud.region=us-east-1"},
		{name: "provider before a stronger host", in: []correlate.Concentration{c(correlate.FieldHost, "edge-03"), c(correlate.FieldProvider, "aws")}, want: "cloud.provider=aws"},
		{name: "host before version", in: []correlate.Concentration{c(correlate.FieldVersion, "3.8.0"), c(correlate.FieldHost, "edge-03")}, want: "host.name=edge-03"},
		{name: "only a customer", in: []correlate.Concentration{c(correlate.FieldCustomer, "10234")}, want: ""},
		{name: "empty value skipped", in: []correlate.Concentration{c(correlate.FieldVersion, ""), c(correlate.FieldVersion, "3.8.0")}, want: "service.version=3.8.0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fridayFinding()
			f.Scope.Concentration = tc.in
			if got := Trigger(routingKey, "k", f, fridayLinks).Payload.Group; got != tc.want {
				t.Errorf("group = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTriggerLinksAndImages(t *testing.T) {
	tests := []struct {
		name          string
		links         Links
		suspectURL    string
		wantLinks     []string // hrefs
		wantImage     string   // src, "" for none
		wantImageHref string
		wantClientURL string
	}{
		{
			name: "all https", links: fridayLinks, suspectURL: "https://ci.example.com/deploys/1",
			wantLinks: []string{fridayLinks.Evidence, fridayLinks.Kibana, "https://ci.example.com/deploys/1"},
			wantImage: fridayLinks.Chart, wantImageHref: fridayLinks.Evidence, wantClientURL: fridayLinks.Evidence,
		},
		{
			name: "http chart is not an image", links: Links{Evidence: "http://culprit.internal/f/1", Chart: "http://culprit.internal/f/1.png"},
			wantLinks: []string{"http://culprit.internal/f/1"}, wantClientURL: "http://culprit.internal/f/1",
		},
		{name: "chart without evidence page", links: Links{Chart: "https://culprit.example.com/c.png"}, wantImage: "https://culprit.example.com/c.png"},
		{name: "nothing", links: Links{}},
		{
			name: "unsafe and relative URLs dropped", links: Links{Evidence: "javascript:alert(1)", Kibana: "/app/discover", Chart: "https:chart.png"},
			suspectURL: "ftp://example.com/release",
		},
		{name: "overlong URL dropped", links: Links{Evidence: "https://culprit.example.com/" + strings.Repeat("a", maxURL)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := fridayFinding()
			f.SuspectedDeploys[0].URL = tc.suspectURL
			got := deliver(t, Trigger(routingKey, "k", f, tc.links)).Alert
			var hrefs []string
			for _, l := range got.Links {
				hrefs = append(hrefs, l.(map[string]any)["href"].(string))
			}
			if fmt.Sprint(hrefs) != fmt.Sprint(tc.wantLinks) {
				t.Errorf("links = %v, want %v", hrefs, tc.wantLinks)
			}
			switch {
			case tc.wantImage == "" && len(got.Images) != 0:
				t.Errorf("images = %v, want none", got.Images)
			case tc.wantImage != "":
				if len(got.Images) != 1 {
					t.Fatalf("images = %v, want one", got.Images)
				}
				img := got.Images[0].(map[string]any)
				if img["src"] != tc.wantImage || fmt.Sprint(img["href"]) != fmt.Sprint(orNil(tc.wantImageHref)) {
					t.Errorf("image = %v, want src %s href %q", img, tc.wantImage, tc.wantImageHref)
				}
			}
			if got.ClientURL != tc.wantClientURL {
				t.Errorf("client_url = %q, want %q", got.ClientURL, tc.wantClientURL)
			}
		})
	}
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func TestTriggerSummary(t *testing.T) {
	tests := []struct {
		name     string
		headline string
		kind     correlate.Kind
		service  string
		want     string // "" means check only the cut
	}{
		{name: "fits", headline: "edge-router is broken", want: "edge-router is broken"},
		{name: "exactly the limit", headline: strings.Repeat("a", MaxSummary), want: strings.Repeat("a", MaxSummary)},
		{name: "ascii over the limit", headline: strings.Repeat("a", 3000), want: strings.Repeat("a", MaxSummary-1) + "…"},
		{name: "multibyte over the limit", headline: strings.Repeat("日本", 800), want: strings.Repeat("日本", 511) + "日…"},
		{name: "no headline", kind: correlate.KindErrorIncrease, service: "api", want: "culprit error increase in api: boom <*>"},
		{name: "blank headline, nothing known", headline: "  ", want: "culprit: boom <*>"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &correlate.Finding{Headline: tc.headline, Kind: tc.kind, Service: tc.service, Signature: "boom <*>"}
			got := deliver(t, Trigger(routingKey, "k", f, Links{})).Alert.Payload.Summary
			if got != tc.want {
				t.Errorf("summary = %q (%d runes), want %q", got, utf8.RuneCountInString(got), tc.want)
			}
			if n := utf8.RuneCountInString(got); n > MaxSummary || !utf8.ValidString(got) {
				t.Errorf("summary has %d runes (valid UTF-8: %v)", n, utf8.ValidString(got))
			}
		})
	}
}

func TestTriggerNilFinding(t *testing.T) {
	got := deliver(t, Trigger(routingKey, "k", nil, Links{})).Alert.Payload
	if got.Summary != "culprit" || got.Source != "culprit" || got.Severity != "warning" {
		t.Errorf("payload = %+v", got)
	}
}

// encoding/json refuses NaN and Inf; one bad float must not make the page
// undeliverable.
func TestTriggerNonFiniteNumbers(t *testing.T) {
	f := fridayFinding()
	f.Frequency.ShareAfter = math.NaN()
	f.Frequency.AfterPerMin = math.Inf(1)
	f.Significance.PValue = math.NaN()
	f.SuspectedDeploys[0].Score = math.Inf(-1)
	f.Scope.Concentration[0].ShareOfRequests = math.NaN()
	d := received(t, deliver(t, Trigger(routingKey, "k", f, fridayLinks)))
	for _, path := range [][]any{{"frequency", "share_after"}, {"frequency", "after_per_min"}, {"significance", "p_value"}, {"suspects", 0, "score"}} {
		if g := at(t, d, path...); g != nil {
			t.Errorf("custom_details%v = %v, want null", path, g)
		}
	}
}

// hugeFinding is what a runaway signature or a ticket storm could produce:
// every list and string far beyond any page's use.
func hugeFinding() *correlate.Finding {
	f := fridayFinding()
	big := strings.Repeat("𝄞 upstream reset ", 70_000) // ~1.2 MB, 4-byte runes included
	f.Headline, f.Signature = big, big
	f.SeverityReasons = nil
	for i := range 5_000 {
		f.SeverityReasons = append(f.SeverityReasons, fmt.Sprintf("reason %d %s", i, big[:4000]))
	}
	f.Examples = nil
	for i := range 10_000 {
		f.Examples = append(f.Examples, fmt.Sprintf("example %d %s", i, big[:10_000]))
	}
	f.Scope.Affected = map[string]int{}
	f.Scope.Concentration = nil
	for i := range 5_000 {
		field := fmt.Sprintf("labels.dim%d", i%100)
		f.Scope.Affected[field] = i
		f.Scope.Concentration = append(f.Scope.Concentration, correlate.Concentration{Field: field, Value: fmt.Sprintf("v%d-%s", i, big[:500]), ShareOfErrors: 0.5, ShareOfRequests: 0.1})
	}
	f.SuspectedDeploys = nil
	for i := range 1_000 {
		s := correlate.Suspect{ID: fmt.Sprintf("dep-%d", i), Service: "edge-router", Version: big[:300], StartedAt: t0,
			URL: fmt.Sprintf("https://ci.example.com/deploys/%d", i), Score: 0.5}
		for j := range 100 {
			s.Reasons = append(s.Reasons, fmt.Sprintf("reason %d %s", j, big[:1000]))
		}
		f.SuspectedDeploys = append(f.SuspectedDeploys, s)
	}
	f.Tickets = nil
	for i := range 20_000 {
		f.Tickets = append(f.Tickets, correlate.TicketRef{ID: int64(i), Subject: big[:2000], CreatedAt: t0, OrganizationID: int64(i), Reason: big[:300]})
	}
	f.Samples = nil
	for i := range 1_000 {
		f.Samples = append(f.Samples, correlate.Sample{Time: t0, Host: fmt.Sprintf("h%d", i), Message: big[:5000]})
	}
	return f
}

func TestTriggerHugeFindingFitsPagerDuty(t *testing.T) {
	f := hugeFinding()
	start := time.Now()
	ev := Trigger(routingKey, "inc-huge", f, fridayLinks)
	took := time.Since(start)
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > maxEventBytes {
		t.Errorf("event is %d bytes, over the %d budget", len(b), maxEventBytes)
	}
	t.Logf("huge finding: event %d bytes, built in %s", len(b), took)

	got := deliver(t, ev)
	if n := utf8.RuneCountInString(got.Alert.Payload.Summary); n != MaxSummary {
		t.Errorf("summary has %d runes, want %d", n, MaxSummary)
	}
	if len(got.Alert.Links) != maxLinks {
		t.Errorf("links = %d, want the cap %d", len(got.Alert.Links), maxLinks)
	}
	d := received(t, got)
	for _, k := range []string{"examples", "tickets", "suspects", "severity_reasons", "concentration", "affected", "samples"} {
		if n, _ := at(t, d, "omitted", k).(float64); n <= 0 {
			t.Errorf("omitted[%s] = %v, want the count left out", k, at(t, d, "omitted", k))
		}
	}
	if at(t, d, "frequency", "text") == nil || at(t, d, "significance", "method") == nil {
		t.Errorf("trimming dropped the frequency or significance: %v", d)
	}
}

// Trimming goes level by level, and a budget no level meets still yields
// a deliverable event that points to the evidence.
func TestTriggerShrinksToBudget(t *testing.T) {
	tests := []struct {
		name          string
		budget        int
		wantTruncated string
		wantFrequency bool
	}{
		{name: "generous budget keeps the first level", budget: maxEventBytes, wantFrequency: true},
		{name: "tight budget trims", budget: 60_000, wantTruncated: "evidence shortened to fit PagerDuty's payload limit; the evidence link has all of it", wantFrequency: true},
		{name: "impossible budget falls back", budget: 3_000, wantTruncated: "the evidence is too large for PagerDuty; open the evidence link"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := hugeFinding()
			f.Headline = "edge-router 3.8.0 is the suspected cause"
			f.SuspectedDeploys = f.SuspectedDeploys[:1]
			ev := trigger(routingKey, "inc-huge", f, fridayLinks, tc.budget)
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) > tc.budget {
				t.Errorf("event is %d bytes, over the budget %d", len(b), tc.budget)
			}
			d := received(t, deliver(t, ev))
			if g := at(t, d, "truncated"); fmt.Sprint(orNil(tc.wantTruncated)) != fmt.Sprint(g) {
				t.Errorf("truncated = %v, want %q", g, tc.wantTruncated)
			}
			if (at(t, d, "frequency") != nil) != tc.wantFrequency {
				t.Errorf("frequency present = %v, want %v", at(t, d, "frequency") != nil, tc.wantFrequency)
			}
			if at(t, d, "finding_id") != f.ID {
				t.Errorf("finding_id = %v, want %s", at(t, d, "finding_id"), f.ID)
			}
		})
	}
}

// A trigger and a resolve under the same key open and close one alert.
func TestTriggerThenResolve(t *testing.T) {
	f := pdfake.New(t)
	n := newNotifier(t, f.URL(), 0)
	for _, ev := range []*pd.V2Event{
		Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks),
		Trigger(routingKey, "inc-1", fridayFinding(), fridayLinks),
		Resolve(routingKey, "inc-1"),
	} {
		if _, err := n.Notify(context.Background(), ev); err != nil {
			t.Fatal(err)
		}
	}
	in := f.Incidents()["inc-1"]
	if in.State != pdfake.StateResolved || in.Alerts != 1 || in.Triggers != 2 || in.Resolves != 1 {
		t.Errorf("incident = %+v, want one alert, triggered twice, resolved", in)
	}
	if r := f.Rejected(); len(r) != 0 {
		t.Errorf("rejected: %v", r)
	}
}

func TestChangeFromDeploy(t *testing.T) {
	tests := []struct {
		name        string
		deploy      correlate.Deploy
		wantSummary string
		wantTime    string
		wantLinks   []pd.ChangeEventLink
		wantDetails map[string]any
	}{
		{
			name: "full deploy", deploy: fridayDeploy,
			wantSummary: "edge-router 2.42.0 deployed (dep-775a8f)", wantTime: "2026-11-20T16:00:00Z",
			wantLinks: []pd.ChangeEventLink{{Href: fridayDeploy.URL, Text: "edge-router 2.42.0 release"}},
			wantDetails: map[string]any{
				"id": "dep-775a8f", "service": "edge-router", "version": "2.42.0", "environment": "production", "author": "jo",
				"hosts": 2.0, "started_at": "2026-11-20T16:00:00Z", "finished_at": "2026-11-20T16:21:00Z",
				"description": "proxy: pool upstream connections",
			},
		},
		{
			name:        "bare deploy",
			deploy:      correlate.Deploy{Service: "api", URL: "javascript:alert(1)"},
			wantSummary: "api deployed",
			wantDetails: map[string]any{"id": "", "service": "api", "version": "", "environment": "", "author": "", "hosts": 0.0},
		},
		{name: "empty deploy", wantSummary: "a new version deployed",
			wantDetails: map[string]any{"id": "", "service": "", "version": "", "environment": "", "author": "", "hosts": 0.0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := pdfake.New(t)
			n := newNotifier(t, f.URL(), 0)
			if _, err := n.Change(context.Background(), ChangeFromDeploy(routingKey, tc.deploy)); err != nil {
				t.Fatalf("Change: %v (rejections %v)", err, f.Rejected())
			}
			got := f.Events()[0].Change
			if got.Payload.Summary != tc.wantSummary || got.Payload.Source != "culprit" || got.Payload.Timestamp != tc.wantTime {
				t.Errorf("payload = %+v", got.Payload)
			}
			if fmt.Sprint(got.Links) != fmt.Sprint(tc.wantLinks) {
				t.Errorf("links = %v, want %v", got.Links, tc.wantLinks)
			}
			if fmt.Sprint(got.Payload.CustomDetails) != fmt.Sprint(tc.wantDetails) {
				t.Errorf("custom_details = %v\nwant             %v", got.Payload.CustomDetails, tc.wantDetails)
			}
		})
	}
}

func TestClip(t *testing.T) {
	tests := []struct {
		name string
		in   string
		n    int
		want string
	}{
		{name: "short", in: "abc", n: 5, want: "abc"},
		{name: "exact", in: "abcde", n: 5, want: "abcde"},
		{name: "cut", in: "abcdef", n: 5, want: "abcd…"},
		{name: "multibyte fits by runes", in: "日本語", n: 3, want: "日本語"},
		{name: "multibyte cut", in: "日本語です", n: 3, want: "日本…"},
		{name: "one", in: "abc", n: 1, want: "…"},
		{name: "zero", in: "abc", n: 0, want: ""},
		{name: "invalid UTF-8 stays on boundaries", in: "a\xffbcd", n: 3, want: "a\xff…"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := clip(tc.in, tc.n); got != tc.want {
				t.Errorf("clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
}

func TestTriggerNamesTheRecovery(t *testing.T) {
	f := fridayFinding()
	f.Recovery = &correlate.Recovery{DeployID: "dep-e5fb72", Service: "edge-router", Version: "3.7.9", Rollback: true, ReachedAffected: t0.Add(92 * time.Minute)}
	d := received(t, deliver(t, Trigger(routingKey, "inc-1", f, fridayLinks)))
	for path, want := range map[string]any{"deploy_id": "dep-e5fb72", "rollback": true,
		"summary": "recovered 17:35 UTC, 3 min after rollback dep-e5fb72 (edge-router 3.7.9) reached the last affected host"} {
		if g := at(t, d, "recovery", path); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Errorf("custom_details.recovery.%s = %v, want %v", path, g, want)
		}
	}
}

func TestTriggerPriorityAndCustomers(t *testing.T) {
	f := fridayFinding()
	f.Priority = &correlate.PriorityLevel{Level: "P1", Why: "a top-tier customer's customer-facing path fails", Facts: "1 customer affected"}
	f.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer: Acme Corp (enterprise, VIP)", Top: 1, Total: 1,
		Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "42", Name: "Acme Corp", Tier: "enterprise", VIP: true, Owner: "dana"}, Errors: 40, Top: true}}}
	d := Trigger(routingKey, "k", f, Links{}).Payload.Details.(map[string]any)
	if d["priority"] != "P1" || d["priority_severity"] != "critical" || d["priority_why"] != f.Priority.Why {
		t.Errorf("priority details: %v %v %v", d["priority"], d["priority_severity"], d["priority_why"])
	}
	c, _ := d["customers"].(map[string]any)
	named, _ := c["named"].([]map[string]any)
	if c["summary"] != f.Customers.Summary || len(named) != 1 || named[0]["name"] != "Acme Corp" || named[0]["tier"] != "enterprise" || named[0]["id"] != "42" || named[0]["vip"] != true {
		t.Errorf("customers details: %v", c)
	}
	for level, want := range map[string]string{"P1": "critical", "P2": "error", "P3": "warning", "P4": "info"} {
		if got := PrioritySeverity(level); got != want {
			t.Errorf("PrioritySeverity(%s) = %s, want %s", level, got, want)
		}
	}
}

func TestTriggerConfinedCustomerEvidence(t *testing.T) {
	f := fridayFinding()
	f.Scope = correlate.ScopeSummary{Affected: map[string]int{correlate.FieldCustomer: 1},
		Concentration: []correlate.Concentration{{Field: correlate.FieldCustomer, Value: "42", ShareOfErrors: 1, ShareOfRequests: 0.01},
			{Field: correlate.FieldPath, Value: "/checkout", ShareOfErrors: 1, ShareOfRequests: 0.02}}}
	f.Samples = []correlate.Sample{{Time: t0, Customer: "42", Site: "shop-42.example.com", Message: "certificate verify failed"}}
	f.Tickets = []correlate.TicketRef{{ID: 7, OrganizationID: 42, Subject: "Our site shows certificate errors"}}
	f.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer: Acme Corp (enterprise)", Top: 1, Total: 1, Tiers: map[string]int{"enterprise": 1},
		Named: []correlate.AffectedCustomer{{Customer: correlate.Customer{ID: "42", Name: "Acme Corp", Tier: "enterprise"}, Errors: 40, Top: true}}}
	d := Trigger(routingKey, "k", f, Links{}).Payload.Details.(map[string]any)
	c, ok := d["customer"].(map[string]any)
	if !ok {
		t.Fatalf("no customer evidence in %v", d)
	}
	if c["name"] != "Acme Corp" || fmt.Sprint(c["sites"]) != "[shop-42.example.com]" || fmt.Sprint(c["paths"]) != "[/checkout]" ||
		fmt.Sprint(c["tickets"]) != "[#7 Our site shows certificate errors]" || len(c["samples"].([]string)) != 1 {
		t.Errorf("customer evidence %v", c)
	}
}

func TestTriggerNamesAPreDeployCustomerBurst(t *testing.T) {
	f := fridayFinding()
	f.PreDeployExcess = &correlate.PreDeployExcess{DeployID: "dep-9", Customer: "42", Share: 0.93, Excess: 18,
		From: t0.Add(-10 * time.Minute), To: t0}
	d := received(t, deliver(t, Trigger(routingKey, "inc-1", f, fridayLinks)))
	for path, want := range map[string]any{"deploy_id": "dep-9", "customer": "42", "share": 0.93, "summary": f.PreDeployExcess.Sentence()} {
		if g := at(t, d, "pre_deploy_excess", path); fmt.Sprint(g) != fmt.Sprint(want) {
			t.Errorf("custom_details.pre_deploy_excess.%s = %v, want %v", path, g, want)
		}
	}
}
