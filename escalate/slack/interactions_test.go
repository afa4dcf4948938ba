package slack

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	slackgo "github.com/slack-go/slack"
)

// clickForm is what Slack posts when someone presses a button.
func (h *harness) clickForm(t *testing.T, actionID, value string) url.Values {
	t.Helper()
	ic := slackgo.InteractionCallback{
		Type:        slackgo.InteractionTypeBlockActions,
		ResponseURL: h.fake.ResponseURL("click-1"),
		TriggerID:   "trig-1",
		Team:        slackgo.Team{ID: "T0001", Domain: "acme"},
		Channel:     slackgo.Channel{GroupConversation: slackgo.GroupConversation{Conversation: slackgo.Conversation{ID: "C2147483705"}}},
		User:        slackgo.User{ID: "U2147483697", Name: "jo"},
		ActionCallback: slackgo.ActionCallbacks{BlockActions: []*slackgo.BlockAction{
			{ActionID: actionID, BlockID: "b1", Value: value, Type: "button"},
		}},
	}
	payload, err := json.Marshal(&ic)
	if err != nil {
		t.Fatal(err)
	}
	return url.Values{"payload": {string(payload)}}
}

func TestInteractions(t *testing.T) {
	jo := Actor{UserID: "U2147483697", UserName: "jo", TeamID: "T0001", ChannelID: "C2147483705"}
	tests := []struct {
		name       string
		action     string
		value      string
		secret     string
		pagerErr   error
		noPager    bool
		wantStatus int
		wantPages  []pageCall
		wantRecord string // text of the one page_requested record; "" means none
		wantPost   string // in the response_url post; "" means no post
	}{
		{name: "page button pages once", action: "page", value: "inc-4f2a9c01de", wantStatus: http.StatusOK,
			wantPages:  []pageCall{{"inc-4f2a9c01de", jo}},
			wantRecord: "on-call paged from Slack at the request of @jo",
			wantPost:   "Paged on-call for inc-4f2a9c01de at the request of <@U2147483697>"},
		{name: "pager failure is reported", action: "page", value: "inc-4f2a9c01de", wantStatus: http.StatusOK,
			pagerErr:   errString("pagerduty routing key missing for edge-router"),
			wantPages:  []pageCall{{"inc-4f2a9c01de", jo}},
			wantRecord: "page requested from Slack by @jo failed: pagerduty routing key missing",
			wantPost:   "Could not page on-call for inc-4f2a9c01de: pagerduty routing key missing for edge-router"},
		{name: "no pager configured", action: "page", value: "inc-1", noPager: true, wantStatus: http.StatusOK,
			wantPost: "Paging from Slack is not configured"},
		{name: "page without incident id", action: "page", value: "", wantStatus: http.StatusOK,
			wantPost: "carries no incident id"},
		{name: "open evidence is acknowledged only", action: "open_evidence", wantStatus: http.StatusOK},
		{name: "unknown action is ignored", action: "snooze", value: "inc-1", wantStatus: http.StatusOK},
		{name: "forged click", action: "page", value: "inc-4f2a9c01de", secret: "forger", wantStatus: http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, func(c *Config) {
				if tc.noPager {
					c.Pager = nil
				}
			})
			h.pager.err = tc.pagerErr
			secret := testSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			w := serve(h.app.Interactions(), signed("/slack/interactions", h.clickForm(t, tc.action, tc.value), secret, friday))
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, w.Body, tc.wantStatus)
			}
			var posts []string
			if tc.wantPost != "" {
				for _, p := range h.fake.WaitPosts(t, 1) {
					if len(p.Problems) > 0 {
						t.Errorf("Slack would refuse the post: %v", p.Problems)
					}
					if p.Token != "click-1" {
						t.Errorf("posted to %q, want the callback's response url", p.Token)
					}
					posts = append(posts, p.Text)
				}
			}
			h.app.Wait()
			if tc.wantPost == "" {
				if n := len(h.fake.Posts()); n != 0 {
					t.Errorf("%d posts, want none", n)
				}
			} else if len(posts) != 1 || !strings.Contains(posts[0], tc.wantPost) {
				t.Errorf("posts %q, want one containing %q", posts, tc.wantPost)
			}
			got := h.pager.Calls()
			if len(got) != len(tc.wantPages) {
				t.Fatalf("pager calls %+v, want %+v", got, tc.wantPages)
			}
			for i := range got {
				if got[i] != tc.wantPages[i] {
					t.Errorf("pager call %d = %+v, want %+v", i, got[i], tc.wantPages[i])
				}
			}
			var recs []record
			for _, r := range h.recorder.Records() {
				if r.kind == EventPageRequested {
					recs = append(recs, r)
				}
			}
			switch {
			case tc.wantRecord == "" && len(recs) > 0:
				t.Errorf("records %+v, want none", recs)
			case tc.wantRecord != "" && (len(recs) != 1 || !strings.HasPrefix(recs[0].text, tc.wantRecord) || recs[0].by != jo || recs[0].incident != tc.value):
				t.Errorf("records %+v, want one for %s by %+v starting %q", recs, tc.value, jo, tc.wantRecord)
			}
		})
	}
}

func TestInteractionMalformedPayload(t *testing.T) {
	h := newHarness(t, nil)
	w := serve(h.app.Interactions(), signed("/slack/interactions", url.Values{"payload": {"{not json"}}, testSecret, friday))
	h.app.Wait()
	if w.Code != http.StatusBadRequest {
		t.Errorf("status %d, want 400", w.Code)
	}
	if n := len(h.pager.Calls()); n != 0 {
		t.Errorf("pager called %d times", n)
	}
}
