package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/simulate"
)

const simulateUsage = "simulate --es URL [--index-prefix logs-] [--shape SHAPE] [--seed N] [--start T] [--duration 6h] [--incident-after 4h] [--peak-per-min N] [--out DIR] [--live [--speed 1] [--intake URL]]"

// cmdSimulate writes a simulated run into Elasticsearch through the bulk
// API, and the run's deploys, tickets and ground truth into DIR, so the
// Elasticsearch path can be tried, tested and benchmarked on known data.
// With --live it writes the traffic as it happens instead, and hands the
// deploys and tickets to a running culprit as they happen, so the daemon
// can be watched catching the incident.
func cmdSimulate(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("simulate", simulateUsage, env.stderr)
	esURL := fs.String("es", "", "Elasticsearch URL(s), comma-separated (credentials from CULPRIT_ES_USERNAME/CULPRIT_ES_PASSWORD or CULPRIT_ES_API_KEY)")
	prefix := fs.String("index-prefix", "logs-", "documents go to PREFIX + the day, e.g. logs-2026.11.20")
	shape := fs.String("shape", string(simulate.ShapeFriday), "incident shape: "+shapeNames())
	seed := fs.Int64("seed", 1, "simulation seed")
	start := fs.String("start", "", "simulated start time, RFC 3339 (default: Friday 2026-11-20T12:00:00Z; with --live, now to the minute)")
	duration := fs.Duration("duration", 6*time.Hour, "simulated time span")
	incidentAfter := fs.Duration("incident-after", 0, "when the incident begins, after the start (default 4h)")
	peak := fs.Float64("peak-per-min", 0, "requests per minute at the diurnal peak (default: the simulator's)")
	out := fs.String("out", "culprit-sim", "directory for deploys.json, tickets.json and truth.json")
	live := fs.Bool("live", false, "write the traffic as it happens, until --duration has passed or Ctrl-C")
	speed := fs.Float64("speed", 1, "with --live: simulated time per wall-clock time (1: real time, 60: an hour a minute)")
	intake := fs.String("intake", "", "with --live: culprit's URL; deploys and tickets are posted to its intake API as they happen (token from CULPRIT_INTAKE_TOKEN)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if *esURL == "" {
		fs.Usage()
		return usagef("simulate: --es is required")
	}
	sh := simulate.Shape(*shape)
	if !validShape(sh) {
		return usagef("simulate: unknown --shape %q (one of %s)", *shape, shapeNames())
	}
	if !*live && (set["speed"] || set["intake"]) {
		return usagef("simulate: --speed and --intake need --live")
	}
	if !(*speed > 0) || math.IsInf(*speed, 0) || *speed > 1e6 {
		return usagef("simulate: --speed %g: must be above 0 and at most 1e6", *speed)
	}
	if set["incident-after"] && *incidentAfter <= 0 {
		return usagef("simulate: --incident-after %s: must be positive", *incidentAfter)
	}
	token := env.getenv("CULPRIT_INTAKE_TOKEN")
	if *intake != "" {
		u, err := url.Parse(*intake)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			return usagef("simulate: --intake: not an http(s) URL without credentials (example: http://localhost:8080)")
		}
		if token == "" {
			return usagef("simulate: --intake needs culprit's intake token in CULPRIT_INTAKE_TOKEN")
		}
	}
	st, err := parseTime("start", *start)
	if err != nil {
		return err
	}
	startIsNow := *live && st.IsZero()
	if startIsNow {
		st = time.Now().UTC().Truncate(time.Minute)
	}
	cfg := simulate.Config{Seed: *seed, Shape: sh, Start: st, Duration: *duration, Onset: *incidentAfter, PeakPerMin: *peak}
	// Planning the deploys checks the whole configuration, in no time:
	// an onset after the end is a wrong command line, found before hours
	// of live traffic are planned.
	if _, err := simulate.Deploys(cfg); err != nil {
		return usageError{err.Error()}
	}
	w, err := elasticsearch.NewBulkWriter(elasticsearch.Config{
		URLs: strings.Split(*esURL, ","), Username: env.getenv("CULPRIT_ES_USERNAME"),
		Password: env.getenv("CULPRIT_ES_PASSWORD"), APIKey: env.getenv("CULPRIT_ES_API_KEY"),
	}, *prefix)
	if err != nil {
		return err
	}
	if *live {
		log := slog.New(slog.NewTextHandler(env.stderr, nil))
		o := liveOptions{
			speed: *speed, startIsNow: startIsNow, sink: w, now: time.Now, sleep: sleepCtx, log: log,
			out: *out, prefix: *prefix, stdout: env.stdout,
		}
		var q *intakeQueue
		if *intake != "" {
			q = startIntake(ctx, &intakeClient{
				base: strings.TrimRight(*intake, "/"), token: token,
				hc:       &http.Client{Timeout: 10 * time.Second},
				attempts: 4, backoff: time.Second, sleep: sleepCtx, log: log,
			}, 4096)
			o.publish = q.publish
		}
		err := simulateLive(ctx, cfg, o)
		if q != nil {
			// Give queued deploys and tickets a little time to arrive;
			// after Ctrl-C the queue's context is already done.
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			q.close(cctx)
			cancel()
			log.Info("intake done", "sent", q.sent.Load(), "failed", q.failed.Load(), "dropped", q.dropped.Load())
		}
		return err
	}
	var buf []byte
	began := time.Now()
	run, err := simulate.Generate(ctx, cfg, func(d *simulate.Doc) error {
		buf = d.AppendJSON(buf[:0])
		return w.Add(ctx, d.Time, buf)
	})
	stats, cerr := w.Close(context.WithoutCancel(ctx))
	if err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	if cerr != nil {
		return fmt.Errorf("simulate: %w", cerr)
	}
	if err := simulate.WriteSidecars(*out, run); err != nil {
		return fmt.Errorf("simulate: %w", err)
	}
	fmt.Fprintf(env.stdout, "indexed %d documents into %s* in %s; deploys, tickets and truth are in %s\n",
		stats.Indexed, *prefix, time.Since(began).Round(time.Millisecond), *out)
	return nil
}

// docSink is where live documents go: Elasticsearch's bulk API, or a
// recorder in tests.
type docSink interface {
	// Add queues one JSON document stamped at t; doc may be reused once
	// Add returns. An error is the sink failing for good: the run stops.
	Add(ctx context.Context, t time.Time, doc []byte) error
	// Close flushes what is queued and returns the counts and the first
	// failure, if any.
	Close(ctx context.Context) (elasticsearch.BulkStats, error)
}

// liveOptions is what a live run needs from the outside world.
type liveOptions struct {
	speed float64
	// startIsNow says the start is the current minute, not one the user
	// chose: the simulated clock then reads the wall clock's time when
	// the run begins, and the documents of the minute so far are written
	// at once. Otherwise the start is when the run begins.
	startIsNow bool
	sink       docSink
	// publish hands a deploy or ticket event to culprit's intake; nil
	// when there is none. It must not block: the traffic cannot wait
	// for a slow intake.
	publish func(simulate.Event)
	now     func() time.Time
	sleep   func(ctx context.Context, d time.Duration) error
	log     *slog.Logger
	out     string // directory for the sidecar files
	prefix  string // index prefix, for the summary
	stdout  io.Writer
}

// docSlack is how far ahead of the wall clock a document may be written.
// Waiting for each document's exact moment would arm a timer per
// document; the bulk writer batches a second of them anyway.
const docSlack = 20 * time.Millisecond

// simulateLive runs cfg paced by the wall clock: simulated time starts at
// cfg.Start when the run begins (see liveOptions.startIsNow) and advances
// speed times faster than the wall clock. Each document is written when
// its moment has come, and each deploy and ticket event is published at
// its own moment, after every document before it and before any document
// after it. Cancelling ctx (Ctrl-C) stops the run cleanly: what was
// written is flushed, and the run counts as a success.
//
// Incident tickets depend on the whole run (who was hit, how often), so
// the run is first generated without pacing or output; the simulator is
// deterministic, so the live run is that very run. The pre-pass also
// provides the ground truth, which is written to o.out before the traffic
// starts.
func simulateLive(ctx context.Context, cfg simulate.Config, o liveOptions) error {
	plan, err := simulate.Generate(ctx, cfg, func(*simulate.Doc) error { return nil })
	if err != nil {
		if _, cerr := o.sink.Close(context.WithoutCancel(ctx)); cerr != nil {
			o.log.Warn("close the bulk writer", "err", cerr)
		}
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("simulate: %w", err)
	}
	if err := simulate.WriteSidecars(o.out, plan); err != nil {
		_, _ = o.sink.Close(context.WithoutCancel(ctx))
		return fmt.Errorf("simulate: %w", err)
	}
	start := plan.Config.Start
	end := start.Add(plan.Config.Duration)
	tr := plan.Truth
	o.log.Info("live simulation", "from", start, "to", end, "speed", o.speed, "wall_duration", time.Duration(float64(plan.Config.Duration)/o.speed).Round(time.Second),
		"deploys", len(plan.Deploys), "tickets", len(plan.Tickets), "truth", o.out)
	o.log.Info("incident planned", "shape", tr.Shape, "onset", tr.Onset, "service", tr.Service, "suspect_deploy", tr.SuspectDeployID, "expect_page", tr.ExpectPage)

	wall0 := o.now()
	if behind := wall0.Sub(start); o.startIsNow && behind > 0 {
		// At speed 1 the simulated clock is the wall clock, so documents
		// reach the cluster as they would from a real fleet, not up to a
		// minute late.
		wall0 = wall0.Add(-time.Duration(float64(behind) / o.speed))
	}
	f := &liveFeed{
		clock:   &simClock{sim0: start, wall0: wall0, speed: o.speed, now: o.now, sleep: o.sleep},
		events:  simulate.Events(plan),
		publish: o.publish,
		log:     o.log,
		start:   start,
	}
	cfg.Pace = f.pace
	var buf []byte
	_, genErr := simulate.Generate(ctx, cfg, func(d *simulate.Doc) error {
		if err := f.advance(ctx, d.Time, docSlack); err != nil {
			return err
		}
		buf = d.AppendJSON(buf[:0])
		f.docs++
		return o.sink.Add(ctx, d.Time, buf)
	})
	// Flush even after Ctrl-C, but not forever.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	stats, cerr := o.sink.Close(cctx)
	cancel()
	stopped := genErr != nil && ctx.Err() != nil
	if genErr != nil && !stopped {
		return fmt.Errorf("simulate: %w", genErr)
	}
	if cerr != nil {
		return fmt.Errorf("simulate: %w", cerr)
	}
	how := "until " + end.Format(time.RFC3339)
	if stopped {
		how = "stopped at " + f.clock.simNow().Truncate(time.Second).Format(time.RFC3339)
	}
	fmt.Fprintf(o.stdout, "indexed %d documents into %s* live from %s, %s; deploys, tickets and truth are in %s\n",
		stats.Indexed, o.prefix, start.Format(time.RFC3339), how, o.out)
	return nil
}

// simClock maps the wall clock onto simulated time: simulated sim0 is wall
// wall0, and simulated time runs speed times faster.
type simClock struct {
	sim0, wall0 time.Time
	speed       float64
	now         func() time.Time
	sleep       func(ctx context.Context, d time.Duration) error
}

func (c *simClock) simNow() time.Time {
	return c.sim0.Add(time.Duration(float64(c.now().Sub(c.wall0)) * c.speed))
}

// waitUntil returns once the simulated clock has reached t, or is within
// slack of wall time from it.
func (c *simClock) waitUntil(ctx context.Context, t time.Time, slack time.Duration) error {
	target := c.wall0.Add(time.Duration(float64(t.Sub(c.sim0)) / c.speed))
	for {
		d := target.Sub(c.now())
		if d <= slack {
			return nil
		}
		if err := c.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// liveFeed releases documents and events when the simulated clock reaches
// them.
type liveFeed struct {
	clock   *simClock
	events  []simulate.Event
	next    int
	publish func(simulate.Event)
	log     *slog.Logger
	start   time.Time
	docs    int
}

// pace is the simulator's Pace hook: it holds each minute back until its
// time, and reports progress every ten simulated minutes.
func (f *liveFeed) pace(ctx context.Context, t time.Time) error {
	if err := f.advance(ctx, t, 0); err != nil {
		return err
	}
	if m := t.Sub(f.start); m > 0 && m%(10*time.Minute) == 0 {
		f.log.Info("simulated", "until", t, "documents", f.docs)
	}
	return nil
}

// advance publishes every event up to t, each at its moment, then waits
// for t itself.
func (f *liveFeed) advance(ctx context.Context, t time.Time, slack time.Duration) error {
	for f.next < len(f.events) && !f.events[f.next].At.After(t) {
		ev := f.events[f.next]
		if err := f.clock.waitUntil(ctx, ev.At, 0); err != nil {
			return err
		}
		f.next++
		switch ev.Kind {
		case simulate.DeployStarted:
			f.log.Info("deploy started", "id", ev.DeployID, "service", ev.Deploy.Service, "version", ev.Deploy.Version, "at", ev.At)
		case simulate.TicketCreated:
			f.log.Info("ticket created", "id", ev.Ticket.ID, "organization_id", ev.Ticket.OrganizationID, "subject", ev.Ticket.Subject, "at", ev.At)
		default:
			f.log.Debug(ev.Kind.String(), "id", ev.DeployID, "hosts", len(ev.Hosts), "at", ev.At)
		}
		if f.publish != nil {
			f.publish(ev)
		}
	}
	return f.clock.waitUntil(ctx, t, slack)
}

// intakeClient posts a live run's deploys and tickets to culprit's intake
// API, the way a CD system and a help desk would.
type intakeClient struct {
	base     string // culprit's URL
	token    string
	hc       *http.Client
	attempts int           // tries per event
	backoff  time.Duration // first retry delay, doubled per retry
	sleep    func(ctx context.Context, d time.Duration) error
	log      *slog.Logger
}

// maxRetryAfter caps how long a Retry-After may hold an event back.
const maxRetryAfter = 30 * time.Second

// progressBody is the body of POST /api/v1/deploys/{id}/progress.
type progressBody struct {
	Hosts      []correlate.HostRollout `json:"hosts"`
	FinishedAt time.Time               `json:"finished_at,omitzero"`
}

// intakeRequest is the path and JSON body that deliver ev: a deploy as in
// deploys.json (hosts so far, no finished_at), progress as new hosts and
// finally finished_at, a ticket as in tickets.json.
func intakeRequest(ev simulate.Event) (path string, body []byte, err error) {
	switch ev.Kind {
	case simulate.DeployStarted:
		body, err = json.Marshal(ev.Deploy)
		return "/api/v1/deploys", body, err
	case simulate.DeployProgress:
		p := progressBody{Hosts: ev.Hosts, FinishedAt: ev.FinishedAt}
		if p.Hosts == nil {
			p.Hosts = []correlate.HostRollout{}
		}
		body, err = json.Marshal(p)
		return "/api/v1/deploys/" + url.PathEscape(ev.DeployID) + "/progress", body, err
	case simulate.TicketCreated:
		body, err = simulate.MarshalTicket(*ev.Ticket)
		return "/api/v1/tickets", body, err
	}
	return "", nil, fmt.Errorf("unknown event kind %d", ev.Kind)
}

// send delivers one event, retrying network failures, 429 and 5xx with
// backoff (at least as long as a Retry-After asks, up to maxRetryAfter).
// Other statuses are final. The error names the path and status, never
// the token.
func (c *intakeClient) send(ctx context.Context, ev simulate.Event) error {
	path, body, err := intakeRequest(ev)
	if err != nil {
		return fmt.Errorf("encode %s: %w", ev.Kind, err)
	}
	for attempt := 1; ; attempt++ {
		retry, wait, err := c.post(ctx, path, body)
		if err == nil {
			return nil
		}
		if !retry || attempt >= c.attempts || ctx.Err() != nil {
			return err
		}
		d := c.backoff << (attempt - 1)
		if wait > d {
			d = min(wait, maxRetryAfter)
		}
		c.log.Warn("intake: will retry", "event", ev.Kind.String(), "attempt", attempt, "in", d, "err", err)
		if serr := c.sleep(ctx, d); serr != nil {
			return err
		}
	}
}

func (c *intakeClient) post(ctx context.Context, path string, body []byte) (retry bool, retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.base, "/")+path, bytes.NewReader(body))
	if err != nil {
		return false, 0, fmt.Errorf("post %s: %w", path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("User-Agent", "culprit-simulate/"+version)
	resp, err := c.hc.Do(req)
	if err != nil {
		return true, 0, fmt.Errorf("post %s: %w", path, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return false, 0, nil
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		retryAfter = time.Duration(s) * time.Second
	}
	retry = resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500
	return retry, retryAfter, fmt.Errorf("post %s: %s: %s", path, resp.Status, bytes.TrimSpace(msg))
}

// intakeQueue delivers events in order on a goroutine of its own, so that
// a slow or absent culprit never holds the traffic back.
type intakeQueue struct {
	c      *intakeClient
	ch     chan simulate.Event
	done   chan struct{}
	cancel context.CancelFunc

	sent, failed, dropped atomic.Int64
}

// startIntake starts delivering; size bounds the events waiting. Close it
// to stop.
func startIntake(ctx context.Context, c *intakeClient, size int) *intakeQueue {
	ctx, cancel := context.WithCancel(ctx)
	q := &intakeQueue{c: c, ch: make(chan simulate.Event, size), done: make(chan struct{}), cancel: cancel}
	go func() {
		defer close(q.done)
		for ev := range q.ch {
			if ctx.Err() != nil {
				q.dropped.Add(1)
				continue
			}
			if err := c.send(ctx, ev); err != nil {
				q.failed.Add(1)
				if ctx.Err() == nil {
					c.log.Warn("intake: event lost", "event", ev.Kind.String(), "at", ev.At, "err", err)
				}
				continue
			}
			q.sent.Add(1)
		}
	}()
	return q
}

// publish queues ev, or drops it when the queue is full.
func (q *intakeQueue) publish(ev simulate.Event) {
	select {
	case q.ch <- ev:
	default:
		q.dropped.Add(1)
		q.c.log.Warn("intake: queue full, event dropped", "event", ev.Kind.String(), "at", ev.At)
	}
}

// close stops accepting events and waits for the queued ones to be
// delivered until ctx is done, then abandons the rest.
func (q *intakeQueue) close(ctx context.Context) {
	close(q.ch)
	select {
	case <-q.done:
	case <-ctx.Done():
		q.cancel()
		<-q.done
	}
	q.cancel()
}

func shapeNames() string {
	var s []string
	for _, sh := range simulate.Shapes() {
		s = append(s, string(sh))
	}
	return strings.Join(s, ", ")
}

func validShape(s simulate.Shape) bool {
	for _, sh := range simulate.Shapes() {
		if sh == s {
			return true
		}
	}
	return false
}
