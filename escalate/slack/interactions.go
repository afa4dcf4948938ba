package slack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	slackgo "github.com/slack-go/slack"
)

// pageTimeout bounds one Pager call: the button's answer should come
// while the person is still looking.
const pageTimeout = 30 * time.Second

// Interactions serves POST /slack/interactions: the buttons on answers.
// Requests are verified like commands (401 and nothing done on failure),
// then acknowledged with an empty 200 at once; a page request runs in the
// background and its outcome is posted to the callback's response URL.
func (a *App) Interactions() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := a.verified(w, r)
		if !ok {
			return
		}
		var ic slackgo.InteractionCallback
		if err := json.Unmarshal([]byte(form.Get("payload")), &ic); err != nil {
			http.Error(w, "malformed interaction payload", http.StatusBadRequest)
			return
		}
		run := a.interaction(ic)
		w.WriteHeader(http.StatusOK)
		_ = http.NewResponseController(w).Flush()
		if run != nil {
			run()
		}
	})
}

// interaction handles a verified callback. When a click starts work, run
// launches it; call it after the acknowledgement is sent.
func (a *App) interaction(ic slackgo.InteractionCallback) (run func()) {
	if ic.Type != slackgo.InteractionTypeBlockActions {
		a.log.Info("slack: ignored interaction", "type", ic.Type)
		return nil
	}
	by := Actor{UserID: ic.User.ID, UserName: ic.User.Name, TeamID: ic.Team.ID, ChannelID: ic.Channel.ID}
	var pages []string
	for _, act := range ic.ActionCallback.BlockActions {
		if act == nil {
			continue
		}
		switch act.ActionID {
		case ActionPage:
			pages = append(pages, act.Value)
		case ActionOpenEvidence:
			// A URL button: Slack opens the link itself and only tells us.
		default:
			a.log.Info("slack: ignored action", "action_id", act.ActionID, "user", by.UserID)
		}
	}
	if len(pages) == 0 {
		return nil
	}
	j, err := a.reserve(false)
	if err != nil {
		// Shutting down: the click is lost, but say so where we can.
		a.log.Warn("slack: page request refused while shutting down", "user", by.UserID)
		return nil
	}
	return func() {
		j.start(func(ctx context.Context) {
			for _, id := range pages {
				a.page(ctx, ic.ResponseURL, id, by)
			}
		})
	}
}

// page asks the Pager for on-call, records the request on the incident's
// timeline, and tells the person what happened.
func (a *App) page(ctx context.Context, responseURL, incidentID string, by Actor) {
	log := a.log.With("incident", incidentID, "user", by.UserID, "channel", by.ChannelID)
	var text string
	rt := responseEphemeral // failures concern only the person who clicked
	switch {
	case incidentID == "" || len(incidentID) > MaxButtonValue:
		text = ":x: This button carries no incident id; nothing was paged."
	case a.cfg.Pager == nil:
		text = ":x: Paging from Slack is not configured for culprit; nothing was paged."
	default:
		pctx, cancel := context.WithTimeout(ctx, pageTimeout)
		err := a.cfg.Pager.Page(pctx, incidentID, by)
		cancel()
		if err != nil {
			log.Error("slack: page request failed", "err", err)
			a.record(ctx, incidentID, EventPageRequested, "page requested from Slack by "+who(by)+" failed: "+err.Error(), by)
			text = fmt.Sprintf(":x: Could not page on-call for %s: %s", escape(incidentID), escape(clip(err.Error(), maxErrorText)))
		} else {
			log.Info("slack: paged on-call")
			a.record(ctx, incidentID, EventPageRequested, "on-call paged from Slack at the request of "+who(by), by)
			text = fmt.Sprintf(":rotating_light: Paged on-call for %s at the request of %s", escape(incidentID), mention(by))
			rt = a.responseType()
		}
	}
	msg := &slackgo.WebhookMessage{ResponseType: rt, Text: text}
	postCtx := ctx
	if ctx.Err() != nil {
		var stop context.CancelFunc
		postCtx, stop = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
	}
	if err := a.post.post(postCtx, responseURL, msg); err != nil {
		log.Error("slack: could not deliver the page outcome", "err", err)
	}
}

// mention links the user when the id looks like a Slack id; anything else
// is shown as plain text, never as mrkdwn control syntax.
func mention(by Actor) string {
	if isSlackID(by.UserID) {
		return "<@" + by.UserID + ">"
	}
	return escape(who(by))
}

func who(by Actor) string {
	switch {
	case by.UserName != "":
		return "@" + by.UserName
	case by.UserID != "":
		return by.UserID
	}
	return "someone"
}

func isSlackID(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, r := range s {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
