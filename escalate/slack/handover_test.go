package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

func handoverMessage(t *testing.T, h escalate.Handover) escalate.Message {
	t.Helper()
	body, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	return escalate.Message{ID: 9, Channel: escalate.ChannelSlack, Action: escalate.HandoverAction,
		Key: "handover/AMER/2026-11-20T17:00:00Z", Body: body, CreatedAt: friday, NextAt: friday}
}

// A handover goes to its shift's channel, not the notifier's, passes
// Slack's schema however long the shift's lists are, and a retry after
// an unanswered attempt that Slack did receive does not post it again.
func TestNotifierHandover(t *testing.T) {
	until := time.Date(2026, 11, 20, 17, 0, 0, 0, time.UTC)
	h := escalate.Handover{Shift: "AMER", Previous: "EMEA", Channel: "C0AMER", Since: until.Add(-9 * time.Hour), Until: until}
	for i := range 40 {
		h.Open = append(h.Open, escalate.HandoverIncident{ID: fmt.Sprintf("inc-%02d", i), Service: "edge-router",
			Headline: strings.Repeat("function invocation failed <*> & more ", 40), Status: escalate.StatusOpen,
			Severity: "page", Action: escalate.ActionPage, PagedAt: until.Add(-time.Hour), Acknowledged: "Alice <Oncall>",
			AcknowledgedAt: until.Add(-50 * time.Minute), Customers: 101, URL: fmt.Sprintf("https://culprit.example.com/incidents/inc-%02d", i)})
		h.Pages = append(h.Pages, escalate.HandoverPage{At: until.Add(-time.Hour), IncidentID: fmt.Sprintf("inc-%02d", i), Kind: "page_sent"})
	}
	for i := range 200 {
		h.Waiting = append(h.Waiting, escalate.HandoverTicket{ID: int64(1000 + i), Subject: strings.Repeat("checkout broken ", 20),
			Status: "open", CreatedAt: until.Add(-30 * time.Minute), IncidentID: "inc-00", Organization: 4711, Customer: "Acme & Co", Tier: "enterprise"})
	}
	f := slackfake.New(t)
	n, err := NewNotifier(NotifierConfig{Token: slackfake.BotToken, APIURL: f.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	m := handoverMessage(t, h)
	if retry, err := n.Deliver(context.Background(), m); err != nil {
		t.Fatalf("deliver: retry %v, %v", retry, err)
	}
	posts := f.Delivered()
	if len(posts) != 1 {
		t.Fatalf("%d posts accepted, want 1 (all: %+v)", len(posts), f.Posts())
	}
	p := posts[0]
	if p.Channel != "C0AMER" || len(p.Problems) > 0 {
		t.Fatalf("posted to %q with problems %v; want C0AMER, none", p.Channel, p.Problems)
	}
	var decoded any
	if err := json.Unmarshal(p.Blocks, &decoded); err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprint(decoded) // the mrkdwn as Slack reads it, not JSON-escaped
	for _, want := range []string{"Handover from EMEA to AMER", "<https://culprit.example.com/incidents/inc-00|inc-00>",
		"acknowledged by Alice &lt;Oncall&gt;", "…and 30 more open incidents", "Acme &amp; Co (enterprise, org 4711)", "…and 185 more tickets"} {
		if !strings.Contains(text, want) {
			t.Errorf("blocks lack %q: %.800s", want, text)
		}
	}
	m.Attempts = 1 // the first attempt's answer was lost
	if _, err := n.Deliver(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if got := len(f.Delivered()); got != 1 {
		t.Errorf("%d posts after the retry, want the first only", got)
	}
	// Incident posts need the notifier's own channel.
	if retry, err := n.Deliver(context.Background(), incidentMessage(t, escalate.Post)); err == nil || retry {
		t.Errorf("incident post without slack.channel: retry %v, %v; want a final error", retry, err)
	}
}
