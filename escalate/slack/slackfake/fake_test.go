package slackfake

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	slackgo "github.com/slack-go/slack"
)

func TestCheckBlocks(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	section := func(text string) string {
		return fmt.Sprintf(`{"type":"section","text":{"type":"mrkdwn","text":%q}}`, text)
	}
	button := func(extra string) string {
		return `{"type":"actions","elements":[{"type":"button","text":{"type":"plain_text","text":"Go"}` + extra + `}]}`
	}
	tests := []struct {
		name   string
		blocks string
		want   string // "" means accepted
	}{
		{"fine", "[" + section("hello") + `,{"type":"divider"}]`, ""},
		{"not an array", `{"type":"section"}`, "not an array"},
		{"too many blocks", "[" + strings.TrimSuffix(strings.Repeat(`{"type":"divider"},`, 51), ",") + "]", "51 blocks, max 50"},
		{"section text too long", "[" + section(long(3001)) + "]", "text: 3001 characters, max 3000"},
		{"section text at the limit in runes", "[" + section(strings.Repeat("é", 3000)) + "]", ""},
		{"empty text", "[" + section("") + "]", "text is empty"},
		{"too many fields", `[{"type":"section","fields":[` + strings.TrimSuffix(strings.Repeat(`{"type":"mrkdwn","text":"f"},`, 11), ",") + `]}]`, "fields: 11, max 10"},
		{"field too long", `[{"type":"section","fields":[{"type":"mrkdwn","text":"` + long(2001) + `"}]}]`, "2001 characters, max 2000"},
		{"header too long", `[{"type":"header","text":{"type":"plain_text","text":"` + long(151) + `"}}]`, "151 characters, max 150"},
		{"header in mrkdwn", `[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]`, `type "mrkdwn", want plain_text`},
		{"too many context elements", `[{"type":"context","elements":[` + strings.TrimSuffix(strings.Repeat(`{"type":"mrkdwn","text":"c"},`, 11), ",") + `]}]`, "elements: 11, want 1 to 10"},
		{"button text too long", "[" + strings.Replace(button(""), `"Go"`, `"`+long(76)+`"`, 1) + "]", "76 characters, max 75"},
		{"button value too long", "[" + button(`,"value":"`+long(2001)+`"`) + "]", "value: 2001 characters, max 2000"},
		{"button url not http", "[" + button(`,"url":"javascript:alert(1)"`) + "]", "not an http(s) URL"},
		{"button url too long", "[" + button(`,"url":"https://x.example/`+long(3000)+`"`) + "]", "url: 3018 characters, max 3000"},
		{"bad style", "[" + button(`,"style":"red"`) + "]", `style "red"`},
		{"confirm text too long", "[" + button(`,"confirm":{"title":{"type":"plain_text","text":"t"},"text":{"type":"plain_text","text":"`+long(301)+`"},"confirm":{"type":"plain_text","text":"y"}}`) + "]", "confirm.text.text: 301 characters, max 300"},
		{"image without alt", `[{"type":"image","image_url":"https://x.example/a.png","alt_text":""}]`, "alt_text: 0 characters"},
		{"unknown block", `[{"type":"carousel"}]`, `unexpected block type "carousel"`},
		{"repeated block id", `[{"type":"divider","block_id":"a"},{"type":"divider","block_id":"a"}]`, `block_id "a" repeated`},
		{"emoji on mrkdwn", `[{"type":"section","text":{"type":"mrkdwn","text":"x","emoji":true}}]`, "emoji is only allowed on plain_text"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			probs := CheckBlocks(json.RawMessage(tc.blocks))
			if tc.want == "" {
				if len(probs) > 0 {
					t.Errorf("problems %v, want none", probs)
				}
				return
			}
			if !strings.Contains(strings.Join(probs, "\n"), tc.want) {
				t.Errorf("problems %v, want one containing %q", probs, tc.want)
			}
		})
	}
}

func TestPostMessageThroughSlackGo(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		channel string
		script  []Reply
		opts    []slackgo.MsgOption
		wantErr string
		want    func(t *testing.T, p Post)
	}{
		{name: "accepted", token: BotToken, channel: "C1", opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)},
			want: func(t *testing.T, p Post) {
				if p.Kind != KindPostMessage || p.Channel != "C1" || p.Text != "hi" || p.Status != 200 || p.Error != "" {
					t.Errorf("post %+v", p)
				}
			}},
		{name: "wrong token", token: "xoxb-other", channel: "C1", opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)}, wantErr: "invalid_auth"},
		{name: "no channel", token: BotToken, opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)}, wantErr: "channel_not_found"},
		{name: "no text", token: BotToken, channel: "C1", wantErr: "no_text"},
		{name: "invalid blocks", token: BotToken, channel: "C1",
			opts:    []slackgo.MsgOption{slackgo.MsgOptionBlocks(slackgo.NewHeaderBlock(slackgo.NewTextBlockObject("plain_text", strings.Repeat("h", 200), false, false)))},
			wantErr: "invalid_blocks"},
		{name: "scripted slack error", token: BotToken, channel: "C1", script: []Reply{SlackError("channel_not_found")},
			opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)}, wantErr: "channel_not_found"},
		{name: "scripted 429", token: BotToken, channel: "C1", script: []Reply{TooManyRequests("3")},
			opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)}, wantErr: "retry after 3s"},
		{name: "scripted 500", token: BotToken, channel: "C1", script: []Reply{ServerError()},
			opts: []slackgo.MsgOption{slackgo.MsgOptionText("hi", false)}, wantErr: "500"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			f.Script(tc.script...)
			api := slackgo.New(tc.token, slackgo.OptionAPIURL(f.APIURL()))
			_, _, err := api.PostMessageContext(context.Background(), tc.channel, tc.opts...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("post: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want %q", err, tc.wantErr)
			}
			posts := f.Posts()
			if len(posts) != 1 {
				t.Fatalf("%d posts recorded, want 1", len(posts))
			}
			if tc.want != nil {
				tc.want(t, posts[0])
			}
		})
	}
}

func TestResponseURL(t *testing.T) {
	tests := []struct {
		name        string
		contentType string
		body        string
		wantStatus  int
		wantProblem string
	}{
		{"json message", "application/json", `{"response_type":"in_channel","text":"hi"}`, 200, ""},
		{"form body", "application/x-www-form-urlencoded", `text=hi`, 400, "content type"},
		{"bad response type", "application/json", `{"response_type":"everyone","text":"hi"}`, 400, `response_type "everyone"`},
		{"empty message", "application/json", `{"text":""}`, 400, "no_text"},
		{"bad blocks", "application/json", `{"text":"x","blocks":[{"type":"header","text":{"type":"plain_text","text":""}}]}`, 400, "text is empty"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			resp, err := http.Post(f.ResponseURL("tok"), tc.contentType, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			p := f.Posts()[0]
			if p.Token != "tok" || p.Kind != KindResponse {
				t.Errorf("post %+v", p)
			}
			if got := strings.Join(p.Problems, "; "); (tc.wantProblem == "") != (got == "") || !strings.Contains(got, tc.wantProblem) {
				t.Errorf("problems %q, want %q", got, tc.wantProblem)
			}
		})
	}
}

func TestScriptThenDefault(t *testing.T) {
	f := New(t)
	f.SetDefault(ServerError())
	f.Script(Reply{}, TooManyRequests("1"))
	var got []int
	for range 3 {
		resp, err := http.Post(f.ResponseURL("t"), "application/json", strings.NewReader(`{"text":"x"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got = append(got, resp.StatusCode)
	}
	if fmt.Sprint(got) != "[200 429 500]" {
		t.Errorf("statuses %v, want [200 429 500]", got)
	}
}

// TestSignMatchesSlackGo checks Sign against slack-go's own verifier, an
// independent implementation of Slack's algorithm.
func TestSignMatchesSlackGo(t *testing.T) {
	body := []byte("token=x&text=hello")
	h := Sign("s3cret", time.Now(), body)
	sv, err := slackgo.NewSecretsVerifier(h, "s3cret")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sv.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := sv.Ensure(); err != nil {
		t.Errorf("slack-go rejects Sign's signature: %v", err)
	}
	sv, _ = slackgo.NewSecretsVerifier(h, "other")
	_, _ = sv.Write(body)
	if sv.Ensure() == nil {
		t.Errorf("slack-go accepts Sign's signature under another secret")
	}
}
