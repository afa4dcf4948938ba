package store

import (
	"cmp"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// testSpan is timeline.Span's shape: two hours before the onset to an hour
// after the end.
func testSpan(in escalate.Incident, now time.Time) (time.Time, time.Time) {
	end := cmp.Or(in.ResolvedAt, in.LastSeen, now)
	return in.OpenedAt.Add(-2 * time.Hour), end.Add(time.Hour)
}

func TestPrune(t *testing.T) {
	ctx := context.Background()
	day := 24 * time.Hour
	now := t0.Add(100 * day)
	clock := t0
	s, err := Open(ctx, t.TempDir(), func() time.Time { return clock })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := Retention{Deliveries: 7 * day, Outbox: 30 * day, Incidents: 90 * day, Deploys: 30 * day, Tickets: 30 * day, Span: testSpan}

	inc := func(id string, opened, resolved time.Time) escalate.Incident {
		in := escalate.Incident{ID: id, Key: id, Service: "edge", Status: escalate.StatusOpen, OpenedAt: opened, LastSeen: opened.Add(day)}
		if !resolved.IsZero() {
			in.Status, in.ResolvedAt = escalate.StatusResolved, resolved
		}
		return in
	}
	msg := func(id string, a string) escalate.Message {
		return escalate.Message{Channel: escalate.ChannelPagerDuty, Action: a, IncidentID: id, Key: id, Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}
	}
	ev := func(id string) escalate.Event {
		return escalate.Event{IncidentID: id, At: t0, Kind: escalate.EventDetected, Text: "x"}
	}
	err = s.Apply(ctx, []escalate.Change{
		{Incident: inc("old", t0, t0.Add(day)), Events: []escalate.Event{ev("old")}, Messages: []escalate.Message{msg("old", escalate.Trigger)}},
		{Incident: inc("recent", t0.Add(95*day), t0.Add(96*day)), Events: []escalate.Event{ev("recent")}},
		{Incident: inc("open", t0.Add(10*day), time.Time{}), Events: []escalate.Event{ev("open")}},
		{Incident: inc("undelivered", t0, t0.Add(day)), Events: []escalate.Event{ev("undelivered")}, Messages: []escalate.Message{msg("undelivered", escalate.Resolve)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	// "old"'s trigger was delivered on day 1; "undelivered"'s resolve is
	// still pending.
	due, _ := s.DueIn(ctx, escalate.LanePage, t0, 10)
	for _, m := range due {
		if m.IncidentID == "old" {
			if err := s.Delivered(ctx, m, t0.Add(day), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, d := range []correlate.Deploy{
		{ID: "dep-stale", Service: "edge", StartedAt: t0.Add(40 * day)},
		{ID: "dep-evidence", Service: "edge", StartedAt: t0.Add(10*day - time.Hour), Hosts: []correlate.HostRollout{{Name: "h1", At: t0.Add(10 * day)}}},
		{ID: "dep-fresh", Service: "edge", StartedAt: now.Add(-day)},
	} {
		if _, err := s.AddDeploy(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddTickets(ctx, []correlate.Ticket{{ID: 1, CreatedAt: t0.Add(40 * day)}, {ID: 2, CreatedAt: t0.Add(96 * day)}, {ID: 3, CreatedAt: now}}); err != nil {
		t.Fatal(err)
	}
	clock = t0.Add(50 * day)
	s.FirstDelivery(ctx, "github", "stale")
	clock = now.Add(-day)
	s.FirstDelivery(ctx, "github", "fresh")
	s.FirstSeen(ctx, "slack", "expired", now.Add(-time.Minute))
	s.FirstSeen(ctx, "slack", "live", now.Add(time.Minute))

	p, err := s.Prune(ctx, r, now)
	if err != nil {
		t.Fatal(err)
	}
	want := Pruned{Deliveries: 1, Replays: 1, Outbox: 1, Incidents: 1, Events: 1, Deploys: 1, Tickets: 1}
	if p != want {
		t.Errorf("pruned %+v, want %+v", p, want)
	}
	for _, id := range []string{"recent", "open", "undelivered"} {
		if _, err := s.Incident(ctx, id); err != nil {
			t.Errorf("incident %s pruned: %v", id, err)
		}
	}
	if _, err := s.Incident(ctx, "old"); err == nil {
		t.Error("incident resolved 99 days ago was kept")
	}
	if evs, _ := s.Events(ctx, "old"); len(evs) != 0 {
		t.Errorf("pruned incident's timeline kept: %+v", evs)
	}
	deps, _ := s.Deploys(ctx, t0, now)
	var ids []string
	for _, d := range deps {
		ids = append(ids, d.ID)
	}
	if len(ids) != 2 || ids[0] != "dep-evidence" || ids[1] != "dep-fresh" || len(deps[0].Hosts) != 1 {
		t.Errorf("deploys kept %v, want dep-evidence (the open incident's evidence, with its host) and dep-fresh", ids)
	}
	tks, _ := s.Tickets(ctx, t0, now.Add(time.Second))
	if len(tks) != 2 || tks[0].ID != 2 || tks[1].ID != 3 {
		t.Errorf("tickets kept %+v, want 2 (evidence of the recent incident) and 3", tks)
	}
	if first, _ := s.FirstDelivery(ctx, "github", "fresh"); first {
		t.Error("a delivery id inside its retention was pruned")
	}
	if d, _ := s.Depth(ctx); d != 1 {
		t.Errorf("depth %d, want the pending resolve kept", d)
	}
	// Pruning again finds nothing more.
	if p, _ := s.Prune(ctx, r, now); p != (Pruned{}) {
		t.Errorf("second prune deleted %+v", p)
	}
}
