// Package evidence serves culprit's evidence pages: the page a PagerDuty
// incident links to, where on-call reads why culprit woke them (the rate
// and scope charts, how often the error happens, who it hurts, which
// deploy it blames and why, sample log lines, tickets and the timeline),
// and the list of incidents it came from.
//
// The pages are rendered on the server with html/template and carry no
// JavaScript: they must open on a phone at 3 a.m., print for the review,
// and keep working when the only thing left running is culprit itself.
// Everything shown comes from the store, never from Elasticsearch, for the
// same reason the charts are drawn from the finding alone: the page must
// show the numbers the correlator judged, even after log retention has
// deleted the documents behind them.
//
// Every value is escaped by html/template. Log lines, ticket subjects and
// deploy descriptions are written by customers and other systems, so the
// only markup not produced by this package's own template is the timeline
// fragment, which package timeline renders with html/template as well.
package evidence

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
	"github.com/culprithq/culprit/escalate/chart"
	"github.com/culprithq/culprit/escalate/timeline"
)

// Incidents reads incidents and their timeline events.
type Incidents interface {
	// Incidents lists at most limit incidents, newest first. An error means
	// the list could not be read at all.
	Incidents(ctx context.Context, limit int) ([]escalate.Incident, error)
	// Incident returns one incident. An unknown id gives an error matching
	// fs.ErrNotExist; any other error is a failure to read.
	Incident(ctx context.Context, id string) (escalate.Incident, error)
	// Events returns the incident's stored timeline events, oldest first;
	// an incident without events gives none and no error.
	Events(ctx context.Context, incidentID string) ([]escalate.Event, error)
}

// Changes reads the deploys and tickets culprit has received, which the
// pages show around an incident.
type Changes interface {
	// Deploys returns the deploys that started in [from, to), hosts
	// included. An empty range gives none and no error.
	Deploys(ctx context.Context, from, to time.Time) ([]correlate.Deploy, error)
	// Tickets returns the tickets created in [from, to). An empty range
	// gives none and no error.
	Tickets(ctx context.Context, from, to time.Time) ([]correlate.Ticket, error)
}

// Store is what the pages read. It is two small interfaces rather than one
// wide one so that a test, or another store, can be assembled from parts;
// *escalate/store.Store satisfies it.
type Store interface {
	Incidents
	Changes
}

// Config is what New needs.
type Config struct {
	// Store is required.
	Store Store
	// Links returns the external links for an incident (Kibana Discover, a
	// dashboard); may be nil. The evidence page adds the suspects' deploy
	// URLs and the finding's own links itself.
	Links func(*escalate.Incident) []correlate.Link
	// Now is the clock, for an incident still under way: its timeline and
	// deploys reach up to now. Nil means time.Now.
	Now func() time.Time
	// Logger receives store and rendering failures, which the browser is
	// only told about in generic terms. Nil means slog.Default().
	Logger *slog.Logger
	// ChartCacheBytes bounds the memory kept for rendered charts;
	// DefaultChartCacheBytes when 0. Negative keeps none, though
	// concurrent requests for one chart still render it once.
	ChartCacheBytes int64
	// Review, when set, adds the review's sections (why alerting missed
	// it, what to tell customers) to the timeline, as `culprit timeline`
	// does, with ReviewOptions.
	Review        timeline.ReviewReader
	ReviewOptions timeline.ReviewOptions
}

// Handler serves the evidence pages. It is safe for concurrent use.
type Handler struct {
	store Store
	links func(*escalate.Incident) []correlate.Link
	now   func() time.Time
	log   *slog.Logger
	// charts holds rendered charts by incident and evidence version.
	charts *renderCache
	// renders counts charts actually drawn, for tests.
	renders       atomic.Int64
	review        timeline.ReviewReader
	reviewOptions timeline.ReviewOptions
}

// New checks cfg and fills its defaults. It fails only without a Store.
func New(cfg Config) (*Handler, error) {
	if cfg.Store == nil {
		return nil, errors.New("evidence pages: no store")
	}
	if cfg.ChartCacheBytes == 0 {
		cfg.ChartCacheBytes = DefaultChartCacheBytes
	}
	h := &Handler{store: cfg.Store, links: cfg.Links, now: cfg.Now, log: cfg.Logger, charts: newRenderCache(cfg.ChartCacheBytes),
		review: cfg.Review, reviewOptions: cfg.ReviewOptions}
	if h.now == nil {
		h.now = time.Now
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	return h, nil
}

// Register adds the routes to mux:
//
//	GET /incidents                        the list (?status=open|resolved)
//	GET /incidents/{id}                   the evidence page
//	GET /incidents/{id}/chart.{png,svg}   the error-rate chart
//	GET /incidents/{id}/scope.{png,svg}   the scope chart
//	GET /incidents/{id}/timeline.{md,json,csv,html}
//
// A pattern cannot match part of a path segment ("{id}/chart.{ext}"), so
// the files share one route and the handler reads the name itself.
//
// Every route shows customer data; whoever registers them decides who may
// reach them (cmd/culprit puts them behind the private listener's login).
func (h *Handler) Register(mux Router) {
	mux.HandleFunc("GET /incidents", h.list)
	mux.HandleFunc("GET /incidents/{id}", h.page)
	mux.HandleFunc("GET /incidents/{id}/{file}", h.file)
}

// Router is where Register adds its routes; *http.ServeMux is one.
type Router interface {
	HandleFunc(pattern string, handler func(http.ResponseWriter, *http.Request))
}

// listLimit bounds the list page: enough for weeks of incidents, few
// enough that the page stays light.
const listLimit = 200

// statuses are the values ?status= accepts.
var statuses = []escalate.Status{escalate.StatusOpen, escalate.StatusResolved}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	status := escalate.Status(strings.TrimSpace(r.URL.Query().Get("status")))
	if status != "" && !slices.Contains(statuses, status) {
		http.Error(w, fmt.Sprintf("unknown status %q: want open or resolved", string(status)), http.StatusBadRequest)
		return
	}
	ins, err := h.store.Incidents(r.Context(), listLimit)
	if err != nil {
		h.fail(w, r, "list incidents", err, "cannot read incidents")
		return
	}
	limited := len(ins) >= listLimit
	if status != "" {
		ins = slices.DeleteFunc(ins, func(in escalate.Incident) bool { return in.Status != status })
	}
	h.render(w, r, "list", newListView(ins, status, limited))
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	in, ok := h.incident(w, r)
	if !ok {
		return
	}
	tl, deploys, ok := h.timeline(w, r, &in)
	if !ok {
		return
	}
	frag, err := tl.HTMLFragment()
	if err != nil {
		h.fail(w, r, "render timeline", err, "cannot render the evidence page")
		return
	}
	var links []correlate.Link
	if h.links != nil {
		links = h.links(&in)
	}
	h.render(w, r, "page", newPageView(&in, deploys, links, frag))
}

// fileKind is what a file name under an incident asks for.
type fileKind int

const (
	fileRate fileKind = iota
	fileScope
	fileTimeline
)

// knownFiles names every file an incident has, for the 404 of any other.
const knownFiles = "chart.png, chart.svg, scope.png, scope.svg, timeline.md, timeline.json, timeline.csv or timeline.html"

// parseFile reads "chart.svg", "timeline.csv" and the like. Only the
// canonical lower-case names are accepted, so each file has one URL.
func parseFile(name string) (kind fileKind, ext string, ok bool) {
	base, ext, found := strings.Cut(name, ".")
	if !found {
		return 0, "", false
	}
	switch {
	case base == "chart" && (ext == "png" || ext == "svg"):
		return fileRate, ext, true
	case base == "scope" && (ext == "png" || ext == "svg"):
		return fileScope, ext, true
	case base == "timeline" && (ext == "md" || ext == "json" || ext == "csv" || ext == "html"):
		return fileTimeline, ext, true
	}
	return 0, "", false
}

func (h *Handler) file(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("file")
	kind, ext, ok := parseFile(name)
	if !ok {
		http.Error(w, fmt.Sprintf("no file %q for an incident: want %s", name, knownFiles), http.StatusNotFound)
		return
	}
	in, ok := h.incident(w, r)
	if !ok {
		return
	}
	switch kind {
	case fileRate, fileScope:
		h.chart(w, r, &in, kind, chart.Format(ext))
	case fileTimeline:
		h.timelineFile(w, r, &in, timeline.Format(ext))
	}
}

func (h *Handler) chart(w http.ResponseWriter, r *http.Request, in *escalate.Incident, kind fileKind, format chart.Format) {
	f := in.Finding
	switch {
	case f == nil:
		http.Error(w, fmt.Sprintf("incident %q has no finding to chart", in.ID), http.StatusNotFound)
		return
	case kind == fileRate && f.Series == nil:
		http.Error(w, fmt.Sprintf("incident %q has no error series to chart", in.ID), http.StatusNotFound)
		return
	}
	var deploys []correlate.Deploy
	if kind == fileRate {
		from, to := h.span(in)
		var err error
		deploys, err = h.store.Deploys(r.Context(), from, to)
		if err != nil {
			h.fail(w, r, "read deploys", err, "cannot read deploys")
			return
		}
	}
	key, err := chartKey(in.ID, kind, string(format), f, deploys)
	if err != nil {
		h.fail(w, r, "draw chart", err, "cannot draw the chart")
		return
	}
	b, err := h.charts.get(key, func() ([]byte, error) {
		h.renders.Add(1)
		var buf bytes.Buffer
		var err error
		if kind == fileRate {
			err = chart.Rate(&buf, f, deploys, format, chart.DefaultSize)
		} else {
			err = chart.Scope(&buf, f, format, chart.DefaultSize)
		}
		return buf.Bytes(), err
	})
	if err != nil {
		h.fail(w, r, "draw chart", err, "cannot draw the chart")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", format.ContentType())
	hd.Set("Cache-Control", "max-age=60")
	// An SVG opened directly is a document: keep it from running anything.
	hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	hd.Set("X-Content-Type-Options", "nosniff")
	// The version is the ETag: a client holding this rendering is
	// answered 304 without the bytes.
	hd.Set("ETag", `"`+key[:32]+`"`)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func (h *Handler) timelineFile(w http.ResponseWriter, r *http.Request, in *escalate.Incident, format timeline.Format) {
	tl, _, ok := h.timeline(w, r, in)
	if !ok {
		return
	}
	var buf bytes.Buffer
	if err := tl.Write(&buf, format); err != nil {
		h.fail(w, r, "export timeline", err, "cannot export the timeline")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", format.ContentType())
	hd.Set("X-Content-Type-Options", "nosniff")
	switch format {
	case timeline.FormatMarkdown, timeline.FormatCSV:
		hd.Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fileName(in.ID)+"-timeline."+string(format)))
	case timeline.FormatHTML:
		hd.Set("Content-Security-Policy", pagePolicy)
	}
	h.write(w, r, buf.Bytes())
}

// fileName keeps the characters of id that are safe in a file name and in
// a quoted header parameter. Ids are "inc-" and hex, so this only matters
// for a store that makes them differently.
func fileName(id string) string {
	s := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, id)
	return cmp.Or(strings.Trim(s, "."), "incident")
}

// incident reads the incident named in the path, answering the request
// itself (404 or 500) when that fails.
func (h *Handler) incident(w http.ResponseWriter, r *http.Request) (escalate.Incident, bool) {
	id := r.PathValue("id")
	in, err := h.store.Incident(r.Context(), id)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		http.Error(w, fmt.Sprintf("no incident %q", id), http.StatusNotFound)
		return in, false
	case err != nil:
		h.fail(w, r, "read incident", err, "cannot read incident")
		return in, false
	}
	if in.ID == "" {
		in.ID = id
	}
	return in, true
}

// timeline builds the incident's timeline from its events and the deploys
// and tickets around it, answering the request itself when the store
// fails. It returns the deploys too: the page links the suspects' URLs.
func (h *Handler) timeline(w http.ResponseWriter, r *http.Request, in *escalate.Incident) (timeline.Timeline, []correlate.Deploy, bool) {
	ctx := r.Context()
	events, err := h.store.Events(ctx, in.ID)
	if err != nil {
		h.fail(w, r, "read events", err, "cannot read the incident's timeline")
		return timeline.Timeline{}, nil, false
	}
	// The same span as `culprit timeline`, so both export the same.
	from, to := timeline.Span(*in, h.now())
	deploys, err := h.store.Deploys(ctx, from, to)
	if err != nil {
		h.fail(w, r, "read deploys", err, "cannot read deploys")
		return timeline.Timeline{}, nil, false
	}
	tickets, err := h.store.Tickets(ctx, from, to)
	if err != nil {
		h.fail(w, r, "read tickets", err, "cannot read tickets")
		return timeline.Timeline{}, nil, false
	}
	tl := timeline.Build(*in, events, deploys, tickets)
	if h.review != nil {
		if err := tl.AddReview(ctx, h.review, tickets, h.reviewOptions); err != nil {
			h.fail(w, r, "read review", err, "cannot read the incident's review")
			return timeline.Timeline{}, nil, false
		}
	}
	return tl, deploys, true
}

// span is the time range whose deploys the rate chart needs: the
// timeline's span (timeline.Span), widened to the finding's series so the
// chart gets every deploy its window shows.
func (h *Handler) span(in *escalate.Incident) (from, to time.Time) {
	from, to = timeline.Span(*in, h.now())
	if f := in.Finding; f != nil && f.Series != nil && !f.Series.Start.IsZero() {
		s := f.Series
		if start := s.Start.Add(-timeline.Before); start.Before(from) {
			from = start
		}
		if s.StepSec > 0 && len(s.Errors) > 0 {
			if end := s.Start.Add(time.Duration(float64(len(s.Errors)) * s.StepSec * float64(time.Second))); end.After(to) {
				to = end
			}
		}
	}
	return from, to
}

// pagePolicy forbids scripts and any resource from elsewhere: the pages
// need none, and a log line that slipped past escaping still could not
// run or phone home.
const pagePolicy = "default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// render executes a page template into a buffer first, so that a template
// error becomes a clean 500 rather than half a page.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, name string, data any) {
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, data); err != nil {
		h.fail(w, r, "render "+name+" page", err, "cannot render the page")
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Security-Policy", pagePolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "same-origin")
	h.write(w, r, buf.Bytes())
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, b []byte) {
	if _, err := w.Write(b); err != nil && r.Context().Err() == nil {
		h.log.WarnContext(r.Context(), "evidence: write response", "path", r.URL.Path, "err", err)
	}
}

// fail logs err in full and tells the client only what failed: store
// errors name files and queries that are no business of a browser. A
// request the client abandoned is not logged as an error.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, op string, err error, msg string) {
	ctx := r.Context()
	if ctx.Err() != nil {
		h.log.DebugContext(ctx, "evidence: "+op, "path", r.URL.Path, "err", err)
	} else {
		h.log.ErrorContext(ctx, "evidence: "+op, "path", r.URL.Path, "err", err)
	}
	http.Error(w, msg, http.StatusInternalServerError)
}
