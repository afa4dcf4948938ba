package slack

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/escalate/slack/slackfake"
)

func TestCommandsVerification(t *testing.T) {
	tests := []struct {
		name       string
		req        func(h *harness) *http.Request
		sendTwice  bool // the second, identical request is the one judged
		wantStatus int
		wantReason string
	}{
		{name: "valid signature", wantStatus: http.StatusOK,
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm("edge-router"), testSecret, friday)
			}},
		{name: "valid at the edge of the window", wantStatus: http.StatusOK,
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm("edge-router"), testSecret, friday.Add(-MaxSkew))
			}},
		{name: "forged with another secret", wantStatus: http.StatusUnauthorized, wantReason: "invalid signature",
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm("edge-router"), "not-the-secret", friday)
			}},
		{name: "body tampered after signing", wantStatus: http.StatusUnauthorized, wantReason: "invalid signature",
			req: func(h *harness) *http.Request {
				r := signed("/slack/commands", h.commandForm("edge-router"), testSecret, friday)
				r.Body = io.NopCloser(strings.NewReader(h.commandForm("api").Encode()))
				return r
			}},
		{name: "signature not v0", wantStatus: http.StatusUnauthorized, wantReason: "invalid signature",
			req: func(h *harness) *http.Request {
				r := signed("/slack/commands", h.commandForm(""), testSecret, friday)
				r.Header.Set("X-Slack-Signature", strings.Replace(r.Header.Get("X-Slack-Signature"), "v0=", "v1=", 1))
				return r
			}},
		{name: "missing headers", wantStatus: http.StatusUnauthorized, wantReason: "missing slack signature headers",
			req: func(h *harness) *http.Request {
				return httptest.NewRequest(http.MethodPost, "/slack/commands", strings.NewReader(h.commandForm("").Encode()))
			}},
		{name: "missing timestamp", wantStatus: http.StatusUnauthorized, wantReason: "missing slack signature headers",
			req: func(h *harness) *http.Request {
				r := signed("/slack/commands", h.commandForm(""), testSecret, friday)
				r.Header.Del("X-Slack-Request-Timestamp")
				return r
			}},
		{name: "malformed timestamp", wantStatus: http.StatusUnauthorized, wantReason: "malformed request timestamp",
			req: func(h *harness) *http.Request {
				r := signed("/slack/commands", h.commandForm(""), testSecret, friday)
				r.Header.Set("X-Slack-Request-Timestamp", "yesterday")
				return r
			}},
		{name: "expired", wantStatus: http.StatusUnauthorized, wantReason: "outside the 5 minute window",
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm(""), testSecret, friday.Add(-MaxSkew-time.Second))
			}},
		{name: "from the future", wantStatus: http.StatusUnauthorized, wantReason: "outside the 5 minute window",
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm(""), testSecret, friday.Add(MaxSkew+time.Second))
			}},
		{name: "replayed", sendTwice: true, wantStatus: http.StatusUnauthorized, wantReason: "replayed request",
			req: func(h *harness) *http.Request {
				return signed("/slack/commands", h.commandForm(""), testSecret, friday)
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			if tc.sendTwice {
				first := serve(h.app.Commands(), tc.req(h))
				if first.Code != http.StatusOK {
					t.Fatalf("first request: %d %s", first.Code, first.Body)
				}
				h.app.Wait()
			}
			calls := len(h.corr.Calls())
			w := serve(h.app.Commands(), tc.req(h))
			h.app.Wait()
			if w.Code != tc.wantStatus {
				t.Fatalf("status %d (%s), want %d", w.Code, strings.TrimSpace(w.Body.String()), tc.wantStatus)
			}
			gotCalls := len(h.corr.Calls()) - calls
			if tc.wantStatus != http.StatusOK {
				if !strings.Contains(w.Body.String(), tc.wantReason) {
					t.Errorf("body %q does not say %q", w.Body, tc.wantReason)
				}
				if gotCalls != 0 {
					t.Errorf("correlator called %d times for a rejected request", gotCalls)
				}
				return
			}
			if gotCalls != 1 {
				t.Errorf("correlator called %d times, want 1", gotCalls)
			}
		})
	}
}

func TestReplaySetForgetsExpiredEntries(t *testing.T) {
	now := friday
	v := newVerifier(testSecret, func() time.Time { return now }, nil)
	body := []byte("text=x")
	h := slackfake.Sign(testSecret, friday, body)
	if err := v.verify(context.Background(), h, body); err != nil {
		t.Fatalf("first: %v", err)
	}
	// A fresh request later evicts the old entry once its window is over;
	// the old one is then refused as expired, never accepted again.
	now = friday.Add(MaxSkew + time.Minute)
	if err := v.verify(context.Background(), slackfake.Sign(testSecret, now, body), body); err != nil {
		t.Fatalf("second: %v", err)
	}
	if len(v.seen) != 1 {
		t.Errorf("replay set holds %d entries, want 1 (the expired one dropped)", len(v.seen))
	}
	if err := v.verify(context.Background(), h, body); err != errExpired {
		t.Errorf("old request again: %v, want errExpired", err)
	}
}

func TestCommandAckPrecedesSlowCorrelation(t *testing.T) {
	h := newHarness(t, nil)
	h.corr.release = make(chan struct{})
	h.corr.started = make(chan struct{}, 1)
	srv := httptest.NewServer(h.app.Commands())
	defer srv.Close()

	r := signed(srv.URL+"/slack/commands", h.commandForm("edge-router since=6h"), testSecret, friday)
	r.RequestURI = ""
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second) // Slack's limit
	defer cancel()
	resp, err := http.DefaultClient.Do(r.WithContext(ctx))
	if err != nil {
		close(h.corr.release)
		t.Fatalf("no ack within Slack's 3 seconds: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	// The ack is in hand; only now may the correlation finish.
	select {
	case <-h.corr.started:
	case <-time.After(10 * time.Second):
		t.Fatal("correlation never started")
	}
	if n := len(h.fake.Posts()); n != 0 {
		t.Errorf("%d posts before the correlation finished", n)
	}
	close(h.corr.release)

	var ack struct {
		ResponseType string `json:"response_type"`
		Text         string `json:"text"`
	}
	if err := json.Unmarshal(body, &ack); err != nil {
		t.Fatalf("ack %q: %v", body, err)
	}
	if ack.ResponseType != "ephemeral" || !strings.HasPrefix(ack.Text, "Correlating edge-router over the last 6h") {
		t.Errorf("ack = %+v", ack)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("ack content type %q", ct)
	}

	posts := h.fake.WaitPosts(t, 1)
	h.app.Wait()
	p := posts[0]
	if p.Token != "cmd-1" || p.Status != http.StatusOK || len(p.Problems) > 0 {
		t.Fatalf("post = token %q status %d problems %v", p.Token, p.Status, p.Problems)
	}
	if p.ResponseType != "ephemeral" || !strings.Contains(string(p.Blocks), "edge-router v3.8.0") {
		t.Errorf("answer post: response_type %q, blocks %s", p.ResponseType, p.Blocks)
	}
	if q := h.corr.Calls()[0]; q.Service != "edge-router" || q.Since != 6*time.Hour {
		t.Errorf("correlator asked %+v", q)
	}
	ctxs := h.corr.ctxs
	if ctxs[0].Err() == nil {
		t.Errorf("the correlation context outlived its correlation")
	}
}

func TestCommandRepliesWithUsage(t *testing.T) {
	tests := []struct {
		name string
		text string
		want []string
	}{
		{"misspelt since", "edge-router sinse=2h", []string{`unknown argument "sinse=2h"`, "usage: /correlate"}},
		{"bad duration", "since=forever", []string{`bad duration in "since=forever"`, "usage: /correlate"}},
		{"bad range", "18:00..17:00", []string{`bad time range "18:00..17:00"`}},
		{"open quote", `"timeout`, []string{`unterminated quote in "\"timeout"`}},
		{"help", "help", []string{"usage: /correlate", "Examples:", "/correlate edge-router since=6h"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			w := serve(h.app.Commands(), signed("/slack/commands", h.commandForm(tc.text), testSecret, friday))
			h.app.Wait()
			if w.Code != http.StatusOK {
				t.Fatalf("status %d, want 200: Slack shows 4xx as a failure", w.Code)
			}
			var rep reply
			if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.ResponseType != "ephemeral" {
				t.Errorf("response_type %q", rep.ResponseType)
			}
			for _, want := range tc.want {
				if !strings.Contains(rep.Text, want) {
					t.Errorf("reply %q does not contain %q", rep.Text, want)
				}
			}
			if n := len(h.corr.Calls()); n != 0 {
				t.Errorf("correlator called %d times", n)
			}
			if n := len(h.fake.Posts()); n != 0 {
				t.Errorf("%d posts for a usage reply", n)
			}
		})
	}
}

func TestCommandOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		edit     func(*Config)
		corr     func(*fakeCorrelator)
		wantType string
		want     string // in the posted text or blocks
	}{
		{name: "answer ephemeral by default", wantType: "ephemeral", want: "Page on-call"},
		{name: "answer in channel when configured", edit: func(c *Config) { c.InChannel = true }, wantType: "in_channel", want: "Page on-call"},
		{name: "correlator error", wantType: "ephemeral", want: "Could not correlate: elasticsearch http://es:9200 unreachable",
			corr: func(c *fakeCorrelator) { c.err = errString("elasticsearch http://es:9200 unreachable") }},
		{name: "correlator timeout", wantType: "ephemeral", want: "took longer than 1ns and was stopped",
			edit: func(c *Config) { c.CorrelateTimeout = time.Nanosecond },
			corr: func(c *fakeCorrelator) { c.release = make(chan struct{}) }},
		{name: "nothing found", wantType: "ephemeral", want: "nothing changed",
			corr: func(c *fakeCorrelator) { c.answer = Answer{Headline: "nothing changed for edge-router in the last 2h"} }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, tc.edit)
			if tc.corr != nil {
				tc.corr(h.corr)
			}
			w := serve(h.app.Commands(), signed("/slack/commands", h.commandForm("edge-router"), testSecret, friday))
			if w.Code != http.StatusOK {
				t.Fatalf("status %d", w.Code)
			}
			posts := h.fake.WaitPosts(t, 1)
			h.app.Wait()
			p := posts[0]
			if len(p.Problems) > 0 {
				t.Fatalf("Slack would refuse the post: %v", p.Problems)
			}
			if p.ResponseType != tc.wantType {
				t.Errorf("response_type %q, want %q", p.ResponseType, tc.wantType)
			}
			if !strings.Contains(p.Text+string(p.Blocks), tc.want) {
				t.Errorf("post does not contain %q:\ntext %s\nblocks %s", tc.want, p.Text, p.Blocks)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestCommandIsRecorded(t *testing.T) {
	h := newHarness(t, nil)
	serve(h.app.Commands(), signed("/slack/commands", h.commandForm("edge-router since=6h"), testSecret, friday))
	h.fake.WaitPosts(t, 1)
	h.app.Wait()
	jo := Actor{UserID: "U2147483697", UserName: "jo", TeamID: "T0001", ChannelID: "C2147483705"}
	want := []record{
		{"", EventQuery, "/correlate edge-router since=6h", jo},
		{"inc-4f2a9c01de", EventQuery, "/correlate edge-router since=6h (shown in the answer)", jo},
	}
	got := h.recorder.Records()
	if len(got) != len(want) {
		t.Fatalf("records %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("record %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestShutdown(t *testing.T) {
	tests := []struct {
		name     string
		release  bool // let the correlation finish before the deadline
		wantErr  bool
		wantPost string
	}{
		{name: "waits for running work", release: true, wantPost: "edge-router v3.8.0"},
		{name: "deadline interrupts running work", wantErr: true, wantPost: "Interrupted: culprit is restarting"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, nil)
			h.corr.release = make(chan struct{})
			h.corr.started = make(chan struct{}, 1)
			serve(h.app.Commands(), signed("/slack/commands", h.commandForm("edge-router"), testSecret, friday))
			<-h.corr.started

			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- h.app.Shutdown(ctx) }()

			// Once shutting down, new questions are turned away politely.
			for h.app.isOpen() {
				select {
				case err := <-done:
					t.Fatalf("Shutdown returned %v with work running", err)
				default:
				}
				runtime.Gosched()
			}
			w := serve(h.app.Commands(), signed("/slack/commands", h.commandForm("api"), testSecret, friday.Add(time.Second)))
			if w.Code != http.StatusOK || !strings.Contains(w.Body.String(), "culprit is restarting") {
				t.Errorf("command during shutdown: %d %s", w.Code, w.Body)
			}

			if tc.release {
				close(h.corr.release)
			} else {
				cancel()
			}
			err := <-done
			cancel()
			if (err != nil) != tc.wantErr {
				t.Errorf("Shutdown = %v, want error %v", err, tc.wantErr)
			}
			posts := h.fake.Posts()
			if len(posts) != 1 || !strings.Contains(posts[0].Text+string(posts[0].Blocks), tc.wantPost) {
				t.Errorf("posts %+v, want one containing %q", posts, tc.wantPost)
			}
			if n := len(h.corr.Calls()); n != 1 {
				t.Errorf("correlator called %d times, want 1 (none after shutdown began)", n)
			}
		})
	}
}

// TestNoSigningSecretRefusesHTTP: Socket Mode needs no signing secret, and
// without one an HMAC with an empty key would let anyone sign, so every
// HTTP request is refused.
func TestNoSigningSecretRefusesHTTP(t *testing.T) {
	h := newHarness(t, func(c *Config) { c.SigningSecret = "" })
	for _, handler := range []http.Handler{h.app.Commands(), h.app.Interactions()} {
		w := serve(handler, signed("/slack/commands", h.commandForm("edge-router"), "", friday))
		h.app.Wait()
		if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "no signing secret") {
			t.Fatalf("status %d %q, want 401 naming the missing secret", w.Code, w.Body)
		}
	}
	if n := len(h.corr.Calls()); n != 0 {
		t.Fatalf("correlator called %d times", n)
	}
}
