package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/pagerduty/pdfake"
	"github.com/culprithq/culprit/escalate/slack/slackfake"
	"github.com/culprithq/culprit/escalate/store"
)

// daemonProc supervises the real culprit binary: the one that runs is
// replaced after each kill -9.
type daemonProc struct {
	t      *testing.T
	bin    string
	config string
	env    []string

	// exited gets the log of a daemon that ended on its own.
	exited chan string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{} // closed when cmd has been reaped
	stderr   *syncBuffer
	expected bool // the end of cmd is ours (kill9 or stop)
	kills    int
}

// syncBuffer is a bytes.Buffer safe for the writer (the process's
// stderr copier) and a reader at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func (d *daemonProc) start() {
	d.t.Helper()
	cmd := exec.Command(d.bin, "serve", "--config", d.config, "--log-level", "debug")
	cmd.Env = append(os.Environ(), d.env...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		d.t.Fatal(err)
	}
	done := make(chan struct{})
	d.mu.Lock()
	d.cmd, d.stderr, d.done, d.expected = cmd, stderr, done, false
	d.mu.Unlock()
	go func() {
		err := cmd.Wait()
		d.mu.Lock()
		expected := d.expected && d.cmd == cmd
		d.mu.Unlock()
		close(done)
		if !expected {
			d.exited <- fmt.Sprintf("%v\n%s", err, stderr.String())
		}
	}()
}

// kill9 sends SIGKILL to the running daemon and reaps it: no deferred
// cleanup, no graceful shutdown, no chance to record anything.
func (d *daemonProc) kill9() {
	d.mu.Lock()
	d.expected = true
	cmd, done := d.cmd, d.done
	d.kills++
	d.mu.Unlock()
	cmd.Process.Kill()
	<-done
}

// stop ends the daemon gracefully and returns its log.
func (d *daemonProc) stop() string {
	d.mu.Lock()
	d.expected = true
	cmd, done, stderr := d.cmd, d.done, d.stderr
	d.mu.Unlock()
	cmd.Process.Signal(syscall.SIGTERM)
	<-done
	return stderr.String()
}

// killPoint says after which vendor answer the daemon dies: the vendor has
// the message, culprit has not yet recorded it. It is the worst moment to
// crash, and the one where "sends nothing twice" is decided.
type killPoint struct {
	name  string
	match func(r *http.Request, body []byte) bool
	nth   int
	seen  int
	fired bool
}

// vendorProxy stands between culprit and a vendor fake, forwards every
// request, and at a kill point kills the daemon after the fake answered
// and before culprit reads the answer.
//
// Requests the dying daemon already sent still reach the vendor, as they
// would over a network, and before the daemon restarts: inflight, shared
// by every proxy, is waited for before the restart is signalled.
type vendorProxy struct {
	target *url.URL
	points []*killPoint
	d      *daemonProc
	sw     *killSwitch
}

// killSwitch is what the proxies share: requests in flight, and whether a
// kill is under way (one per daemon: the test restarts it once).
type killSwitch struct {
	mu       sync.Mutex
	idle     *sync.Cond
	inflight int
	killing  bool
	killed   chan string
}

func newKillSwitch() *killSwitch {
	k := &killSwitch{killed: make(chan string, 1)}
	k.idle = sync.NewCond(&k.mu)
	return k
}

// rearm allows the next kill, once the restarted daemon runs.
func (k *killSwitch) rearm() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.killing = false
}

func (k *killSwitch) done() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.inflight--
	k.idle.Broadcast()
}

func (p *vendorProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := p.sw
	sw.mu.Lock()
	sw.inflight++
	sw.mu.Unlock()
	defer sw.done()
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequest(r.Method, p.target.String()+r.URL.Path, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	sw.mu.Lock()
	var kill *killPoint
	for _, k := range p.points {
		if !k.fired && !sw.killing && k.match(r, body) {
			k.seen++
			if k.seen == k.nth {
				k.fired, kill, sw.killing = true, k, true
			}
			break
		}
	}
	sw.mu.Unlock()
	if kill != nil {
		p.d.kill9()
		sw.mu.Lock()
		for sw.inflight > 1 { // the others, not this one
			sw.idle.Wait()
		}
		sw.mu.Unlock()
		sw.killed <- kill.name
		return
	}
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

func newVendorProxy(t *testing.T, target string, d *daemonProc, sw *killSwitch, points ...*killPoint) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&vendorProxy{target: u, points: points, d: d, sw: sw})
	t.Cleanup(srv.Close)
	return srv.URL
}

func alertAction(action string) func(*http.Request, []byte) bool {
	return func(r *http.Request, body []byte) bool {
		return r.URL.Path == pdfake.AlertPath && bytes.Contains(body, []byte(`"event_action":"`+action+`"`))
	}
}

// TestKill9DeliversExactlyWhatREADMEStates runs the real culprit binary
// against the PagerDuty and Slack fakes and kills it with SIGKILL four
// times, each time just after a vendor accepted a message and before
// culprit could record it: a trigger, a Slack post, a change event and a
// resolve. After the restarts it counts what the vendors got, per the
// README's delivery guarantees: one PagerDuty alert per incident, opened
// once and resolved; exactly one Slack post per incident; every change
// event at least once, a second copy only of those in flight at a kill.
func TestKill9DeliversExactlyWhatREADMEStates(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the culprit binary")
	}
	ctx := context.Background()
	dir := t.TempDir()
	bin := filepath.Join(dir, "culprit")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	pd := pdfake.New(t)
	sl := slackfake.New(t)
	d := &daemonProc{t: t, bin: bin, env: []string{"K9_PD_KEY=" + e2eRoutingKey, "K9_SLACK_SECRET=" + e2eSlackSecret,
		"K9_SLACK_BOT=" + slackfake.BotToken, "K9_TOKEN=intake-token"}, exited: make(chan string, 1)}
	sw := newKillSwitch()
	pdURL := newVendorProxy(t, pd.URL(), d, sw,
		&killPoint{name: "after PagerDuty accepted the 2nd trigger", match: alertAction("trigger"), nth: 2},
		&killPoint{name: "after PagerDuty accepted the 3rd change event", match: func(r *http.Request, _ []byte) bool { return r.URL.Path == pdfake.ChangePath }, nth: 3},
		&killPoint{name: "after PagerDuty accepted the 1st resolve", match: alertAction("resolve"), nth: 1})
	slURL := newVendorProxy(t, sl.URL(), d, sw,
		&killPoint{name: "after Slack accepted the 2nd post", match: func(r *http.Request, _ []byte) bool {
			return r.URL.Path == slackfake.APIPath+slackfake.KindPostMessage
		}, nth: 2})

	data := filepath.Join(dir, "data")
	d.config = filepath.Join(dir, "culprit.yml")
	cfg := fmt.Sprintf(`
sources:
  elasticsearch:
    urls: [http://127.0.0.1:1]
    index: culprit-kill9-none
evaluation:
  interval: 60m
  lookback: 6h
pagerduty:
  url: %s
  routing_key: {env: K9_PD_KEY}
slack:
  channel: C0KILL9
  bot_token: {env: K9_SLACK_BOT}
  signing_secret: {env: K9_SLACK_SECRET}
  api_url: %s/api/
intake:
  listen: "127.0.0.1:0"
  token: {env: K9_TOKEN}
store:
  dir: %s
`, pdURL, slURL, data)
	if err := os.WriteFile(d.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	// What the evaluator and intake would have queued: five incidents,
	// each paged, posted and resolved, and ten deploys' change events.
	st, err := store.Open(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	const incidents, deploys = 5, 10
	for i := range incidents {
		in := escalate.Incident{ID: fmt.Sprintf("inc-k9-%02d", i), Key: fmt.Sprintf("culprit/k9/%02d", i), Service: "edge-router",
			Signature: "upstream timed out", Status: escalate.StatusResolved, Action: escalate.ActionPage, Severity: correlate.SeverityPage,
			OpenedAt: now, Onset: now, LastSeen: now, ResolvedAt: now}
		body, _ := json.Marshal(in)
		var ms []escalate.Message
		for _, m := range []struct {
			ch     escalate.Channel
			action string
		}{{escalate.ChannelPagerDuty, escalate.Trigger}, {escalate.ChannelSlack, escalate.Post}, {escalate.ChannelPagerDuty, escalate.Resolve}} {
			ms = append(ms, escalate.Message{Channel: m.ch, Action: m.action, IncidentID: in.ID, Key: in.Key, Service: in.Service,
				Body: body, CreatedAt: now, NextAt: now})
		}
		if err := st.Apply(ctx, []escalate.Change{{Incident: in, Messages: ms}}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range deploys {
		dep := correlate.Deploy{ID: fmt.Sprintf("k9-%02d-deploy", i), Service: "edge-router", Version: "3.8.0", StartedAt: now}
		body, _ := json.Marshal(dep)
		if err := st.Enqueue(ctx, escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Key: dep.ID,
			Service: dep.Service, Body: body, CreatedAt: now, NextAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	d.start()
	deadline := time.NewTimer(2 * time.Minute)
	defer deadline.Stop()
	for range 4 {
		select {
		case name := <-sw.killed:
			t.Logf("kill -9 %s; restarting", name)
			d.start()
			sw.rearm()
		case log := <-d.exited:
			t.Fatalf("the daemon exited on its own: %s", log)
		case <-deadline.C:
			t.Fatalf("after %d kills, the daemon stopped delivering before every kill point was reached\n%s", d.kills, d.stop())
		}
	}
	// Everything is delivered when the outbox is empty, every incident
	// is resolved in PagerDuty and posted in Slack, and every deploy has
	// its change event. The store is read alongside the daemon (SQLite
	// allows readers from another process).
	st, err = store.Open(ctx, data, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	done := func() bool {
		if n, err := st.Depth(ctx); err != nil || n != 0 {
			return false
		}
		pdIncidents := pd.Incidents()
		for i := range incidents {
			if pdIncidents[fmt.Sprintf("culprit/k9/%02d", i)].State != pdfake.StateResolved {
				return false
			}
		}
		return len(changeCounts(pd, deploys)) == deploys && len(sl.Delivered()) >= incidents
	}
	// Polled with a deadline: the state is spread over two fakes and a
	// store in another process, so no one signal says "all done".
	until := time.Now().Add(time.Minute)
	for !done() {
		if time.Now().After(until) {
			t.Fatalf("not everything delivered within a minute of the last restart\n%s", d.stop())
		}
		time.Sleep(20 * time.Millisecond)
	}
	log := d.stop()

	// Nothing went to the dead letters.
	for i := range incidents {
		id := fmt.Sprintf("inc-k9-%02d", i)
		evs, _ := st.Events(ctx, id)
		for _, e := range evs {
			if e.Kind == escalate.EventPageFailed {
				t.Errorf("%s: %s", id, e.Text)
			}
		}
	}

	// PagerDuty: one alert per incident, opened once and resolved. A
	// trigger or resolve in flight at a kill arrives again after it; its
	// dedup_key makes the second a no-op. At most one per lane per kill.
	resent := 0
	for key, in := range pd.Incidents() {
		if !strings.HasPrefix(key, "culprit/k9/") {
			continue
		}
		if in.Alerts != 1 || in.State != pdfake.StateResolved {
			t.Errorf("PagerDuty %s: %d alerts, state %s; want 1 alert, resolved", key, in.Alerts, in.State)
		}
		resent += in.Triggers - 1 + in.Resolves - 1
	}
	if resent < 2 || resent > d.kills {
		t.Errorf("%d triggers and resolves sent again over %d kills, want between 2 (the two interrupted) and %d", resent, d.kills, d.kills)
	}
	// Slack: exactly one post per incident, though a kill followed the
	// second post's acceptance.
	posts := map[string]int{}
	for _, p := range sl.Delivered() {
		var md struct {
			Payload map[string]any `json:"event_payload"`
		}
		json.Unmarshal(p.Metadata, &md)
		posts[fmt.Sprint(md.Payload["incident_id"])]++
	}
	for i := range incidents {
		if id := fmt.Sprintf("inc-k9-%02d", i); posts[id] != 1 {
			t.Errorf("Slack: %d posts for %s, want exactly 1 (all posts: %v)", posts[id], id, posts)
		}
	}
	if sl.Lookups() == 0 {
		t.Error("no conversations.history look-up after a kill during a Slack post")
	}
	// Change events: at least once. A second copy is allowed only for an
	// event in flight at a kill (one per kill at most), and the one the
	// third kill interrupted must have been resent.
	counts := changeCounts(pd, deploys)
	extra := 0
	for i := range deploys {
		id := fmt.Sprintf("k9-%02d-deploy", i)
		if counts[id] < 1 {
			t.Errorf("change event for %s never arrived", id)
		}
		extra += max(0, counts[id]-1)
	}
	if extra < 1 || extra > d.kills {
		t.Errorf("%d duplicate change events over %d kills, want between 1 (the interrupted one) and %d: %v", extra, d.kills, d.kills, counts)
	}
	if t.Failed() {
		t.Logf("last daemon log:\n%s", log)
		return
	}
	t.Logf("%d kills: %d triggers or resolves and %d change events sent twice; one alert and one Slack post per incident", d.kills, resent, extra)
}

// changeCounts counts the change events PagerDuty accepted per deploy id.
func changeCounts(pd *pdfake.Fake, deploys int) map[string]int {
	counts := map[string]int{}
	for _, e := range pd.Events() {
		if e.Change == nil {
			continue
		}
		for i := range deploys {
			if id := fmt.Sprintf("k9-%02d-deploy", i); bytes.Contains(e.Body, []byte(id)) {
				counts[id]++
			}
		}
	}
	return counts
}
