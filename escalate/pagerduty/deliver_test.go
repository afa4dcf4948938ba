package pagerduty

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/outbox"
	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
	"github.com/culprithq/culprit/escalate/store"
)

// TestDeliverThroughOutbox queues a trigger and a resolve in the real store
// and delivers them through the outbox to the fake PagerDuty while it
// rate-limits and fails: it must see exactly one trigger and one resolve.
func TestDeliverThroughOutbox(t *testing.T) {
	ctx := context.Background()
	fake := pdfake.New(t)
	now := t0
	clock := func() time.Time { return now }
	st, err := store.Open(ctx, t.TempDir(), clock)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	n, err := New(Config{URL: fake.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deliverer{Notifier: n,
		RoutingKey: func(string) string { return routingKey },
		Links: func(in *escalate.Incident) Links {
			return Links{Evidence: "https://culprit.example.com/incidents/" + in.ID}
		}}
	w, err := outbox.New(outbox.Config{Queue: st, Notifiers: map[escalate.Channel]outbox.Notifier{escalate.ChannelPagerDuty: d},
		Now: clock, Backoff: time.Second, MaxBackoff: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	f := fridayFinding()
	f.Recovered = nil
	in := escalate.Incident{ID: "inc-1", Key: escalate.IncidentKey(f.Service, f.Signature, "dep-1a2b"), Service: f.Service,
		Status: escalate.StatusOpen, OpenedAt: now, PagedAt: now, Finding: f}
	body, _ := json.Marshal(in)
	queue := func(action string) {
		t.Helper()
		err := st.Apply(ctx, []escalate.Change{{Incident: in, Messages: []escalate.Message{{Channel: escalate.ChannelPagerDuty, Action: action,
			IncidentID: in.ID, Key: in.Key, Service: in.Service, Body: body, CreatedAt: now, NextAt: now}}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	queue(escalate.Trigger)
	fake.SetRetryAfter("30")
	fake.FailWith(http.StatusTooManyRequests, 1)
	fake.FailWith(http.StatusInternalServerError, 1)
	for i := 0; i < 120; i++ { // two simulated minutes, a flush a second
		if _, err := w.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		now = now.Add(time.Second)
	}
	queue(escalate.Resolve)
	if _, err := w.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if rej := fake.Rejected(); len(rej) != 0 {
		t.Fatalf("fake rejected requests: %v", rej)
	}
	inc := fake.Incidents()[in.Key]
	if inc.Triggers != 1 || inc.Resolves != 1 || inc.State != pdfake.StateResolved {
		t.Fatalf("PagerDuty saw %+v, want one trigger and one resolve", inc)
	}
	if fake.Requests() != 4 {
		t.Fatalf("%d requests, want 4 (429, 500, trigger, resolve)", fake.Requests())
	}
	ev := fake.Events()[0].Alert
	if ev.Payload.Summary != f.Headline || !strings.HasPrefix(ev.Payload.Source, "culprit") {
		t.Errorf("trigger payload %+v", ev.Payload)
	}
	evs, _ := st.Events(ctx, in.ID)
	if len(evs) != 2 || evs[0].Kind != escalate.EventPageSent || evs[0].At.Sub(t0) < 30*time.Second {
		t.Errorf("timeline %+v: want page_sent after the 30 s Retry-After, then page_resolved", evs)
	}
}

func TestDeliverWithoutRoutingKeyIsPermanent(t *testing.T) {
	d := &Deliverer{Notifier: nil, RoutingKey: func(string) string { return "" }}
	retry, err := d.Deliver(context.Background(), escalate.Message{Action: escalate.Trigger, Service: "api"})
	if retry || err == nil || !strings.Contains(err.Error(), `service "api"`) {
		t.Fatalf("retry=%v err=%v", retry, err)
	}
}

func TestDeliverChangeEvent(t *testing.T) {
	fake := pdfake.New(t)
	n, _ := New(Config{URL: fake.URL()})
	d := &Deliverer{Notifier: n, RoutingKey: func(string) string { return routingKey }}
	body, _ := json.Marshal(correlate.Deploy{ID: "dep-1", Service: "edge-router", Version: "2.42.0", StartedAt: t0, URL: "https://ci.example.com/1"})
	if _, err := d.Deliver(context.Background(), escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Service: "edge-router", Body: body}); err != nil {
		t.Fatal(err)
	}
	if evs := fake.Events(); len(evs) != 1 || evs[0].Change == nil || len(fake.Rejected()) != 0 {
		t.Fatalf("events %+v rejected %v", evs, fake.Rejected())
	}
}

// TestDeliverRouteKey: a route with its own key (the support on-call's)
// pages, and resolves, with that key, never the service's.
func TestDeliverRouteKey(t *testing.T) {
	const support = "5upp0rt0000000000000000000000000"
	fake := pdfake.New(t)
	n, err := New(Config{URL: fake.URL(), Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	d := &Deliverer{Notifier: n,
		RoutingKey: func(string) string { return routingKey },
		RouteKey: func(r string) string {
			if r == "vip" {
				return support
			}
			return ""
		}}
	f := fridayFinding()
	for _, tc := range []struct{ route, want string }{{"vip", support}, {"infra", routingKey}, {"", routingKey}} {
		in := escalate.Incident{ID: "inc-" + tc.route, Key: "k-" + tc.route, Service: f.Service, Route: tc.route, Finding: f}
		body, _ := json.Marshal(in)
		for _, action := range []string{escalate.Trigger, escalate.Resolve} {
			if _, err := d.Deliver(context.Background(), escalate.Message{Channel: escalate.ChannelPagerDuty, Action: action,
				IncidentID: in.ID, Key: in.Key, Service: in.Service, Body: body}); err != nil {
				t.Fatal(err)
			}
		}
	}
	evs := fake.Events()
	if len(evs) != 6 {
		t.Fatalf("%d events, want 6", len(evs))
	}
	for _, e := range evs {
		want := routingKey
		if e.DedupKey == "k-vip" {
			want = support
		}
		if e.Alert.RoutingKey != want {
			t.Errorf("%s %s went with key %s, want %s", e.Alert.Action, e.DedupKey, e.Alert.RoutingKey, want)
		}
	}
}
