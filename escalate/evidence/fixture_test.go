package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// fakeStore is an in-memory Store. Deploys and Tickets filter by start
// and creation time as the SQLite store does, so a wrong time range in
// the handler shows up as missing deploys.
type fakeStore struct {
	incidents []escalate.Incident // newest first, as the store orders them
	events    []escalate.Event
	deploys   []correlate.Deploy
	tickets   []correlate.Ticket

	// fail makes the named method return errStore.
	fail string

	mu           sync.Mutex
	deployRanges [][2]time.Time
}

// errStore carries what a real store error may carry: a file path. It
// must reach the log and never the browser.
var errStore = errors.New("read incidents: open /var/lib/culprit/culprit.db: disk I/O error")

func (s *fakeStore) Incidents(_ context.Context, limit int) ([]escalate.Incident, error) {
	if s.fail == "Incidents" {
		return nil, errStore
	}
	return slices.Clone(s.incidents[:min(limit, len(s.incidents))]), nil
}

func (s *fakeStore) Incident(_ context.Context, id string) (escalate.Incident, error) {
	if s.fail == "Incident" {
		return escalate.Incident{}, errStore
	}
	for _, in := range s.incidents {
		if in.ID == id {
			return in, nil
		}
	}
	return escalate.Incident{}, fmt.Errorf("incident %q: %w", id, fs.ErrNotExist)
}

func (s *fakeStore) Events(_ context.Context, id string) ([]escalate.Event, error) {
	if s.fail == "Events" {
		return nil, errStore
	}
	var out []escalate.Event
	for _, e := range s.events {
		if e.IncidentID == id {
			out = append(out, e)
		}
	}
	return out, nil
}

func (s *fakeStore) Deploys(_ context.Context, from, to time.Time) ([]correlate.Deploy, error) {
	s.mu.Lock()
	s.deployRanges = append(s.deployRanges, [2]time.Time{from, to})
	s.mu.Unlock()
	if s.fail == "Deploys" {
		return nil, errStore
	}
	var out []correlate.Deploy
	for _, d := range s.deploys {
		if !d.StartedAt.Before(from) && d.StartedAt.Before(to) {
			out = append(out, d)
		}
	}
	return out, nil
}

func (s *fakeStore) Tickets(_ context.Context, from, to time.Time) ([]correlate.Ticket, error) {
	if s.fail == "Tickets" {
		return nil, errStore
	}
	var out []correlate.Ticket
	for _, t := range s.tickets {
		if !t.CreatedAt.Before(from) && t.CreatedAt.Before(to) {
			out = append(out, t)
		}
	}
	return out, nil
}

// day is the Friday of the incident; at(h, m) is a moment on it.
var day = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func at(h, m int) time.Time {
	return day.Add(time.Duration(h)*time.Hour + time.Duration(m)*time.Minute)
}

// fixNow is the injected clock: the evening after the incident.
var fixNow = at(19, 0)

const (
	fridayID   = "inc-0f1e2d3c4b"
	openID     = "inc-a1b2c3d4e5"
	blindID    = "inc-b1i2n3d4e5"
	signature  = "function invocation failed: fn-<*> returned <*> from upstream <*>"
	xssSample  = `function invocation failed: fn-<script>alert(1)</script> returned 502`
	kibanaURL  = "https://kibana.example.net/app/discover#/?_g=(time:(from:'2026-11-20T15:47:00Z'))&_a=(query:'edge-router')"
	releaseURL = "https://github.com/acme/edge-router/releases/tag/v3.8.0"
)

const fridayHeadline = "edge-router 3.8.0 (deploy dep-1a2b, rolled out 16:00–16:21 UTC) is the suspected cause of a new error class '" +
	signature + "' affecting 37 customers, 0.33% of requests on cloud.provider=aws; started 16:02; 1 related ticket"

// fixture is the whole Friday incident, resolved, beside an open incident
// of another service whose finding has no series and culprit's own
// "cannot read logs" incident:
//
//	16:00–16:21 edge-router 3.8.0 (dep-1a2b) rolls out over eight aws hosts
//	16:02       errors of the new class start
//	16:05       culprit detects it and pages; Alice acknowledges at 16:09
//	16:20       a customer files ticket #101
//	16:40–16:44 the rollback to 3.7.4 (dep-9f9f)
//	16:45       errors are back at baseline; resolved at 16:55
func fixture() *fakeStore {
	recovered := at(16, 45)
	finding := &correlate.Finding{
		ID: "f-5e6f7a8b", Service: "edge-router", Kind: correlate.KindNewError, Signature: signature,
		Examples: []string{"function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080"},
		Onset:    at(16, 2), Detected: at(16, 5), Recovered: &recovered, Severity: correlate.SeverityPage,
		SeverityReasons: []string{"new error class on 37 customers", "q-value 1e-12 after 412 tests"},
		Headline:        fridayHeadline,
		Frequency:       correlate.Frequency{BeforePerMin: 0, AfterPerMin: 41.3, ShareBefore: 0, ShareAfter: 0.0033, Count: 1776},
		Significance:    correlate.Significance{Method: "poisson rate test, Benjamini–Hochberg", PValue: 1e-14, QValue: 1e-12, Tests: 412},
		Scope: correlate.ScopeSummary{
			Affected: map[string]int{correlate.FieldCustomer: 37, correlate.FieldSite: 41, correlate.FieldHost: 8},
			Concentration: []correlate.Concentration{
				{Field: correlate.FieldVersion, Value: "3.8.0", ShareOfErrors: 0.99, ShareOfRequests: 0.35},
				{Field: correlate.FieldProvider, Value: "aws", ShareOfErrors: 0.97, ShareOfRequests: 0.42},
				{Field: correlate.FieldHost, Value: "edge-aws-use1-03", ShareOfErrors: 0.31, ShareOfRequests: 0.05},
			},
			Explanations: []correlate.Explanation{{
				Conditions:    []correlate.Condition{{Field: correlate.FieldProvider, Value: "aws"}, {Field: correlate.FieldPath, Value: "/.fn/*", Prefix: true}},
				ShareOfErrors: 0.96, ShareOfRequests: 0.05, ErrorRate: 0.063, Versus: "rest", VersusErrorRate: 0.0001, RiskRatio: 630, RiskRatioLow: 400,
			}},
		},
		SuspectedDeploys: []correlate.Suspect{{
			ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", StartedAt: at(16, 0), FinishedAt: at(16, 21),
			Score: 0.97, Reasons: []string{
				"hosts broke in rollout order: 8 of 8 failed within 2 minutes of receiving 3.8.0",
				"99% of errors are on version 3.8.0, which serves 35% of requests",
			},
		}},
		Tickets:      []correlate.TicketRef{{ID: 101, Subject: "Functions return 502 since 4pm", CreatedAt: at(16, 20), OrganizationID: 10234, Reason: "affected organization"}},
		OtherTickets: []int64{117, 118},
		Samples: []correlate.Sample{
			{Time: at(16, 2).Add(41 * time.Second), Host: "edge-aws-use1-01", Customer: "10234", Site: "shop-10234.example.net", Version: "3.8.0",
				Message: "function invocation failed: fn-8812 returned 502 from upstream 10.0.3.7:8080"},
			{Time: at(16, 7).Add(3 * time.Second), Host: "edge-aws-use1-03", Customer: "20417", Site: "api.tenant-20417.example.org", Version: "3.8.0",
				Message: xssSample},
		},
		Series: fridaySeries(),
	}
	friday := escalate.Incident{
		ID: fridayID, Key: "culprit/edge-router/f-5e6f7a8b/dep-1a2b", Service: "edge-router", Signature: signature,
		Kind: correlate.KindNewError, Status: escalate.StatusResolved, Action: escalate.ActionPage, Why: "route always",
		Severity: correlate.SeverityPage, OpenedAt: at(16, 5), Onset: at(16, 2), PagedAt: at(16, 5), LastSeen: at(16, 45),
		Recovered: recovered, ResolvedAt: at(16, 55), Finding: finding,
	}
	ev := func(t time.Time, kind, text, actor string) escalate.Event {
		return escalate.Event{IncidentID: fridayID, At: t, Kind: kind, Text: text, Actor: actor}
	}
	events := []escalate.Event{
		ev(at(16, 2), escalate.EventOnset, "errors of '"+signature+"' on edge-router start", ""),
		ev(at(16, 5), escalate.EventDetected, fridayHeadline, ""),
		ev(at(16, 5).Add(2*time.Second), escalate.EventPageSent, "PagerDuty accepted the trigger", ""),
		ev(at(16, 9), "incident.acknowledged", "acknowledged in PagerDuty", "Alice"),
		ev(at(16, 45), escalate.EventRecovered, "errors back at baseline", ""),
		ev(at(16, 55), escalate.EventResolved, "resolved: back at baseline for 10 buckets", ""),
		// Another incident's event is never shown on this one.
		{IncidentID: openID, At: at(18, 1), Kind: escalate.EventDetected, Text: "api errors rising"},
	}

	var suspectHosts, rollbackHosts []correlate.HostRollout
	for i := range 8 {
		name := fmt.Sprintf("edge-aws-use1-%02d", i+1)
		suspectHosts = append(suspectHosts, correlate.HostRollout{Name: name, At: at(16, 0).Add(time.Duration(i+1) * 150 * time.Second)})
		rollbackHosts = append(rollbackHosts, correlate.HostRollout{Name: name, At: at(16, 40).Add(time.Duration(i+1) * 30 * time.Second)})
	}
	deploys := []correlate.Deploy{
		{ID: "dep-0c0c", Service: "edge-router", Version: "3.7.4", StartedAt: day.Add(-46 * time.Hour), FinishedAt: day.Add(-45 * time.Hour), Author: "sam"},
		{ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0", Environment: "production", StartedAt: at(16, 0), FinishedAt: at(16, 21),
			Author: "jo", URL: releaseURL, Description: "faster upstream pool", Hosts: suspectHosts},
		{ID: "dep-9f9f", Service: "edge-router", Version: "3.7.4", Environment: "production", StartedAt: at(16, 40), FinishedAt: at(16, 44),
			Author: "jo", Description: "rollback of 3.8.0", Hosts: rollbackHosts},
	}
	tickets := []correlate.Ticket{
		{ID: 101, CreatedAt: at(16, 20), Subject: "Functions return 502 since 4pm", OrganizationID: 10234, Priority: "high"},
		{ID: 102, CreatedAt: at(16, 30), Subject: "Invoice address", OrganizationID: 30001},
	}

	open := escalate.Incident{
		ID: openID, Key: "culprit/api/f-0a0b0c0d", Service: "api", Signature: "upstream timeout after <*>ms",
		Kind: correlate.KindErrorIncrease, Status: escalate.StatusOpen, Action: escalate.ActionSlack, Why: "route support-hours",
		Severity: correlate.SeverityNotify, OpenedAt: at(18, 1), Onset: at(17, 55), LastSeen: at(18, 30),
		Finding: &correlate.Finding{
			ID: "f-0a0b0c0d", Service: "api", Kind: correlate.KindErrorIncrease, Signature: "upstream timeout after <*>ms",
			Onset: at(17, 55), Severity: correlate.SeverityNotify,
			Frequency: correlate.Frequency{BeforePerMin: 0.4, AfterPerMin: 3.2, ShareBefore: 0.0001, ShareAfter: 0.0008, Count: 96},
		},
	}
	blindText := "culprit cannot read logs from http://es.internal:9200: 3 evaluations in a row failed: connection refused"
	blind := escalate.Incident{
		ID: blindID, Key: "culprit/blind/http://es.internal:9200", Service: "culprit", Signature: blindText,
		Status: escalate.StatusOpen, Meta: true, Action: escalate.ActionPage, Why: "source unreadable",
		Severity: correlate.SeverityNotify, OpenedAt: at(18, 40), Onset: at(18, 40), LastSeen: at(18, 40),
	}
	events = append(events, escalate.Event{IncidentID: blindID, At: at(18, 40), Kind: escalate.EventDetected, Text: blindText})

	return &fakeStore{
		incidents: []escalate.Incident{blind, open, friday},
		events:    events,
		deploys:   deploys,
		tickets:   tickets,
	}
}

// fridaySeries is 90 one-minute buckets from 15:30: a quiet baseline,
// errors growing with each host switched to 3.8.0 from 16:02, and back
// to baseline after the rollback.
func fridaySeries() *correlate.FindingChart {
	start := at(15, 30)
	s := &correlate.FindingChart{Start: start, StepSec: 60}
	noise := []float64{0, 1, 0, 0, 0, 1, 0, 0, 1, 0}
	for i := range 90 {
		t := start.Add(time.Duration(i) * time.Minute)
		req := math.Round(12000 + 600*math.Sin(float64(i)/9))
		s.Requests = append(s.Requests, req)
		s.Baseline = append(s.Baseline, 0.3*req/12000)
		e := noise[i%len(noise)]
		if !t.Before(at(16, 2)) && t.Before(at(16, 45)) {
			hosts := min(8, 1+int(t.Sub(at(16, 2))/(150*time.Second)))
			if t.After(at(16, 40)) {
				hosts = max(0, 8-int(t.Sub(at(16, 40))/(30*time.Second)))
			}
			e = 5*float64(hosts) + 2*noise[(i*7)%len(noise)]
		}
		s.Errors = append(s.Errors, e)
	}
	return s
}
