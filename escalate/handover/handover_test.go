package handover

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// memStore is an in-memory Store: the digest's reads, cursors, and a queue
// that, like the real one, takes each key once.
type memStore struct {
	incidents []escalate.Incident
	events    []escalate.Event
	tickets   []correlate.Ticket
	cursors   map[string]string
	queued    []escalate.Message
	keys      map[string]bool
}

func newMem() *memStore { return &memStore{cursors: map[string]string{}, keys: map[string]bool{}} }

func (m *memStore) Known(_ context.Context, since time.Time) ([]escalate.Incident, error) {
	var out []escalate.Incident
	for _, in := range m.incidents {
		if in.Status == escalate.StatusOpen || !in.ResolvedAt.Before(since) {
			out = append(out, in)
		}
	}
	return out, nil
}

func (m *memStore) Events(_ context.Context, id string) ([]escalate.Event, error) {
	var out []escalate.Event
	for _, e := range m.events {
		if e.IncidentID == id {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) EventsBetween(_ context.Context, from, to time.Time) ([]escalate.Event, error) {
	var out []escalate.Event
	for _, e := range m.events {
		if !e.At.Before(from) && e.At.Before(to) {
			out = append(out, e)
		}
	}
	return out, nil
}

func (m *memStore) Tickets(_ context.Context, from, to time.Time) ([]correlate.Ticket, error) {
	var out []correlate.Ticket
	for _, t := range m.tickets {
		if !t.CreatedAt.Before(from) && t.CreatedAt.Before(to) {
			out = append(out, t)
		}
	}
	return out, nil
}

func (m *memStore) Cursor(_ context.Context, name string) (string, error) {
	return m.cursors[name], nil
}

func (m *memStore) SetCursor(_ context.Context, name, v string) error {
	m.cursors[name] = v
	return nil
}

func (m *memStore) QueueHandover(_ context.Context, msg escalate.Message, evs []escalate.Event) (bool, error) {
	if m.keys[msg.Key] {
		return false, nil
	}
	m.keys[msg.Key] = true
	m.queued = append(m.queued, msg)
	m.events = append(m.events, evs...)
	return true, nil
}

type directory map[string]correlate.Customer

func (d directory) Customer(id string) (correlate.Customer, bool) {
	c, ok := d[id]
	return c, ok
}

func mustSchedule(t *testing.T, spec string) cron.Schedule {
	t.Helper()
	s, err := cron.ParseStandard(spec)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rota is the follow-the-sun rota of the README: APAC at midnight UTC,
// EMEA at 08:00 in Dublin, AMER at 11:00 in New York.
func rota(t *testing.T) []Shift {
	return []Shift{
		{Name: "APAC", Channel: "C0APAC", Start: mustSchedule(t, "0 0 * * *")},
		{Name: "EMEA", Channel: "C0EMEA", Start: mustSchedule(t, "CRON_TZ=Europe/Dublin 0 8 * * *")},
		{Name: "AMER", Channel: "C0AMER", Start: mustSchedule(t, "CRON_TZ=America/New_York 0 11 * * *")},
	}
}

// Moving the injected clock minute by minute through both spring
// changes (New York on 8 March 2026, Dublin on 29 March) and both autumn
// ones (Dublin 25 October, New York 1 November), each shift's digest is
// queued exactly once per day, at the UTC instant its zone's clock
// reaches the start, and covers the shift before it.
func TestBoundariesAcrossDST(t *testing.T) {
	type boundary struct {
		shift string
		at    time.Time
		since string
	}
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, span := range []struct {
		name     string
		from, to time.Time
		// want are a few boundaries on the days around each change.
		want []boundary
	}{
		{"spring", utc("2026-03-06T23:00:00Z"), utc("2026-03-31T00:00:00Z"), []boundary{
			{"AMER", utc("2026-03-07T16:00:00Z"), "EMEA 2026-03-07T08:00:00Z"}, // EST, UTC-5
			{"AMER", utc("2026-03-09T15:00:00Z"), "EMEA 2026-03-09T08:00:00Z"}, // EDT, UTC-4
			{"EMEA", utc("2026-03-28T08:00:00Z"), "APAC 2026-03-28T00:00:00Z"}, // GMT
			{"EMEA", utc("2026-03-30T07:00:00Z"), "APAC 2026-03-30T00:00:00Z"}, // IST, UTC+1
			{"APAC", utc("2026-03-30T00:00:00Z"), "AMER 2026-03-29T15:00:00Z"},
		}},
		{"autumn", utc("2026-10-23T23:00:00Z"), utc("2026-11-04T00:00:00Z"), []boundary{
			{"EMEA", utc("2026-10-24T07:00:00Z"), "APAC 2026-10-24T00:00:00Z"},
			{"EMEA", utc("2026-10-26T08:00:00Z"), "APAC 2026-10-26T00:00:00Z"},
			{"AMER", utc("2026-10-31T15:00:00Z"), "EMEA 2026-10-31T08:00:00Z"},
			{"AMER", utc("2026-11-02T16:00:00Z"), "EMEA 2026-11-02T08:00:00Z"},
		}},
	} {
		t.Run(span.name, func(t *testing.T) {
			st := newMem()
			p, err := New(Config{Shifts: rota(t), Store: st})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			for now := span.from; now.Before(span.to); now = now.Add(time.Minute) {
				if err := p.Run(ctx, now); err != nil {
					t.Fatal(err)
				}
			}
			days := int(span.to.Sub(span.from).Hours() / 24) // a whole number of days after the first hour
			if got, want := len(st.queued), 3*days; got != want {
				t.Errorf("%d digests queued over %d days, want %d: one per shift per day", got, days, want)
			}
			got := map[string]escalate.Handover{}
			for _, m := range st.queued {
				var h escalate.Handover
				if err := json.Unmarshal(m.Body, &h); err != nil {
					t.Fatal(err)
				}
				if !m.CreatedAt.Equal(h.Until) {
					t.Errorf("%s: boundary %s queued at %s, want at the boundary", m.Key, h.Until, m.CreatedAt)
				}
				if _, dup := got[m.Key]; dup {
					t.Errorf("%s queued twice", m.Key)
				}
				got[m.Key] = h
			}
			for _, w := range span.want {
				key := "handover/" + w.shift + "/" + w.at.Format(time.RFC3339)
				h, ok := got[key]
				if !ok {
					t.Errorf("no digest %s", key)
					continue
				}
				if s := h.Previous + " " + h.Since.Format(time.RFC3339); s != w.since || h.Channel != "C0"+w.shift {
					t.Errorf("%s: covers %s to channel %s, want %s to C0%s", key, s, h.Channel, w.since, w.shift)
				}
			}
		})
	}
}

// A restarted daemon (a new Poster on the same store) neither repeats the
// boundary it posted nor loses one that passed while it was down.
func TestRestartNeitherRepeatsNorLoses(t *testing.T) {
	st := newMem()
	ctx := context.Background()
	shifts := rota(t)[1:2] // EMEA, 08:00 Dublin = 08:00 UTC in November
	run := func(now time.Time) {
		t.Helper()
		p, err := New(Config{Shifts: shifts, Store: st})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Run(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	run(day.Add(7 * time.Hour)) // first start: sets the cursor, posts nothing
	if len(st.queued) != 0 {
		t.Fatalf("a new rota posted its past: %v", st.queued)
	}
	run(day.Add(8 * time.Hour))
	run(day.Add(8*time.Hour + time.Minute)) // restarted
	if len(st.queued) != 1 {
		t.Fatalf("%d digests after a restart, want 1", len(st.queued))
	}
	run(day.Add(24*time.Hour + 9*time.Hour)) // down across the next boundary
	if len(st.queued) != 2 || st.queued[1].Key != "handover/EMEA/2026-11-21T08:00:00Z" {
		t.Fatalf("after downtime: %d digests, last %q; want the missed boundary", len(st.queued), st.queued[len(st.queued)-1].Key)
	}
}

// The digest names what the next shift needs: open incidents with status
// and acknowledgement, those resolved in the shift, the pages, and the
// customers whose tickets are still open; it leaves out record-only
// incidents, answered tickets, and what happened outside the shift.
func TestBuild(t *testing.T) {
	since := time.Date(2026, 11, 20, 8, 0, 0, 0, time.UTC)
	until := time.Date(2026, 11, 20, 17, 0, 0, 0, time.UTC)
	at := func(h, m int) time.Time { return time.Date(2026, 11, 20, h, m, 0, 0, time.UTC) }
	paged := escalate.Incident{ID: "inc-paged", Service: "edge-router", Status: escalate.StatusOpen, Action: escalate.ActionPage,
		Severity: correlate.SeverityPage, Onset: at(16, 1), OpenedAt: at(16, 3), PagedAt: at(16, 3),
		Finding: &correlate.Finding{Headline: "edge-router 2.42.0 is the suspected cause", Tickets: []correlate.TicketRef{{ID: 11}, {ID: 12}},
			Scope: correlate.ScopeSummary{Affected: map[string]int{correlate.FieldCustomer: 101}}}}
	resolved := escalate.Incident{ID: "inc-done", Service: "api", Status: escalate.StatusResolved, Action: escalate.ActionSlack,
		Severity: correlate.SeverityNotify, Onset: at(9, 0), OpenedAt: at(9, 2), PostedAt: at(9, 2), ResolvedAt: at(10, 0),
		Finding: &correlate.Finding{Headline: "api errors", Tickets: []correlate.TicketRef{{ID: 13}}}}
	quiet := escalate.Incident{ID: "inc-quiet", Service: "api", Status: escalate.StatusOpen, Action: escalate.ActionRecord, Onset: at(12, 0), OpenedAt: at(12, 0)}
	old := escalate.Incident{ID: "inc-old", Service: "api", Status: escalate.StatusResolved, Action: escalate.ActionPage,
		PagedAt: at(1, 0), Onset: at(0, 50), OpenedAt: at(1, 0), ResolvedAt: at(2, 0)}
	st := newMem()
	st.incidents = []escalate.Incident{paged, resolved, quiet, old}
	st.events = []escalate.Event{
		{IncidentID: "inc-old", At: at(1, 0), Kind: escalate.EventPageSent, Text: "paged"},
		{IncidentID: "inc-paged", At: at(16, 3), Kind: escalate.EventPageSent, Text: "paged on-call through PagerDuty"},
		{IncidentID: "inc-paged", At: at(16, 3), Kind: escalate.EventDetected, Text: "detected"},
		{IncidentID: "inc-paged", At: at(16, 6), Kind: "incident.acknowledged", Text: "acknowledged in PagerDuty", Actor: "Alice Oncall"},
	}
	st.tickets = []correlate.Ticket{
		{ID: 11, CreatedAt: at(16, 10), Subject: "functions failing", Status: "open", OrganizationID: 4711},
		{ID: 12, CreatedAt: at(16, 12), Subject: "fixed for us", Status: "solved", OrganizationID: 4712},
		{ID: 13, CreatedAt: at(9, 30), Subject: "api 500s", Status: "pending", OrganizationID: 99},
		{ID: 14, CreatedAt: at(16, 20), Subject: "billing question", Status: "new", OrganizationID: 5},
	}
	h, err := Build(context.Background(), st, since, until, Options{
		EvidenceURL: func(id string) string { return "https://culprit.example.com/incidents/" + id },
		Customers:   directory{"4711": {ID: "4711", Name: "Acme Corp", Tier: "enterprise"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Open) != 1 || h.Open[0].ID != "inc-paged" || h.Open[0].Acknowledged != "Alice Oncall" || h.Open[0].Customers != 101 ||
		h.Open[0].URL != "https://culprit.example.com/incidents/inc-paged" {
		t.Errorf("open: %+v; want inc-paged, acknowledged by Alice Oncall, 101 customers, linked", h.Open)
	}
	if len(h.Resolved) != 1 || h.Resolved[0].ID != "inc-done" {
		t.Errorf("resolved: %+v; want inc-done only", h.Resolved)
	}
	if len(h.Pages) != 2 || h.Pages[0].Kind != escalate.EventPageSent || h.Pages[1].Actor != "Alice Oncall" {
		t.Errorf("pages: %+v; want the 16:03 page and the 16:06 acknowledgement", h.Pages)
	}
	if len(h.Waiting) != 2 || h.Waiting[0].ID != 13 || h.Waiting[1].ID != 11 || h.Waiting[1].Customer != "Acme Corp" || h.Waiting[1].Tier != "enterprise" {
		t.Errorf("waiting: %+v; want #13 then #11 (Acme Corp, enterprise)", h.Waiting)
	}
	var b bytes.Buffer
	if err := Text(&b, h); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"inc-paged  page  open, paged 2026-11-20 16:03 UTC, acknowledged by Alice Oncall 2026-11-20 16:06 UTC, 101 customers",
		"PagerDuty acknowledged by Alice Oncall", "#11  Acme Corp (enterprise, org 4711)  open", "Resolved during the shift (1)"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}
