package pdfake

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

const key = "e93facc04764012d7bfb002500d5d1a6" // 32 characters, as PagerDuty issues them

type response struct {
	Status   int
	Header   http.Header
	Body     map[string]any
	Response string
}

func post(t *testing.T, url, contentType, body string) response {
	t.Helper()
	return do(t, http.MethodPost, url, contentType, body)
}

func do(t *testing.T, method, url, contentType, body string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := response{Status: resp.StatusCode, Header: resp.Header, Response: string(raw)}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return out
}

// mustJSON encodes v, or returns it as is when it is already a string, so
// table cases can hold broken JSON too.
func mustJSON(t *testing.T, v any) string {
	t.Helper()
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type obj = map[string]any

func trigger(mod func(ev, payload obj)) obj {
	p := obj{"summary": "edge-router: new error class", "source": "culprit/edge-router", "severity": "error"}
	ev := obj{"routing_key": key, "event_action": "trigger", "dedup_key": "inc-1", "payload": p}
	if mod != nil {
		mod(ev, p)
	}
	return ev
}

func change(mod func(ev, payload obj)) obj {
	p := obj{"summary": "edge-router 2.42.0 deployed (dep-775a8f)"}
	ev := obj{"routing_key": key, "payload": p}
	if mod != nil {
		mod(ev, p)
	}
	return ev
}

func TestRejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name        string
		method      string // POST when empty
		path        string // AlertPath when empty
		contentType string // application/json when empty; "-" sends none
		body        any
		wantStatus  int
		wantReason  string
	}{
		{name: "wrong path", path: "/v2/events", body: trigger(nil), wantStatus: 404, wantReason: "no such endpoint /v2/events"},
		{name: "GET", method: http.MethodGet, body: trigger(nil), wantStatus: 405, wantReason: "method GET not allowed"},
		{name: "no content type", contentType: "-", body: trigger(nil), wantStatus: 400, wantReason: "Content-Type must be application/json"},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: trigger(nil), wantStatus: 400, wantReason: "Content-Type must be application/json"},
		{name: "not JSON", body: "{routing_key:", wantStatus: 400, wantReason: "JSON parse error"},
		{name: "JSON array", body: "[]", wantStatus: 400, wantReason: "JSON parse error"},
		{name: "body over 512 KB", body: trigger(func(ev, p obj) { p["custom_details"] = obj{"x": strings.Repeat("x", MaxBody)} }), wantStatus: 400, wantReason: "larger than 524288 bytes"},
		{name: "unknown top-level field", body: trigger(func(ev, p obj) { ev["severity"] = "error" }), wantStatus: 400, wantReason: `unknown field "severity"`},
		{name: "unknown payload field", body: trigger(func(ev, p obj) { p["details"] = obj{} }), wantStatus: 400, wantReason: `unknown field payload."details"`},
		{name: "missing routing key", body: trigger(func(ev, p obj) { delete(ev, "routing_key") }), wantStatus: 400, wantReason: "routing_key is required"},
		{name: "short routing key", body: trigger(func(ev, p obj) { ev["routing_key"] = "abc" }), wantStatus: 400, wantReason: "routing_key must be a 32-character integration key, got 3"},
		{name: "numeric routing key", body: trigger(func(ev, p obj) { ev["routing_key"] = 42 }), wantStatus: 400, wantReason: "routing_key must be a string"},
		{name: "missing action", body: trigger(func(ev, p obj) { delete(ev, "event_action") }), wantStatus: 400, wantReason: "event_action is required"},
		{name: "unknown action", body: trigger(func(ev, p obj) { ev["event_action"] = "escalate" }), wantStatus: 400, wantReason: `event_action "escalate" must be one of`},
		{name: "dedup key too long", body: trigger(func(ev, p obj) { ev["dedup_key"] = strings.Repeat("k", 256) }), wantStatus: 400, wantReason: "dedup_key is 256 characters, more than 255"},
		{name: "resolve without dedup key", body: obj{"routing_key": key, "event_action": "resolve"}, wantStatus: 400, wantReason: "dedup_key is required for resolve events"},
		{name: "acknowledge without dedup key", body: obj{"routing_key": key, "event_action": "acknowledge", "dedup_key": ""}, wantStatus: 400, wantReason: "dedup_key is required for acknowledge events"},
		{name: "trigger without payload", body: trigger(func(ev, p obj) { delete(ev, "payload") }), wantStatus: 400, wantReason: "payload is required for trigger events"},
		{name: "payload not an object", body: trigger(func(ev, p obj) { ev["payload"] = "boom" }), wantStatus: 400, wantReason: "payload must be an object"},
		{name: "missing summary", body: trigger(func(ev, p obj) { delete(p, "summary") }), wantStatus: 400, wantReason: "payload.summary is required"},
		{name: "blank summary", body: trigger(func(ev, p obj) { p["summary"] = "  " }), wantStatus: 400, wantReason: "payload.summary must not be blank"},
		{name: "summary over 1024 characters", body: trigger(func(ev, p obj) { p["summary"] = strings.Repeat("é", 1025) }), wantStatus: 400, wantReason: "payload.summary is 1025 characters, more than 1024"},
		{name: "missing source", body: trigger(func(ev, p obj) { delete(p, "source") }), wantStatus: 400, wantReason: "payload.source is required"},
		{name: "missing severity", body: trigger(func(ev, p obj) { delete(p, "severity") }), wantStatus: 400, wantReason: "payload.severity is required"},
		{name: "unknown severity", body: trigger(func(ev, p obj) { p["severity"] = "page" }), wantStatus: 400, wantReason: `payload.severity "page" must be one of critical, error, warning, info`},
		{name: "bad timestamp", body: trigger(func(ev, p obj) { p["timestamp"] = "20 Nov 2026 16:04" }), wantStatus: 400, wantReason: `payload.timestamp "20 Nov 2026 16:04" is not an ISO 8601 timestamp`},
		{name: "numeric component", body: trigger(func(ev, p obj) { p["component"] = 7 }), wantStatus: 400, wantReason: "payload.component must be a string"},
		{name: "custom details not an object", body: trigger(func(ev, p obj) { p["custom_details"] = []string{"a"} }), wantStatus: 400, wantReason: "payload.custom_details must be an object"},
		{name: "http image", body: trigger(func(ev, p obj) { ev["images"] = []obj{{"src": "http://charts.example.com/a.png"}} }), wantStatus: 400, wantReason: `images[0].src "http://charts.example.com/a.png" must be an https URL`},
		{name: "image without src", body: trigger(func(ev, p obj) { ev["images"] = []obj{{"href": "https://example.com"}} }), wantStatus: 400, wantReason: "images[0].src is required"},
		{name: "images not an array", body: trigger(func(ev, p obj) { ev["images"] = obj{} }), wantStatus: 400, wantReason: "images must be an array"},
		{name: "link without href", body: trigger(func(ev, p obj) { ev["links"] = []obj{{"text": "evidence"}} }), wantStatus: 400, wantReason: "links[0].href is required"},
		{name: "relative link", body: trigger(func(ev, p obj) { ev["links"] = []obj{{"href": "/evidence/f-1"}} }), wantStatus: 400, wantReason: `links[0].href "/evidence/f-1" is not an absolute http(s) URL`},
		{name: "link not an object", body: trigger(func(ev, p obj) { ev["links"] = []string{"https://example.com"} }), wantStatus: 400, wantReason: "links[0] must be an object"},
		{name: "relative client url", body: trigger(func(ev, p obj) { ev["client_url"] = "culprit" }), wantStatus: 400, wantReason: `client_url "culprit" is not an absolute http(s) URL`},
		{name: "change: unknown field", path: ChangePath, body: change(func(ev, p obj) { ev["event_action"] = "trigger" }), wantStatus: 400, wantReason: `unknown field "event_action"`},
		{name: "change: images", path: ChangePath, body: change(func(ev, p obj) { ev["images"] = []obj{{"src": "https://example.com/a.png"}} }), wantStatus: 400, wantReason: `unknown field "images"`},
		{name: "change: ruleset key", path: ChangePath, body: change(func(ev, p obj) { ev["routing_key"] = "R" + key[1:] }), wantStatus: 400, wantReason: "ruleset key"},
		{name: "change: missing payload", path: ChangePath, body: change(func(ev, p obj) { delete(ev, "payload") }), wantStatus: 400, wantReason: "payload is required"},
		{name: "change: missing summary", path: ChangePath, body: change(func(ev, p obj) { delete(p, "summary") }), wantStatus: 400, wantReason: "payload.summary is required"},
		{name: "change: severity is not a change field", path: ChangePath, body: change(func(ev, p obj) { p["severity"] = "info" }), wantStatus: 400, wantReason: `unknown field payload."severity"`},
		{name: "change: bad timestamp", path: ChangePath, body: change(func(ev, p obj) { p["timestamp"] = "yesterday" }), wantStatus: 400, wantReason: "is not an ISO 8601 timestamp"},
		{name: "change: relative link", path: ChangePath, body: change(func(ev, p obj) { ev["links"] = []obj{{"href": "releases/v2"}} }), wantStatus: 400, wantReason: "is not an absolute http(s) URL"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			method, path, ct := tc.method, tc.path, tc.contentType
			if method == "" {
				method = http.MethodPost
			}
			if path == "" {
				path = AlertPath
			}
			switch ct {
			case "":
				ct = "application/json"
			case "-":
				ct = ""
			}
			got := do(t, method, f.URL()+path, ct, mustJSON(t, tc.body))
			if got.Status != tc.wantStatus {
				t.Errorf("status = %d, want %d (%s)", got.Status, tc.wantStatus, got.Response)
			}
			if !strings.Contains(got.Response, jsonEscape(tc.wantReason)) {
				t.Errorf("response %s lacks reason %q", got.Response, tc.wantReason)
			}
			rej := f.Rejected()
			if len(rej) != 1 {
				t.Fatalf("Rejected() = %v, want one rejection", rej)
			}
			if !strings.Contains(strings.Join(rej[0].Reasons, "\n"), tc.wantReason) || rej[0].Status != tc.wantStatus {
				t.Errorf("rejection = %v, want status %d and reason %q", rej[0], tc.wantStatus, tc.wantReason)
			}
			if ev := f.Events(); len(ev) != 0 {
				t.Errorf("Events() = %d events, want none", len(ev))
			}
		})
	}
}

func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

// The rejection carries PagerDuty's response shape, with every problem of
// the event listed, not just the first.
func TestRejectionListsEveryReason(t *testing.T) {
	f := New(t)
	got := post(t, f.URL()+AlertPath, "application/json", mustJSON(t, trigger(func(ev, p obj) {
		delete(p, "source")
		p["severity"] = "fatal"
	})))
	if got.Status != 400 || got.Body["status"] != "invalid event" || got.Body["message"] != "Event object is invalid" {
		t.Fatalf("response = %d %v", got.Status, got.Body)
	}
	errs, _ := got.Body["errors"].([]any)
	if len(errs) != 2 {
		t.Errorf("errors = %v, want two", errs)
	}
}

func TestAcceptsValidEvents(t *testing.T) {
	tests := []struct {
		name     string
		path     string
		body     obj
		wantBody map[string]any
	}{
		{
			name: "full trigger",
			path: AlertPath,
			body: trigger(func(ev, p obj) {
				p["timestamp"] = "2026-11-20T16:04:00Z"
				p["component"], p["group"], p["class"] = "edge-router", "cloud.provider=aws", "new_error"
				p["custom_details"] = obj{"count": 420}
				ev["images"] = []obj{{"src": "https://culprit.example.com/c.png", "href": "https://culprit.example.com/f/1", "alt": "chart"}}
				ev["links"] = []obj{{"href": "https://culprit.example.com/f/1", "text": "evidence"}}
				ev["client"], ev["client_url"] = "culprit", "https://culprit.example.com"
			}),
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"},
		},
		{name: "PagerDuty's timestamp form", path: AlertPath, body: trigger(func(ev, p obj) { p["timestamp"] = "2015-07-17T08:42:58.315+0000" }),
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"}},
		{name: "nulls as absent", path: AlertPath, body: trigger(func(ev, p obj) { ev["links"], p["custom_details"] = nil, nil }),
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"}},
		{name: "acknowledge", path: AlertPath, body: obj{"routing_key": key, "event_action": "acknowledge", "dedup_key": "inc-1"},
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"}},
		{name: "resolve", path: AlertPath, body: obj{"routing_key": key, "event_action": "resolve", "dedup_key": "inc-1"},
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"}},
		{name: "summary of exactly 1024 characters", path: AlertPath, body: trigger(func(ev, p obj) { p["summary"] = strings.Repeat("日", 1023) + "…" }),
			wantBody: map[string]any{"status": "success", "message": "Event processed", "dedup_key": "inc-1"}},
		{name: "minimal change", path: ChangePath, body: change(nil),
			wantBody: map[string]any{"status": "success", "message": "Change event processed"}},
		{name: "full change", path: ChangePath, body: change(func(ev, p obj) {
			p["source"], p["timestamp"] = "culprit", "2026-11-20T16:00:00Z"
			p["custom_details"] = obj{"hosts": 12}
			ev["links"] = []obj{{"href": "https://github.com/acme/edge-router/releases/tag/v2.42.0", "text": "release"}}
		}), wantBody: map[string]any{"status": "success", "message": "Change event processed"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			got := post(t, f.URL()+tc.path, "application/json; charset=utf-8", mustJSON(t, tc.body))
			if got.Status != http.StatusAccepted {
				t.Fatalf("status = %d, want 202: %s", got.Status, got.Response)
			}
			if fmt.Sprint(got.Body) != fmt.Sprint(tc.wantBody) {
				t.Errorf("body = %v, want %v", got.Body, tc.wantBody)
			}
			if r := f.Rejected(); len(r) != 0 {
				t.Errorf("Rejected() = %v", r)
			}
			evs := f.Events()
			if len(evs) != 1 || evs[0].Seq != 1 || evs[0].Path != tc.path {
				t.Fatalf("Events() = %+v, want the one event", evs)
			}
			if (evs[0].Alert != nil) != (tc.path == AlertPath) || (evs[0].Change != nil) != (tc.path == ChangePath) {
				t.Errorf("event = %+v, want exactly the %s decoded", evs[0], tc.path)
			}
		})
	}
}

// PagerDuty folds triggers for an open alert into it, drops acknowledges
// and resolves without an open alert, and opens a new alert for a trigger
// after a resolve.
func TestDedupSemantics(t *testing.T) {
	f := New(t)
	send := func(action, dedup string) {
		t.Helper()
		ev := obj{"routing_key": key, "event_action": action, "dedup_key": dedup}
		if action == "trigger" {
			ev["payload"] = obj{"summary": action + " " + dedup, "source": "culprit", "severity": "error"}
		}
		if got := post(t, f.URL()+AlertPath, "application/json", mustJSON(t, ev)); got.Status != 202 {
			t.Fatalf("%s %s: %d %s", action, dedup, got.Status, got.Response)
		}
	}
	send("trigger", "a")
	send("trigger", "a")
	send("acknowledge", "a")
	send("trigger", "a")
	send("resolve", "a")
	send("resolve", "a")
	send("trigger", "a")
	send("resolve", "ghost")
	send("trigger", "b")

	want := map[string]Incident{
		"a":     {DedupKey: "a", State: StateTriggered, Triggers: 4, Alerts: 2, Acks: 1, Resolves: 2},
		"ghost": {DedupKey: "ghost", State: StateNone, Resolves: 1},
		"b":     {DedupKey: "b", State: StateTriggered, Triggers: 1, Alerts: 1},
	}
	got := f.Incidents()
	if len(got) != len(want) {
		t.Fatalf("Incidents() has %d keys, want %d: %+v", len(got), len(want), got)
	}
	for k, w := range want {
		g := got[k]
		if g.DedupKey != w.DedupKey || g.State != w.State || g.Triggers != w.Triggers || g.Alerts != w.Alerts || g.Acks != w.Acks || g.Resolves != w.Resolves {
			t.Errorf("incident %s = %+v, want %+v", k, g, w)
		}
	}
	if got["a"].Last.Action != "trigger" || got["a"].Last.Payload.Summary != "trigger a" {
		t.Errorf("last event of a = %+v", got["a"].Last)
	}
	if n := len(f.Events()); n != 9 {
		t.Errorf("Events() = %d, want 9", n)
	}
}

func TestTriggerWithoutDedupKeyGetsOne(t *testing.T) {
	f := New(t)
	got := post(t, f.URL()+AlertPath, "application/json", mustJSON(t, trigger(func(ev, p obj) { delete(ev, "dedup_key") })))
	k, _ := got.Body["dedup_key"].(string)
	if got.Status != 202 || k == "" {
		t.Fatalf("response = %d %v, want 202 with a generated dedup_key", got.Status, got.Body)
	}
	if in := f.Incidents()[k]; in.State != StateTriggered || f.Events()[0].DedupKey != k {
		t.Errorf("incident %s = %+v, event = %+v", k, in, f.Events()[0])
	}
}

func TestScriptedFailures(t *testing.T) {
	valid := func(t *testing.T) string { return mustJSON(t, trigger(nil)) }
	tests := []struct {
		name           string
		setup          func(f *Fake)
		body           func(t *testing.T) string
		wantStatus     []int
		wantRetryAfter string
		wantAccepted   int
		wantRejected   int
	}{
		{name: "FailWith then OK", setup: func(f *Fake) { f.FailWith(503, 2) }, body: valid, wantStatus: []int{503, 503, 202}, wantAccepted: 1},
		{name: "scripts queue in order", setup: func(f *Fake) { f.FailWith(502, 1); f.FailWith(429, 1) }, body: valid, wantStatus: []int{502, 429, 202}, wantAccepted: 1},
		{name: "Mode429 with Retry-After", setup: func(f *Fake) { f.SetMode(Mode429); f.SetRetryAfter("1") }, body: valid, wantStatus: []int{429, 429}, wantRetryAfter: "1"},
		{name: "Mode429 without Retry-After", setup: func(f *Fake) { f.SetMode(Mode429) }, body: valid, wantStatus: []int{429}},
		{name: "Mode500", setup: func(f *Fake) { f.SetMode(Mode500) }, body: valid, wantStatus: []int{500, 500}},
		{name: "script wins over mode", setup: func(f *Fake) { f.SetMode(Mode500); f.FailWith(429, 1) }, body: valid, wantStatus: []int{429, 500}},
		{name: "bad status answered as 500", setup: func(f *Fake) { f.FailWith(42, 1) }, body: valid, wantStatus: []int{500, 202}, wantAccepted: 1},
		{name: "invalid event still recorded as rejected", setup: func(f *Fake) { f.FailWith(503, 1) },
			body: func(t *testing.T) string { return mustJSON(t, trigger(func(ev, p obj) { delete(p, "source") })) }, wantStatus: []int{503, 400}, wantRejected: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := New(t)
			tc.setup(f)
			for i, want := range tc.wantStatus {
				got := post(t, f.URL()+AlertPath, "application/json", tc.body(t))
				if got.Status != want {
					t.Errorf("request %d: status %d, want %d", i+1, got.Status, want)
				}
				if want == 429 {
					if ra := got.Header.Get("Retry-After"); ra != tc.wantRetryAfter {
						t.Errorf("request %d: Retry-After %q, want %q", i+1, ra, tc.wantRetryAfter)
					}
				}
			}
			if n := len(f.Events()); n != tc.wantAccepted {
				t.Errorf("accepted %d events, want %d", n, tc.wantAccepted)
			}
			if n := len(f.Rejected()); n != tc.wantRejected {
				t.Errorf("rejected %d, want %d: %v", n, tc.wantRejected, f.Rejected())
			}
			if n := f.Requests(); n != len(tc.wantStatus) {
				t.Errorf("Requests() = %d, want %d", n, len(tc.wantStatus))
			}
		})
	}
}

// ModeHang answers nobody; the client's own timeout ends the request, and
// nothing is recorded as accepted.
func TestHangEndsWithClientContext(t *testing.T) {
	f := New(t)
	f.SetMode(ModeHang)
	ctx, cancel := context.WithCancel(context.Background())
	body := mustJSON(t, trigger(nil))
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.URL()+AlertPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := f.WaitFor(context.Background(), func(f *Fake) bool { return f.Requests() == 1 }); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-errc; err == nil {
		t.Fatal("hung request returned without error")
	}
	if n := len(f.Events()); n != 0 {
		t.Errorf("a hung request was accepted: %d events", n)
	}
}

// Close must not wait for a hung request whose client never gives up.
func TestCloseReleasesHungRequests(t *testing.T) {
	f := New(t)
	f.SetMode(ModeHang)
	body := mustJSON(t, trigger(nil))
	errc := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, f.URL()+AlertPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		errc <- err
	}()
	if err := f.WaitFor(context.Background(), func(f *Fake) bool { return f.Requests() == 1 }); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { f.Close(); close(closed) }()
	// The timer only bounds a failure; nothing waits on it when Close works.
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close deadlocked on a hung request")
	}
	<-errc // the client sees the connection end, with or without a response
	f.Close()
}

func TestWaitForReturnsOnContext(t *testing.T) {
	f := New(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.WaitFor(ctx, func(f *Fake) bool { return false }); err != context.Canceled {
		t.Errorf("WaitFor = %v, want context.Canceled", err)
	}
	if err := f.WaitFor(ctx, func(f *Fake) bool { return true }); err != nil {
		t.Errorf("WaitFor with a true condition = %v, want nil", err)
	}
}

// Concurrent senders are each counted once, and every accepted event gets
// its own sequence number.
func TestConcurrentRequests(t *testing.T) {
	f := New(t)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		body := mustJSON(t, trigger(func(ev, p obj) { ev["dedup_key"] = fmt.Sprintf("k%d", i%4) }))
		wg.Go(func() {
			resp, err := http.Post(f.URL()+AlertPath, "application/json", bytes.NewBufferString(body))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	wg.Wait()
	evs := f.Events()
	if len(evs) != n {
		t.Fatalf("accepted %d, want %d", len(evs), n)
	}
	seen := map[int]bool{}
	for _, e := range evs {
		seen[e.Seq] = true
	}
	if len(seen) != n {
		t.Errorf("sequence numbers not unique: %d distinct of %d", len(seen), n)
	}
	total := 0
	for _, in := range f.Incidents() {
		total += in.Triggers
		if in.Alerts != 1 {
			t.Errorf("incident %s opened %d alerts, want 1", in.DedupKey, in.Alerts)
		}
	}
	if total != n {
		t.Errorf("triggers counted %d, want %d", total, n)
	}
}
