package timeline

import (
	"bytes"
	"context"
	"encoding/csv"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

type reviewData struct {
	traffic   []escalate.ServiceTraffic
	customers []escalate.AffectedCustomer
}

func (r reviewData) Traffic(_ context.Context, from, to time.Time) ([]escalate.ServiceTraffic, error) {
	var out []escalate.ServiceTraffic
	for _, sv := range r.traffic {
		k := escalate.ServiceTraffic{Service: sv.Service}
		for _, b := range sv.Buckets {
			if !b.At.Before(from) && b.At.Before(to) {
				k.Buckets = append(k.Buckets, b)
			}
		}
		out = append(out, k)
	}
	return out, nil
}

func (r reviewData) IncidentCustomers(context.Context, string) ([]escalate.AffectedCustomer, error) {
	return r.customers, nil
}

type names map[string]correlate.Customer

func (n names) Customer(id string) (correlate.Customer, bool) { c, ok := n[id]; return c, ok }

// The fleet's error share stays far below a 5% alert while one service's
// climbs through it: the review says the fleet alert would not have fired
// and the service's would have, at the minute its trailing five-minute
// share reached 5%.
func TestReviewAlerting(t *testing.T) {
	onset := time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)
	var edge, api escalate.ServiceTraffic
	edge.Service, api.Service = "edge-router", "api"
	for m := -20; m < 40; m++ {
		at := onset.Add(time.Duration(m) * time.Minute)
		errs := 0.0
		if m >= 0 && m < 30 {
			errs = 100 // 10% of edge-router's requests from the onset
		}
		edge.Buckets = append(edge.Buckets, escalate.TrafficBucket{At: at, Step: time.Minute, Requests: 1000, Errors: errs})
		api.Buckets = append(api.Buckets, escalate.TrafficBucket{At: at, Step: time.Minute, Requests: 99000, Errors: 10})
	}
	in := escalate.Incident{ID: "inc-1", Service: "edge-router", Onset: onset, Recovered: onset.Add(30 * time.Minute),
		ResolvedAt: onset.Add(40 * time.Minute), Status: escalate.StatusResolved}
	tl := Build(in, nil, nil, []correlate.Ticket{{ID: 7, CreatedAt: onset.Add(5 * time.Minute), Subject: "=HYPERLINK(x)", Status: "open", OrganizationID: 4711}})
	rd := reviewData{traffic: []escalate.ServiceTraffic{api, edge}, customers: []escalate.AffectedCustomer{
		{ID: "4711", First: onset.Add(2 * time.Minute), Last: onset.Add(29 * time.Minute), Errors: 120}}}
	in.Finding = &correlate.Finding{Tickets: []correlate.TicketRef{{ID: 7, OrganizationID: 4711}}}
	tl.Incident = in
	tickets := []correlate.Ticket{{ID: 7, CreatedAt: onset.Add(5 * time.Minute), Subject: "=HYPERLINK(x)", Status: "open", OrganizationID: 4711}}
	if err := tl.AddReview(context.Background(), rd, tickets, ReviewOptions{Threshold: Threshold{Share: 0.05, For: 5 * time.Minute},
		Customers: names{"4711": {ID: "4711", Name: "Acme Corp", Tier: "enterprise"}}}); err != nil {
		t.Fatal(err)
	}
	a := tl.Review.Alerting
	verdict := map[string]Verdict{}
	for _, v := range a.Verdicts {
		verdict[v.Scope] = v
	}
	// Trailing 5 minutes at the end of minute k (from the onset): 100(k+1)
	// errors of 5000 requests; 5% is reached with k+1 = 3, at 16:03.
	if v := verdict["edge-router"]; !v.FiredAt.Equal(onset.Add(3*time.Minute)) || v.Peak != 0.1 {
		t.Errorf("edge-router: %+v; want fired at 16:03, peak 10%%", v)
	}
	// The fleet: 110 errors of 100,000 requests a minute at most.
	if v := verdict[Fleet]; !v.FiredAt.IsZero() || v.Peak < 0.00109 || v.Peak > 0.00111 {
		t.Errorf("fleet: %+v; want never fired, peak 0.11%%", v)
	}
	if len(a.Services) != 2 || a.Services[0] != "edge-router" {
		t.Errorf("columns %v: want the incident's service first", a.Services)
	}
	// From 5 minutes before the onset to a minute after the recovery.
	if n := len(a.Rows); n != 36 || !a.Rows[0].At.Equal(onset.Add(-4*time.Minute)) {
		t.Errorf("%d rows from %s; want 36 from 15:56 (the bucket ending then)", n, a.Rows[0].At)
	}
	for _, f := range []Format{FormatMarkdown, FormatHTML, FormatJSON, FormatCSV} {
		var b bytes.Buffer
		if err := tl.Write(&b, f); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"would have fired at 16:03 UTC", "error share of 5% over 5m", "Acme Corp", "enterprise"} {
			if !strings.Contains(b.String(), want) {
				t.Errorf("%s lacks %q", f, want)
			}
		}
		titles := []string{TitleAlerting, TitleCustomers}
		if f == FormatJSON {
			titles = []string{TitleAlerting, `"customers": [`}
		}
		if f != FormatCSV && (!strings.Contains(b.String(), titles[0]) || !strings.Contains(b.String(), titles[1])) {
			t.Errorf("%s lacks the section titles", f)
		}
	}
	var b bytes.Buffer
	if err := tl.CustomersCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"4711", "Acme Corp", "enterprise", "2026-11-20T16:02:00Z", "2026-11-20T16:29:00Z", "120", "#7 =HYPERLINK(x) (open)"}
	if len(rows) != 2 || strings.Join(rows[1], ",") != strings.Join(want, ",") {
		t.Errorf("customers csv %q; want a header and %q", rows, want)
	}
}

// Without recorded traffic the review says so instead of claiming the
// alert would not have fired.
func TestReviewWithoutTraffic(t *testing.T) {
	tl := Build(escalate.Incident{ID: "inc-2", Service: "api", Onset: time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)}, nil, nil, nil)
	if err := tl.AddReview(context.Background(), reviewData{}, nil, ReviewOptions{Threshold: Threshold{Share: 0.05, For: 5 * time.Minute}}); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := tl.Markdown(&b); err != nil {
		t.Fatal(err)
	}
	if s := b.String(); !strings.Contains(s, "No traffic was recorded") || strings.Contains(s, "would not have fired") || !strings.Contains(s, "No affected customers") {
		t.Errorf("markdown without traffic:\n%s", s)
	}
}
