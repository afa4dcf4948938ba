package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

var t0 = time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, func() time.Time { return t0 })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestDeploysMergeAndProgress(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	d := correlate.Deploy{ID: "dep-1", Service: "edge-router", Version: "2.42.0", StartedAt: t0,
		Hosts: []correlate.HostRollout{{Name: "h1", At: t0.Add(time.Minute)}}}
	if created, err := s.AddDeploy(ctx, d); err != nil || !created {
		t.Fatalf("first AddDeploy: created=%v err=%v", created, err)
	}
	// A repeat with a later time for h1 and a new host merges: h1 keeps
	// its first time, h2 is added, the finish time is taken.
	d.Hosts = []correlate.HostRollout{{Name: "h1", At: t0.Add(5 * time.Minute)}, {Name: "h2", At: t0.Add(2 * time.Minute)}}
	d.FinishedAt = t0.Add(10 * time.Minute)
	if created, err := s.AddDeploy(ctx, d); err != nil || created {
		t.Fatalf("second AddDeploy: created=%v err=%v", created, err)
	}
	if err := s.AddProgress(ctx, "dep-1", []correlate.HostRollout{{Name: "h3", At: t0.Add(3 * time.Minute)}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	err := s.AddProgress(ctx, "nope", nil, time.Time{})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("progress for unknown deploy: %v, want fs.ErrNotExist", err)
	}
	got, err := s.Deploys(ctx, t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil || len(got) != 1 {
		t.Fatalf("Deploys: %v %+v", err, got)
	}
	g := got[0]
	want := []correlate.HostRollout{{Name: "h1", At: t0.Add(time.Minute)}, {Name: "h2", At: t0.Add(2 * time.Minute)}, {Name: "h3", At: t0.Add(3 * time.Minute)}}
	if len(g.Hosts) != 3 || !g.FinishedAt.Equal(d.FinishedAt) {
		t.Fatalf("merged deploy %+v", g)
	}
	for i := range want {
		if g.Hosts[i].Name != want[i].Name || !g.Hosts[i].At.Equal(want[i].At) {
			t.Errorf("host %d = %+v, want %+v", i, g.Hosts[i], want[i])
		}
	}
	if got, _ := s.Deploys(ctx, t0.Add(time.Minute), t0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("deploy started before the range was returned")
	}
}

func TestTicketsDeliveriesCursors(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	if err := s.AddTickets(ctx, []correlate.Ticket{{ID: 7, CreatedAt: t0, Subject: "old"}, {ID: 8, CreatedAt: t0.Add(time.Minute), Subject: "b"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddTickets(ctx, []correlate.Ticket{{ID: 7, CreatedAt: t0, Subject: "new", Status: "solved"}}); err != nil {
		t.Fatal(err)
	}
	ts, err := s.Tickets(ctx, t0, t0.Add(time.Hour))
	if err != nil || len(ts) != 2 || ts[0].Subject != "new" || ts[0].Status != "solved" {
		t.Fatalf("Tickets: %v %+v", err, ts)
	}
	for i, want := range []bool{true, false} {
		if first, err := s.FirstDelivery(ctx, "github", "abc"); err != nil || first != want {
			t.Fatalf("delivery %d: first=%v err=%v", i, first, err)
		}
	}
	if v, err := s.Cursor(ctx, "zendesk"); err != nil || v != "" {
		t.Fatalf("empty cursor: %q %v", v, err)
	}
	s.SetCursor(ctx, "zendesk", "c1")
	s.SetCursor(ctx, "zendesk", "c2")
	if v, _ := s.Cursor(ctx, "zendesk"); v != "c2" {
		t.Fatalf("cursor %q", v)
	}
}

func TestApplyOutboxAndRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	in := escalate.Incident{ID: "inc-1", Key: "culprit/edge-router/f-1", Service: "edge-router", Status: escalate.StatusOpen, OpenedAt: t0, PagedAt: t0}
	body, _ := json.Marshal(in)
	ch := escalate.Change{Incident: in,
		Messages: []escalate.Message{{Channel: escalate.ChannelPagerDuty, Action: escalate.Trigger, IncidentID: "inc-1", Key: in.Key, Body: body, CreatedAt: t0, NextAt: t0}},
		Events:   []escalate.Event{{IncidentID: "inc-1", At: t0, Kind: escalate.EventDetected, Text: "found"}}}
	if err := s.Apply(ctx, []escalate.Change{ch}); err != nil {
		t.Fatal(err)
	}
	// A failing change rolls the whole batch back: no half-recorded pages.
	bad := escalate.Change{Incident: escalate.Incident{ID: "inc-2", Key: "k2", Service: "api", Status: escalate.StatusOpen, OpenedAt: t0},
		Messages: []escalate.Message{{Channel: escalate.ChannelPagerDuty, Action: escalate.Trigger, IncidentID: "inc-2", Body: json.RawMessage("{}"), CreatedAt: t0, NextAt: t0}}}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Apply(cctx, []escalate.Change{bad}); err == nil {
		t.Fatal("Apply with a cancelled context succeeded")
	}
	s.Close()

	// Reopen, as after kill -9: the decision and its page are both there.
	s = open(t, dir)
	known, err := s.Known(ctx, t0)
	if err != nil || len(known) != 1 || known[0].ID != "inc-1" {
		t.Fatalf("Known after restart: %v %+v", err, known)
	}
	due, err := s.Due(ctx, t0, 10)
	if err != nil || len(due) != 1 || due[0].Key != in.Key || due[0].Action != escalate.Trigger {
		t.Fatalf("Due: %v %+v", err, due)
	}
	if err := s.Retry(ctx, due[0], t0.Add(time.Minute), "429"); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.Due(ctx, t0.Add(59*time.Second), 10); len(due) != 0 {
		t.Fatal("message due before its retry time")
	}
	if at, ok, _ := s.NextDue(ctx); !ok || !at.Equal(t0.Add(time.Minute)) {
		t.Fatalf("NextDue %v %v", at, ok)
	}
	due, _ = s.Due(ctx, t0.Add(time.Minute), 10)
	if len(due) != 1 || due[0].Attempts != 1 || due[0].LastError != "429" {
		t.Fatalf("after retry: %+v", due)
	}
	ev := &escalate.Event{IncidentID: "inc-1", At: t0.Add(time.Minute), Kind: escalate.EventPageSent, Text: "paged"}
	if err := s.Delivered(ctx, due[0], t0.Add(time.Minute), ev); err != nil {
		t.Fatal(err)
	}
	if err := s.Delivered(ctx, due[0], t0.Add(time.Minute), ev); err == nil {
		t.Fatal("a message was delivered twice")
	}
	if n, _ := s.Depth(ctx); n != 0 {
		t.Fatalf("depth %d after delivery", n)
	}
	evs, err := s.Events(ctx, "inc-1")
	if err != nil || len(evs) != 2 || evs[1].Kind != escalate.EventPageSent {
		t.Fatalf("timeline: %v %+v", err, evs)
	}
	if _, err := s.Incident(ctx, "inc-404"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unknown incident: %v", err)
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if _, err := s.db.Exec("PRAGMA user_version = 99"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := Open(context.Background(), dir, nil); err == nil {
		t.Fatal("opened a store with a newer schema")
	}
	if _, err := Open(context.Background(), "", nil); err == nil {
		t.Fatal("opened a store without a directory")
	}
}

func TestIncidentByKey(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	old := escalate.Incident{ID: "inc-old", Key: "culprit/edge/f-1/dep-1", Service: "edge", Status: escalate.StatusResolved, OpenedAt: t0, ResolvedAt: t0.Add(time.Hour)}
	cur := escalate.Incident{ID: "inc-new", Key: old.Key, Service: "edge", Status: escalate.StatusOpen, OpenedAt: t0.Add(3 * time.Hour)}
	other := escalate.Incident{ID: "inc-other", Key: "culprit/api/f-2", Service: "api", Status: escalate.StatusOpen, OpenedAt: t0.Add(4 * time.Hour)}
	if err := s.Apply(ctx, []escalate.Change{{Incident: old}, {Incident: cur}, {Incident: other}}); err != nil {
		t.Fatal(err)
	}
	got, err := s.IncidentByKey(ctx, old.Key)
	if err != nil || got.ID != "inc-new" {
		t.Fatalf("IncidentByKey = %s, %v; want the latest opening, inc-new", got.ID, err)
	}
	if _, err := s.IncidentByKey(ctx, "culprit/nope"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unknown key: %v, want fs.ErrNotExist", err)
	}
}

// atVersion creates a store in dir as culprit wrote it at schema version
// v, by applying only the first v migrations.
func atVersion(t *testing.T, dir string, v int, setup ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range append(append([]string{}, migrations[:v]...), setup...) {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", v)); err != nil {
		t.Fatal(err)
	}
}

// TestMigratesSchema1: a store written by the first schema opens and gains
// the key index, keeping its data.
func TestMigratesSchema1(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	atVersion(t, dir, 1, `INSERT INTO incidents (id, key, service, status, opened_at, body) VALUES ('inc-1', 'k', 'edge', 'open', 0, '{"id":"inc-1","key":"k"}')`)
	s := open(t, dir)
	var v, n int
	if err := s.db.QueryRow("PRAGMA user_version").Scan(&v); err != nil || v != len(migrations) {
		t.Fatalf("schema %d (%v), want %d", v, err, len(migrations))
	}
	if err := s.db.QueryRow("SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'incidents_key'").Scan(&n); err != nil || n != 1 {
		t.Fatalf("incidents_key index missing after migration (%d, %v)", n, err)
	}
	if in, err := s.IncidentByKey(ctx, "k"); err != nil || in.ID != "inc-1" {
		t.Fatalf("data lost in migration: %v %v", in.ID, err)
	}
}

// TestMigratesOutboxLanes: messages pending when culprit is upgraded land
// in the lane their kind belongs to.
func TestMigratesOutboxLanes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	atVersion(t, dir, 2, `INSERT INTO outbox (channel, action, body, created_at, next_at) VALUES
		('pagerduty', 'change', '{}', 0, 0), ('slack', 'post', '{}', 0, 0), ('pagerduty', 'trigger', '{}', 0, 0)`)
	s := open(t, dir)
	for lane, want := range map[escalate.Lane]string{escalate.LanePage: "trigger", escalate.LaneSlack: "post", escalate.LaneChange: "change"} {
		due, err := s.DueIn(ctx, lane, t0, 10)
		if err != nil || len(due) != 1 || due[0].Action != want {
			t.Errorf("lane %s after migration: %+v (%v), want one %s", lane, due, err, want)
		}
	}
}

// TestFirstSeenExpires: a key is a replay until its window ends, then new.
func TestFirstSeenExpires(t *testing.T) {
	ctx := context.Background()
	now := t0
	s, err := Open(ctx, t.TempDir(), func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	until := t0.Add(5 * time.Minute)
	for i, want := range []bool{true, false} {
		if first, err := s.FirstSeen(ctx, "slack", "abcd", until); err != nil || first != want {
			t.Fatalf("call %d: first=%v err=%v, want %v", i+1, first, err, want)
		}
	}
	if first, _ := s.FirstSeen(ctx, "github", "abcd", until); !first {
		t.Fatal("the same key from another source was taken for a replay")
	}
	now = until
	if first, err := s.FirstSeen(ctx, "slack", "abcd", until.Add(5*time.Minute)); err != nil || !first {
		t.Fatalf("after the window: first=%v err=%v, want new again", first, err)
	}
}

// TestAttemptInDoubt: an attempt recorded as started but never finished
// (culprit killed mid-delivery) brings the message back InDoubt; one whose
// outcome was recorded does not.
func TestAttemptInDoubt(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	if err := s.Enqueue(ctx, escalate.Message{Channel: escalate.ChannelSlack, Action: escalate.Post, Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueIn(ctx, escalate.LaneSlack, t0, 10)
	if len(due) != 1 || due[0].InDoubt {
		t.Fatalf("fresh message: %+v, want one not in doubt", due)
	}
	if err := s.Attempting(ctx, due[0]); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = open(t, dir) // the restart after kill -9
	due, _ = s.DueIn(ctx, escalate.LaneSlack, t0, 10)
	if len(due) != 1 || !due[0].InDoubt {
		t.Fatalf("after a started attempt and a restart: %+v, want it in doubt", due)
	}
	if err := s.Attempting(ctx, due[0]); err != nil {
		t.Fatal(err)
	}
	if err := s.Retry(ctx, due[0], t0, "503"); err != nil {
		t.Fatal(err)
	}
	due, _ = s.DueIn(ctx, escalate.LaneSlack, t0, 10)
	if len(due) != 1 || due[0].InDoubt || due[0].Attempts != 1 {
		t.Fatalf("after a recorded failure: %+v, want attempts 1, not in doubt", due)
	}
}

// TestChangeEventQueuedOncePerDeploy: the deploy id is the change event's
// key, checked before a second one is queued, even after the first was
// delivered.
func TestChangeEventQueuedOncePerDeploy(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	change := func(key string) escalate.Message {
		return escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Key: key, Body: json.RawMessage(`{}`), CreatedAt: t0, NextAt: t0}
	}
	if err := s.Enqueue(ctx, change("dep-1"), change("dep-1"), change("dep-2")); err != nil {
		t.Fatal(err)
	}
	due, _ := s.DueIn(ctx, escalate.LaneChange, t0, 10)
	if len(due) != 2 {
		t.Fatalf("%d change events queued for two deploys, want 2", len(due))
	}
	if err := s.Delivered(ctx, due[0], t0, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Enqueue(ctx, change(due[0].Key)); err != nil {
		t.Fatal(err)
	}
	if d, _ := s.Depth(ctx); d != 1 {
		t.Fatalf("depth %d after re-queueing a delivered deploy's change event, want 1", d)
	}
}

// A handover is queued once per key, with its events, across a restart;
// another boundary is another handover.
func TestQueueHandoverOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	at := time.Date(2026, 11, 20, 17, 0, 0, 0, time.UTC)
	m := escalate.Message{Channel: escalate.ChannelSlack, Action: escalate.HandoverAction, Key: "handover/AMER/2026-11-20T17:00:00Z",
		Body: []byte(`{"shift":"AMER"}`), CreatedAt: at, NextAt: at}
	ev := []escalate.Event{{IncidentID: "inc-1", At: at, Kind: escalate.EventHandover, Text: "handed over to AMER"}}
	s := open(t, dir)
	if q, err := s.QueueHandover(ctx, m, ev); err != nil || !q {
		t.Fatalf("first queue: queued %v, %v", q, err)
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if q, err := s.QueueHandover(ctx, m, ev); err != nil || q {
		t.Fatalf("second queue after a restart: queued %v, %v; want nothing queued", q, err)
	}
	next := m
	next.Key = "handover/AMER/2026-11-21T17:00:00Z"
	if q, err := s.QueueHandover(ctx, next, nil); err != nil || !q {
		t.Fatalf("next boundary: queued %v, %v", q, err)
	}
	due, err := s.Due(ctx, at, 10)
	if err != nil || len(due) != 2 {
		t.Fatalf("due: %d messages, %v; want the two boundaries", len(due), err)
	}
	evs, err := s.EventsBetween(ctx, at, at.Add(time.Minute))
	if err != nil || len(evs) != 1 || evs[0].IncidentID != "inc-1" || evs[0].Kind != escalate.EventHandover {
		t.Fatalf("events %+v, %v; want the one handover event", evs, err)
	}
	if evs, _ := s.EventsBetween(ctx, at.Add(time.Minute), at.Add(time.Hour)); len(evs) != 0 {
		t.Errorf("events after the boundary: %+v", evs)
	}
	if _, err := s.QueueHandover(ctx, escalate.Message{Action: escalate.Post}, nil); err == nil {
		t.Error("a post queued as a handover")
	}
}

// Recorded traffic is read back by service and bucket; a later read of a
// bucket (late documents) replaces the earlier one, and buckets before
// since or not yet complete are left alone.
func TestRecordTraffic(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	w, err := correlate.NewWindow(t0, t0.Add(4*time.Minute), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	tr := &correlate.Traffic{Window: w, Complete: 3, Services: []correlate.ServiceTraffic{
		{Service: "api", Requests: []float64{100, 100, 100, 100}, Errors: []float64{1, 2, 3, 4}},
		{Service: "edge", Requests: []float64{10, 10, 10, 10}, Errors: []float64{0, 0, 5, 5}},
	}}
	if err := s.RecordTraffic(ctx, tr, time.Time{}); err != nil {
		t.Fatal(err)
	}
	tr.Services[0].Requests[2], tr.Services[0].Errors[2] = 150, 9 // late documents
	tr.Services[0].Errors[0] = 99                                 // before since: not rewritten
	if err := s.RecordTraffic(ctx, tr, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	got, err := s.Traffic(ctx, t0, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Service != "api" || len(got[0].Buckets) != 3 || got[1].Service != "edge" {
		t.Fatalf("traffic %+v; want api and edge with 3 complete buckets each", got)
	}
	if b := got[0].Buckets; b[0].Errors != 1 || b[2].Requests != 150 || b[2].Errors != 9 || b[2].Step != time.Minute || !b[2].At.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("api buckets %+v", b)
	}
}

// Each evaluation's finding counts its customers: first when first seen,
// last when their count last grew.
func TestCustomersCounted(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	in := escalate.Incident{ID: "inc-c", Key: "k", Service: "edge", Status: escalate.StatusOpen, OpenedAt: t0}
	for i, top := range [][]correlate.ValueCount{
		{{Value: "1", Errors: 3}},
		{{Value: "1", Errors: 5}, {Value: "2", Errors: 1}},
		{{Value: "1", Errors: 5}, {Value: "2", Errors: 4}},
	} {
		in.LastSeen = t0.Add(time.Duration(i) * time.Minute)
		in.Finding = &correlate.Finding{Scope: correlate.ScopeSummary{Top: map[string][]correlate.ValueCount{correlate.FieldCustomer: top}}}
		if err := s.Apply(ctx, []escalate.Change{{Incident: in}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.IncidentCustomers(ctx, "inc-c")
	if err != nil {
		t.Fatal(err)
	}
	want := []escalate.AffectedCustomer{
		{ID: "1", First: t0, Last: t0.Add(time.Minute), Errors: 5},
		{ID: "2", First: t0.Add(time.Minute), Last: t0.Add(2 * time.Minute), Errors: 4},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("customers %+v, want %+v", got, want)
	}
}
