package slack

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	slackgo "github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestRouteSocketEvent(t *testing.T) {
	type acked struct {
		envelope string
		payload  any
	}
	tests := []struct {
		name      string
		evt       func(h *harness) socketmode.Event
		wantAck   string // ack payload text; "-" means an empty ack; "" means no ack
		wantCorr  int
		wantPages int
		wantErr   bool
	}{
		{name: "slash command is acked with the reply, then correlated", wantAck: "Correlating edge-router", wantCorr: 1,
			evt: func(h *harness) socketmode.Event {
				return socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: slashFromForm(h.commandForm("edge-router")),
					Request: &socketmode.Request{Type: "slash_commands", EnvelopeID: "e1"}}
			}},
		{name: "bad arguments are acked with usage", wantAck: `unknown argument "sinse=1h"`,
			evt: func(h *harness) socketmode.Event {
				return socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: slashFromForm(h.commandForm("sinse=1h")),
					Request: &socketmode.Request{Type: "slash_commands", EnvelopeID: "e1"}}
			}},
		{name: "page click is acked empty, then paged", wantAck: "-", wantPages: 1,
			evt: func(h *harness) socketmode.Event {
				return socketmode.Event{Type: socketmode.EventTypeInteractive, Data: slackgo.InteractionCallback{
					Type: slackgo.InteractionTypeBlockActions, ResponseURL: h.fake.ResponseURL("click"),
					User:           slackgo.User{ID: "U1", Name: "jo"},
					ActionCallback: slackgo.ActionCallbacks{BlockActions: []*slackgo.BlockAction{{ActionID: ActionPage, Value: "inc-1"}}},
				}, Request: &socketmode.Request{Type: "interactive", EnvelopeID: "e2"}}
			}},
		{name: "events are acked and ignored", wantAck: "-",
			evt: func(*harness) socketmode.Event {
				return socketmode.Event{Type: socketmode.EventTypeEventsAPI, Request: &socketmode.Request{Type: "events_api", EnvelopeID: "e3"}}
			}},
		{name: "command without its envelope is dropped",
			evt: func(h *harness) socketmode.Event {
				return socketmode.Event{Type: socketmode.EventTypeSlashCommand, Data: slashFromForm(h.commandForm("edge-router"))}
			}},
		{name: "invalid auth stops the loop", wantErr: true,
			evt: func(*harness) socketmode.Event { return socketmode.Event{Type: socketmode.EventTypeInvalidAuth} }},
		{name: "connection events are only logged",
			evt: func(*harness) socketmode.Event { return socketmode.Event{Type: socketmode.EventTypeConnected} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			var acks []acked
			err := h.app.routeSocketEvent(tc.evt(h), func(req socketmode.Request, payload any) error {
				// Nothing may have started before the ack.
				if n := len(h.corr.Calls()) + len(h.pager.Calls()); n != 0 {
					t.Errorf("work started before the ack")
				}
				acks = append(acks, acked{req.EnvelopeID, payload})
				return nil
			})
			h.app.Wait()
			if (err != nil) != tc.wantErr {
				t.Fatalf("error = %v, want error %v", err, tc.wantErr)
			}
			switch {
			case tc.wantAck == "" && len(acks) > 0:
				t.Errorf("acks %+v, want none", acks)
			case tc.wantAck == "-" && (len(acks) != 1 || acks[0].payload != nil):
				t.Errorf("acks %+v, want one empty", acks)
			case tc.wantAck != "" && tc.wantAck != "-":
				if len(acks) != 1 {
					t.Fatalf("acks %+v, want one", acks)
				}
				rep, _ := acks[0].payload.(reply)
				if !strings.Contains(rep.Text, tc.wantAck) {
					t.Errorf("ack payload %+v, want text containing %q", acks[0].payload, tc.wantAck)
				}
			}
			if n := len(h.corr.Calls()); n != tc.wantCorr {
				t.Errorf("correlator called %d times, want %d", n, tc.wantCorr)
			}
			if n := len(h.pager.Calls()); n != tc.wantPages {
				t.Errorf("pager called %d times, want %d", n, tc.wantPages)
			}
		})
	}
}

// socketFake is a minimal Socket Mode server: apps.connections.open and a
// websocket that sends what the test queues and returns what it reads.
type socketFake struct {
	t        *testing.T
	srv      *httptest.Server
	send     chan any
	received chan map[string]any
}

func newSocketFake(t *testing.T, appToken string) *socketFake {
	f := &socketFake{t: t, send: make(chan any, 4), received: make(chan map[string]any, 4)}
	// The client sends Origin: https://api.slack.com, as Slack expects.
	up := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return r.Header.Get("Origin") == "https://api.slack.com" }}
	mux := http.NewServeMux()
	mux.HandleFunc("/api/apps.connections.open", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+appToken {
			_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": "invalid_auth"})
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "url": "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/link"})
	})
	mux.HandleFunc("/link", func(w http.ResponseWriter, r *http.Request) {
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.WriteJSON(map[string]any{"type": "hello", "num_connections": 1})
		go func() {
			for {
				var m map[string]any
				if err := conn.ReadJSON(&m); err != nil {
					return
				}
				f.received <- m
			}
		}()
		for {
			select {
			case m := <-f.send:
				if err := conn.WriteJSON(m); err != nil {
					return
				}
			case <-r.Context().Done():
				return
			}
		}
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *socketFake) ack(t *testing.T) map[string]any {
	t.Helper()
	select {
	case m := <-f.received:
		return m
	case <-time.After(10 * time.Second):
		t.Fatal("no ack over the socket within 10s")
		return nil
	}
}

func TestRunSocketModeEndToEnd(t *testing.T) {
	h := newHarness(t, nil)
	f := newSocketFake(t, "xapp-1-test")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.app.RunSocketMode(ctx, "xapp-1-test", "xoxb-test", WithAPIURL(f.srv.URL+"/api/")) }()

	cmd := map[string]any{}
	for k, v := range h.commandForm("edge-router since=6h") {
		cmd[k] = v[0]
	}
	f.send <- map[string]any{"envelope_id": "env-cmd", "type": "slash_commands", "payload": cmd, "accepts_response_payload": true}
	a := f.ack(t)
	payload, _ := a["payload"].(map[string]any)
	if a["envelope_id"] != "env-cmd" || !strings.HasPrefix(payload["text"].(string), "Correlating edge-router over the last 6h") {
		t.Errorf("command ack = %v", a)
	}

	click := map[string]any{
		"type": "block_actions", "response_url": h.fake.ResponseURL("click"),
		"user": map[string]any{"id": "U1", "name": "jo"}, "team": map[string]any{"id": "T1"}, "channel": map[string]any{"id": "C1"},
		"actions": []any{map[string]any{"type": "button", "block_id": "Xy1", "action_id": "page", "value": "inc-4f2a9c01de"}},
	}
	f.send <- map[string]any{"envelope_id": "env-click", "type": "interactive", "payload": click}
	if a := f.ack(t); a["envelope_id"] != "env-click" {
		t.Errorf("click ack = %v", a)
	}

	posts := h.fake.WaitPosts(t, 2)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunSocketMode = %v, want nil after cancellation", err)
	}
	h.app.Wait()
	byToken := map[string]string{}
	for _, p := range posts {
		if len(p.Problems) > 0 {
			t.Errorf("post %d: %v", p.Seq, p.Problems)
		}
		byToken[p.Token] = p.Text
	}
	if !strings.Contains(byToken["cmd-1"], "edge-router v3.8.0") {
		t.Errorf("answer post %q", byToken["cmd-1"])
	}
	if !strings.Contains(byToken["click"], "Paged on-call for inc-4f2a9c01de at the request of <@U1>") {
		t.Errorf("page post %q", byToken["click"])
	}
	if got := h.pager.Calls(); len(got) != 1 || got[0].by != (Actor{UserID: "U1", UserName: "jo", TeamID: "T1", ChannelID: "C1"}) {
		t.Errorf("pager calls %+v", got)
	}
}

func TestRunSocketModeRefusesBadToken(t *testing.T) {
	h := newHarness(t, nil)
	f := newSocketFake(t, "xapp-1-right")
	err := h.app.RunSocketMode(context.Background(), "xapp-1-wrong", "xoxb-test", WithAPIURL(f.srv.URL+"/api/"))
	if err == nil || strings.Contains(err.Error(), "xapp-1-wrong") {
		t.Errorf("error = %v, want a refusal that does not repeat the token", err)
	}
	if err := h.app.RunSocketMode(context.Background(), "xoxb-not-an-app-token", "xoxb-test"); err == nil {
		t.Errorf("a bot token was accepted as the app-level token")
	}
}
