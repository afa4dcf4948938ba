package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	slackgo "github.com/slack-go/slack"
)

// Slack's response types: ephemeral replies are seen only by the person
// who asked.
const (
	responseEphemeral = "ephemeral"
	responseInChannel = "in_channel"
)

// reply is the immediate answer to a command: Slack shows it in place of
// a timeout when it arrives within 3 seconds.
type reply struct {
	ResponseType string `json:"response_type"`
	Text         string `json:"text"`
}

// Commands serves POST /slack/commands. Every request is verified first;
// a failed verification is a 401 with a short reason and starts nothing.
// Everything else is a 200, even bad arguments: Slack shows any 4xx as
// "failed with the error", while a usage reply tells the person what to
// fix.
func (a *App) Commands() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		form, ok := a.verified(w, r)
		if !ok {
			return
		}
		cmd := slashFromForm(form)
		rep, run := a.command(cmd)
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		if err := json.NewEncoder(w).Encode(rep); err != nil {
			a.log.Warn("slack: write command reply failed", "err", err)
		}
		// The ack must be on its way before the work can post anything.
		_ = http.NewResponseController(w).Flush()
		if run != nil {
			run()
		}
	})
}

// verified reads, bounds and verifies a request, answering it when it
// fails. The returned form is the verified body, parsed.
func (a *App) verified(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return nil, false
	}
	body, err := a.verify.readAndVerify(r)
	switch {
	case errors.Is(err, errTooLarge):
		http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		return nil, false
	case errors.Is(err, errReplayUnknown):
		a.log.Error("slack: cannot check for replay", "path", r.URL.Path, "err", err)
		http.Error(w, errReplayUnknown.Error(), http.StatusServiceUnavailable)
		return nil, false
	case err != nil:
		a.log.Warn("slack: rejected request", "path", r.URL.Path, "remote", r.RemoteAddr, "reason", err)
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return nil, false
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		http.Error(w, "malformed form body", http.StatusBadRequest)
		return nil, false
	}
	return form, true
}

func slashFromForm(v url.Values) slackgo.SlashCommand {
	return slackgo.SlashCommand{
		TeamID:      v.Get("team_id"),
		TeamDomain:  v.Get("team_domain"),
		ChannelID:   v.Get("channel_id"),
		ChannelName: v.Get("channel_name"),
		UserID:      v.Get("user_id"),
		UserName:    v.Get("user_name"),
		Command:     v.Get("command"),
		Text:        v.Get("text"),
		ResponseURL: v.Get("response_url"),
		TriggerID:   v.Get("trigger_id"),
		APIAppID:    v.Get("api_app_id"),
	}
}

// command decides the immediate reply to a verified command. When the
// command starts a correlation, run launches it; call it after the reply
// is sent.
func (a *App) command(cmd slackgo.SlashCommand) (rep reply, run func()) {
	name := cmd.Command
	if name == "" {
		name = "/correlate"
	}
	usage := func(s string) string { return strings.Replace(s, "/correlate", name, -1) }
	q, err := ParseQuery(cmd.Text, a.cfg.Now())
	var ue *UsageError
	switch {
	case errors.Is(err, errHelp):
		return reply{ResponseType: responseEphemeral, Text: usage(helpText)}, nil
	case errors.As(err, &ue):
		return reply{ResponseType: responseEphemeral, Text: usage(ue.Error())}, nil
	case err != nil:
		return reply{ResponseType: responseEphemeral, Text: usage(err.Error() + "; " + Usage)}, nil
	}
	if cmd.ResponseURL == "" {
		return reply{ResponseType: responseEphemeral, Text: "Slack sent no response_url, so there is nowhere to answer; please try again."}, nil
	}
	j, err := a.reserve(true)
	switch {
	case errors.Is(err, errClosed):
		return reply{ResponseType: responseEphemeral, Text: "culprit is restarting; please ask again in a minute."}, nil
	case errors.Is(err, errBusy):
		return reply{ResponseType: responseEphemeral,
			Text: fmt.Sprintf("culprit is already answering %d questions; please ask again in a minute.", cap(a.sem))}, nil
	}
	rep = reply{ResponseType: responseEphemeral, Text: "Correlating " + describe(q) + "…"}
	return rep, func() { j.start(func(ctx context.Context) { a.answer(ctx, cmd, q) }) }
}

// answer runs one correlation and posts the result to the command's
// response URL.
func (a *App) answer(ctx context.Context, cmd slackgo.SlashCommand, q Query) {
	by := actorOfCommand(cmd)
	asked := clip(strings.TrimSpace(cmd.Command+" "+cmd.Text), 500)
	log := a.log.With("user", cmd.UserID, "channel", cmd.ChannelID, "query", asked)
	a.record(ctx, "", EventQuery, asked, by)

	cctx, cancel := context.WithTimeout(ctx, a.cfg.CorrelateTimeout)
	ans, err := a.cfg.Correlator.Correlate(cctx, q)
	timedOut := cctx.Err() != nil && ctx.Err() == nil
	cancel()

	var msg *slackgo.WebhookMessage
	postCtx := ctx
	switch {
	case ctx.Err() != nil:
		// Shutting down: say so rather than leave "Correlating…"
		// hanging, with a short grace that outlives the cancelled ctx.
		var stop context.CancelFunc
		postCtx, stop = context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		msg = a.textMessage(":warning: Interrupted: culprit is restarting. Please ask again in a minute.")
	case err != nil && timedOut:
		log.Warn("slack: correlation timed out", "after", a.cfg.CorrelateTimeout)
		msg = a.textMessage(fmt.Sprintf(":warning: The correlation took longer than %s and was stopped. Try a shorter range or a single service.", fmtDuration(a.cfg.CorrelateTimeout)))
	case err != nil:
		log.Warn("slack: correlation failed", "err", err)
		msg = a.textMessage(":x: Could not correlate: " + escape(clip(err.Error(), maxErrorText)))
	default:
		msg = a.answerMessage(ans)
		for _, it := range ans.Items {
			if it.IncidentID != "" {
				a.record(ctx, it.IncidentID, EventQuery, asked+" (shown in the answer)", by)
			}
		}
	}
	if err := a.post.post(postCtx, cmd.ResponseURL, msg); err != nil {
		log.Error("slack: could not deliver the answer", "err", err)
	}
}

func (a *App) responseType() string {
	if a.cfg.InChannel {
		return responseInChannel
	}
	return responseEphemeral
}

func (a *App) answerMessage(ans Answer) *slackgo.WebhookMessage {
	return &slackgo.WebhookMessage{
		ResponseType: a.responseType(),
		Text:         FallbackText(ans),
		Blocks:       &slackgo.Blocks{BlockSet: Blocks(ans)},
	}
}

// textMessage is a plain reply (errors, page confirmations). Errors go
// only to the person who asked, whatever InChannel says.
func (a *App) textMessage(text string) *slackgo.WebhookMessage {
	return &slackgo.WebhookMessage{ResponseType: responseEphemeral, Text: clipMrkdwn(text, MaxFallbackText)}
}

// describe restates the query in the ack, so a misread argument shows at
// once rather than after the correlation.
func describe(q Query) string {
	var b strings.Builder
	if q.Service != "" {
		b.WriteString(q.Service)
	} else {
		b.WriteString("all services")
	}
	if q.Since > 0 {
		b.WriteString(" over the last " + fmtDuration(q.Since))
	} else {
		fmt.Fprintf(&b, " from %s to %s", q.From.UTC().Format("2006-01-02 15:04"), q.To.UTC().Format("2006-01-02 15:04 UTC"))
	}
	if q.Text != "" {
		fmt.Fprintf(&b, ", errors matching “%s”", escape(clip(q.Text, 200)))
	}
	if q.Customer != "" {
		b.WriteString(", customer " + escape(q.Customer))
	}
	return b.String()
}

func actorOfCommand(cmd slackgo.SlashCommand) Actor {
	return Actor{UserID: cmd.UserID, UserName: cmd.UserName, TeamID: cmd.TeamID, ChannelID: cmd.ChannelID}
}
