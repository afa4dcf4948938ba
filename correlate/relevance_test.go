package correlate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/rules"
)

func TestStem(t *testing.T) {
	for in, want := range map[string]string{
		"functions": "funct", "function": "funct", "failing": "fail", "failed": "fail", "fails": "fail",
		"timed": "tim", "time": "tim", "connections": "connect", "connecting": "connect", "stopped": "stop",
		"queries": "query", "api": "api", "deployment": "deploy", "expired": "expir", "expires": "expir",
	} {
		if got := stem(in); got != want {
			t.Errorf("stem(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadTextSynonyms(t *testing.T) {
	for _, c := range []struct {
		text, want string
	}{
		{"Checkout broken - bad gateway on our lambdas", "502 function"},
		{"requests timed out", "timeout"},
		{"Context deadline exceeded", "timeout"},
		{"SSL cert expired", "certificate expire"},
		{"Down for European visitors", "europe"},
	} {
		tt := readText(c.text)
		for _, w := range strings.Fields(c.want) {
			if !tt.concepts[w] && !tt.codes[w] {
				t.Errorf("readText(%q) lacks %q: concepts %v codes %v", c.text, w, tt.concepts, tt.codes)
			}
		}
	}
	if tt := readText("Our site is broken"); !tt.complain || len(tt.concepts) != 1 {
		t.Errorf("a bare complaint reads as %+v, want a complaint about site only", tt)
	}
}

func TestLinkTicketsRelevance(t *testing.T) {
	f := Finding{
		Service:   "edge",
		Signature: "function invocation failed: <*> returned 502 from upstream <*>",
		Examples:  []string{"function invocation failed: fn-8a1 returned 502 from upstream 10.2.3.4:8443"},
		Onset:     t0,
	}
	sc := &Scope{Errors: map[string]map[string]float64{
		FieldCustomer: {"42": 3, "43": 1},
		FieldPath:     {"/fn/checkout": 2, "/fn/contact": 1},
	}}
	tickets := []Ticket{
		{ID: 1, CreatedAt: t0.Add(-time.Minute), Subject: "Functions failing with 502", OrganizationID: 7},
		{ID: 2, CreatedAt: t0.Add(10 * time.Minute), Subject: "Can I raise the bandwidth limit?", OrganizationID: 42},
		{ID: 3, CreatedAt: t0.Add(11 * time.Minute), Subject: "Checkout broken - functions returning bad gateway", OrganizationID: 9},
		{ID: 4, CreatedAt: t0.Add(12 * time.Minute), Subject: "Our serverless functions fail since this afternoon", OrganizationID: 42},
		{ID: 5, CreatedAt: t0.Add(13 * time.Minute), Subject: "Environment variables in functions", OrganizationID: 43},
		{ID: 6, CreatedAt: t0.Add(14 * time.Minute), Subject: "Help", Description: "we see \"function invocation failed\" on every page", OrganizationID: 11},
		{ID: 7, CreatedAt: t0.Add(15 * time.Minute), Subject: "Our serverless functions fail since this afternoon", OrganizationID: 12},
		{ID: 8, CreatedAt: t0.Add(16 * time.Minute), Subject: "Errors on /fn/checkout", Description: "lots of 5xx", OrganizationID: 13},
		{ID: 9, CreatedAt: t0.Add(17 * time.Minute), Subject: "Functions failing with 502", OrganizationID: 14, Status: "deleted"},
		{ID: 10, CreatedAt: t0.Add(18 * time.Minute), Subject: "DNS not propagating", OrganizationID: 43},
	}
	for _, c := range []struct {
		name     string
		products []string
		related  string
		others   string
	}{
		// 4 is an affected customer's vague complaint naming the product;
		// 7 is the same words from a customer without errors, which only
		// the configured product name makes related.
		{"no products", nil, "[6 3 8 4]", "[2 5 10]"},
		{"serverless configured", []string{"serverless", "CDN"}, "[6 3 4 8 7]", "[2 5 10]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, others := linkTickets(f, sc, tickets, t0.Add(time.Hour), c.products)
			var ids []int64
			for _, r := range got {
				ids = append(ids, r.ID)
				if r.Reason == "" || r.Score <= 0 {
					t.Errorf("ticket %d lacks a reason or score: %+v", r.ID, r)
				}
			}
			if fmt.Sprint(ids) != c.related {
				for _, r := range got {
					t.Logf("%d %.1f %s", r.ID, r.Score, r.Reason)
				}
				t.Errorf("related %v, want %s", ids, c.related)
			}
			if fmt.Sprint(others) != c.others {
				t.Errorf("others %v, want %s (affected customers' unrelated tickets)", others, c.others)
			}
		})
	}
	got, _ := linkTickets(f, sc, tickets, t0.Add(time.Hour), nil)
	for _, r := range got {
		if r.ID == 3 && !strings.Contains(r.Reason, "status 502") || r.ID == 3 && !strings.Contains(r.Reason, "endpoint checkout") {
			t.Errorf("reason %q does not say bad gateway is the 502", r.Reason)
		}
		if r.ID == 6 && !strings.Contains(r.Reason, `quotes "function invocation failed"`) {
			t.Errorf("reason %q does not say it quotes the error", r.Reason)
		}
		if r.ID == 8 && !strings.Contains(r.Reason, "path /fn/checkout") {
			t.Errorf("reason %q does not name the path", r.Reason)
		}
	}
}

func TestTicketSurgeCountsOnlyItsTopic(t *testing.T) {
	w, err := NewWindow(t0, t0.Add(12*time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var ts []Ticket
	id := int64(1)
	add := func(at time.Duration, subj string) {
		ts = append(ts, Ticket{ID: id, CreatedAt: t0.Add(at), Subject: subj, OrganizationID: 100 + id})
		id++
	}
	for h := range 10 {
		add(time.Duration(h)*time.Hour+7*time.Minute, "Billing question")
	}
	add(10*time.Hour+2*time.Minute, "Upgrade to the Pro plan")
	add(10*time.Hour+3*time.Minute, "How do I roll back a deploy?")
	subjects := []string{"Functions failing with 502", "Intermittent 502 on our functions", "Checkout function returns bad gateway"}
	for i := range 12 {
		add(10*time.Hour+10*time.Minute+time.Duration(i)*3*time.Minute, subjects[i%len(subjects)])
	}
	add(10*time.Hour+20*time.Minute, "Upgrade to the Pro plan")
	add(10*time.Hour+21*time.Minute, "")
	ts[len(ts)-1].Subject, ts[len(ts)-1].Status = "Functions failing with 502", "deleted"
	cfg := rules.Correlate{TicketBucket: rules.Duration(15 * time.Minute)}
	c, ok := ticketCandidate(ts, w, cfg)
	if !ok {
		t.Fatal("no surge found")
	}
	for _, tk := range c.tickets {
		if !strings.Contains(strings.ToLower(tk.Subject), "function") || tk.Status == "deleted" {
			t.Errorf("surge counts off-topic or deleted ticket %d %q", tk.ID, tk.Subject)
		}
	}
	if len(c.tickets) != 12 {
		t.Errorf("surge counts %d tickets, want the 12 on topic", len(c.tickets))
	}
	f := ticketFinding(c, w, Significance{}, w.To)
	if want := t0.Add(10*time.Hour + 10*time.Minute); !f.Onset.Equal(want) {
		t.Errorf("surge dated %s, want %s, its first on-topic ticket", f.Onset, want)
	}
}

// Words the support queue used before the onset as much as anything else
// ("site" in every ticket of a hosting company) are not cues, even when
// the errors' endpoint is named by one.
func TestLinkTicketsIgnoresTheQueuesCommonWords(t *testing.T) {
	f := Finding{Service: "api", Signature: "context deadline exceeded after <*>ms calling db-<*>", Onset: t0}
	sc := &Scope{Errors: map[string]map[string]float64{
		FieldCustomer: {"42": 3},
		FieldPath:     {"/api/v1/sites": 40},
	}}
	late := Ticket{ID: 100, CreatedAt: t0.Add(20 * time.Minute), Subject: "Redirect rules not working", Description: "Hi, redirect rules not working (site shop-42.example.net).", OrganizationID: 42}
	if got, _ := linkTickets(f, sc, []Ticket{late}, t0.Add(time.Hour), nil); len(got) != 1 {
		t.Fatalf("without a queue to learn from, the endpoint word should count: related %v", got)
	}
	var queue []Ticket
	for i := range 10 {
		queue = append(queue, Ticket{ID: int64(i + 1), CreatedAt: t0.Add(-time.Duration(i+1) * 20 * time.Minute),
			Subject: fmt.Sprintf("Question %d", i), Description: fmt.Sprintf("Hi, about billing %d (site s%d.example.net).", i, i)})
	}
	got, others := linkTickets(f, sc, append(queue, late), t0.Add(time.Hour), nil)
	if len(got) != 0 || fmt.Sprint(others) != "[100]" {
		t.Errorf("related %v, others %v: want the ticket among the others, \"site\" being in every queued ticket", got, others)
	}
}
