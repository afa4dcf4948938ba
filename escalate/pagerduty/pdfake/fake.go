// Package pdfake is a fake PagerDuty Events API v2 for tests: the
// escalate/pagerduty tests and the daemon's end-to-end tests.
//
// It checks every request against PagerDuty's documented schema, so a test
// that asserts Rejected() is empty proves the events would be accepted, and
// it keeps PagerDuty's dedup semantics, so a test can assert "one page,
// then one resolve" instead of counting HTTP requests. Failures (throttling,
// server errors, a server that never answers) are scripted by the test and
// never depend on wall time.
//
// Typical use:
//
//	f := pdfake.New(t)
//	n, err := pagerduty.New(pagerduty.Config{URL: f.URL()})
//	... run the code that pages ...
//	if r := f.Rejected(); len(r) > 0 {
//		t.Fatalf("PagerDuty would reject: %v", r)
//	}
//	if in := f.Incidents()[key]; in.State != pdfake.StateTriggered || in.Alerts != 1 { ... }
package pdfake

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"

	pd "github.com/PagerDuty/go-pagerduty"
)

// Paths served, as PagerDuty serves them under https://events.pagerduty.com.
const (
	AlertPath  = "/v2/enqueue"
	ChangePath = "/v2/change/enqueue"
)

// Mode is how the fake answers requests that no FailWith script covers.
type Mode int

const (
	// ModeOK validates and accepts events, like PagerDuty on a good day.
	ModeOK Mode = iota
	// Mode429 throttles every request.
	Mode429
	// Mode500 fails every request with an internal server error.
	Mode500
	// ModeHang never answers: the handler blocks until the client gives up
	// (its context is cancelled or it times out) or the fake is closed.
	ModeHang
)

// State is where an alert is in PagerDuty's life cycle.
type State string

const (
	// StateNone: events arrived for the key, but no trigger ever did.
	// PagerDuty drops such acknowledges and resolves.
	StateNone State = ""
	// StateTriggered: an alert is open and notifying.
	StateTriggered State = "triggered"
	// StateAcknowledged: an alert is open and someone is on it.
	StateAcknowledged State = "acknowledged"
	// StateResolved: the last alert for the key is closed; the next trigger
	// opens a new one.
	StateResolved State = "resolved"
)

// Incident is what PagerDuty made of the alert events for one dedup_key.
type Incident struct {
	DedupKey string
	State    State
	// Triggers counts accepted trigger events, deduplicated ones included.
	Triggers int
	// Alerts counts alerts opened: triggers that found no open alert for
	// the key. A trigger after a resolve opens a new one, as in PagerDuty.
	Alerts int
	// Acks and Resolves count accepted acknowledge and resolve events,
	// including those PagerDuty would drop for want of an open alert.
	Acks     int
	Resolves int
	// Last is the last accepted event for the key.
	Last pd.V2Event
}

// Event is one accepted event. Exactly one of Alert and Change is set.
// Callers must not modify what the pointers refer to.
type Event struct {
	// Seq numbers accepted events from 1, in the order they were accepted.
	Seq int
	// Path is AlertPath or ChangePath.
	Path string
	// DedupKey is the key the alert event was applied to: its own, or the
	// one the fake generated for a trigger without one.
	DedupKey string
	Alert    *pd.V2Event
	Change   *pd.ChangeEvent
	// Body is the request body as received.
	Body json.RawMessage
}

// Rejection is a request that broke the schema (or the protocol: wrong
// method, path or content type).
type Rejection struct {
	Method, Path string
	// Status is what the fake answered: 400 normally, or the scripted
	// failure status when one applied to the request.
	Status  int
	Reasons []string
	// Body is the request body, cut to 4 KB.
	Body string
}

// String reads well in a test failure message.
func (r Rejection) String() string {
	return fmt.Sprintf("%s %s: %d: %v", r.Method, r.Path, r.Status, r.Reasons)
}

// Fake is a running fake Events API. All methods are safe for concurrent
// use.
type Fake struct {
	srv       *httptest.Server
	release   chan struct{} // closed by Close, frees hung handlers
	closeOnce sync.Once

	mu         sync.Mutex
	changed    chan struct{} // closed and replaced on every request
	mode       Mode
	script     []int
	retryAfter string
	requests   int
	seq        int
	events     []Event
	incidents  map[string]*Incident
	rejected   []Rejection
}

// New starts a fake and closes it when the test ends.
func New(t testing.TB) *Fake {
	t.Helper()
	f := &Fake{
		release:   make(chan struct{}),
		changed:   make(chan struct{}),
		incidents: map[string]*Incident{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

// URL is the base to configure as the Events API URL.
func (f *Fake) URL() string { return f.srv.URL }

// Close stops the fake. Requests hung in ModeHang are released first, so
// Close never waits on a client that has no timeout. It is idempotent.
func (f *Fake) Close() {
	f.closeOnce.Do(func() {
		close(f.release)
		f.srv.Close()
	})
}

// SetMode sets how requests without a scripted failure are answered.
func (f *Fake) SetMode(m Mode) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = m
}

// FailWith answers the next n requests with status, whatever their
// content, before the mode applies again; nothing is recorded as accepted,
// even for a scripted 2xx (an event lost after PagerDuty said yes). Scripts
// queue up in call order. A status outside 200–599 is answered as 500.
func (f *Fake) FailWith(status, n int) {
	if status < 200 || status > 599 {
		status = http.StatusInternalServerError
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range n {
		f.script = append(f.script, status)
	}
}

// SetRetryAfter sets the Retry-After header sent with 429 answers; empty
// (the default) sends none.
func (f *Fake) SetRetryAfter(v string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.retryAfter = v
}

// Requests counts every request received, including rejected, failed and
// hung ones.
func (f *Fake) Requests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

// Events returns the accepted events in order.
func (f *Fake) Events() []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.events)
}

// Incidents returns the alert state per dedup_key.
func (f *Fake) Incidents() map[string]Incident {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]Incident, len(f.incidents))
	for k, in := range f.incidents {
		out[k] = *in
	}
	return out
}

// Rejected returns every request that broke the schema, including those
// answered with a scripted failure, so that asserting it is empty catches
// malformed events whatever the fault injection.
func (f *Fake) Rejected() []Rejection {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.rejected)
}

// WaitFor blocks until cond holds or ctx is done, re-evaluating cond each
// time a request arrives. cond may call the Fake's methods. It returns
// ctx.Err() when ctx ends first.
func (f *Fake) WaitFor(ctx context.Context, cond func(*Fake) bool) error {
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		// ch was taken before cond runs, so a request that lands while cond
		// runs has already closed it and the loop goes round again.
		if cond(f) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// notify wakes WaitFor callers; f.mu must be held.
func (f *Fake) notify() {
	close(f.changed)
	f.changed = make(chan struct{})
}

type answer struct {
	status int
	body   any
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	body, readErr := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))

	f.mu.Lock()
	f.requests++
	scripted := 0
	if len(f.script) > 0 {
		scripted, f.script = f.script[0], f.script[1:]
	} else {
		switch f.mode {
		case Mode429:
			scripted = http.StatusTooManyRequests
		case Mode500:
			scripted = http.StatusInternalServerError
		}
	}
	hang := scripted == 0 && f.mode == ModeHang
	retryAfter := f.retryAfter
	f.mu.Unlock()

	in, a, reasons := check(r, body, readErr)

	f.mu.Lock()
	switch {
	case len(reasons) > 0:
		status := a.status
		if scripted != 0 {
			status = scripted
		}
		f.rejected = append(f.rejected, Rejection{Method: r.Method, Path: r.URL.Path, Status: status, Reasons: reasons, Body: cut(string(body), 4096)})
	case scripted == 0 && !hang:
		a = f.accept(in, body)
	}
	f.notify()
	f.mu.Unlock()

	switch {
	case hang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
	case scripted != 0:
		if scripted == http.StatusTooManyRequests && retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		writeJSON(w, scripted, failure(scripted))
	default:
		writeJSON(w, a.status, a.body)
	}
}

// incoming is a request that passed the checks.
type incoming struct {
	path   string
	alert  pd.V2Event
	change pd.ChangeEvent
}

// check validates one request; a non-empty reasons means the answer is
// the rejection to send.
func check(r *http.Request, body []byte, readErr error) (incoming, answer, []string) {
	invalid := func(status int, reasons ...string) (incoming, answer, []string) {
		return incoming{}, answer{status, map[string]any{"status": "invalid event", "message": "Event object is invalid", "errors": reasons}}, reasons
	}
	if r.URL.Path != AlertPath && r.URL.Path != ChangePath {
		return invalid(http.StatusNotFound, fmt.Sprintf("no such endpoint %s", r.URL.Path))
	}
	if r.Method != http.MethodPost {
		return invalid(http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed, use POST", r.Method))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return invalid(http.StatusBadRequest, fmt.Sprintf("Content-Type must be application/json, got %q", r.Header.Get("Content-Type")))
	}
	if readErr != nil {
		return invalid(http.StatusBadRequest, "cannot read body: "+readErr.Error())
	}
	if len(body) > MaxBody {
		return invalid(http.StatusBadRequest, fmt.Sprintf("event is larger than %d bytes, PagerDuty's 512 KB limit", MaxBody))
	}
	var o object
	if err := json.Unmarshal(body, &o); err != nil || o == nil {
		reasons := []string{"JSON parse error: body must be one JSON object"}
		return incoming{}, answer{http.StatusBadRequest, map[string]any{"status": "Unrecognized object", "message": "Event object format is unrecognized", "errors": reasons}}, reasons
	}
	in := incoming{path: r.URL.Path}
	var reasons []string
	if in.path == AlertPath {
		in.alert, reasons = checkAlert(o)
	} else {
		in.change, reasons = checkChange(o)
	}
	if len(reasons) > 0 {
		return invalid(http.StatusBadRequest, reasons...)
	}
	return in, answer{}, nil
}

// accept records a valid event and applies PagerDuty's dedup rules; f.mu
// must be held.
func (f *Fake) accept(req incoming, body []byte) answer {
	f.seq++
	ev := Event{Seq: f.seq, Path: req.path, Body: json.RawMessage(slices.Clone(body))}
	if req.path == ChangePath {
		ev.Change = &req.change
		f.events = append(f.events, ev)
		return answer{http.StatusAccepted, map[string]any{"status": "success", "message": "Change event processed"}}
	}
	ae := req.alert
	key := ae.DedupKey
	if key == "" {
		// PagerDuty generates a UUID; any unique key will do here.
		key = fmt.Sprintf("pdfake-%08d", f.seq)
	}
	ev.Alert, ev.DedupKey = &ae, key
	f.events = append(f.events, ev)

	in := f.incidents[key]
	if in == nil {
		in = &Incident{DedupKey: key}
		f.incidents[key] = in
	}
	open := in.State == StateTriggered || in.State == StateAcknowledged
	switch ae.Action {
	case "trigger":
		in.Triggers++
		if !open {
			in.Alerts++
			in.State = StateTriggered
		}
	case "acknowledge":
		in.Acks++
		if open {
			in.State = StateAcknowledged
		}
	case "resolve":
		in.Resolves++
		if open {
			in.State = StateResolved
		}
	}
	in.Last = ae
	return answer{http.StatusAccepted, map[string]any{"status": "success", "message": "Event processed", "dedup_key": key}}
}

func failure(status int) map[string]any {
	switch {
	case status == http.StatusTooManyRequests:
		return map[string]any{"status": "throttle event", "message": "Requests for this service are arriving too quickly. Please retry later."}
	case status >= 500:
		return map[string]any{"status": "error", "message": "Internal server error"}
	default:
		return map[string]any{"status": "error", "message": http.StatusText(status)}
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
