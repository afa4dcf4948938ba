package main

import (
	"cmp"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/culprithq/culprit/rules"
	"github.com/culprithq/culprit/sources/listener"
)

// Body limits per endpoint. The listener's 1 MiB stays the most any route
// takes (a deploy batch, an export page, a GitHub payload, whose
// deployment.payload the pipeline fills); a route whose sender cannot need
// as much gets less, so an unauthenticated client can make culprit buffer
// only what that endpoint really receives.
const (
	bodyIntake = listener.MaxBody
	bodyGitHub = listener.MaxBody
	// A Zendesk trigger's body is what the trigger's JSON template makes
	// of one ticket; a PagerDuty v3 event describes one incident.
	bodyZendesk   = 256 << 10
	bodyPagerDuty = 256 << 10
	// A slash command is a short form (Slack caps the text at a few
	// thousand characters); an interaction carries the message it came
	// from, up to 50 blocks.
	bodySlackCommand     = 32 << 10
	bodySlackInteraction = 512 << 10
	// The pages are GETs: nothing legitimate has a body.
	bodyNone = 4 << 10
)

// Default concurrency per route class when http.concurrency leaves it 0.
// Enough for a burst of webhooks (PagerDuty sends role assignments in
// bursts, a rollout sends a progress event per host), few enough that a
// flood of one kind leaves the store and the CPUs to the others. Charts
// cost the most even when cached, so they get the fewest.
const (
	defaultConcurrency       = 8
	defaultChartsConcurrency = 4
)

// routeClasses are the listener's route classes, one concurrency limit
// each.
type routeClasses struct {
	intake, github, zendesk, pagerduty, slack, charts, pages *listener.Class
}

// newRouteClasses builds the classes from the configuration; their 503s
// are counted on reg.
func newRouteClasses(c rules.Concurrency, reg prometheus.Registerer) (*routeClasses, error) {
	busy := listener.BusyCounter()
	if err := reg.Register(busy); err != nil {
		return nil, fmt.Errorf("http: metrics: %w", err)
	}
	var errs []error
	class := func(name string, n, def int) *listener.Class {
		cl, err := listener.NewClass(name, cmp.Or(n, def), busy)
		if err != nil {
			errs = append(errs, fmt.Errorf("http.concurrency.%s: %w", name, err))
		}
		return cl
	}
	rc := &routeClasses{
		intake:    class("intake", c.Intake, defaultConcurrency),
		github:    class("github", c.GitHub, defaultConcurrency),
		zendesk:   class("zendesk", c.Zendesk, defaultConcurrency),
		pagerduty: class("pagerduty", c.PagerDuty, defaultConcurrency),
		slack:     class("slack", c.Slack, defaultConcurrency),
		charts:    class("charts", c.Charts, defaultChartsConcurrency),
		pages:     class("pages", c.Pages, defaultConcurrency),
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return rc, nil
}

// listenerConfig is the configuration's http section for the listener.
// name labels the listener's connection metrics (public or private).
func (s *server) listenerConfig(name string) listener.Config {
	h := s.cfg.HTTP
	return listener.Config{ReadHeaderTimeout: h.ReadHeaderTimeout.D(), ReadTimeout: h.ReadTimeout.D(),
		WriteTimeout: h.WriteTimeout.D(), IdleTimeout: h.IdleTimeout.D(), MaxHeaderBytes: h.MaxHeaderBytes,
		MaxConns: h.MaxConnections, Logger: s.log, Registerer: s.reg, Name: name}
}

// evidenceRoutes serves the evidence handler ev on mux, its charts in the
// charts class and the rest in the pages class. The evidence handler
// registers its own patterns, so the split is by file name: the charts are
// the images under an incident.
func (rc *routeClasses) evidenceRoutes(mux *http.ServeMux, ev http.Handler) {
	pages := rc.pages.Guard(bodyNone, ev)
	charts := rc.charts.Guard(bodyNone, ev)
	mux.Handle("GET /incidents", pages)
	mux.Handle("GET /incidents/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name := path.Base(r.URL.Path); strings.HasPrefix(name, "chart.") || strings.HasPrefix(name, "scope.") {
			charts.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	}))
}
