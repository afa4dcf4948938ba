// Package daemon runs culprit's evaluation loop: every interval it
// correlates the lookback window against the deploys and tickets received,
// turns the findings into incident changes, and commits them together with
// the pages they call for. Delivery is the outbox's job; this package only
// decides.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/rules"
)

// Store is the state an evaluation reads and writes.
type Store interface {
	Known(ctx context.Context, since time.Time) ([]escalate.Incident, error)
	Apply(ctx context.Context, changes []escalate.Change) error
	Deploys(ctx context.Context, from, to time.Time) ([]correlate.Deploy, error)
	Tickets(ctx context.Context, from, to time.Time) ([]correlate.Ticket, error)
	Cursor(ctx context.Context, name string) (string, error)
	SetCursor(ctx context.Context, name, value string) error
}

// Config is what an Evaluator needs.
type Config struct {
	Source correlate.Source
	// SourceName says which logs these are in the blindness incident,
	// e.g. "Elasticsearch http://es:9200 index logs-*".
	SourceName string
	Store      Store
	Policy     escalate.Policy
	Settings   escalate.Settings
	Correlate  rules.Correlate
	// Customers names affected customers (their tiers weigh priority and
	// routing); nil leaves them ids.
	Customers correlate.Directory
	// Priority computes each finding's P1–P4; nil, the defaults.
	Priority *rules.Priority
	Lookback time.Duration
	// BlindAfter is how many failed evaluations in a row raise the
	// "cannot read logs" incident.
	BlindAfter int
	// Services limits evaluation to these services; empty means all.
	Services []string
	// Traffic, when set, keeps every service's requests and errors while
	// incidents are open, for the review's "why alerting missed it".
	Traffic TrafficRecorder
	// Queued is called after changes that queued messages commit, to
	// wake the outbox.
	Queued     func()
	Logger     *slog.Logger
	Registerer prometheus.Registerer
}

// TrafficRecorder keeps the complete buckets of a read that start at or
// after since.
type TrafficRecorder interface {
	RecordTraffic(ctx context.Context, tr *correlate.Traffic, since time.Time) error
}

// rerecord is how many buckets before the last recorded one are recorded
// again: documents that arrive late change them.
const rerecord = 5

// Evaluator runs one evaluation at a time.
type Evaluator struct {
	cfg     Config
	mu      sync.Mutex
	watched map[string]bool
	m       metrics
	// last is when the last evaluation succeeded, for /readyz.
	last time.Time
	late lateData
	// recorded is the end of the last traffic recorded.
	recorded time.Time
}

type metrics struct {
	evals     *prometheus.CounterVec
	duration  prometheus.Histogram
	findings  *prometheus.CounterVec
	open      prometheus.Gauge
	lastOK    prometheus.Gauge
	decisions *prometheus.CounterVec
	late      prometheus.Counter
}

// New checks the configuration and registers the metrics.
func New(cfg Config) (*Evaluator, error) {
	var errs []error
	if cfg.Source == nil {
		errs = append(errs, errors.New("no log source"))
	}
	if cfg.Store == nil {
		errs = append(errs, errors.New("no store"))
	}
	if cfg.Policy == nil {
		errs = append(errs, errors.New("no routing policy"))
	}
	if cfg.Lookback <= cfg.Correlate.Bucket.D() {
		errs = append(errs, fmt.Errorf("lookback %s must exceed the bucket %s", cfg.Lookback, cfg.Correlate.Bucket.D()))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("evaluator: %w", errors.Join(errs...))
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Queued == nil {
		cfg.Queued = func() {}
	}
	e := &Evaluator{cfg: cfg}
	if len(cfg.Services) > 0 {
		e.watched = map[string]bool{}
		for _, s := range cfg.Services {
			e.watched[s] = true
		}
	}
	e.m = metrics{
		evals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "culprit_evaluations_total",
			Help: "Evaluations by result (ok, error)."}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "culprit_evaluation_duration_seconds",
			Help: "Wall time of one evaluation: correlation, decisions and their commit.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}),
		findings: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "culprit_findings_total",
			Help: "Findings reported by evaluations, by severity (a finding seen in N evaluations counts N times)."}, []string{"severity"}),
		open: prometheus.NewGauge(prometheus.GaugeOpts{Name: "culprit_open_incidents",
			Help: "Incidents open after the last evaluation."}),
		lastOK: prometheus.NewGauge(prometheus.GaugeOpts{Name: "culprit_last_successful_evaluation_timestamp_seconds",
			Help: "When the last evaluation succeeded (evaluation clock)."}),
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "culprit_incident_messages_queued_total",
			Help: "Outbox messages queued by evaluations, by channel and action."}, []string{"channel", "action"}),
		late: prometheus.NewCounter(prometheus.CounterOpts{Name: "culprit_late_requests_total",
			Help: "Requests found in a bucket after an evaluation had read it as complete: any means sources.elasticsearch.lag is shorter than the pipeline's."}),
	}
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{e.m.evals, e.m.duration, e.m.findings, e.m.open, e.m.lastOK, e.m.decisions, e.m.late} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("evaluator: register metrics: %w", err)
			}
		}
	}
	return e, nil
}

const blindCursor = "daemon/failed-evaluations"

// minBaselineShare: an onset is judged only with a third of the lookback
// (two hours of the default six) in front of it. The window slides every
// minute, so an onset the daemon has judged, and not paged, for hours
// comes closer to the window's start with each evaluation, against less
// and less baseline; a sparse class then reads as new, or as a manifold
// increase, hours after it began. A real change is judged minutes after
// its onset, with nearly the whole lookback behind it, and an incident
// that was paged keeps a whole lookback in front of it (windowStart).
const minBaselineShare = 3

// maxAnchor bounds how far back an open incident can stretch the window:
// past it, an incident that never recovered is compared with the lookback
// like any other series (and may resolve as the new normal), rather than
// making every evaluation read days of logs.
const maxAnchor = 12 * time.Hour

// MaxWindow is the longest window an evaluation with this lookback reads:
// what a cache of its buckets must keep for the stretched windows of open
// incidents not to read their start again.
func MaxWindow(lookback time.Duration) time.Duration { return max(lookback, maxAnchor) }

// windowStart is where an evaluation's window begins: the lookback before
// to, or earlier when an open incident began less than a lookback after
// that. A change is only visible against the baseline before it; once the
// onset slid out of a plain lookback window the whole window would be
// "elevated", the finding would vanish and the incident would resolve while
// the errors went on. Keeping a lookback of baseline before every open
// incident's onset compares it with the same baseline it was detected
// against, for as long as it lasts (up to maxAnchor).
//
// Only incidents that told someone (paged, or posted to Slack) anchor: one
// that was only recorded may resolve early without anyone waiting on it,
// and anchoring at every open record-only incident kept most windows at
// the 12-hour maximum, reaching into the night, where a sparse background
// class has so few errors that its daytime bursts read as new classes.
func windowStart(to time.Time, lookback, step time.Duration, known []escalate.Incident) time.Time {
	from := to.Add(-lookback)
	for _, in := range known {
		if in.Meta || in.Status != escalate.StatusOpen || in.Onset.IsZero() || (!in.Paged() && in.PostedAt.IsZero()) {
			continue
		}
		if at := in.Onset.Add(-lookback).Truncate(step); at.Before(from) && !at.Before(to.Add(-maxAnchor)) {
			from = at
		}
	}
	return from
}

// knownSince is how far back resolved incidents must be known to an
// evaluation. The reopen cooldown alone is not enough: an episode stays
// visible, with the same onset, for as long as that onset is inside the
// window, which is a lookback (up to maxAnchor when anchored) and usually
// longer than the cooldown. An incident forgotten after the cooldown while
// its episode was still in the window was opened again by the next
// evaluation, "already recovered when first seen", every cooldown until
// the onset left the window. Known, Decide tells the same episode (onset
// not after the incident resolved) from a new one. The store keeps
// resolved incidents far longer than this, so it holds across restarts.
func knownSince(now time.Time, lookback, step, cooldown time.Duration) time.Time {
	return now.Add(-max(lookback+step, maxAnchor+step, cooldown))
}

// Evaluate correlates the lookback window ending at now and commits what
// changes. Evaluations never overlap: a call made while one runs waits.
func (e *Evaluator) Evaluate(ctx context.Context, now time.Time) (err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	began := time.Now()
	defer func() {
		e.m.duration.Observe(time.Since(began).Seconds())
		result := "ok"
		if err != nil {
			result = "error"
		}
		e.m.evals.WithLabelValues(result).Inc()
	}()
	cfg := e.cfg
	step := cfg.Correlate.Bucket.D()
	to := now.Truncate(step)
	known, err := cfg.Store.Known(ctx, knownSince(now, cfg.Lookback, step, cfg.Settings.ReopenCooldown))
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	w, err := correlate.NewWindow(windowStart(to, cfg.Lookback, step, known), to, step)
	if err != nil {
		return fmt.Errorf("evaluate at %s: %w", now.Format(time.RFC3339), err)
	}
	since := w.From.Add(-cfg.Correlate.AttributionWindow.D())
	deploys, err := cfg.Store.Deploys(ctx, since, to)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	tickets, err := cfg.Store.Tickets(ctx, w.From, now)
	if err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	var read *correlate.Traffic
	src := &watching{Source: cfg.Source, watched: e.watched, read: func(tr *correlate.Traffic) {
		e.checkLate(tr)
		// Every service, before the narrowing to the watched ones
		// (which reuses the slice): the fleet is the whole of it.
		all := *tr
		all.Services = slices.Clone(tr.Services)
		read = &all
	}}
	res, runErr := correlate.Run(ctx, src, correlate.Input{Window: w, Deploys: deploys, Tickets: tickets, Now: now, MinBaseline: cfg.Lookback / minBaselineShare,
		Customers: cfg.Customers, Priority: cfg.Priority}, cfg.Correlate)
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("evaluate: %w", ctx.Err())
	}
	failures, err := e.failures(ctx, runErr != nil)
	if err != nil {
		return err
	}
	var meta *escalate.Incident
	var rest []escalate.Incident
	for i := range known {
		if known[i].Meta {
			if known[i].Status == escalate.StatusOpen {
				meta = &known[i]
			}
			continue
		}
		rest = append(rest, known[i])
	}
	var changes []escalate.Change
	if ch, ok := escalate.Blindness(meta, cfg.SourceName, failures, cfg.BlindAfter, runErr, now); ok {
		changes = append(changes, ch)
	}
	if runErr == nil {
		for _, f := range res.Findings {
			e.m.findings.WithLabelValues(string(f.Severity)).Inc()
		}
		changes = append(changes, escalate.Decide(rest, escalate.Evaluation{Now: now, Findings: res.Findings, HasData: src.hasData}, cfg.Policy, cfg.Settings)...)
	}
	if err := cfg.Store.Apply(ctx, changes); err != nil {
		return fmt.Errorf("evaluate: %w", err)
	}
	queued := 0
	for _, ch := range changes {
		for _, m := range ch.Messages {
			e.m.decisions.WithLabelValues(string(m.Channel), m.Action).Inc()
			queued++
		}
		cfg.Logger.Info("incident", "id", ch.Incident.ID, "key", ch.Incident.Key, "status", ch.Incident.Status,
			"action", ch.Incident.Action, "why", ch.Incident.Why, "messages", len(ch.Messages))
	}
	open := countOpen(known, changes)
	e.m.open.Set(float64(open))
	if err := e.record(ctx, read, open > 0); err != nil {
		// The review loses a few minutes of context; the evaluation
		// itself stands.
		cfg.Logger.Warn("record traffic for the review", "err", err)
	}
	if queued > 0 {
		cfg.Queued()
	}
	if runErr != nil {
		return fmt.Errorf("evaluate: read %s: %w", cfg.SourceName, runErr)
	}
	e.last = now
	e.m.lastOK.Set(float64(now.Unix()))
	cfg.Logger.Debug("evaluated", "at", now, "findings", len(res.Findings), "changes", len(changes))
	return nil
}

// Exclusive runs fn while no evaluation runs. Changes to incidents made
// outside an evaluation (a page asked for from Slack, a question recorded)
// go through it, so an evaluation that read the incidents before the
// change cannot write back its stale copy afterwards.
func (e *Evaluator) Exclusive(fn func() error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return fn()
}

// record keeps the traffic read while incidents are open: from the last
// recorded bucket (a few before it, for late documents), or the whole
// window when recording starts, so the review has the hour before the
// incident too.
func (e *Evaluator) record(ctx context.Context, tr *correlate.Traffic, open bool) error {
	if e.cfg.Traffic == nil || tr == nil || !open {
		return nil
	}
	since := e.recorded.Add(-rerecord * tr.Window.Step)
	if err := e.cfg.Traffic.RecordTraffic(ctx, tr, since); err != nil {
		return err
	}
	end := tr.Window.Len()
	if tr.Complete > 0 {
		end = tr.Complete
	}
	e.recorded = tr.Window.Start(end)
	return nil
}

// LastSuccess is when the last evaluation succeeded.
func (e *Evaluator) LastSuccess() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.last
}

// failures keeps the count of failed evaluations in a row in the store, so
// a restart does not hide that culprit has been blind.
func (e *Evaluator) failures(ctx context.Context, failed bool) (int, error) {
	v, err := e.cfg.Store.Cursor(ctx, blindCursor)
	if err != nil {
		return 0, fmt.Errorf("evaluate: %w", err)
	}
	n, _ := strconv.Atoi(v)
	if failed {
		n++
	} else {
		n = 0
	}
	if err := e.cfg.Store.SetCursor(ctx, blindCursor, strconv.Itoa(n)); err != nil {
		return 0, fmt.Errorf("evaluate: %w", err)
	}
	return n, nil
}

func countOpen(known []escalate.Incident, changes []escalate.Change) int {
	state := map[string]escalate.Status{}
	for _, in := range known {
		state[in.ID] = in.Status
	}
	for _, ch := range changes {
		state[ch.Incident.ID] = ch.Incident.Status
	}
	n := 0
	for _, s := range state {
		if s == escalate.StatusOpen {
			n++
		}
	}
	return n
}

// watching narrows a source to the watched services and remembers which
// services had traffic in their newest complete buckets.
type watching struct {
	correlate.Source
	watched map[string]bool
	live    map[string]bool
	// read, when set, sees every service's traffic before the narrowing.
	read func(*correlate.Traffic)
}

// Unwrap is the narrowed source, for the capabilities watching passes
// through untouched (scope explanations count one service anyway).
func (w *watching) Unwrap() correlate.Source { return w.Source }

// recentBuckets is how many of the newest complete buckets must carry
// traffic for a service to count as "data arriving".
const recentBuckets = 3

func (w *watching) Traffic(ctx context.Context, win correlate.Window) (*correlate.Traffic, error) {
	tr, err := w.Source.Traffic(ctx, win)
	if err != nil {
		return nil, err
	}
	if w.read != nil {
		w.read(tr)
	}
	if w.watched != nil {
		kept := tr.Services[:0]
		for _, s := range tr.Services {
			if w.watched[s.Service] {
				kept = append(kept, s)
			}
		}
		tr.Services = kept
	}
	w.live = map[string]bool{}
	end := tr.Window.Len()
	if tr.Complete > 0 {
		end = tr.Complete
	}
	for _, s := range tr.Services {
		n := 0.0
		for i := max(0, end-recentBuckets); i < end && i < len(s.Requests); i++ {
			n += s.Requests[i]
		}
		w.live[s.Service] = n > 0
	}
	return tr, nil
}

func (w *watching) hasData(service string) bool { return w.live[service] }

// lateData remembers how many requests each complete bucket held when an
// evaluation read it. The lag is a promise that a bucket is whole by the
// time it is judged; requests that turn up in it later break that promise
// silently, because a partial bucket still shows a plausible error rate on
// fewer requests. Counting them is how a lag shorter than the pipeline's
// (a Logstash backlog, a paused queue) becomes visible before it costs a
// judgment.
type lateData struct {
	seen map[time.Time]float64
}

// lateBucket is the complete bucket that grew most since it was read.
type lateBucket struct {
	start         time.Time
	before, after float64
}

// observe records tr's complete buckets and returns how many requests
// arrived, in all, in buckets an earlier read already had complete, and
// the one that grew most.
func (l *lateData) observe(tr *correlate.Traffic) (added float64, worst lateBucket) {
	end := tr.Window.Len()
	if tr.Complete > 0 {
		end = tr.Complete
	}
	seen := make(map[time.Time]float64, end)
	for i := range end {
		n := 0.0
		for _, s := range tr.Services {
			if i < len(s.Requests) {
				n += s.Requests[i]
			}
		}
		at := tr.Window.Start(i)
		seen[at] = n
		if before, ok := l.seen[at]; ok && n > before {
			added += n - before
			if n-before > worst.after-worst.before {
				worst = lateBucket{start: at, before: before, after: n}
			}
		}
	}
	l.seen = seen
	return added, worst
}

// lateShare is the growth of one bucket worth a warning: below it, a
// straggler or two on a busy bucket, which the metric still counts.
const lateShare = 0.01

// checkLate counts late requests and warns when a bucket grew noticeably
// after it was judged.
func (e *Evaluator) checkLate(tr *correlate.Traffic) {
	added, worst := e.late.observe(tr)
	if added <= 0 {
		return
	}
	e.m.late.Add(added)
	if grew := worst.after - worst.before; grew >= 1 && grew > lateShare*worst.before {
		e.cfg.Logger.Warn("requests arrived after their bucket was judged complete: raise sources.elasticsearch.lag to your pipeline's lag",
			"bucket", worst.start.UTC().Format(time.RFC3339), "requests_when_judged", worst.before, "requests_now", worst.after,
			"late_requests", added)
	}
}
