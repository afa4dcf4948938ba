// Package slackfake is a fake Slack for tests: response URLs and the Web
// API's chat.postMessage, checked against Slack's documented schema and
// Block Kit limits, with scripted failures.
//
// Its limits are written out here rather than taken from escalate/slack, so
// a wrong constant there is caught here instead of agreed with.
//
// Typical use:
//
//	f := slackfake.New(t)
//	... post to f.ResponseURL("abc") or point slack-go at f.APIURL() ...
//	f.WaitPosts(t, 1)
//	for _, p := range f.Posts() { if len(p.Problems) > 0 { t.Error(p.Problems) } }
package slackfake

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	slackgo "github.com/slack-go/slack"
)

// Paths the fake serves. A response URL is ResponsePath + a token of the
// test's choosing; Web API methods are under APIPath, as under
// https://slack.com/api/.
const (
	ResponsePath = "/response/"
	APIPath      = "/api/"
)

// BotToken is the token chat.postMessage accepts until SetToken changes it.
const BotToken = "xoxb-test-token"

// Post kinds.
const (
	KindResponse    = "response"
	KindPostMessage = "chat.postMessage"
	// KindHistory is conversations.history, which the fake answers from
	// the chat.postMessage posts it accepted; it is recorded in
	// Lookups, not Posts, so counting posts counts messages.
	KindHistory = "conversations.history"
)

// Reply scripts how the fake answers one request. The zero Reply is a
// normal answer: validate, then accept or reject.
type Reply struct {
	// Status, when not zero, is answered without looking at the request
	// (429, 500, 503…).
	Status int
	// RetryAfter is sent as the Retry-After header with Status.
	RetryAfter string
	// SlackError, when set, refuses the request as Slack does: the Web
	// API answers 200 {"ok":false,"error":SlackError}, a response URL
	// answers 404 with the code as text.
	SlackError string
}

// TooManyRequests is Slack throttling: 429 with Retry-After (seconds or
// an HTTP date; empty sends no header).
func TooManyRequests(retryAfter string) Reply {
	return Reply{Status: http.StatusTooManyRequests, RetryAfter: retryAfter}
}

// ServerError is a 500.
func ServerError() Reply { return Reply{Status: http.StatusInternalServerError} }

// SlackError is an application-level refusal such as channel_not_found,
// invalid_auth or expired_url.
func SlackError(code string) Reply { return Reply{SlackError: code} }

// Post is one request the fake received, whatever it answered.
type Post struct {
	// Seq numbers requests from 1.
	Seq int
	// Kind is KindResponse or KindPostMessage (or the path, for an
	// unknown one).
	Kind string
	// Token is the response URL's token, or the Web API token presented.
	Token string
	// Channel is chat.postMessage's channel.
	Channel         string
	ResponseType    string
	ReplaceOriginal bool
	Text            string
	// Blocks is the message's blocks as sent (JSON array), nil if none.
	Blocks json.RawMessage
	// ContentType is the request's media type.
	ContentType string
	// Body is the request body as received.
	Body []byte
	// Status is the HTTP status the fake answered; Error the Slack error
	// code it answered with, if any.
	Status int
	Error  string
	// Problems lists schema violations; a request with problems is
	// refused as Slack would refuse it.
	Problems []string
	// Metadata is chat.postMessage's message metadata (JSON), nil if none.
	Metadata json.RawMessage
	// TS is the message timestamp the fake answered, for accepted
	// chat.postMessage posts.
	TS string
}

// Server is a running fake. Its methods are safe for concurrent use.
type Server struct {
	srv *httptest.Server

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every request
	token   string
	def     Reply
	script  []Reply
	posts   []Post
	lookups int
	stamp   int
	// historyError, when set, refuses every conversations.history.
	historyError string
}

// New starts a fake that is closed when the test ends.
func New(t testing.TB) *Server {
	t.Helper()
	s := &Server{changed: make(chan struct{}), token: BotToken}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL.
func (s *Server) URL() string { return s.srv.URL }

// APIURL is the Web API base to give slack.OptionAPIURL (with its
// trailing slash).
func (s *Server) APIURL() string { return s.srv.URL + APIPath }

// ResponseURL is a response URL that records posts under token.
func (s *Server) ResponseURL(token string) string {
	return s.srv.URL + ResponsePath + url.PathEscape(token)
}

// SetToken sets the bot token chat.postMessage accepts.
func (s *Server) SetToken(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.token = token
}

// Script queues replies for the next requests, in order; after them the
// default applies again.
func (s *Server) Script(replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, replies...)
}

// SetDefault sets how requests are answered when no script is queued.
func (s *Server) SetDefault(r Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.def = r
}

// SetHistoryError makes conversations.history answer with a Slack error
// code, as a token without channels:history gets "missing_scope".
func (s *Server) SetHistoryError(code string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.historyError = code
}

// Lookups counts conversations.history requests.
func (s *Server) Lookups() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lookups
}

// Delivered returns the chat.postMessage posts the fake accepted: the
// messages a channel would show.
func (s *Server) Delivered() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Post
	for _, p := range s.posts {
		if p.Kind == KindPostMessage && p.Status == http.StatusOK && p.Error == "" {
			out = append(out, p)
		}
	}
	return out
}

// history answers conversations.history with the accepted posts to the
// channel, newest first, with their metadata when asked for it.
func (s *Server) history(w http.ResponseWriter, r *http.Request, body []byte) {
	form, _ := url.ParseQuery(string(body))
	s.mu.Lock()
	s.lookups++
	token, code := s.token, s.historyError
	s.mu.Unlock()
	presented := form.Get("token")
	if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		presented = b
	}
	switch {
	case code != "":
	case presented == "":
		code = "not_authed"
	case !hmac.Equal([]byte(presented), []byte(token)):
		code = "invalid_auth"
	case form.Get("channel") == "":
		code = "channel_not_found"
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if code != "" {
		_ = json.NewEncoder(w).Encode(map[string]any{"ok": false, "error": code})
		return
	}
	oldest, _ := strconv.ParseFloat(cmpOr(form.Get("oldest"), "0"), 64)
	withMeta := form.Get("include_all_metadata") == "1"
	var msgs []map[string]any
	delivered := s.Delivered()
	for i := len(delivered) - 1; i >= 0; i-- {
		p := delivered[i]
		ts, _ := strconv.ParseFloat(p.TS, 64)
		if p.Channel != form.Get("channel") || ts < oldest {
			continue
		}
		m := map[string]any{"type": "message", "ts": p.TS, "text": p.Text}
		if withMeta && len(p.Metadata) > 0 {
			m["metadata"] = p.Metadata
		}
		msgs = append(msgs, m)
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "messages": msgs, "has_more": false})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Posts returns every request received, in order.
func (s *Server) Posts() []Post {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Post(nil), s.posts...)
}

// WaitPosts blocks until at least n requests have arrived and returns
// them. It fails the test after 10 seconds: the code under test posts
// from a goroutine, and this is how a test waits for it without sleeping.
func (s *Server) WaitPosts(t testing.TB, n int) []Post {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		got, ch := len(s.posts), s.changed
		s.mu.Unlock()
		if got >= n {
			return s.Posts()
		}
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("slackfake: %d posts after 10s, want %d", got, n)
			return nil
		}
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	p := Post{Kind: r.URL.Path, Body: body, ContentType: mt}
	if r.Method == http.MethodPost && r.URL.Path == APIPath+KindHistory {
		s.history(w, r, body)
		return
	}

	s.mu.Lock()
	s.stamp++
	// Message timestamps are the wall clock, as Slack's are, made unique
	// by a request counter in the microseconds.
	p.TS = fmt.Sprintf("%d.%06d", time.Now().Unix(), s.stamp%1000000)
	reply := s.def
	if len(s.script) > 0 {
		reply, s.script = s.script[0], s.script[1:]
	}
	token := s.token
	s.mu.Unlock()

	var answer func()
	switch {
	case r.Method != http.MethodPost:
		p.Problems = append(p.Problems, "method "+r.Method+", want POST")
		answer = func() {
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			p.Status = http.StatusMethodNotAllowed
		}
	case strings.HasPrefix(r.URL.Path, ResponsePath):
		p.Kind = KindResponse
		p.Token = strings.TrimPrefix(r.URL.Path, ResponsePath)
		checkResponse(&p)
		answer = func() { p.Status, p.Error = answerResponse(w, &p, reply) }
	case r.URL.Path == APIPath+"chat.postMessage":
		p.Kind = KindPostMessage
		checkPostMessage(&p, r.Header, token)
		answer = func() { p.Status, p.Error = answerAPI(w, &p, reply) }
	default:
		p.Problems = append(p.Problems, "unknown path "+r.URL.Path)
		answer = func() { http.NotFound(w, r); p.Status = http.StatusNotFound }
	}
	answer()
	if p.Kind != KindPostMessage || p.Status != http.StatusOK || p.Error != "" {
		p.TS = ""
	}

	s.mu.Lock()
	p.Seq = len(s.posts) + 1
	s.posts = append(s.posts, p)
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func scripted(w http.ResponseWriter, reply Reply) (int, bool) {
	if reply.Status == 0 {
		return 0, false
	}
	if reply.RetryAfter != "" {
		w.Header().Set("Retry-After", reply.RetryAfter)
	}
	http.Error(w, http.StatusText(reply.Status), reply.Status)
	return reply.Status, true
}

// answerResponse answers a response URL post: "ok", or Slack's plain-text
// error codes.
func answerResponse(w http.ResponseWriter, p *Post, reply Reply) (int, string) {
	if st, ok := scripted(w, reply); ok {
		return st, ""
	}
	if reply.SlackError != "" {
		http.Error(w, reply.SlackError, http.StatusNotFound)
		return http.StatusNotFound, reply.SlackError
	}
	if len(p.Problems) > 0 {
		code := "invalid_payload"
		if p.Blocks != nil && strings.HasPrefix(p.Problems[0], "blocks") {
			code = "invalid_blocks"
		}
		http.Error(w, code, http.StatusBadRequest)
		return http.StatusBadRequest, code
	}
	w.Header().Set("Content-Type", "text/html")
	_, _ = io.WriteString(w, "ok")
	return http.StatusOK, ""
}

// answerAPI answers chat.postMessage the Web API way: HTTP 200 with ok
// true or false.
func answerAPI(w http.ResponseWriter, p *Post, reply Reply) (int, string) {
	if st, ok := scripted(w, reply); ok {
		return st, ""
	}
	code := reply.SlackError
	var msgs []string
	if code == "" && len(p.Problems) > 0 {
		code, msgs = apiErrorCode(p.Problems[0]), p.Problems
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	if code != "" {
		doc := map[string]any{"ok": false, "error": code}
		if len(msgs) > 0 {
			doc["response_metadata"] = map[string]any{"messages": msgs}
		}
		_ = json.NewEncoder(w).Encode(doc)
		return http.StatusOK, code
	}
	_ = json.NewEncoder(w).Encode(map[string]any{
		"ok": true, "channel": p.Channel, "ts": p.TS,
		"message": map[string]any{"type": "message", "text": p.Text},
	})
	return http.StatusOK, ""
}

// apiErrorCode maps the first problem to the code Slack would answer.
func apiErrorCode(problem string) string {
	for _, c := range []string{"not_authed", "invalid_auth", "channel_not_found", "no_text"} {
		if strings.HasPrefix(problem, c) {
			return c
		}
	}
	if strings.HasPrefix(problem, "blocks") {
		return "invalid_blocks"
	}
	return "invalid_arguments"
}

func checkResponse(p *Post) {
	if p.ContentType != "application/json" {
		p.Problems = append(p.Problems, fmt.Sprintf("content type %q, want application/json", p.ContentType))
		return
	}
	var doc struct {
		Text            *string         `json:"text"`
		ResponseType    string          `json:"response_type"`
		ReplaceOriginal bool            `json:"replace_original"`
		Blocks          json.RawMessage `json:"blocks"`
	}
	if err := json.Unmarshal(p.Body, &doc); err != nil {
		p.Problems = append(p.Problems, "body is not a JSON object: "+err.Error())
		return
	}
	if doc.Text != nil {
		p.Text = *doc.Text
	}
	p.ResponseType, p.ReplaceOriginal = doc.ResponseType, doc.ReplaceOriginal
	if len(doc.Blocks) > 0 && string(doc.Blocks) != "null" {
		p.Blocks = doc.Blocks
	}
	switch doc.ResponseType {
	case "", "ephemeral", "in_channel":
	default:
		p.Problems = append(p.Problems, fmt.Sprintf("response_type %q, want ephemeral or in_channel", doc.ResponseType))
	}
	checkMessage(p)
}

func checkPostMessage(p *Post, h http.Header, want string) {
	bearer, hasBearer := strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	var presented string
	switch p.ContentType {
	case "application/json":
		var doc struct {
			Channel  string          `json:"channel"`
			Text     string          `json:"text"`
			Blocks   json.RawMessage `json:"blocks"`
			Metadata json.RawMessage `json:"metadata"`
		}
		if err := json.Unmarshal(p.Body, &doc); err != nil {
			p.Problems = append(p.Problems, "invalid_arguments: body is not a JSON object")
			return
		}
		// JSON bodies must authenticate with the header: Slack ignores a
		// token field in them.
		presented = bearer
		p.Channel, p.Text, p.Metadata = doc.Channel, doc.Text, doc.Metadata
		if len(doc.Blocks) > 0 && string(doc.Blocks) != "null" {
			p.Blocks = doc.Blocks
		}
	case "application/x-www-form-urlencoded":
		form, err := url.ParseQuery(string(p.Body))
		if err != nil {
			p.Problems = append(p.Problems, "invalid_arguments: malformed form body")
			return
		}
		// Slack accepts the token in the Authorization header or as the
		// form's token field (slack-go sends the latter).
		presented = form.Get("token")
		if hasBearer {
			presented = bearer
		}
		p.Channel, p.Text = form.Get("channel"), form.Get("text")
		if b := form.Get("blocks"); b != "" {
			p.Blocks = json.RawMessage(b)
		}
		if m := form.Get("metadata"); m != "" {
			p.Metadata = json.RawMessage(m)
		}
	default:
		p.Problems = append(p.Problems, fmt.Sprintf("invalid_arguments: content type %q, want application/json or application/x-www-form-urlencoded", p.ContentType))
		return
	}
	p.Token = presented
	switch {
	case presented == "":
		p.Problems = append(p.Problems, "not_authed: no token")
	case !hmac.Equal([]byte(presented), []byte(want)):
		p.Problems = append(p.Problems, "invalid_auth: wrong token")
	case p.Channel == "":
		p.Problems = append(p.Problems, "channel_not_found: no channel")
	}
	checkMessage(p)
}

// checkMessage applies the rules shared by both kinds of post.
func checkMessage(p *Post) {
	if strings.TrimSpace(p.Text) == "" && p.Blocks == nil {
		p.Problems = append(p.Problems, "no_text: neither text nor blocks")
	}
	if p.Blocks != nil {
		p.Problems = append(p.Problems, CheckBlocks(p.Blocks)...)
	}
}

// Block Kit limits as documented at https://api.slack.com/reference/block-kit.
const (
	maxBlocks          = 50
	maxBlockID         = 255
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxContextElements = 10
	maxActionElements  = 25
	maxButtonText      = 75
	maxButtonValue     = 2000
	maxActionID        = 255
	maxURL             = 3000
	maxImageAlt        = 2000
	maxImageTitle      = 2000
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
	maxTextObject      = 3000
)

// CheckBlocks checks a JSON array of blocks against Block Kit's schema
// and limits, and returns every violation (nil when Slack would accept
// them). Each problem starts with "blocks".
func CheckBlocks(raw json.RawMessage) []string {
	var probs []string
	bad := func(format string, a ...any) { probs = append(probs, "blocks"+fmt.Sprintf(format, a...)) }
	var typed slackgo.Blocks
	if err := json.Unmarshal(raw, &typed); err != nil {
		bad(": do not parse as slack.Blocks: %v", err)
	}
	var blocks []map[string]any
	if err := json.Unmarshal(raw, &blocks); err != nil {
		bad(": not an array of objects: %v", err)
		return probs
	}
	if len(blocks) == 0 {
		bad(": empty array")
	}
	if len(blocks) > maxBlocks {
		bad(": %d blocks, max %d", len(blocks), maxBlocks)
	}
	ids := map[string]bool{}
	for i, b := range blocks {
		at := fmt.Sprintf("[%d]", i)
		if id, ok := b["block_id"].(string); ok {
			if runes(id) > maxBlockID {
				bad("%s.block_id: %d characters, max %d", at, runes(id), maxBlockID)
			}
			if ids[id] {
				bad("%s.block_id %q repeated", at, id)
			}
			ids[id] = true
		}
		switch t, _ := b["type"].(string); t {
		case "section":
			text, hasText := b["text"].(map[string]any)
			fields, _ := b["fields"].([]any)
			if !hasText && len(fields) == 0 {
				bad("%s: section needs text or fields", at)
			}
			if hasText {
				checkText(bad, at+".text", text, maxSectionText, false)
			}
			if len(fields) > maxSectionFields {
				bad("%s.fields: %d, max %d", at, len(fields), maxSectionFields)
			}
			for j, f := range fields {
				fm, _ := f.(map[string]any)
				checkText(bad, fmt.Sprintf("%s.fields[%d]", at, j), fm, maxFieldText, false)
			}
		case "header":
			text, _ := b["text"].(map[string]any)
			checkText(bad, at+".text", text, maxHeaderText, true)
		case "context":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > maxContextElements {
				bad("%s.elements: %d, want 1 to %d", at, len(els), maxContextElements)
			}
			for j, e := range els {
				em, _ := e.(map[string]any)
				if et, _ := em["type"].(string); et == "image" {
					checkImage(bad, fmt.Sprintf("%s.elements[%d]", at, j), em)
					continue
				}
				checkText(bad, fmt.Sprintf("%s.elements[%d]", at, j), em, maxTextObject, false)
			}
		case "actions":
			els, _ := b["elements"].([]any)
			if len(els) == 0 || len(els) > maxActionElements {
				bad("%s.elements: %d, want 1 to %d", at, len(els), maxActionElements)
			}
			for j, e := range els {
				em, _ := e.(map[string]any)
				checkElement(bad, fmt.Sprintf("%s.elements[%d]", at, j), em)
			}
		case "image":
			checkImage(bad, at, b)
			if title, ok := b["title"].(map[string]any); ok {
				checkText(bad, at+".title", title, maxImageTitle, true)
			}
		case "divider":
		default:
			bad("%s: unexpected block type %q", at, t)
		}
	}
	return probs
}

func checkText(bad func(string, ...any), at string, t map[string]any, limit int, plainOnly bool) {
	if t == nil {
		bad("%s: missing text object", at)
		return
	}
	typ, _ := t["type"].(string)
	switch {
	case plainOnly && typ != "plain_text":
		bad("%s.type %q, want plain_text", at, typ)
	case typ != "plain_text" && typ != "mrkdwn":
		bad("%s.type %q, want plain_text or mrkdwn", at, typ)
	}
	if _, ok := t["emoji"]; ok && typ == "mrkdwn" {
		bad("%s: emoji is only allowed on plain_text", at)
	}
	s, _ := t["text"].(string)
	switch n := runes(s); {
	case n == 0:
		bad("%s.text is empty", at)
	case n > limit:
		bad("%s.text: %d characters, max %d", at, n, limit)
	}
}

func checkImage(bad func(string, ...any), at string, b map[string]any) {
	u, _ := b["image_url"].(string)
	_, hasFile := b["slack_file"]
	switch {
	case u == "" && !hasFile:
		bad("%s: image needs image_url or slack_file", at)
	case runes(u) > maxURL:
		bad("%s.image_url: %d characters, max %d", at, runes(u), maxURL)
	}
	alt, _ := b["alt_text"].(string)
	if n := runes(alt); n == 0 || n > maxImageAlt {
		bad("%s.alt_text: %d characters, want 1 to %d", at, n, maxImageAlt)
	}
}

func checkElement(bad func(string, ...any), at string, e map[string]any) {
	if t, _ := e["type"].(string); t != "button" {
		// culprit sends only buttons; anything else is a surprise.
		bad("%s: unexpected element type %q", at, t)
		return
	}
	text, _ := e["text"].(map[string]any)
	checkText(bad, at+".text", text, maxButtonText, true)
	if id, _ := e["action_id"].(string); runes(id) > maxActionID {
		bad("%s.action_id: %d characters, max %d", at, runes(id), maxActionID)
	}
	if v, _ := e["value"].(string); runes(v) > maxButtonValue {
		bad("%s.value: %d characters, max %d", at, runes(v), maxButtonValue)
	}
	if u, ok := e["url"].(string); ok {
		if runes(u) > maxURL {
			bad("%s.url: %d characters, max %d", at, runes(u), maxURL)
		}
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") {
			bad("%s.url: not an http(s) URL", at)
		}
	}
	if st, ok := e["style"].(string); ok && st != "primary" && st != "danger" {
		bad("%s.style %q, want primary or danger", at, st)
	}
	if c, ok := e["confirm"].(map[string]any); ok {
		for _, f := range []struct {
			key   string
			limit int
		}{{"title", maxConfirmTitle}, {"text", maxConfirmText}, {"confirm", maxConfirmButton}, {"deny", maxConfirmButton}} {
			t, _ := c[f.key].(map[string]any)
			if t == nil && f.key == "deny" {
				continue
			}
			checkText(bad, at+".confirm."+f.key, t, f.limit, f.key != "text")
		}
	}
}

func runes(s string) int { return utf8.RuneCountInString(s) }

// Sign returns the headers Slack sends with a request: the v0 signature
// of body at ts under secret.
func Sign(secret string, ts time.Time, body []byte) http.Header {
	sts := strconv.FormatInt(ts.Unix(), 10)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + sts + ":"))
	mac.Write(body)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", sts)
	h.Set("X-Slack-Signature", "v0="+hex.EncodeToString(mac.Sum(nil)))
	h.Set("Content-Type", "application/x-www-form-urlencoded")
	return h
}
