package slack

import (
	"context"
	"testing"

	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

// A retry of a post Slack already has (culprit died, or timed out, after
// sending) finds it by its metadata and does not post again; a retry of a
// post Slack never got posts it.
func TestNotifierRetryFindsEarlierPost(t *testing.T) {
	ctx := context.Background()
	f := slackfake.New(t)
	n, err := NewNotifier(NotifierConfig{Token: slackfake.BotToken, Channel: "C0123CULPRIT", APIURL: f.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	m := incidentMessage(t, escalate.Post)
	if _, err := n.Deliver(ctx, m); err != nil {
		t.Fatalf("first post: %v", err)
	}
	if f.Lookups() != 0 {
		t.Errorf("a first attempt looked up history %d times; it has nothing to find", f.Lookups())
	}
	crashed := m
	crashed.InDoubt = true
	timedOut := m
	timedOut.Attempts = 1
	for _, again := range []escalate.Message{crashed, timedOut} {
		if _, err := n.Deliver(ctx, again); err != nil {
			t.Fatalf("retry: %v", err)
		}
	}
	if got := len(f.Delivered()); got != 1 {
		t.Fatalf("%d messages in the channel after two retries of a delivered post, want 1", got)
	}
	if f.Lookups() != 2 {
		t.Errorf("%d history look-ups, want 2", f.Lookups())
	}

	// Another message, in doubt but never received: posted.
	other := incidentMessage(t, escalate.Resolve)
	other.ID, other.InDoubt = 8, true
	if _, err := n.Deliver(ctx, other); err != nil {
		t.Fatalf("in-doubt message Slack never got: %v", err)
	}
	if got := len(f.Delivered()); got != 2 {
		t.Fatalf("%d messages in the channel, want 2: the in-doubt message Slack never got was not posted", got)
	}
}

// Without the history scope the look-up fails and the post goes out
// again: at least once, never lost.
func TestNotifierRetryWithoutHistoryPostsAgain(t *testing.T) {
	ctx := context.Background()
	f := slackfake.New(t)
	f.SetHistoryError("missing_scope")
	n, err := NewNotifier(NotifierConfig{Token: slackfake.BotToken, Channel: "C0123CULPRIT", APIURL: f.APIURL()})
	if err != nil {
		t.Fatal(err)
	}
	m := incidentMessage(t, escalate.Post)
	m.InDoubt = true
	if _, err := n.Deliver(ctx, m); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	if got := len(f.Delivered()); got != 1 || f.Lookups() != 1 {
		t.Fatalf("%d posts after %d look-ups, want 1 after 1", got, f.Lookups())
	}
}
