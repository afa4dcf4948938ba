package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"

	"github.com/culprithq/culprit/correlate"
)

// ApplyCustomers upserts put and deletes removed in one transaction: one
// page of a Zendesk organization export. A removed id is remembered (see
// RemovedCustomers) until it is put again.
func (s *Store) ApplyCustomers(ctx context.Context, put []correlate.Customer, removed []string) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for _, c := range put {
			b, err := json.Marshal(c)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO customers (id, body) VALUES (?, ?)
				ON CONFLICT(id) DO UPDATE SET body = excluded.body`, c.ID, string(b)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM customers_removed WHERE id = ?`, c.ID); err != nil {
				return err
			}
		}
		for _, id := range removed {
			if _, err := tx.ExecContext(ctx, `DELETE FROM customers WHERE id = ?`, id); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO customers_removed (id) VALUES (?)`, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("apply %d customers, remove %d: %w", len(put), len(removed), err)
	}
	return nil
}

// Customers returns every stored customer, by id.
func (s *Store) Customers(ctx context.Context) ([]correlate.Customer, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT body FROM customers ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read customers: %w", err)
	}
	defer rows.Close()
	var out []correlate.Customer
	for rows.Next() {
		var b string
		if err := rows.Scan(&b); err != nil {
			return nil, fmt.Errorf("read customers: %w", err)
		}
		var c correlate.Customer
		if err := json.Unmarshal([]byte(b), &c); err != nil {
			return nil, fmt.Errorf("read customers: stored customer is corrupt: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// RemovedCustomers returns the ids Zendesk said were deleted and has not
// put back since. serve removes them from what customers.file lists: the
// sync is newer than the file, for a deletion as for an update.
func (s *Store) RemovedCustomers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM customers_removed ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read removed customers: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read removed customers: %w", err)
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
