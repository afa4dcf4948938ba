package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
	"github.com/culprithq/culprit/rules"
)

// TestServePostsToSlackChannel: an incident the routes send to Slack
// (business hours) goes out through the outbox to slack.channel, rendered
// like a /correlate answer, with its evidence link and page button.
func TestServePostsToSlackChannel(t *testing.T) {
	ctx := context.Background()
	sl := slackfake.New(t)
	sl.SetToken("xoxb-test-token")
	now := time.Date(2026, 11, 20, 16, 30, 0, 0, time.UTC)
	y := fmt.Sprintf(`
sources:
  elasticsearch:
    urls: [http://127.0.0.1:1]
    index: logs-*
routes:
  - name: business-hours
    action: slack
default_action: slack
intake:
  public_url: https://culprit.example.com
  token: {env: E2E_TOKEN}
ui:
  listen: "127.0.0.1:0"
  external_url: https://culprit-ui.example.com
  insecure: true
slack:
  bot_token: xoxb-test-token
  channel: C0SUPPORT
  api_url: %s
  signing_secret: {env: E2E_SLACK_SECRET}
store:
  dir: %s
`, sl.APIURL(), t.TempDir())
	p := filepath.Join(t.TempDir(), "culprit.yml")
	os.WriteFile(p, []byte(y), 0o600)
	cfg, err := rules.LoadWith(p, e2eGetenv)
	if err != nil {
		t.Fatal(err)
	}
	s, err := assemble(ctx, &cfg, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	f := correlate.Finding{ID: "f-1", Service: "edge-router", Kind: correlate.KindNewError, Signature: "function invocation failed: fn-<*>",
		Onset: now.Add(-10 * time.Minute), Severity: correlate.SeverityPage, Headline: "edge-router 2.42.0 broke function invocations on aws",
		Scope: correlate.ScopeSummary{Affected: map[string]int{correlate.FieldCustomer: 12}}}
	changes := escalate.Decide(nil, escalate.Evaluation{Now: now, Findings: []correlate.Finding{f}, HasData: func(string) bool { return true }},
		&cfg, escalate.Settings{QuietEvaluations: 3, ReopenCooldown: time.Hour, Slack: true})
	if len(changes) != 1 || len(changes[0].Messages) != 1 || changes[0].Messages[0].Channel != escalate.ChannelSlack {
		t.Fatalf("routing did not queue one Slack post: %+v", changes)
	}
	if err := s.store.Apply(ctx, changes); err != nil {
		t.Fatal(err)
	}
	if n, err := s.outbox.Flush(ctx); err != nil || n != 1 {
		t.Fatalf("flush delivered %d (%v), want 1", n, err)
	}
	posts := sl.Posts()
	if len(posts) != 1 || posts[0].Kind != slackfake.KindPostMessage || posts[0].Channel != "C0SUPPORT" || len(posts[0].Problems) > 0 {
		t.Fatalf("posts %+v, want one chat.postMessage to C0SUPPORT without problems", posts)
	}
	id := changes[0].Incident.ID
	for _, want := range []string{f.Headline, "https://culprit-ui.example.com/incidents/" + id, "Page on-call"} {
		if !bytes.Contains(posts[0].Blocks, []byte(want)) {
			t.Errorf("post lacks %q: %.500s", want, posts[0].Blocks)
		}
	}
}
