package slack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

func incidentMessage(t *testing.T, action string) escalate.Message {
	t.Helper()
	f := fridayFinding()
	in := escalate.Incident{ID: "inc-4f2a9c01de", Key: "culprit/edge-router/f-9c1d/dep-1a2b", Service: "edge-router",
		Signature: f.Signature, Kind: f.Kind, Status: escalate.StatusOpen, Action: escalate.ActionSlack,
		Severity: f.Severity, OpenedAt: f.Detected, Onset: f.Onset, LastSeen: f.Detected, Finding: &f}
	body, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	return escalate.Message{ID: 7, Channel: escalate.ChannelSlack, Action: action, IncidentID: in.ID, Key: in.Key,
		Service: in.Service, Body: body, CreatedAt: friday, NextAt: friday}
}

func TestNotifierDeliver(t *testing.T) {
	tests := []struct {
		name       string
		reply      slackfake.Reply
		token      string // the token the Notifier presents; default slackfake.BotToken
		msg        func(t *testing.T) escalate.Message
		wantRetry  bool
		wantErr    string // "" means delivered
		wantDelay  time.Duration
		wantPosted string // in the accepted post
	}{
		{name: "post renders the incident", wantPosted: "Page on-call"},
		{name: "resolve posts one line", msg: func(t *testing.T) escalate.Message { return incidentMessage(t, escalate.Resolve) },
			wantPosted: "Resolved: edge-router v3.8.0"},
		{name: "rate limited with Retry-After", reply: slackfake.TooManyRequests("30"),
			wantRetry: true, wantErr: "429 Too Many Requests: rate limited (retry after 30s)", wantDelay: 30 * time.Second},
		{name: "rate limited with an HTTP date", reply: slackfake.TooManyRequests(time.Now().Add(2 * time.Minute).UTC().Format(http.TimeFormat)),
			wantRetry: true, wantErr: "429 Too Many Requests", wantDelay: 2 * time.Minute},
		{name: "server error", reply: slackfake.ServerError(), wantRetry: true, wantErr: "500 Internal Server Error"},
		{name: "unavailable", reply: slackfake.Reply{Status: http.StatusServiceUnavailable}, wantRetry: true, wantErr: "503"},
		{name: "slack internal_error is transient", reply: slackfake.SlackError("internal_error"), wantRetry: true, wantErr: "internal_error"},
		{name: "channel not found is permanent", reply: slackfake.SlackError("channel_not_found"), wantErr: "channel_not_found"},
		{name: "wrong token is permanent", token: "xoxb-revoked-secret", wantErr: "invalid_auth"},
		{name: "bad request is permanent", reply: slackfake.Reply{Status: http.StatusBadRequest}, wantErr: "400 Bad Request"},
		{name: "unknown action is permanent", msg: func(t *testing.T) escalate.Message { return incidentMessage(t, escalate.ChangeEvent) },
			wantErr: `slack cannot deliver action "change"`},
		{name: "undecodable body is permanent", msg: func(t *testing.T) escalate.Message {
			m := incidentMessage(t, escalate.Post)
			m.Body = json.RawMessage(`{"id":`)
			return m
		}, wantErr: "decode queued incident inc-4f2a9c01de"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := slackfake.New(t)
			f.Script(tc.reply)
			token := slackfake.BotToken
			if tc.token != "" {
				token = tc.token
			}
			n, err := NewNotifier(NotifierConfig{Token: token, Channel: "C0SUPPORT", APIURL: f.APIURL(),
				PublicURL: "https://culprit.example.com/"})
			if err != nil {
				t.Fatal(err)
			}
			m := incidentMessage(t, escalate.Post)
			if tc.msg != nil {
				m = tc.msg(t)
			}
			retry, err := n.Deliver(context.Background(), m)
			if retry != tc.wantRetry {
				t.Errorf("retry = %v, want %v (err %v)", retry, tc.wantRetry, err)
			}
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Deliver: %v", err)
				}
				posts := f.Posts()
				if len(posts) != 1 || len(posts[0].Problems) > 0 || posts[0].Error != "" {
					t.Fatalf("posts %+v, want one accepted", posts)
				}
				p := posts[0]
				if p.Channel != "C0SUPPORT" || p.Token != slackfake.BotToken {
					t.Errorf("posted to %q with token %q", p.Channel, p.Token)
				}
				if !strings.Contains(p.Text+string(p.Blocks), tc.wantPosted) {
					t.Errorf("post lacks %q: %s %s", tc.wantPosted, p.Text, p.Blocks)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
			if strings.Contains(err.Error(), token) {
				t.Errorf("error leaks the token: %v", err)
			}
			var d interface{ RetryDelay() time.Duration }
			if tc.wantDelay > 0 {
				if !errors.As(err, &d) {
					t.Fatalf("error %T has no RetryDelay", err)
				}
				// An HTTP date has one-second resolution.
				if got := d.RetryDelay(); got < tc.wantDelay-2*time.Second || got > tc.wantDelay {
					t.Errorf("RetryDelay = %s, want about %s", got, tc.wantDelay)
				}
			}
		})
	}
}

func TestNotifierEvidenceLink(t *testing.T) {
	f := slackfake.New(t)
	n, err := NewNotifier(NotifierConfig{Token: slackfake.BotToken, Channel: "C0SUPPORT", APIURL: f.APIURL(),
		PublicURL: "https://culprit.example.com/",
		ChartURL:  func(in *escalate.Incident) string { return "https://culprit.example.com/charts/" + in.ID + ".png" }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.Deliver(context.Background(), incidentMessage(t, escalate.Post)); err != nil {
		t.Fatal(err)
	}
	blocks := string(f.Posts()[0].Blocks)
	for _, want := range []string{
		`"url":"https://culprit.example.com/incidents/inc-4f2a9c01de"`,
		`"image_url":"https://culprit.example.com/charts/inc-4f2a9c01de.png"`,
		`"value":"inc-4f2a9c01de"`,
	} {
		if !strings.Contains(blocks, want) {
			t.Errorf("blocks lack %s", want)
		}
	}
}

func TestNotifierNetworkErrors(t *testing.T) {
	tests := []struct {
		name string
		ctx  func() context.Context
		srv  func() string
	}{
		{name: "connection refused", ctx: context.Background, srv: func() string {
			s := httptest.NewServer(http.NotFoundHandler())
			s.Close()
			return s.URL + "/api/"
		}},
		{name: "cancelled", srv: func() string { return "http://127.0.0.1:1/api/" }, ctx: func() context.Context {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := NewNotifier(NotifierConfig{Token: "xoxb-secret", Channel: "C1", APIURL: tc.srv()})
			if err != nil {
				t.Fatal(err)
			}
			retry, err := n.Deliver(tc.ctx(), incidentMessage(t, escalate.Post))
			if !retry || err == nil {
				t.Fatalf("retry %v err %v, want a retryable error", retry, err)
			}
			if strings.Contains(err.Error(), "xoxb-secret") {
				t.Errorf("error leaks the token: %v", err)
			}
		})
	}
}

func TestNewNotifierValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  NotifierConfig
		want string
	}{
		{"no token", NotifierConfig{Channel: "C1"}, "Token is required"},
		{"bad api url", NotifierConfig{Token: "xoxb-1", Channel: "C1", APIURL: "slack.com/api"}, "APIURL must be an absolute http(s) URL"},
		{"credentials in api url", NotifierConfig{Token: "xoxb-1", Channel: "C1", APIURL: "https://u:p@slack.com/api/"}, "must not carry credentials"},
		{"bad public url", NotifierConfig{Token: "xoxb-1", Channel: "C1", PublicURL: "culprit.example.com"}, "PublicURL must be"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewNotifier(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want %q", err, tc.want)
			}
		})
	}
}

// TestNotifierRouteChannel: an incident decided by a route with its own
// channel (the support on-call's) is posted there, with its priority and
// customers; others go to the default channel.
func TestNotifierRouteChannel(t *testing.T) {
	for _, tc := range []struct{ route, want string }{{"vip", "C0VIPDESK"}, {"infra", "C0SUPPORT"}} {
		f := slackfake.New(t)
		n, err := NewNotifier(NotifierConfig{Token: slackfake.BotToken, Channel: "C0SUPPORT", APIURL: f.APIURL(),
			RouteChannel: func(r string) string {
				if r == "vip" {
					return "C0VIPDESK"
				}
				return ""
			}})
		if err != nil {
			t.Fatal(err)
		}
		fd := fridayFinding()
		fd.Priority = &correlate.PriorityLevel{Level: "P2", Why: "a top-tier or VIP customer is affected", Facts: "1 customer affected"}
		fd.Customers = &correlate.CustomerImpact{Summary: "1 enterprise customer: Acme Corp (enterprise)"}
		in := escalate.Incident{ID: "inc-1", Key: "k", Service: fd.Service, Route: tc.route, Finding: &fd}
		body, _ := json.Marshal(in)
		if _, err := n.Deliver(context.Background(), escalate.Message{ID: 1, Channel: escalate.ChannelSlack, Action: escalate.Post,
			IncidentID: in.ID, Key: in.Key, Service: in.Service, Body: body, CreatedAt: friday}); err != nil {
			t.Fatal(err)
		}
		posts := f.Posts()
		if len(posts) != 1 || posts[0].Channel != tc.want {
			t.Fatalf("route %s: posts %+v, want one to %s", tc.route, posts, tc.want)
		}
		for _, w := range []string{"*P2*", "1 enterprise customer: Acme Corp (enterprise)", "P2: a top-tier or VIP customer is affected"} {
			if !strings.Contains(string(posts[0].Blocks), w) {
				t.Errorf("post lacks %q: %s", w, posts[0].Blocks)
			}
		}
	}
}
