package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/culprithq/culprit/escalate"
)

// Retention says how long each kind of row is kept; 0 keeps it for ever.
// Pending outbox messages and open incidents are never pruned, and an
// incident's evidence (the deploys and tickets inside its Span) is kept as
// long as the incident.
type Retention struct {
	// Deliveries: webhook delivery ids, by when they arrived.
	Deliveries time.Duration
	// Outbox: delivered and dead messages, by when they left the queue.
	Outbox time.Duration
	// Incidents: resolved incidents and their timelines, by when they
	// resolved.
	Incidents time.Duration
	// Deploys and Tickets, by when they started or were created.
	Deploys, Tickets time.Duration
	// Span is an incident's evidence span (timeline.Span): the deploys
	// and tickets in it stay while the incident does. Nil keeps none
	// beyond their own retention.
	Span func(in escalate.Incident, now time.Time) (from, to time.Time)
}

// Pruned counts what one Prune deleted.
type Pruned struct {
	Deliveries, Replays, Outbox, Incidents, Events, Deploys, Tickets int64
	// Traffic counts recorded traffic buckets.
	Traffic int64
}

// Prune deletes what r no longer keeps, as of now, in one transaction.
// Expired replay-guard rows always go: past their window the sender's own
// freshness check refuses the request.
func (s *Store) Prune(ctx context.Context, r Retention, now time.Time) (Pruned, error) {
	var p Pruned
	err := s.tx(ctx, func(tx *sql.Tx) error {
		del := func(n *int64, q string, args ...any) error {
			res, err := tx.ExecContext(ctx, q, args...)
			if err != nil {
				return err
			}
			c, _ := res.RowsAffected()
			*n += c
			return nil
		}
		if err := del(&p.Replays, `DELETE FROM replays WHERE expires_at <= ?`, ms(now)); err != nil {
			return fmt.Errorf("replays: %w", err)
		}
		if r.Deliveries > 0 {
			if err := del(&p.Deliveries, `DELETE FROM deliveries WHERE at < ?`, ms(now.Add(-r.Deliveries))); err != nil {
				return fmt.Errorf("deliveries: %w", err)
			}
		}
		if r.Outbox > 0 {
			if err := del(&p.Outbox, `DELETE FROM outbox WHERE state != 'pending' AND done_at < ?`, ms(now.Add(-r.Outbox))); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
		}
		if r.Incidents > 0 {
			// An incident with a message still pending stays until it
			// is delivered: its timeline will get the outcome.
			gone := `SELECT id FROM incidents WHERE status = 'resolved' AND resolved_at < ?
				AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.incident_id = incidents.id AND o.state = 'pending')`
			cut := ms(now.Add(-r.Incidents))
			var customers int64 // counted with their incidents
			if err := del(&customers, `DELETE FROM incident_customers WHERE incident_id IN (`+gone+`)`, cut); err != nil {
				return fmt.Errorf("incident customers: %w", err)
			}
			if err := del(&p.Events, `DELETE FROM timeline WHERE incident_id IN (`+gone+`)`, cut); err != nil {
				return fmt.Errorf("timeline: %w", err)
			}
			if err := del(&p.Outbox, `DELETE FROM outbox WHERE state != 'pending' AND incident_id IN (`+gone+`)`, cut); err != nil {
				return fmt.Errorf("outbox: %w", err)
			}
			if err := del(&p.Incidents, `DELETE FROM incidents WHERE id IN (`+gone+`)`, cut); err != nil {
				return fmt.Errorf("incidents: %w", err)
			}
		}
		if r.Deploys <= 0 && r.Tickets <= 0 {
			return nil
		}
		keep, err := evidenceSpans(ctx, tx, r.Span, now)
		if err != nil {
			return err
		}
		if r.Deploys > 0 {
			if err := deleteOutside(ctx, tx, &p.Deploys, "deploys", "started_at", now.Add(-r.Deploys), keep); err != nil {
				return err
			}
			// Recorded traffic goes with the deploys: both are context
			// for a review, kept around every incident still kept.
			if err := deleteOutside(ctx, tx, &p.Traffic, "traffic", "at", now.Add(-r.Deploys), keep); err != nil {
				return err
			}
		}
		if r.Tickets > 0 {
			if err := deleteOutside(ctx, tx, &p.Tickets, "tickets", "created_at", now.Add(-r.Tickets), keep); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Pruned{}, fmt.Errorf("prune store: %w", err)
	}
	return p, nil
}

type span struct{ from, to int64 }

// evidenceSpans returns the kept incidents' evidence spans, sorted and
// merged.
func evidenceSpans(ctx context.Context, tx *sql.Tx, spanOf func(escalate.Incident, time.Time) (time.Time, time.Time), now time.Time) ([]span, error) {
	if spanOf == nil {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT body FROM incidents`)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var spans []span
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		var in escalate.Incident
		if err := json.Unmarshal([]byte(b), &in); err != nil {
			return nil, fmt.Errorf("read incidents: stored incident is corrupt: %w", err)
		}
		from, to := spanOf(in, now)
		spans = append(spans, span{ms(from), ms(to)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.from, b.from) })
	var merged []span
	for _, sp := range spans {
		if n := len(merged); n > 0 && sp.from <= merged[n-1].to {
			merged[n-1].to = max(merged[n-1].to, sp.to)
			continue
		}
		merged = append(merged, sp)
	}
	return merged, nil
}

// deleteOutside deletes table's rows whose column is before cutoff and in
// none of the kept spans (which are [from, to), as the readers query),
// one gap between spans at a time.
func deleteOutside(ctx context.Context, tx *sql.Tx, n *int64, table, column string, cutoff time.Time, keep []span) error {
	c := ms(cutoff)
	lo := int64(-1 << 62)
	gaps := make([]span, 0, len(keep)+1)
	for _, k := range keep {
		if k.from > lo {
			gaps = append(gaps, span{lo, min(k.from, c)})
		}
		lo = max(lo, k.to)
	}
	gaps = append(gaps, span{lo, c})
	for _, g := range gaps {
		if g.from >= g.to {
			continue
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE `+column+` >= ? AND `+column+` < ?`, g.from, g.to)
		if err != nil {
			return fmt.Errorf("%s: %w", table, err)
		}
		d, _ := res.RowsAffected()
		*n += d
	}
	return nil
}
