package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/culprithq/culprit/escalate"
)

// Known returns the incidents a new evaluation must be compared with: every
// open one, and those resolved at or after since (for reopening).
func (s *Store) Known(ctx context.Context, since time.Time) ([]escalate.Incident, error) {
	return s.incidents(ctx, `SELECT body FROM incidents WHERE status = 'open' OR resolved_at >= ? ORDER BY opened_at, id`, ms(since))
}

// Incidents lists incidents newest first, at most limit of them.
func (s *Store) Incidents(ctx context.Context, limit int) ([]escalate.Incident, error) {
	return s.incidents(ctx, `SELECT body FROM incidents ORDER BY opened_at DESC, id LIMIT ?`, limit)
}

// Incident returns one incident; unknown ids give an error matching
// fs.ErrNotExist.
func (s *Store) Incident(ctx context.Context, id string) (escalate.Incident, error) {
	ins, err := s.incidents(ctx, `SELECT body FROM incidents WHERE id = ?`, id)
	if err != nil {
		return escalate.Incident{}, err
	}
	if len(ins) == 0 {
		return escalate.Incident{}, fmt.Errorf("incident %q: %w", id, fs.ErrNotExist)
	}
	return ins[0], nil
}

// IncidentByKey returns the latest incident with a key (the PagerDuty
// dedup_key); unknown keys give an error matching fs.ErrNotExist.
func (s *Store) IncidentByKey(ctx context.Context, key string) (escalate.Incident, error) {
	ins, err := s.incidents(ctx, `SELECT body FROM incidents WHERE key = ? ORDER BY opened_at DESC, id LIMIT 1`, key)
	if err != nil {
		return escalate.Incident{}, err
	}
	if len(ins) == 0 {
		return escalate.Incident{}, fmt.Errorf("incident with key %q: %w", key, fs.ErrNotExist)
	}
	return ins[0], nil
}

func (s *Store) incidents(ctx context.Context, q string, args ...any) ([]escalate.Incident, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	defer rows.Close()
	var out []escalate.Incident
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read incidents: %w", err)
		}
		var in escalate.Incident
		if err := json.Unmarshal([]byte(b), &in); err != nil {
			return nil, fmt.Errorf("read incidents: stored incident is corrupt: %w", err)
		}
		out = append(out, in)
	}
	return out, rows.Err()
}

// Apply writes one evaluation's changes — incident states, outbox messages
// and timeline events — in a single transaction: a page is queued if and
// only if the decision to page is recorded.
func (s *Store) Apply(ctx context.Context, changes []escalate.Change) error {
	if len(changes) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, ch := range changes {
			in := ch.Incident
			b, err := json.Marshal(in)
			if err != nil {
				return fmt.Errorf("encode incident %s: %w", in.ID, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO incidents (id, key, service, status, meta, opened_at, resolved_at, body)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?)
				ON CONFLICT(id) DO UPDATE SET status = excluded.status, resolved_at = excluded.resolved_at, body = excluded.body`,
				in.ID, in.Key, in.Service, string(in.Status), in.Meta, ms(in.OpenedAt), nullMS(in.ResolvedAt), string(b)); err != nil {
				return fmt.Errorf("write incident %s: %w", in.ID, err)
			}
			if err := countCustomers(ctx, tx, in); err != nil {
				return err
			}
			for _, m := range ch.Messages {
				if _, err := enqueue(ctx, tx, m); err != nil {
					return err
				}
			}
			for _, e := range ch.Events {
				if err := addEvent(ctx, tx, e); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %d incident changes: %w", len(changes), err)
	}
	return nil
}

// Enqueue adds messages that no incident decision goes with (PagerDuty
// change events for received deploys).
func (s *Store) Enqueue(ctx context.Context, ms ...escalate.Message) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, m := range ms {
			if _, err := enqueue(ctx, tx, m); err != nil {
				return err
			}
		}
		return nil
	})
}

// enqueue adds one message and reports whether it did. A change event is
// keyed by its deploy id and queued once: if the outbox already holds one
// for that deploy (pending, delivered or dead, until retention prunes it),
// the deploy reached culprit twice and the second is not forwarded. A
// handover is keyed by its shift and boundary and queued once the same way.
func enqueue(ctx context.Context, tx *sql.Tx, m escalate.Message) (bool, error) {
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (channel, action, incident_id, key, service, body, created_at, next_at, lane)
		SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?
		WHERE ? NOT IN ('change', 'handover') OR ? = '' OR NOT EXISTS (SELECT 1 FROM outbox WHERE action = ? AND key = ? AND channel = ?)`,
		string(m.Channel), m.Action, m.IncidentID, m.Key, m.Service, string(m.Body), ms(m.CreatedAt), ms(m.NextAt), int(m.Lane()),
		m.Action, m.Key, m.Action, m.Key, string(m.Channel))
	if err != nil {
		return false, fmt.Errorf("queue %s %s for %s: %w", m.Channel, m.Action, cmp.Or(m.IncidentID, m.Key), err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("queue %s %s for %s: %w", m.Channel, m.Action, cmp.Or(m.IncidentID, m.Key), err)
	}
	return n > 0, nil
}

// QueueHandover queues a handover digest and writes its events on the
// timelines of the incidents it names, in one transaction, unless the
// outbox already holds a handover with the same key: then it changes
// nothing and reports false. That is what keeps a boundary from being
// posted twice, across restarts too.
func (s *Store) QueueHandover(ctx context.Context, m escalate.Message, events []escalate.Event) (queued bool, err error) {
	if m.Action != escalate.HandoverAction || m.Key == "" {
		return false, fmt.Errorf("queue handover: want action %q with a key, got %q key %q", escalate.HandoverAction, m.Action, m.Key)
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		queued, err = enqueue(ctx, tx, m)
		if err != nil || !queued {
			return err
		}
		for _, e := range events {
			if err := addEvent(ctx, tx, e); err != nil {
				return err
			}
		}
		return nil
	})
	return queued, err
}

// AddEvent appends one event to an incident's timeline (a Slack button
// press, a PagerDuty acknowledgement).
func (s *Store) AddEvent(ctx context.Context, e escalate.Event) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return addEvent(ctx, tx, e) })
}

func addEvent(ctx context.Context, tx *sql.Tx, e escalate.Event) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO timeline (incident_id, at, kind, text, actor) VALUES (?, ?, ?, ?, ?)`,
		e.IncidentID, ms(e.At), e.Kind, e.Text, e.Actor)
	if err != nil {
		return fmt.Errorf("write timeline event %s for %s: %w", e.Kind, e.IncidentID, err)
	}
	return nil
}

// Events returns an incident's timeline, oldest first.
func (s *Store) Events(ctx context.Context, incidentID string) ([]escalate.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT at, kind, text, actor FROM timeline WHERE incident_id = ? ORDER BY at, id`, incidentID)
	if err != nil {
		return nil, fmt.Errorf("read timeline of %s: %w", incidentID, err)
	}
	defer rows.Close()
	var out []escalate.Event
	for rows.Next() {
		e := escalate.Event{IncidentID: incidentID}
		var at int64
		if err := rows.Scan(&at, &e.Kind, &e.Text, &e.Actor); err != nil {
			return nil, fmt.Errorf("read timeline of %s: %w", incidentID, err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// EventsBetween returns every incident's timeline events at or after from
// and before to, oldest first: what happened during a shift.
func (s *Store) EventsBetween(ctx context.Context, from, to time.Time) ([]escalate.Event, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT incident_id, at, kind, text, actor FROM timeline WHERE at >= ? AND at < ? ORDER BY at, id`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read timeline events from %s to %s: %w", from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), err)
	}
	defer rows.Close()
	var out []escalate.Event
	for rows.Next() {
		var e escalate.Event
		var at int64
		if err := rows.Scan(&e.IncidentID, &at, &e.Kind, &e.Text, &e.Actor); err != nil {
			return nil, fmt.Errorf("read timeline events: %w", err)
		}
		e.At = fromMS(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// Due returns pending messages whose next attempt is due at now, oldest
// first, whatever their lane.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]escalate.Message, error) {
	return s.due(ctx, `SELECT id, channel, action, incident_id, key, service, body, created_at, next_at, attempts, last_error, started > attempts
		FROM outbox WHERE state = 'pending' AND next_at <= ? ORDER BY next_at, id LIMIT ?`, ms(now), limit)
}

// DueIn returns one lane's pending messages due at now, oldest first.
// Messages with one key to one channel go out in the order they were
// queued: a trigger waiting out a retry holds back its incident's resolve,
// which PagerDuty would otherwise drop (no open alert), leaving the late
// trigger's alert open for ever.
func (s *Store) DueIn(ctx context.Context, lane escalate.Lane, now time.Time, limit int) ([]escalate.Message, error) {
	return s.due(ctx, `SELECT id, channel, action, incident_id, key, service, body, created_at, next_at, attempts, last_error, started > attempts
		FROM outbox WHERE state = 'pending' AND lane = ? AND next_at <= ? AND `+notBehind+` ORDER BY next_at, id LIMIT ?`, int(lane), ms(now), limit)
}

// notBehind holds an outbox row while an earlier one with its key and
// channel is pending.
const notBehind = `(key = '' OR NOT EXISTS (SELECT 1 FROM outbox e
	WHERE e.key = outbox.key AND e.channel = outbox.channel AND e.state = 'pending' AND e.id < outbox.id))`

func (s *Store) due(ctx context.Context, q string, args ...any) ([]escalate.Message, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []escalate.Message
	for rows.Next() {
		var m escalate.Message
		var ch, body string
		var created, next int64
		if err := rows.Scan(&m.ID, &ch, &m.Action, &m.IncidentID, &m.Key, &m.Service, &body, &created, &next, &m.Attempts, &m.LastError, &m.InDoubt); err != nil {
			return nil, fmt.Errorf("read outbox: %w", err)
		}
		m.Channel, m.Body, m.CreatedAt, m.NextAt = escalate.Channel(ch), json.RawMessage(body), fromMS(created), fromMS(next)
		out = append(out, m)
	}
	return out, rows.Err()
}

// NextDue is when the earliest pending message is due; ok is false when
// the outbox is empty.
func (s *Store) NextDue(ctx context.Context) (at time.Time, ok bool, err error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(next_at) FROM outbox WHERE state = 'pending'`).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("read outbox: %w", err)
	}
	return fromNullMS(v), v.Valid, nil
}

// NextDueIn is when one lane's earliest pending message is due; ok is
// false when the lane is empty.
func (s *Store) NextDueIn(ctx context.Context, lane escalate.Lane) (at time.Time, ok bool, err error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT min(next_at) FROM outbox WHERE state = 'pending' AND lane = ? AND `+notBehind, int(lane)).Scan(&v); err != nil {
		return time.Time{}, false, fmt.Errorf("read outbox lane %s: %w", lane, err)
	}
	return fromNullMS(v), v.Valid, nil
}

// Depth counts pending messages.
func (s *Store) Depth(ctx context.Context) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM outbox WHERE state = 'pending'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("read outbox depth: %w", err)
	}
	return n, nil
}

// Delivered marks a message done and writes what happened on its
// incident's timeline in the same transaction.
func (s *Store) Delivered(ctx context.Context, m escalate.Message, at time.Time, ev *escalate.Event) error {
	return s.finish(ctx, m.ID, "delivered", at, "", ev)
}

// Dead gives up on a message the vendor refused for good.
func (s *Store) Dead(ctx context.Context, m escalate.Message, at time.Time, reason string, ev *escalate.Event) error {
	return s.finish(ctx, m.ID, "dead", at, reason, ev)
}

func (s *Store) finish(ctx context.Context, id int64, state string, at time.Time, reason string, ev *escalate.Event) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE outbox SET state = ?, done_at = ?, attempts = attempts + 1, last_error = CASE WHEN ? = '' THEN last_error ELSE ? END
			WHERE id = ? AND state = 'pending'`, state, ms(at), reason, reason, id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return errors.New("not pending")
		}
		if ev != nil {
			return addEvent(ctx, tx, *ev)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark outbox message %d %s: %w", id, state, err)
	}
	return nil
}

// Attempting records that an attempt at m is about to start. It commits
// before the vendor is called, so if culprit dies before the outcome is
// recorded, the message comes back InDoubt and its notifier can look for
// what the vendor already has instead of sending it again.
func (s *Store) Attempting(ctx context.Context, m escalate.Message) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE outbox SET started = attempts + 1 WHERE id = ? AND state = 'pending'`, m.ID); err != nil {
		return fmt.Errorf("record attempt at outbox message %d: %w", m.ID, err)
	}
	return nil
}

// Retry schedules another attempt.
func (s *Store) Retry(ctx context.Context, m escalate.Message, next time.Time, reason string) error {
	_, err := s.db.ExecContext(ctx, `UPDATE outbox SET attempts = attempts + 1, next_at = ?, last_error = ? WHERE id = ? AND state = 'pending'`,
		ms(next), reason, m.ID)
	if err != nil {
		return fmt.Errorf("reschedule outbox message %d: %w", m.ID, err)
	}
	return nil
}
