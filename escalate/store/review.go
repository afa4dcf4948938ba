package store

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/culprithq/culprit/correlate"
	"github.com/culprithq/culprit/escalate"
)

// RecordTraffic keeps each service's requests and errors in the complete
// buckets of tr (all buckets when tr.Complete is 0), replacing what an
// earlier evaluation recorded for the same bucket: late documents make a
// later read the truer one. The review reads them back (Traffic) to show
// what a threshold alert on the error share would have seen.
func (s *Store) RecordTraffic(ctx context.Context, tr *correlate.Traffic, since time.Time) error {
	if tr == nil || tr.Window.Step <= 0 {
		return nil
	}
	end := tr.Window.Len()
	if tr.Complete > 0 {
		end = tr.Complete
	}
	step := tr.Window.Step.Milliseconds()
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, sv := range tr.Services {
			for i := range min(end, len(sv.Requests)) {
				at := tr.Window.Start(i)
				if at.Before(since) {
					continue
				}
				errs := 0.0
				if i < len(sv.Errors) {
					errs = sv.Errors[i]
				}
				if _, err := tx.ExecContext(ctx, `INSERT INTO traffic (service, at, step, requests, errors) VALUES (?, ?, ?, ?, ?)
					ON CONFLICT(service, at) DO UPDATE SET step = excluded.step, requests = excluded.requests, errors = excluded.errors`,
					sv.Service, ms(at), step, sv.Requests[i], errs); err != nil {
					return fmt.Errorf("record traffic of %s: %w", sv.Service, err)
				}
			}
		}
		return nil
	})
}

// Traffic returns the recorded traffic of every service in buckets that
// start in [from, to), by service, oldest bucket first.
func (s *Store) Traffic(ctx context.Context, from, to time.Time) ([]escalate.ServiceTraffic, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT service, at, step, requests, errors FROM traffic WHERE at >= ? AND at < ? ORDER BY service, at`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read traffic: %w", err)
	}
	defer rows.Close()
	var out []escalate.ServiceTraffic
	for rows.Next() {
		var svc string
		var at, step int64
		var b escalate.TrafficBucket
		if err := rows.Scan(&svc, &at, &step, &b.Requests, &b.Errors); err != nil {
			return nil, fmt.Errorf("read traffic: %w", err)
		}
		b.At, b.Step = fromMS(at), time.Duration(step)*time.Millisecond
		if len(out) == 0 || out[len(out)-1].Service != svc {
			out = append(out, escalate.ServiceTraffic{Service: svc})
		}
		out[len(out)-1].Buckets = append(out[len(out)-1].Buckets, b)
	}
	return out, rows.Err()
}

// countCustomers keeps, per incident, each affected customer's error
// count as the latest finding has it (the finding's top customers, from
// the onset), when an evaluation first counted the customer, and the last
// one whose count grew: what support tells customers afterwards. Times
// are the evaluations' (the incident's LastSeen), so they are as precise
// as the evaluation interval, and a customer hit before the incident was
// detected shows the detection as its first.
func countCustomers(ctx context.Context, tx *sql.Tx, in escalate.Incident) error {
	f := in.Finding
	if f == nil || in.Meta || in.LastSeen.IsZero() {
		return nil
	}
	for _, vc := range f.Scope.Top[correlate.FieldCustomer] {
		if vc.Errors <= 0 || vc.Value == "" {
			continue
		}
		at := ms(in.LastSeen)
		if _, err := tx.ExecContext(ctx, `INSERT INTO incident_customers (incident_id, customer, first_at, last_at, errors) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT(incident_id, customer) DO UPDATE SET
				last_at = CASE WHEN excluded.errors > incident_customers.errors THEN excluded.last_at ELSE incident_customers.last_at END,
				errors = MAX(incident_customers.errors, excluded.errors)`,
			in.ID, vc.Value, at, at, vc.Errors); err != nil {
			return fmt.Errorf("count customers of incident %s: %w", in.ID, err)
		}
	}
	return nil
}

// IncidentCustomers returns the customers an incident affected, most errors
// first.
func (s *Store) IncidentCustomers(ctx context.Context, incidentID string) ([]escalate.AffectedCustomer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT customer, first_at, last_at, errors FROM incident_customers WHERE incident_id = ?`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("read customers of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []escalate.AffectedCustomer
	for rows.Next() {
		var c escalate.AffectedCustomer
		var first, last int64
		if err := rows.Scan(&c.ID, &first, &last, &c.Errors); err != nil {
			return nil, fmt.Errorf("read customers of %s: %w", incidentID, err)
		}
		c.First, c.Last = fromMS(first), fromMS(last)
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b escalate.AffectedCustomer) int {
		return cmp.Or(cmp.Compare(b.Errors, a.Errors), cmp.Compare(a.ID, b.ID))
	})
	return out, rows.Err()
}
