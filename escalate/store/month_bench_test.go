package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// Daily rates of the simulated store, for a hosting company's support
// and SRE teams: deploys across a fleet, tickets from its customers, the
// webhooks that bring them, and the incidents culprit opens.
const (
	simDeploysPerDay   = 200  // each with simHosts hosts and a change event
	simHosts           = 10   // hosts per deploy
	simTicketsPerDay   = 1500 // ~1 KB each (subject, description, tags)
	simGitHubPerDay    = 400  // delivery ids: two statuses per deploy
	simPDHooksPerDay   = 40   // PagerDuty webhook event ids
	simSlackPerDay     = 100  // slash commands and button presses (replay rows)
	simIncidentsPerDay = 2    // each with simEvents timeline events and 3 messages
	simEvents          = 12
	simDays            = 90
)

// simIncidentBody is the size of a stored incident with its finding
// (samples, series summaries): a few KB.
var simIncidentBody = strings.Repeat("x", 6000)

// BenchmarkStoreQuarter simulates 90 days of a running culprit into a
// store, pruning once a simulated day with the default retention (prune),
// or never (none), and reports the database's size on disk after 30, 60
// and 90 days (MB, after a WAL checkpoint; SQLite reuses freed pages, so a
// pruned store levels off instead of shrinking).
func BenchmarkStoreQuarter(b *testing.B) {
	day := 24 * time.Hour
	defaults := Retention{Deliveries: 7 * day, Outbox: 30 * day, Incidents: 90 * day, Deploys: 30 * day, Tickets: 30 * day,
		Span: func(in escalate.Incident, now time.Time) (time.Time, time.Time) {
			end := in.ResolvedAt
			if end.IsZero() {
				end = now
			}
			return in.OpenedAt.Add(-2 * time.Hour), end.Add(time.Hour)
		}}
	for _, c := range []struct {
		name  string
		prune bool
	}{{"prune", true}, {"none", false}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				sizes := simulateQuarter(b, defaults, c.prune)
				for _, d := range []int{30, 60, 90} {
					b.ReportMetric(sizes[d-1], fmt.Sprintf("day%d-MB", d))
				}
			}
		})
	}
}

// simulateQuarter returns the store's size in MB at the end of each day.
func simulateQuarter(b *testing.B, r Retention, prune bool) []float64 {
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now := t0
	s, err := Open(ctx, b.TempDir(), func() time.Time { return now })
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	at := func(d, i, n int) time.Time {
		return t0.Add(time.Duration(d)*24*time.Hour + time.Duration(i)*24*time.Hour/time.Duration(n) + time.Duration(rng.IntN(60))*time.Second)
	}
	var sizes []float64
	ticketID := int64(0)
	for d := range simDays {
		for h := range 24 {
			now = t0.Add(time.Duration(d)*24*time.Hour + time.Duration(h)*time.Hour)
			// The hour's share of each daily rate.
			share := func(perDay int) int { return (perDay*(h+1))/24 - (perDay*h)/24 }
			for i := range share(simDeploysPerDay) {
				start := now.Add(time.Duration(i) * time.Hour / time.Duration(max(1, share(simDeploysPerDay))))
				dep := correlate.Deploy{ID: fmt.Sprintf("deploy-%d-%d-%d", d, h, i), Service: fmt.Sprintf("svc-%d", rng.IntN(40)),
					Version: fmt.Sprintf("v%d.%d.%d", rng.IntN(5), rng.IntN(50), rng.IntN(100)), Environment: "production",
					StartedAt: start, FinishedAt: start.Add(10 * time.Minute), Author: "someone@example.com",
					URL: "https://github.com/example/app/deployments/" + fmt.Sprint(rng.Int64()), Description: "Deploy to production"}
				for k := range simHosts {
					dep.Hosts = append(dep.Hosts, correlate.HostRollout{Name: fmt.Sprintf("web-%03d.fra1", k), At: start.Add(time.Duration(k) * time.Minute)})
				}
				if _, err := s.AddDeploy(ctx, dep); err != nil {
					b.Fatal(err)
				}
				body, _ := json.Marshal(dep)
				m := escalate.Message{Channel: escalate.ChannelPagerDuty, Action: escalate.ChangeEvent, Key: dep.ID, Service: dep.Service,
					Body: body, CreatedAt: start, NextAt: start}
				if err := s.Enqueue(ctx, m); err != nil {
					b.Fatal(err)
				}
			}
			var tickets []correlate.Ticket
			for range share(simTicketsPerDay) {
				ticketID++
				tickets = append(tickets, correlate.Ticket{ID: ticketID, CreatedAt: at(d, h, 24), Subject: "Site returns 502 since this morning",
					Description: strings.Repeat("The checkout page of our shop fails intermittently. ", 15), Priority: "normal", Status: "open",
					Tags: []string{"hosting", "http-5xx"}, OrganizationID: rng.Int64N(100000), RequesterID: rng.Int64N(1000000), Via: "web"})
			}
			if err := s.AddTickets(ctx, tickets); err != nil {
				b.Fatal(err)
			}
			for i := range share(simGitHubPerDay) {
				s.FirstDelivery(ctx, "github", fmt.Sprintf("%08x-%d-%d-%d", rng.Uint32(), d, h, i))
			}
			for i := range share(simPDHooksPerDay) {
				s.FirstDelivery(ctx, "pagerduty", fmt.Sprintf("01%x%d%d%d", rng.Uint64(), d, h, i))
			}
			for range share(simSlackPerDay) {
				s.FirstSeen(ctx, "slack", fmt.Sprintf("%016x%016x%016x%016x", rng.Uint64(), rng.Uint64(), rng.Uint64(), rng.Uint64()), now.Add(5*time.Minute))
			}
			for i := range share(simIncidentsPerDay) {
				id := fmt.Sprintf("inc-%d-%d-%d", d, h, i)
				in := escalate.Incident{ID: id, Key: "culprit/" + id, Service: "svc", Status: escalate.StatusResolved, OpenedAt: now,
					ResolvedAt: now.Add(40 * time.Minute), Signature: simIncidentBody}
				ch := escalate.Change{Incident: in}
				for e := range simEvents {
					ch.Events = append(ch.Events, escalate.Event{IncidentID: id, At: now.Add(time.Duration(e) * time.Minute), Kind: escalate.EventDetected,
						Text: strings.Repeat("evidence line ", 10)})
				}
				for _, a := range []string{escalate.Trigger, escalate.Post, escalate.Resolve} {
					ch.Messages = append(ch.Messages, escalate.Message{Channel: escalate.ChannelPagerDuty, Action: a, IncidentID: id, Key: in.Key,
						Body: json.RawMessage(`{"signature":"` + simIncidentBody[:3000] + `"}`), CreatedAt: now, NextAt: now})
				}
				if err := s.Apply(ctx, []escalate.Change{ch}); err != nil {
					b.Fatal(err)
				}
			}
			// The outbox delivers everything within the hour (one
			// statement: the size is what is measured here, and the
			// outbox's own tests cover Delivered).
			if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET state = 'delivered', done_at = next_at + 1000, attempts = 1 WHERE state = 'pending'`); err != nil {
				b.Fatal(err)
			}
		}
		// culprit prunes hourly; daily here changes the size by at most
		// a day's rows and keeps the simulation fast.
		if prune {
			if _, err := s.Prune(ctx, r, now.Add(time.Hour)); err != nil {
				b.Fatal(err)
			}
		}
		sizes = append(sizes, sizeMB(b, s))
	}
	return sizes
}

func sizeMB(b *testing.B, s *Store) float64 {
	var pages, size int64
	if _, err := s.db.Exec(`PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
		b.Fatal(err)
	}
	if err := s.db.QueryRow(`PRAGMA page_count`).Scan(&pages); err != nil {
		b.Fatal(err)
	}
	if err := s.db.QueryRow(`PRAGMA page_size`).Scan(&size); err != nil {
		b.Fatal(err)
	}
	return float64(pages*size) / 1e6
}
