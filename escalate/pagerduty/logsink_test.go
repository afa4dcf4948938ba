package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// TestLogSenderThroughDeliverer: with pagerduty.deliver: log a page goes
// through the same Deliverer as a real one and lands as one JSON line,
// the Events API body PagerDuty would have received, without the key.
func TestLogSenderThroughDeliverer(t *testing.T) {
	at := time.Date(2026, 11, 20, 16, 6, 30, 0, time.UTC)
	var buf bytes.Buffer
	d := &Deliverer{Notifier: NewLogSender(&buf, func() time.Time { return at }),
		RoutingKey: func(string) string { return "R0SECRETKEY" }}
	in := escalate.Incident{ID: "inc-1", Key: "culprit/edge-router/f-1/dep-1", Service: "edge-router",
		Finding: &correlate.Finding{Service: "edge-router", Headline: "edge-router 2.42.0 broke functions", Severity: correlate.SeverityPage}}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []escalate.Message{
		{Channel: escalate.ChannelPagerDuty, Action: escalate.Trigger, Key: in.Key, Service: in.Service, Body: body},
		{Channel: escalate.ChannelPagerDuty, Action: escalate.Resolve, Key: in.Key, Service: in.Service},
	} {
		if retry, err := d.Deliver(context.Background(), m); err != nil {
			t.Fatalf("deliver %s: retry %v, %v", m.Action, retry, err)
		}
	}
	if strings.Contains(buf.String(), "R0SECRETKEY") {
		t.Fatalf("the page log carries the routing key:\n%s", buf.String())
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	var first struct {
		At     time.Time `json:"at"`
		Type   string    `json:"type"`
		Action string    `json:"action"`
		Event  struct {
			DedupKey string `json:"dedup_key"`
			Payload  struct {
				Summary string `json:"summary"`
			} `json:"payload"`
		} `json:"event"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if !first.At.Equal(at) || first.Type != "event" || first.Action != "trigger" || first.Event.DedupKey != in.Key ||
		!strings.Contains(first.Event.Payload.Summary, "broke functions") {
		t.Errorf("first line %+v: want the trigger for %s at %s with its summary", first, in.Key, at)
	}
	if !strings.Contains(lines[1], `"action":"resolve"`) {
		t.Errorf("second line %s: want the resolve", lines[1])
	}
}
