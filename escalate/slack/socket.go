package slack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// SocketOption tunes RunSocketMode.
type SocketOption func(*socketConfig)

type socketConfig struct {
	apiURL string
}

// WithAPIURL points Socket Mode at another Web API base (a test fake);
// the default is DefaultAPIURL.
func WithAPIURL(u string) SocketOption {
	return func(c *socketConfig) { c.apiURL = u }
}

// RunSocketMode receives commands and button clicks over Slack's Socket
// Mode instead of HTTP, for installations that cannot expose a public
// endpoint. The socket is authenticated by the app-level token (xapp-…,
// connections:write), so requests carry no signature to verify; they reach
// the same logic as Commands and Interactions, are acknowledged over the
// socket, and answered through their response URLs. botToken is the bot
// token the Web API client carries.
//
// It blocks until ctx ends (returning nil) or the connection fails for
// good: an invalid token, or a reconnection that fails. Work already
// started keeps running; wait for it with Shutdown.
func (a *App) RunSocketMode(ctx context.Context, appToken, botToken string, opts ...SocketOption) error {
	if !strings.HasPrefix(appToken, "xapp-") {
		return errors.New("socket mode: the app-level token must start with xapp-")
	}
	cfg := socketConfig{apiURL: DefaultAPIURL}
	for _, o := range opts {
		o(&cfg)
	}
	if !strings.HasSuffix(cfg.apiURL, "/") {
		cfg.apiURL += "/"
	}
	api := slackgo.New(botToken, slackgo.OptionAppLevelToken(appToken), slackgo.OptionAPIURL(cfg.apiURL))
	client := socketmode.New(api)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- client.RunContext(ctx) }()
	ack := func(req socketmode.Request, payload any) error {
		return client.AckCtx(ctx, req.EnvelopeID, payload)
	}
	for {
		select {
		case <-ctx.Done():
			<-runErr
			return nil
		case err := <-runErr:
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("socket mode: %s", redactTokens(err.Error(), appToken, botToken))
		case evt := <-client.Events:
			if err := a.routeSocketEvent(evt, ack); err != nil {
				cancel()
				<-runErr
				return err
			}
		}
	}
}

// routeSocketEvent hands one Socket Mode event to the core logic. Commands
// are acknowledged with the same reply the HTTP endpoint gives (Slack shows
// an ack payload as the command's response), clicks with an empty ack; the
// work starts only after the ack is sent. It returns an error only when the
// connection cannot work at all.
func (a *App) routeSocketEvent(evt socketmode.Event, ack func(req socketmode.Request, payload any) error) error {
	switch evt.Type {
	case socketmode.EventTypeSlashCommand:
		cmd, ok := evt.Data.(slackgo.SlashCommand)
		if !ok || evt.Request == nil {
			a.log.Warn("slack: malformed socket mode command", "data", fmt.Sprintf("%T", evt.Data))
			return nil
		}
		rep, run := a.command(cmd)
		if err := ack(*evt.Request, rep); err != nil {
			a.log.Warn("slack: socket mode ack failed", "err", err)
		}
		if run != nil {
			run()
		}
	case socketmode.EventTypeInteractive:
		ic, ok := evt.Data.(slackgo.InteractionCallback)
		if !ok || evt.Request == nil {
			a.log.Warn("slack: malformed socket mode interaction", "data", fmt.Sprintf("%T", evt.Data))
			return nil
		}
		run := a.interaction(ic)
		if err := ack(*evt.Request, nil); err != nil {
			a.log.Warn("slack: socket mode ack failed", "err", err)
		}
		if run != nil {
			run()
		}
	case socketmode.EventTypeEventsAPI:
		// culprit subscribes to no events; acknowledging stops Slack
		// from retrying one that was enabled by mistake.
		if evt.Request != nil {
			_ = ack(*evt.Request, nil)
		}
	case socketmode.EventTypeInvalidAuth:
		return errors.New("socket mode: Slack refused the app-level token (invalid_auth)")
	case socketmode.EventTypeConnecting, socketmode.EventTypeConnected, socketmode.EventTypeHello:
		a.log.Debug("slack: socket mode", "event", evt.Type)
	case socketmode.EventTypeDisconnect:
		a.log.Info("slack: socket mode disconnect requested, reconnecting")
	case socketmode.EventTypeConnectionError, socketmode.EventTypeIncomingError, socketmode.EventTypeErrorBadMessage, socketmode.EventTypeErrorWriteFailed:
		// The socket URL's query is a connection ticket: keep it out.
		a.log.Warn("slack: socket mode trouble", "event", evt.Type, "detail", urlQuery.ReplaceAllString(fmt.Sprint(evt.Data), "?…"))
	default:
		a.log.Debug("slack: socket mode event ignored", "event", evt.Type)
	}
	return nil
}

var urlQuery = regexp.MustCompile(`\?[^\s"']*`)

func redactTokens(s string, tokens ...string) string {
	for _, t := range tokens {
		if t != "" {
			s = strings.ReplaceAll(s, t, "<token>")
		}
	}
	return s
}
