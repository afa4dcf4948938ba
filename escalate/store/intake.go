package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/culprithq/culprit/correlate"
)

// AddDeploy records a deploy. It is idempotent by ID: a deploy already
// known keeps what it had, gains the hosts it did not have, and takes a
// finish time if it had none; created is then false. The first finish
// wins because GitHub marks a deployment "inactive" hours later, when a
// newer one succeeds, and that must not stretch the old rollout.
func (s *Store) AddDeploy(ctx context.Context, d correlate.Deploy) (created bool, err error) {
	if d.ID == "" {
		return false, errors.New("add deploy: empty id")
	}
	err = s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO deploys (id, service, version, environment, started_at, finished_at, author, url, description, received_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`,
			d.ID, d.Service, d.Version, d.Environment, ms(d.StartedAt), nullMS(d.FinishedAt), d.Author, d.URL, d.Description, ms(s.now()))
		if err != nil {
			return err
		}
		n, _ := res.RowsAffected()
		created = n == 1
		if !created && !d.FinishedAt.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE deploys SET finished_at = coalesce(finished_at, ?) WHERE id = ?`, ms(d.FinishedAt), d.ID); err != nil {
				return err
			}
		}
		return addHosts(ctx, tx, d.ID, d.Hosts)
	})
	if err != nil {
		return false, fmt.Errorf("add deploy %q: %w", d.ID, err)
	}
	return created, nil
}

// AddProgress appends per-host progress to a known deploy. For an unknown
// deploy it returns an error matching fs.ErrNotExist.
func (s *Store) AddProgress(ctx context.Context, id string, hosts []correlate.HostRollout, finishedAt time.Time) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var one int
		if err := tx.QueryRowContext(ctx, `SELECT 1 FROM deploys WHERE id = ?`, id).Scan(&one); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("unknown deploy: %w", fs.ErrNotExist)
			}
			return err
		}
		if !finishedAt.IsZero() {
			if _, err := tx.ExecContext(ctx, `UPDATE deploys SET finished_at = ? WHERE id = ?`, ms(finishedAt), id); err != nil {
				return err
			}
		}
		return addHosts(ctx, tx, id, hosts)
	})
	if err != nil {
		return fmt.Errorf("add progress to deploy %q: %w", id, err)
	}
	return nil
}

// addHosts keeps the first time each host was reported updated: a repeated
// report must not move a host later in the rollout order.
func addHosts(ctx context.Context, tx *sql.Tx, id string, hosts []correlate.HostRollout) error {
	for _, h := range hosts {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deploy_hosts (deploy_id, host, at) VALUES (?, ?, ?)
			ON CONFLICT(deploy_id, host) DO UPDATE SET at = min(at, excluded.at)`, id, h.Name, ms(h.At)); err != nil {
			return err
		}
	}
	return nil
}

// Deploys returns the deploys that started in [from, to), hosts included,
// oldest first.
func (s *Store) Deploys(ctx context.Context, from, to time.Time) ([]correlate.Deploy, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, service, version, environment, started_at, finished_at, author, url, description
		FROM deploys WHERE started_at >= ? AND started_at < ? ORDER BY started_at, id`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read deploys: %w", err)
	}
	var out []correlate.Deploy
	idx := map[string]int{}
	for rows.Next() {
		var d correlate.Deploy
		var started int64
		var finished sql.NullInt64
		if err := rows.Scan(&d.ID, &d.Service, &d.Version, &d.Environment, &started, &finished, &d.Author, &d.URL, &d.Description); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read deploys: %w", err)
		}
		d.StartedAt, d.FinishedAt = fromMS(started), fromNullMS(finished)
		idx[d.ID] = len(out)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read deploys: %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	hrows, err := s.db.QueryContext(ctx, `SELECT h.deploy_id, h.host, h.at FROM deploy_hosts h JOIN deploys d ON d.id = h.deploy_id
		WHERE d.started_at >= ? AND d.started_at < ? ORDER BY h.at, h.host`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read deploy hosts: %w", err)
	}
	defer hrows.Close()
	for hrows.Next() {
		var id, host string
		var at int64
		if err := hrows.Scan(&id, &host, &at); err != nil {
			return nil, fmt.Errorf("read deploy hosts: %w", err)
		}
		if i, ok := idx[id]; ok {
			out[i].Hosts = append(out[i].Hosts, correlate.HostRollout{Name: host, At: fromMS(at)})
		}
	}
	return out, hrows.Err()
}

// AddTickets upserts tickets by id: an incremental export lists a ticket
// again each time it changes, and the newest version wins.
func (s *Store) AddTickets(ctx context.Context, ts []correlate.Ticket) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range ts {
			b, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO tickets (id, created_at, body) VALUES (?, ?, ?)
				ON CONFLICT(id) DO UPDATE SET created_at = excluded.created_at, body = excluded.body`, t.ID, ms(t.CreatedAt), string(b)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("add %d tickets: %w", len(ts), err)
	}
	return nil
}

// Tickets returns the tickets created in [from, to), oldest first.
func (s *Store) Tickets(ctx context.Context, from, to time.Time) ([]correlate.Ticket, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM tickets WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id`, ms(from), ms(to))
	if err != nil {
		return nil, fmt.Errorf("read tickets: %w", err)
	}
	defer rows.Close()
	var out []correlate.Ticket
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read tickets: %w", err)
		}
		var t correlate.Ticket
		if err := json.Unmarshal([]byte(b), &t); err != nil {
			return nil, fmt.Errorf("read tickets: stored ticket is corrupt: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// FirstDelivery records a webhook delivery id and reports whether it was
// new, so a replayed webhook is acknowledged but not applied twice.
func (s *Store) FirstDelivery(ctx context.Context, source, id string) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO deliveries (source, id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, source, id, ms(s.now()))
	if err != nil {
		return false, fmt.Errorf("record %s delivery %q: %w", source, id, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// Cursor returns a named cursor (a poller's position), "" when none.
func (s *Store) Cursor(ctx context.Context, name string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT value FROM cursors WHERE name = ?`, name).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read cursor %q: %w", name, err)
	}
	return v, nil
}

// SetCursor stores a named cursor.
func (s *Store) SetCursor(ctx context.Context, name, value string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value`, name, value)
	if err != nil {
		return fmt.Errorf("write cursor %q: %w", name, err)
	}
	return nil
}

// FirstSeen records a verified request's key (a signature's bytes, a
// webhook's event id) for source until the given time and reports whether
// it was new. A key whose earlier record has expired counts as new again:
// by then the sender's own freshness window refuses the old request, and
// the row may already have been pruned.
func (s *Store) FirstSeen(ctx context.Context, source, key string, until time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO replays (source, key, expires_at) VALUES (?, ?, ?)
		ON CONFLICT(source, key) DO UPDATE SET expires_at = excluded.expires_at WHERE replays.expires_at <= ?`,
		source, key, ms(until), ms(s.now()))
	if err != nil {
		return false, fmt.Errorf("record %s request %q: %w", source, key, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
