package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/simulate"
)

// fakeClock is a wall clock that moves only when slept on, so a live run
// of an hour takes no time and every wait is recorded exactly.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

// wall0 is the fake wall clock's start: not the simulated start, so a
// mix-up of the two shows.
var wall0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// recordingSink is a docSink that notes when, in simulated time, each
// document arrived.
type recordingSink struct {
	clock  *simClock // set once the run's clock is known
	times  []time.Time
	at     []time.Time // simulated clock when added
	closed int
	fail   error                          // returned by Add once set
	onAdd  func(n int, t time.Time) error // optional hook
}

func (s *recordingSink) Add(_ context.Context, t time.Time, doc []byte) error {
	if s.fail != nil {
		return s.fail
	}
	if !json.Valid(doc) {
		return fmt.Errorf("invalid document %s", doc)
	}
	s.times = append(s.times, t)
	s.at = append(s.at, s.clock.simNow())
	if s.onAdd != nil {
		return s.onAdd(len(s.times), t)
	}
	return nil
}

func (s *recordingSink) Close(context.Context) (elasticsearch.BulkStats, error) {
	s.closed++
	n := uint64(len(s.times))
	return elasticsearch.BulkStats{Added: n, Indexed: n}, nil
}

// published is one event as the live feed released it.
type published struct {
	ev      simulate.Event
	simNow  time.Time
	emitted int // documents written before it
}

// liveRun runs simulateLive on a fake clock and records everything.
type liveRun struct {
	sink   *recordingSink
	events []published
	clock  *fakeClock
	out    string
	stdout string
	err    error
}

func runLive(t *testing.T, ctx context.Context, cfg simulate.Config, speed float64, sink *recordingSink, publish func(simulate.Event)) *liveRun {
	t.Helper()
	r := &liveRun{sink: sink, clock: &fakeClock{t: wall0}, out: t.TempDir()}
	var stdout bytes.Buffer
	sim0 := cfg.Start
	sink.clock = &simClock{sim0: sim0, wall0: wall0, speed: speed, now: r.clock.now}
	o := liveOptions{
		speed: speed, sink: sink, now: r.clock.now, sleep: r.clock.sleep,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), out: r.out, prefix: "logs-", stdout: &stdout,
		publish: func(ev simulate.Event) {
			r.events = append(r.events, published{ev, sink.clock.simNow(), len(sink.times)})
			if publish != nil {
				publish(ev)
			}
		},
	}
	r.err = simulateLive(ctx, cfg, o)
	r.stdout = stdout.String()
	return r
}

// TestLivePacing checks that a live run releases every document and every
// deploy and ticket event at its simulated moment, on the simulated clock
// that speed derives from the wall clock.
func TestLivePacing(t *testing.T) {
	start := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)
	tests := []struct {
		name  string
		cfg   simulate.Config
		speed float64
	}{
		{"real time", simulate.Config{Seed: 42, Shape: simulate.ShapeFriday, Start: start, Duration: 50 * time.Minute, Onset: 15 * time.Minute, PeakPerMin: 300}, 1},
		{"an hour a minute", simulate.Config{Seed: 7, Shape: simulate.ShapeCanary, Start: start, Duration: 90 * time.Minute, Onset: 20 * time.Minute, PeakPerMin: 300}, 60},
		{"slower than real time", simulate.Config{Seed: 3, Shape: simulate.ShapeTicketSurge, Start: start, Duration: 45 * time.Minute, Onset: 10 * time.Minute, PeakPerMin: 100}, 0.5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runLive(t, context.Background(), tc.cfg, tc.speed, &recordingSink{}, nil)
			if r.err != nil {
				t.Fatal(r.err)
			}
			plan, err := simulate.Generate(context.Background(), tc.cfg, func(*simulate.Doc) error { return nil })
			if err != nil {
				t.Fatal(err)
			}
			// Every document, and no other, in order.
			if len(r.sink.times) != plan.Docs || plan.Docs == 0 {
				t.Fatalf("%d documents written, the run has %d", len(r.sink.times), plan.Docs)
			}
			slack := time.Duration(float64(docSlack) * tc.speed)
			const tick = time.Microsecond // float rounding of the clock
			for i, dt := range r.sink.times {
				if at := r.sink.at[i]; at.Before(dt.Add(-slack-tick)) || at.After(dt.Add(tick)) {
					t.Fatalf("document %d stamped %s written at simulated %s", i, dt.Format(time.RFC3339Nano), at.Format(time.RFC3339Nano))
				}
			}
			// Every event, each at its moment, between the documents
			// before and after it.
			want := simulate.Events(plan)
			var got []simulate.Event
			for _, p := range r.events {
				got = append(got, p.ev)
				due := p.ev.At
				if due.Before(start) {
					due = start // announced before the run: published at once
				}
				if p.simNow.Before(due.Add(-tick)) || p.simNow.After(due.Add(tick)) {
					t.Errorf("%s at %s published at simulated %s", p.ev.Kind, p.ev.At, p.simNow)
				}
				if p.emitted > 0 && !r.sink.times[p.emitted-1].Before(p.ev.At) {
					t.Errorf("%s at %s published after a document at %s", p.ev.Kind, p.ev.At, r.sink.times[p.emitted-1])
				}
				if p.emitted < len(r.sink.times) && r.sink.times[p.emitted].Before(p.ev.At) {
					t.Errorf("%s at %s published before a document at %s", p.ev.Kind, p.ev.At, r.sink.times[p.emitted])
				}
			}
			if !reflect.DeepEqual(got, want) || len(want) == 0 {
				t.Errorf("published %d events, want the run's %d in order", len(got), len(want))
			}
			// The run lasts its duration divided by the speed.
			if took, wantTook := r.clock.now().Sub(wall0), time.Duration(float64(tc.cfg.Duration)/tc.speed); took < wantTook-tick || took > wantTook+tick {
				t.Errorf("run took %s of wall time, want %s", took, wantTook)
			}
			if r.sink.closed != 1 {
				t.Errorf("sink closed %d times", r.sink.closed)
			}
			var truth simulate.Truth
			b, err := os.ReadFile(filepath.Join(r.out, simulate.TruthFile))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &truth); err != nil || !truth.Onset.Equal(plan.Truth.Onset) {
				t.Errorf("truth.json: onset %s, err %v; want onset %s", truth.Onset, err, plan.Truth.Onset)
			}
			if wantOut := fmt.Sprintf("indexed %d documents into logs-* live from 2026-11-20T15:30:00Z, until %s;", plan.Docs, start.Add(tc.cfg.Duration).Format(time.RFC3339)); !strings.Contains(r.stdout, wantOut) {
				t.Errorf("stdout %q lacks %q", r.stdout, wantOut)
			}
		})
	}
}

// TestLiveStartIsNow checks the clock of a run started without --start:
// its simulated clock reads the wall clock's time at once (at speed 1 it
// is the wall clock), and the minute so far is written immediately.
func TestLiveStartIsNow(t *testing.T) {
	start := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC) // the minute
	began := start.Add(48 * time.Second)                     // the wall clock when the run begins
	for _, speed := range []float64{1, 60} {
		t.Run(fmt.Sprintf("speed %g", speed), func(t *testing.T) {
			clock := &fakeClock{t: began}
			var walls, times []time.Time
			sink := &recordingSink{clock: &simClock{sim0: start, wall0: began, speed: speed, now: clock.now}, onAdd: func(_ int, dt time.Time) error {
				walls = append(walls, clock.now())
				times = append(times, dt)
				return nil
			}}
			cfg := simulate.Config{Seed: 5, Shape: simulate.ShapeFriday, Start: start, Duration: 20 * time.Minute, Onset: 5 * time.Minute, PeakPerMin: 300}
			err := simulateLive(context.Background(), cfg, liveOptions{
				speed: speed, startIsNow: true, sink: sink, now: clock.now, sleep: clock.sleep,
				log: slog.New(slog.NewTextHandler(io.Discard, nil)), out: t.TempDir(), stdout: io.Discard,
			})
			if err != nil {
				t.Fatal(err)
			}
			wall0 := began.Add(-time.Duration(float64(began.Sub(start)) / speed))
			slack := docSlack + time.Microsecond
			caughtUp := 0
			for i, dt := range times {
				want := wall0.Add(time.Duration(float64(dt.Sub(start)) / speed))
				if want.Before(began) {
					want = began
					caughtUp++
				}
				if walls[i].Before(want.Add(-slack)) || walls[i].After(want.Add(time.Microsecond)) {
					t.Fatalf("document at %s written at wall %s, want %s", dt.Format(time.RFC3339Nano), walls[i].Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
				}
			}
			if caughtUp == 0 || caughtUp == len(times) {
				t.Errorf("%d of %d documents written at once, want those of the first 48s", caughtUp, len(times))
			}
		})
	}
}

// TestLiveIncidentTiming checks the story a live run tells culprit: the
// bad deploy is announced when its rollout starts, before any document of
// the new version, and its hosts as they switch.
func TestLiveIncidentTiming(t *testing.T) {
	start := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)
	cfg := simulate.Config{Seed: 42, Shape: simulate.ShapeFriday, Start: start, Duration: time.Hour, Onset: 15 * time.Minute, PeakPerMin: 300}
	r := runLive(t, context.Background(), cfg, 60, &recordingSink{}, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	var truth simulate.Truth
	b, _ := os.ReadFile(filepath.Join(r.out, simulate.TruthFile))
	if err := json.Unmarshal(b, &truth); err != nil {
		t.Fatal(err)
	}
	var started *published
	hosts := 0
	for i, p := range r.events {
		if p.ev.DeployID != truth.SuspectDeployID {
			continue
		}
		switch p.ev.Kind {
		case simulate.DeployStarted:
			started = &r.events[i]
		case simulate.DeployProgress:
			if started == nil {
				t.Fatal("progress before the deploy started")
			}
			hosts += len(p.ev.Hosts)
		}
	}
	if started == nil {
		t.Fatalf("the bad deploy %s was never announced", truth.SuspectDeployID)
	}
	if want := start.Add(15 * time.Minute); !started.ev.At.Equal(want) || !started.simNow.Equal(want) {
		t.Errorf("bad deploy announced at %s (clock %s), want %s", started.ev.At, started.simNow, want)
	}
	if !truth.Onset.After(started.ev.At) && !truth.Onset.Equal(started.ev.At) {
		t.Errorf("onset %s before the deploy started at %s", truth.Onset, started.ev.At)
	}
	if hosts+len(started.ev.Deploy.Hosts) == 0 {
		t.Error("no host of the bad deploy was reported")
	}
}

// TestLiveStops checks that a live run stops cleanly on Ctrl-C, flushing
// what it wrote, and fails when Elasticsearch does.
func TestLiveStops(t *testing.T) {
	start := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)
	cfg := simulate.Config{Seed: 42, Shape: simulate.ShapeFriday, Start: start, Duration: time.Hour, Onset: 15 * time.Minute, PeakPerMin: 300}
	stopAt := start.Add(20 * time.Minute)
	sinkDown := errors.New("cluster gone")
	tests := []struct {
		name     string
		sink     func(cancel func()) *recordingSink
		wantErr  string
		wantStop bool
	}{
		{"ctrl-c", func(cancel func()) *recordingSink {
			return &recordingSink{onAdd: func(_ int, t time.Time) error {
				if !t.Before(stopAt) {
					cancel()
				}
				return nil
			}}
		}, "", true},
		{"elasticsearch fails", func(func()) *recordingSink {
			return &recordingSink{onAdd: func(_ int, t time.Time) error {
				if !t.Before(stopAt) {
					return sinkDown
				}
				return nil
			}}
		}, "cluster gone", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			sink := tc.sink(cancel)
			r := runLive(t, ctx, cfg, 60, sink, nil)
			if tc.wantErr != "" {
				if r.err == nil || !strings.Contains(r.err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", r.err, tc.wantErr)
				}
			} else if r.err != nil {
				t.Fatalf("err = %v, want a clean stop", r.err)
			}
			if sink.closed != 1 {
				t.Errorf("sink closed %d times, want 1 (flushed)", sink.closed)
			}
			last := sink.times[len(sink.times)-1]
			if last.Before(stopAt) || last.After(stopAt.Add(time.Second)) {
				t.Errorf("last document at %s, want the stop at %s", last, stopAt)
			}
			for _, p := range r.events {
				if p.ev.At.After(last) {
					t.Errorf("%s at %s published after the stop at %s", p.ev.Kind, p.ev.At, last)
				}
			}
			if tc.wantStop && !strings.Contains(r.stdout, "stopped at 2026-11-20T15:50:") {
				t.Errorf("stdout %q does not say where it stopped", r.stdout)
			}
		})
	}
}

// intakeRecord is one request the fake intake received.
type intakeRecord struct {
	path, auth, contentType string
	body                    []byte
}

// fakeIntake is culprit's intake API as the simulator sees it: it checks
// the token and answers each request with the next scripted status.
type fakeIntake struct {
	mu       sync.Mutex
	reqs     []intakeRecord
	statuses []int // consumed in order; 201 when exhausted
	header   http.Header
}

func (f *fakeIntake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.reqs = append(f.reqs, intakeRecord{r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type"), b})
	status := http.StatusCreated
	if len(f.statuses) > 0 {
		status, f.statuses = f.statuses[0], f.statuses[1:]
	}
	f.mu.Unlock()
	if r.Method != http.MethodPost {
		status = http.StatusMethodNotAllowed
	}
	for k, v := range f.header {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":"scripted %d"}`, status)
}

func (f *fakeIntake) records() []intakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reqs)
}

// sleepRecorder is a sleep that returns at once and notes how long it was
// asked to wait.
type sleepRecorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.d = append(s.d, d)
	return ctx.Err()
}

func TestIntakeClient(t *testing.T) {
	tk := correlate.Ticket{ID: 48001, CreatedAt: time.Date(2026, 11, 20, 16, 20, 0, 0, time.UTC), Subject: "Functions failing", OrganizationID: 10234}
	deploy := correlate.Deploy{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", StartedAt: time.Date(2026, 11, 20, 16, 0, 0, 0, time.UTC)}
	tests := []struct {
		name       string
		ev         simulate.Event
		statuses   []int
		retryAfter string
		wantPath   string
		wantReqs   int
		wantSleeps []time.Duration
		wantErr    string
	}{
		{name: "deploy", ev: simulate.Event{Kind: simulate.DeployStarted, DeployID: deploy.ID, Deploy: &deploy, At: deploy.StartedAt},
			wantPath: "/api/v1/deploys", wantReqs: 1},
		{name: "progress of an odd id", ev: simulate.Event{Kind: simulate.DeployProgress, DeployID: "dep/1 a", Hosts: []correlate.HostRollout{{Name: "h1", At: deploy.StartedAt}}},
			wantPath: "/api/v1/deploys/dep%2F1%20a/progress", wantReqs: 1},
		{name: "ticket", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk, At: tk.CreatedAt}, wantPath: "/api/v1/tickets", wantReqs: 1},
		{name: "retried after 503", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk}, statuses: []int{503, 503, 200},
			wantPath: "/api/v1/tickets", wantReqs: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "retry-after honoured", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk}, statuses: []int{429, 201}, retryAfter: "7",
			wantPath: "/api/v1/tickets", wantReqs: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "retry-after capped", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk}, statuses: []int{429, 201}, retryAfter: "3600",
			wantPath: "/api/v1/tickets", wantReqs: 2, wantSleeps: []time.Duration{maxRetryAfter}},
		{name: "gives up", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk}, statuses: []int{500, 502, 503, 504, 500},
			wantPath: "/api/v1/tickets", wantReqs: 4, wantSleeps: []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}, wantErr: "post /api/v1/tickets: 504 Gateway Timeout"},
		{name: "bad request is final", ev: simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk}, statuses: []int{400},
			wantPath: "/api/v1/tickets", wantReqs: 1, wantErr: `400 Bad Request: {"error":"scripted 400"}`},
		{name: "unknown deploy is final", ev: simulate.Event{Kind: simulate.DeployProgress, DeployID: "dep-x", Hosts: []correlate.HostRollout{}}, statuses: []int{404},
			wantPath: "/api/v1/deploys/dep-x/progress", wantReqs: 1, wantErr: "404 Not Found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi := &fakeIntake{statuses: tc.statuses, header: http.Header{}}
			if tc.retryAfter != "" {
				fi.header.Set("Retry-After", tc.retryAfter)
			}
			srv := httptest.NewServer(fi)
			defer srv.Close()
			sl := &sleepRecorder{}
			c := &intakeClient{base: srv.URL, token: "tok-s3cret", hc: srv.Client(), attempts: 4, backoff: time.Second, sleep: sl.sleep, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			err := c.send(context.Background(), tc.ev)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("error %q leaks the token", err)
			}
			reqs := fi.records()
			if len(reqs) != tc.wantReqs {
				t.Fatalf("%d requests, want %d", len(reqs), tc.wantReqs)
			}
			_, wantBody, _ := intakeRequest(tc.ev)
			for _, r := range reqs {
				if r.path != strings.ReplaceAll(strings.ReplaceAll(tc.wantPath, "%2F", "/"), "%20", " ") || r.auth != "Bearer tok-s3cret" || r.contentType != "application/json" || !bytes.Equal(r.body, wantBody) {
					t.Errorf("request %+v", r)
				}
			}
			if !slices.Equal(sl.d, tc.wantSleeps) {
				t.Errorf("slept %v, want %v", sl.d, tc.wantSleeps)
			}
		})
	}
	t.Run("escaped path on the wire", func(t *testing.T) {
		path, _, _ := intakeRequest(simulate.Event{Kind: simulate.DeployProgress, DeployID: "dep/1 a"})
		if path != "/api/v1/deploys/dep%2F1%20a/progress" {
			t.Errorf("path = %s", path)
		}
	})
	t.Run("intake down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		sl := &sleepRecorder{}
		c := &intakeClient{base: srv.URL, token: "tok-s3cret", hc: &http.Client{}, attempts: 2, backoff: time.Second, sleep: sl.sleep, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		err := c.send(context.Background(), simulate.Event{Kind: simulate.TicketCreated, Ticket: &tk})
		if err == nil || !strings.Contains(err.Error(), "post /api/v1/tickets") || strings.Contains(err.Error(), "s3cret") || len(sl.d) != 1 {
			t.Errorf("err = %v after %d sleeps", err, len(sl.d))
		}
	})
}

// TestLiveIntake runs a live simulation against a fake culprit and checks
// what it received: every deploy, progress and ticket, in order, in the
// documented shapes, also when the intake stumbles or is down.
func TestLiveIntake(t *testing.T) {
	start := time.Date(2026, 11, 20, 15, 30, 0, 0, time.UTC)
	cfg := simulate.Config{Seed: 42, Shape: simulate.ShapeFriday, Start: start, Duration: time.Hour, Onset: 15 * time.Minute, PeakPerMin: 300}
	plan, err := simulate.Generate(context.Background(), cfg, func(*simulate.Doc) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	events := simulate.Events(plan)
	tests := []struct {
		name       string
		statuses   []int
		down       bool
		wantSent   int
		wantFailed int
	}{
		{name: "all delivered", wantSent: len(events)},
		{name: "a hiccup is retried", statuses: []int{503, 502}, wantSent: len(events)},
		{name: "intake down is not fatal", down: true, wantFailed: len(events)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fi := &fakeIntake{statuses: tc.statuses}
			if tc.down {
				fi.statuses = slices.Repeat([]int{http.StatusServiceUnavailable}, 10*len(events))
			}
			srv := httptest.NewServer(fi)
			defer srv.Close()
			sl := &sleepRecorder{}
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			q := startIntake(context.Background(), &intakeClient{base: srv.URL + "/", token: "tok", hc: srv.Client(), attempts: 3, backoff: time.Second, sleep: sl.sleep, log: log}, 4096)
			r := runLive(t, context.Background(), cfg, 60, &recordingSink{}, q.publish)
			q.close(context.Background())
			if r.err != nil {
				t.Fatalf("live run failed: %v", r.err)
			}
			if len(r.sink.times) != plan.Docs {
				t.Errorf("%d documents written, want all %d", len(r.sink.times), plan.Docs)
			}
			if got := int(q.sent.Load()); got != tc.wantSent {
				t.Errorf("sent %d events, want %d", got, tc.wantSent)
			}
			if got := int(q.failed.Load()); got != tc.wantFailed || q.dropped.Load() != 0 {
				t.Errorf("failed %d, dropped %d; want %d failed, none dropped", got, q.dropped.Load(), tc.wantFailed)
			}
			if tc.down {
				return
			}
			// Delivered in order: drop the failed attempts the script
			// asked for, which were retried.
			reqs := fi.records()[len(tc.statuses):]
			if len(reqs) != len(events) {
				t.Fatalf("%d requests, want %d", len(reqs), len(events))
			}
			for i, ev := range events {
				checkIntakeRequest(t, ev, reqs[i])
			}
		})
	}
}

// checkIntakeRequest checks one request against the documented intake
// bodies: a deploy in the README deploy schema with the hosts so far, a
// progress update {"hosts":[…],"finished_at"?}, a Zendesk ticket object.
func checkIntakeRequest(t *testing.T, ev simulate.Event, r intakeRecord) {
	t.Helper()
	if r.auth != "Bearer tok" {
		t.Errorf("%s: Authorization %q", r.path, r.auth)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(r.body, &keys); err != nil {
		t.Fatalf("%s: body %s: %v", r.path, r.body, err)
	}
	switch ev.Kind {
	case simulate.DeployStarted:
		var d correlate.Deploy
		if err := json.Unmarshal(r.body, &d); err != nil || r.path != "/api/v1/deploys" {
			t.Fatalf("deploy %s: %s %s (%v)", ev.DeployID, r.path, r.body, err)
		}
		if !reflect.DeepEqual(d, *ev.Deploy) {
			t.Errorf("deploy %s: posted %s", ev.DeployID, r.body)
		}
		for _, k := range []string{"id", "service", "version", "environment", "started_at", "author", "url", "description"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("deploy %s lacks %q: %s", ev.DeployID, k, r.body)
			}
		}
		if _, ok := keys["finished_at"]; ok {
			t.Errorf("deploy %s is finished when it starts: %s", ev.DeployID, r.body)
		}
	case simulate.DeployProgress:
		if r.path != "/api/v1/deploys/"+ev.DeployID+"/progress" {
			t.Errorf("progress of %s posted to %s", ev.DeployID, r.path)
		}
		var p struct {
			Hosts      []correlate.HostRollout `json:"hosts"`
			FinishedAt *time.Time              `json:"finished_at"`
		}
		if err := json.Unmarshal(r.body, &p); err != nil || p.Hosts == nil || len(keys) > 2 {
			t.Fatalf("progress %s: %v", r.body, err)
		}
		if !slices.Equal(p.Hosts, ev.Hosts) && !(len(p.Hosts) == 0 && len(ev.Hosts) == 0) {
			t.Errorf("progress %s, want hosts %v", r.body, ev.Hosts)
		}
		if (p.FinishedAt == nil) != ev.FinishedAt.IsZero() || (p.FinishedAt != nil && !p.FinishedAt.Equal(ev.FinishedAt)) {
			t.Errorf("progress %s, want finished_at %s", r.body, ev.FinishedAt)
		}
	case simulate.TicketCreated:
		want, _ := simulate.MarshalTicket(*ev.Ticket)
		if r.path != "/api/v1/tickets" || !bytes.Equal(r.body, want) {
			t.Errorf("ticket %d: %s %s", ev.Ticket.ID, r.path, r.body)
		}
		for _, k := range []string{"id", "created_at", "subject", "description", "priority", "status", "tags", "organization_id", "requester_id", "via"} {
			if _, ok := keys[k]; !ok {
				t.Errorf("ticket lacks %q: %s", k, r.body)
			}
		}
	}
}

func TestSimulateFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"speed without live", []string{"--speed", "60"}, "--speed and --intake need --live"},
		{"intake without live", []string{"--intake", "http://localhost:8080"}, "--speed and --intake need --live"},
		{"zero speed", []string{"--live", "--speed", "0"}, "--speed 0: must be above 0"},
		{"negative speed", []string{"--live", "--speed", "-2"}, "must be above 0"},
		{"absurd speed", []string{"--live", "--speed", "1e9"}, "at most 1e6"},
		{"speed not a number", []string{"--live", "--speed", "fast"}, "invalid value"},
		{"incident at the start", []string{"--incident-after", "0s"}, "--incident-after 0s: must be positive"},
		{"incident after the end", []string{"--live", "--duration", "1h", "--incident-after", "2h"}, "onset 2h0m0s is outside the run"},
		{"run too short", []string{"--duration", "5m", "--incident-after", "1m"}, "duration 5m0s is too short"},
		{"intake not a URL", []string{"--live", "--intake", "culprit:8080"}, "--intake: not an http(s) URL"},
		{"intake with credentials", []string{"--live", "--intake", "http://u:p@culprit:8080"}, "without credentials"},
		{"intake without token", []string{"--live", "--intake", "http://culprit:8080"}, "CULPRIT_INTAKE_TOKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := runCLI(append([]string{"simulate", "--es", "http://127.0.0.1:1"}, tc.args...)...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
			if code := exitCode(err, &bytes.Buffer{}); code != 2 {
				t.Errorf("exit code %d, want 2", code)
			}
		})
	}
}

// TestSimulateLiveES runs `culprit simulate --live` against a real cluster,
// fast enough to take a moment, and checks every document arrived.
func TestSimulateLiveES(t *testing.T) {
	u := esURL(t)
	prefix := fmt.Sprintf("culprit-live-%d-", time.Now().UnixNano())
	t.Cleanup(func() {
		req, _ := http.NewRequest(http.MethodDelete, u+"/"+prefix+"*", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	})
	dir := t.TempDir()
	out, stderr, err := runCLI("simulate", "--es", u, "--index-prefix", prefix, "--live", "--speed", "20000",
		"--duration", "20m", "--incident-after", "5m", "--peak-per-min", "200", "--out", dir)
	if err != nil {
		t.Fatalf("simulate --live: %v\n%s", err, stderr)
	}
	var n int
	if _, err := fmt.Sscanf(out, "indexed %d documents", &n); err != nil || n == 0 {
		t.Fatalf("output %q: %v", out, err)
	}
	for _, p := range []string{"/_refresh", "/_count"} {
		resp, err := http.Post(u+"/"+prefix+"*"+p, "application/json", nil)
		if err != nil {
			t.Fatal(err)
		}
		var c struct{ Count int }
		err = json.NewDecoder(resp.Body).Decode(&c)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if p == "/_count" && c.Count != n {
			t.Errorf("%d documents in %s*, simulate said %d", c.Count, prefix, n)
		}
	}
	for _, name := range []string{simulate.DeploysFile, simulate.TicketsFile, simulate.TruthFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Error(err)
		}
	}
	if !strings.Contains(stderr, "incident planned") {
		t.Errorf("stderr does not announce the incident:\n%s", stderr)
	}
}
