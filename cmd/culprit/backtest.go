package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/daemon"
	"github.com/culprithq/culprit/escalate/store"
	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/elasticsearch"
	"github.com/culprithq/culprit/sources/file"
)

const backtestUsage = "backtest (--logs FILE | --es URL --index PATTERN) [--deploys FILE] [--tickets FILE] --from T --to T [--config FILE] [--lag D] [--format text|json]"

// cmdBacktest replays history through the daemon's own decision logic in
// simulated time and reports every message it would have sent.
func cmdBacktest(ctx context.Context, env *environ, args []string) error {
	fs := newFlags("backtest", backtestUsage, env.stderr)
	logs := fs.String("logs", "", "NDJSON log file, one ECS document per request (.gz accepted)")
	esURL := fs.String("es", "", "Elasticsearch URL(s), comma-separated, instead of --logs")
	index := fs.String("index", "", "index pattern to read with --es, e.g. 'logs-*'")
	deploys := fs.String("deploys", "", "deploy events: JSON array or NDJSON (.gz accepted)")
	tickets := fs.String("tickets", "", "tickets in Zendesk incremental-export shape (.gz accepted)")
	from := fs.String("from", "", "first evaluation, RFC 3339 (rounded up to evaluation.interval)")
	to := fs.String("to", "", "last evaluation, RFC 3339")
	config := fs.String("config", "", "the daemon's YAML configuration (routes, silences, thresholds); default: built-in")
	lagFlag := fs.String("lag", "", "ingestion lag: a tick at t sees logs before t-lag (default: sources.elasticsearch.lag)")
	format := fs.String("format", "text", "output format: text or json")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if (*logs == "") == (*esURL == "") {
		fs.Usage()
		return usagef("backtest: give exactly one of --logs FILE or --es URL")
	}
	if *esURL != "" && *index == "" {
		return usagef("backtest: --es needs --index PATTERN")
	}
	if err := checkFormat(*format, "text", "json"); err != nil {
		return err
	}
	if *from == "" {
		return usagef("backtest: --from is required")
	}
	if *to == "" {
		return usagef("backtest: --to is required")
	}
	f, err := parseTime("from", *from)
	if err != nil {
		return err
	}
	t, err := parseTime("to", *to)
	if err != nil {
		return err
	}
	if t.Before(f) {
		return usagef("backtest: --to %s is before --from %s", t.UTC().Format(time.RFC3339), f.UTC().Format(time.RFC3339))
	}
	var lag time.Duration
	if *lagFlag != "" {
		if lag, err = time.ParseDuration(*lagFlag); err != nil || lag < 0 {
			return usagef("backtest: --lag %q: not a duration of 0 or more (example: 2m)", *lagFlag)
		}
	}
	cfg := rules.Default()
	if *config != "" {
		// Secrets are not resolved: a backtest sends nothing.
		if cfg, err = rules.Load(*config); err != nil {
			return err
		}
	}
	if *lagFlag == "" {
		lag = cfg.Sources.Elasticsearch.Lag.D()
	}
	in := backtestInput{logs: *logs, deploys: *deploys, tickets: *tickets, from: f, to: t, lag: lag, builtin: *config == ""}
	if *esURL != "" {
		es := cfg.Sources.Elasticsearch
		in.es = &elasticsearch.Config{
			URLs:       strings.Split(*esURL, ","),
			Index:      *index,
			APIKey:     env.getenv("CULPRIT_ES_API_KEY"),
			Username:   env.getenv("CULPRIT_ES_USERNAME"),
			Password:   env.getenv("CULPRIT_ES_PASSWORD"),
			CACertFile: es.CAFile,
			Timeout:    es.Timeout.D(),
			Fields:     cfg.Fields,
		}
	}
	rep, err := backtest(ctx, &cfg, in)
	if err != nil {
		return err
	}
	if *format == "json" {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.text(env.stdout)
}

// backtestInput is what a backtest replays.
type backtestInput struct {
	logs, deploys, tickets string
	es                     *elasticsearch.Config // instead of logs
	from, to               time.Time
	lag                    time.Duration
	// builtin: no --config was given, so the summary can say that the
	// built-in configuration never pages.
	builtin bool
}

// backtestReport is the JSON form of `culprit backtest`. Its field names
// are a stable interface: scripts compare runs with it (snake_case;
// documented in the README).
type backtestReport struct {
	Source          string             `json:"source"`
	From            time.Time          `json:"from"`
	To              time.Time          `json:"to"`
	IntervalSeconds float64            `json:"interval_seconds"`
	LagSeconds      float64            `json:"lag_seconds"`
	Ticks           int                `json:"ticks"`
	Messages        []backtestMessage  `json:"messages"`
	Incidents       []backtestIncident `json:"incidents"`
	// WhyNoPages, present only when nothing paged, says why: no page
	// route at all, no finding graded page, or what each page-grade
	// finding was routed to instead. "0 pages" alone read as "all quiet"
	// when the configuration could not have paged anything.
	WhyNoPages string `json:"why_no_pages,omitempty"`
}

// backtestMessage is one message the daemon would have queued.
type backtestMessage struct {
	At time.Time `json:"at"`
	// Channel is pagerduty or slack; Action is trigger, post or resolve.
	Channel    string    `json:"channel"`
	Action     string    `json:"action"`
	IncidentID string    `json:"incident_id"`
	Key        string    `json:"key"`
	Service    string    `json:"service"`
	Severity   string    `json:"severity"`
	Headline   string    `json:"headline"`
	Why        string    `json:"why"`
	Onset      time.Time `json:"onset,omitzero"`
	// queued is the incident as the message carried it, for in-process
	// callers (the corpus benchmark) that judge the paged finding itself.
	queued *escalate.Incident
}

// backtestIncident is one incident as the backtest left it.
type backtestIncident struct {
	ID        string `json:"id"`
	Key       string `json:"key"`
	Service   string `json:"service"`
	Signature string `json:"signature"`
	Kind      string `json:"kind"`
	Severity  string `json:"severity"`
	Headline  string `json:"headline"`
	Action    string `json:"action"`
	Why       string `json:"why"`
	// Route is the route that matched the incident's service when it
	// opened; absent when none did (Why then says which condition of
	// each route failed).
	Route      string    `json:"route,omitempty"`
	Status     string    `json:"status"`
	Onset      time.Time `json:"onset,omitzero"`
	OpenedAt   time.Time `json:"opened_at"`
	PagedAt    time.Time `json:"paged_at,omitzero"`
	PostedAt   time.Time `json:"posted_at,omitzero"`
	Recovered  time.Time `json:"recovered,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	Suspect    string    `json:"suspect_deploy,omitempty"`
	// finding is the incident's latest evidence, for in-process callers.
	finding *correlate.Finding
}

// ticker is the backtest's clock: every part that asks for the time (the
// store's receipt stamps, Elasticsearch's lag) gets the current tick.
type ticker struct{ at time.Time }

func (c *ticker) now() time.Time { return c.at }

// backtest runs the evaluation at every tick of [in.from, in.to] that
// daemon.EvaluationSchedule gives the daemon, with a throwaway
// store, and collects what each tick queued instead of delivering it.
func backtest(ctx context.Context, cfg *rules.Config, in backtestInput) (*backtestReport, error) {
	deploys, tickets, err := readSidecars(in.deploys, in.tickets)
	if err != nil {
		return nil, err
	}
	step, interval := cfg.Correlate.Bucket.D(), cfg.Evaluation.Interval.D()
	clock := &ticker{}
	// source gives the evaluation's source at a tick.
	var source func(at time.Time) correlate.Source
	var name string
	if in.es != nil {
		c := *in.es
		c.Lag, c.Now = in.lag, clock.now
		es, err := elasticsearch.New(c)
		if err != nil {
			return nil, usagef("backtest: %v", err)
		}
		source = func(time.Time) correlate.Source { return es }
		name = fmt.Sprintf("Elasticsearch %s index %s", strings.Join(c.URLs, ","), c.Index)
	} else {
		// Every cutoff t-lag lies on the bucket grid: the schedule ticks
		// lag past a boundary, modulo the bucket.
		res := step
		l, err := file.OpenLogs(in.logs, cfg.Fields, res)
		if err != nil {
			return nil, err
		}
		x, err := file.NewIndex(ctx, l)
		if err != nil {
			return nil, err
		}
		source = func(at time.Time) correlate.Source { return x.Until(at.Add(-in.lag)) }
		name = "file " + in.logs
	}
	src := &tickSource{}

	dir, err := os.MkdirTemp("", "culprit-backtest-")
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, dir, clock.now)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	defer st.Close()
	custs, err := loadCustomers(cfg.Customers.File)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	eval, err := newEvaluator(cfg, src, name, st, nil, slog.New(slog.DiscardHandler), nil, custs)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}

	rep := &backtestReport{Source: name, From: in.from.UTC(), To: in.to.UTC(), IntervalSeconds: interval.Seconds(),
		LagSeconds: in.lag.Seconds(), Messages: []backtestMessage{}, Incidents: []backtestIncident{}}
	sched := daemon.EvaluationSchedule(interval, step, in.lag)
	feed := newIntakeReplay(deploys, tickets)
	for at := sched.Next(in.from.Add(-time.Nanosecond)).UTC(); !at.After(in.to); at = sched.Next(at) {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("backtest: %w", err)
		}
		clock.at = at
		src.Source = source(at)
		// What CI and Zendesk would have delivered by now arrives first,
		// as intake and the poller would have stored it.
		if err := feed.until(ctx, st, at); err != nil {
			return nil, fmt.Errorf("backtest at %s: %w", at.Format(time.RFC3339), err)
		}
		if err := eval.Evaluate(ctx, at); err != nil {
			return nil, fmt.Errorf("backtest at %s: %w", at.Format(time.RFC3339), err)
		}
		rep.Ticks++
		if err := collect(ctx, st, at, rep); err != nil {
			return nil, fmt.Errorf("backtest at %s: %w", at.Format(time.RFC3339), err)
		}
	}
	ins, err := st.Incidents(ctx, 1<<20)
	if err != nil {
		return nil, fmt.Errorf("backtest: %w", err)
	}
	slices.SortStableFunc(ins, func(a, b escalate.Incident) int {
		return cmp.Or(a.OpenedAt.Compare(b.OpenedAt), strings.Compare(a.ID, b.ID))
	})
	for _, in := range ins {
		bi := incidentOf(in)
		if !in.Meta {
			_, bi.Route = cfg.Route(in.Service, in.OpenedAt)
		}
		rep.Incidents = append(rep.Incidents, bi)
	}
	rep.WhyNoPages = whyNoPages(cfg, in.builtin, rep)
	return rep, nil
}

// tickSource is the evaluator's source, switched to each tick's view.
type tickSource struct{ correlate.Source }

// Unwrap is the tick's view, for the capabilities the correlator looks
// for behind a wrapper (scope explanations).
func (t *tickSource) Unwrap() correlate.Source { return t.Source }

// collect takes what the tick queued off the outbox, as delivery would,
// and reports it.
func collect(ctx context.Context, st *store.Store, at time.Time, rep *backtestReport) error {
	for {
		due, err := st.Due(ctx, at, 100)
		if err != nil {
			return err
		}
		if len(due) == 0 {
			return nil
		}
		for _, m := range due {
			var in escalate.Incident
			if err := json.Unmarshal(m.Body, &in); err != nil {
				return fmt.Errorf("read queued %s %s of %s: %w", m.Channel, m.Action, m.IncidentID, err)
			}
			bm := backtestMessage{At: at, Channel: string(m.Channel), Action: m.Action, IncidentID: m.IncidentID, Key: m.Key,
				Service: m.Service, Severity: string(in.Severity), Why: in.Why, Onset: in.Onset.UTC(), queued: &in}
			if in.Finding != nil {
				bm.Headline = in.Finding.Headline
			}
			rep.Messages = append(rep.Messages, bm)
			if err := st.Delivered(ctx, m, at, nil); err != nil {
				return err
			}
		}
	}
}

func incidentOf(in escalate.Incident) backtestIncident {
	bi := backtestIncident{ID: in.ID, Key: in.Key, Service: in.Service, Signature: in.Signature, Kind: string(in.Kind),
		Severity: string(in.Severity), Action: string(in.Action), Why: in.Why, Status: string(in.Status),
		Onset: in.Onset.UTC(), OpenedAt: in.OpenedAt.UTC(), PagedAt: in.PagedAt.UTC(), PostedAt: in.PostedAt.UTC(),
		Recovered: in.Recovered.UTC(), ResolvedAt: in.ResolvedAt.UTC(), finding: in.Finding}
	if f := in.Finding; f != nil {
		bi.Headline = f.Headline
		if len(f.SuspectedDeploys) > 0 {
			bi.Suspect = f.SuspectedDeploys[0].ID
		}
	}
	return bi
}

// whyNoPages explains a run that paged nothing, or is "" when something
// paged: a configuration without a page route cannot page at all, a route
// pages only findings graded page, and a page-grade finding can still be
// routed elsewhere, silenced, or over before it was seen.
func whyNoPages(cfg *rules.Config, builtin bool, r *backtestReport) string {
	for _, m := range r.Messages {
		if m.Channel == string(escalate.ChannelPagerDuty) && m.Action == escalate.Trigger {
			return ""
		}
	}
	canPage := cfg.DefaultAction == rules.ActionPage
	for _, rt := range cfg.Routes {
		canPage = canPage || rt.Action == rules.ActionPage
	}
	switch {
	case !canPage && builtin:
		return "no page route configured: the built-in config has no routes and only records; pass --config with a route whose action is page (see rules/example.yml)"
	case !canPage:
		return fmt.Sprintf("no page route configured: no route has action page and default_action is %s (see rules/example.yml)", cmp.Or(cfg.DefaultAction, rules.ActionRecord))
	}
	var graded []string
	for _, in := range r.Incidents {
		if in.Severity == string(correlate.SeverityPage) {
			graded = append(graded, fmt.Sprintf("%s (%s) was routed to %s: %s", in.ID, in.Service, in.Action, in.Why))
		}
	}
	if len(graded) == 0 {
		return fmt.Sprintf("no finding was graded page (%d incidents, none of severity page); a page route pages only findings graded page", len(r.Incidents))
	}
	return fmt.Sprintf("%d finding(s) graded page, none paged: %s", len(graded), strings.Join(graded, "; "))
}

// text is the report for people: every message in time order, then every
// incident with when it opened, paged and resolved.
func (r *backtestReport) text(w io.Writer) error {
	ew := &errWriter{w: w}
	ew.printf("culprit backtest of %s\n%s to %s, %d evaluations every %s, lag %s\n\n", r.Source,
		r.From.Format(time.RFC3339), r.To.Format(time.RFC3339), r.Ticks,
		time.Duration(r.IntervalSeconds*float64(time.Second)), time.Duration(r.LagSeconds*float64(time.Second)))
	pages, posts, resolves := 0, 0, 0
	for _, m := range r.Messages {
		switch {
		case m.Action == escalate.Resolve:
			resolves++
		case m.Channel == string(escalate.ChannelSlack):
			posts++
		default:
			pages++
		}
	}
	ew.printf("Messages: %d pages, %d Slack posts, %d resolves\n", pages, posts, resolves)
	if r.WhyNoPages != "" {
		ew.printf("Why no pages: %s\n", r.WhyNoPages)
	}
	for _, m := range r.Messages {
		what := m.Action
		if m.Channel == string(escalate.ChannelPagerDuty) && m.Action == escalate.Trigger {
			what = "page"
		} else if m.Channel == string(escalate.ChannelSlack) {
			what = "slack " + m.Action
		}
		ew.printf("  %s  %-13s %s %s [%s] %s\n", m.At.Format(time.RFC3339), what, m.IncidentID, m.Service, m.Severity, m.Headline)
		ew.printf("      key %s; onset %s; why: %s\n", m.Key, stampOrDash(m.Onset), m.Why)
	}
	ew.printf("\nIncidents: %d\n", len(r.Incidents))
	for _, in := range r.Incidents {
		ew.printf("  %s %s %s [%s, %s] %s\n", in.ID, in.Service, in.Status, in.Severity, in.Action, in.Headline)
		ew.printf("      opened %s, onset %s, paged %s, resolved %s; route %s; why: %s\n",
			stampOrDash(in.OpenedAt), stampOrDash(in.Onset), stampOrDash(in.PagedAt), stampOrDash(in.ResolvedAt), cmp.Or(in.Route, "none"), in.Why)
	}
	return ew.err
}

func stampOrDash(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, a ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, a...)
	}
}
