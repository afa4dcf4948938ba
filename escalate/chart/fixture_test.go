package chart

import (
	"math"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// The fixture is the Friday incident in miniature: 90 one-minute buckets
// from 15:00 UTC, a quiet signature (about 0.3 errors a minute), an
// edge-router rollout over six hosts from 15:30 whose errors grow with
// each host switched, a rollback at 16:05, an unrelated billing-api deploy
// at 15:12 and a search deploy hours before the window.
var (
	fixStart = time.Date(2026, 11, 20, 15, 0, 0, 0, time.UTC)

	suspectDeploy = correlate.Deploy{
		ID: "dep-1a2b", Service: "edge-router", Version: "3.8.0",
		StartedAt:  at(30, 0),
		FinishedAt: at(44, 0),
		Hosts: []correlate.HostRollout{
			{Name: "edge-aws-use1-01", At: at(30, 40)},
			{Name: "edge-aws-use1-02", At: at(33, 10)},
			{Name: "edge-aws-use1-03", At: at(35, 50)},
			{Name: "edge-aws-usw2-01", At: at(38, 20)},
			{Name: "edge-aws-usw2-02", At: at(41, 0)},
			{Name: "edge-aws-usw2-03", At: at(43, 30)},
		},
	}
	unrelatedDeploy = correlate.Deploy{
		ID: "dep-77aa", Service: "billing-api", Version: "2.14.0",
		StartedAt:  at(12, 0),
		FinishedAt: at(15, 30),
		Hosts: []correlate.HostRollout{
			{Name: "billing-1", At: at(12, 20)},
			{Name: "billing-2", At: at(13, 40)},
			{Name: "billing-3", At: at(15, 10)},
		},
	}
	outsideDeploy = correlate.Deploy{
		ID: "dep-0ld", Service: "search", Version: "9.9.9",
		StartedAt:  fixStart.Add(-3 * time.Hour),
		FinishedAt: fixStart.Add(-3*time.Hour + 10*time.Minute),
	}
	fixDeploys = []correlate.Deploy{outsideDeploy, suspectDeploy, unrelatedDeploy}
)

// at is the fixture time m minutes and s seconds after its start.
func at(m, s int) time.Time {
	return fixStart.Add(time.Duration(m)*time.Minute + time.Duration(s)*time.Second)
}

// fixtureFinding builds the finding by hand, without the correlator, so
// the chart tests do not move when detection changes.
func fixtureFinding() *correlate.Finding {
	const n = 90
	noise := []float64{0, 1, 0, 0, 0, 1, 0, 0, 1, 0}
	s := &correlate.FindingChart{Start: fixStart, StepSec: 60}
	for i := range n {
		req := math.Round(1000 + 80*math.Sin(float64(i)/9))
		s.Requests = append(s.Requests, req)
		s.Baseline = append(s.Baseline, 0.3*req/1000)
		e := noise[i%len(noise)]
		if i >= 30 && i < 65 {
			mid := at(i, 30)
			hosts := 0
			for _, h := range suspectDeploy.Hosts {
				if !h.At.After(mid) {
					hosts++
				}
			}
			if hosts > 0 {
				e = 6 + 2*float64(hosts) + 2*noise[(i*7)%len(noise)]
			}
		}
		s.Errors = append(s.Errors, e)
	}
	recovered := at(67, 0)
	return &correlate.Finding{
		ID:        "f-edge-1",
		Service:   "edge-router",
		Kind:      correlate.KindNewError,
		Signature: "function invocation failed: fn-<*> returned <*> from upstream <*>",
		Onset:     at(31, 0),
		Recovered: &recovered,
		Severity:  correlate.SeverityPage,
		Series:    s,
		Scope: correlate.ScopeSummary{
			Affected: map[string]int{correlate.FieldCustomer: 37, correlate.FieldSite: 41, correlate.FieldHost: 6},
			Concentration: []correlate.Concentration{
				{Field: correlate.FieldVersion, Value: "3.8.0", ShareOfErrors: 0.99, ShareOfRequests: 0.35},
				{Field: correlate.FieldProvider, Value: "aws", ShareOfErrors: 0.97, ShareOfRequests: 0.42},
				{Field: correlate.FieldHost, Value: "edge-aws-use1-03", ShareOfErrors: 0.31, ShareOfRequests: 0.05},
				{Field: correlate.FieldPath, Value: "/fn/resize", ShareOfErrors: 0.22, ShareOfRequests: 0.004},
			},
		},
		SuspectedDeploys: []correlate.Suspect{{
			ID: suspectDeploy.ID, Service: suspectDeploy.Service, Version: suspectDeploy.Version,
			StartedAt: suspectDeploy.StartedAt, FinishedAt: suspectDeploy.FinishedAt, Score: 0.93,
		}},
	}
}
