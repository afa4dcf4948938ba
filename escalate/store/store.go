// Package store keeps culprit's state — deploys and tickets received,
// incidents, the outbox and the timeline — in one SQLite file in the data
// directory, so the daemon needs no server of its own and survives being
// killed: every decision and the messages it calls for commit together.
//
// It uses modernc.org/sqlite, a pure-Go SQLite, so the binary stays static
// and cross-compiles without cgo.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// FileName is the database file inside the data directory.
const FileName = "culprit.db"

// Store is the embedded database. It is safe for concurrent use.
type Store struct {
	db   *sql.DB
	path string
	now  func() time.Time
}

// Open opens (creating if needed) the store in dir and migrates it to the
// current schema. now stamps what the store records on its own (receipt
// times); nil means time.Now.
func Open(ctx context.Context, dir string, now func() time.Time) (*Store, error) {
	if now == nil {
		now = time.Now
	}
	if dir == "" {
		return nil, errors.New("open store: no data directory configured (store.dir)")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: create data directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	// WAL with synchronous=NORMAL: a commit survives the process being
	// killed (only an OS crash can lose the newest transactions), and
	// readers never block the writer.
	dsn := "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// One connection: SQLite has one writer anyway, and serialising in Go
	// avoids SQLITE_BUSY storms under intake load.
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path, now: now}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// OpenExisting opens a store that must already exist, for tools that read
// the daemon's data (culprit timeline): a mistyped directory is an error
// naming it, not a new empty store that has no incidents.
func OpenExisting(ctx context.Context, dir string, now func() time.Time) (*Store, error) {
	path := filepath.Join(dir, FileName)
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("open store: no culprit store in %s: %w", dir, err)
	}
	return Open(ctx, dir, now)
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Path is the database file, for logs.
func (s *Store) Path() string { return s.path }

var migrations = []string{
	// 1: the initial schema. Times are Unix milliseconds (UTC).
	`
CREATE TABLE deploys (
	id          TEXT PRIMARY KEY,
	service     TEXT NOT NULL,
	version     TEXT NOT NULL DEFAULT '',
	environment TEXT NOT NULL DEFAULT '',
	started_at  INTEGER NOT NULL,
	finished_at INTEGER,
	author      TEXT NOT NULL DEFAULT '',
	url         TEXT NOT NULL DEFAULT '',
	description TEXT NOT NULL DEFAULT '',
	received_at INTEGER NOT NULL
);
CREATE INDEX deploys_started ON deploys(started_at);
CREATE TABLE deploy_hosts (
	deploy_id TEXT NOT NULL REFERENCES deploys(id) ON DELETE CASCADE,
	host      TEXT NOT NULL,
	at        INTEGER NOT NULL,
	PRIMARY KEY (deploy_id, host)
);
CREATE TABLE tickets (
	id         INTEGER PRIMARY KEY,
	created_at INTEGER NOT NULL,
	body       TEXT NOT NULL
);
CREATE INDEX tickets_created ON tickets(created_at);
CREATE TABLE deliveries (
	source TEXT NOT NULL,
	id     TEXT NOT NULL,
	at     INTEGER NOT NULL,
	PRIMARY KEY (source, id)
);
CREATE TABLE cursors (
	name  TEXT PRIMARY KEY,
	value TEXT NOT NULL
);
CREATE TABLE incidents (
	id          TEXT PRIMARY KEY,
	key         TEXT NOT NULL,
	service     TEXT NOT NULL,
	status      TEXT NOT NULL,
	meta        INTEGER NOT NULL DEFAULT 0,
	opened_at   INTEGER NOT NULL,
	resolved_at INTEGER,
	body        TEXT NOT NULL
);
CREATE INDEX incidents_status ON incidents(status, resolved_at);
CREATE INDEX incidents_opened ON incidents(opened_at);
CREATE TABLE outbox (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	channel     TEXT NOT NULL,
	action      TEXT NOT NULL,
	incident_id TEXT NOT NULL DEFAULT '',
	key         TEXT NOT NULL DEFAULT '',
	service     TEXT NOT NULL DEFAULT '',
	body        TEXT NOT NULL,
	created_at  INTEGER NOT NULL,
	next_at     INTEGER NOT NULL,
	attempts    INTEGER NOT NULL DEFAULT 0,
	last_error  TEXT NOT NULL DEFAULT '',
	state       TEXT NOT NULL DEFAULT 'pending',
	done_at     INTEGER
);
CREATE INDEX outbox_due ON outbox(state, next_at);
CREATE TABLE timeline (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	incident_id TEXT NOT NULL,
	at          INTEGER NOT NULL,
	kind        TEXT NOT NULL,
	text        TEXT NOT NULL,
	actor       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX timeline_incident ON timeline(incident_id, at);
`,
	// 2: PagerDuty's webhooks name an incident by its dedup key.
	`CREATE INDEX incidents_key ON incidents(key, opened_at);`,
	// 3: delivery lanes (escalate.Lane), so each class is claimed on its
	// own and a deploy batch cannot queue in front of a page; replay
	// guards that outlive a restart; indexes retention prunes by.
	`
ALTER TABLE outbox ADD COLUMN lane INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET lane = CASE WHEN action = 'change' THEN 2 WHEN channel = 'slack' THEN 1 ELSE 0 END;
CREATE INDEX outbox_lane_due ON outbox(state, lane, next_at);
CREATE INDEX outbox_done ON outbox(state, done_at);
CREATE TABLE replays (
	source     TEXT NOT NULL,
	key        TEXT NOT NULL,
	expires_at INTEGER NOT NULL,
	PRIMARY KEY (source, key)
);
CREATE INDEX replays_expires ON replays(expires_at);
CREATE INDEX deliveries_at ON deliveries(at);
CREATE INDEX timeline_at ON timeline(at);
`,
	// 4: attempts started, so an attempt cut short by a crash (started
	// but never recorded) is known to be in doubt after the restart.
	`ALTER TABLE outbox ADD COLUMN started INTEGER NOT NULL DEFAULT 0;`,
	// 5: change events are queued once per deploy id.
	`CREATE INDEX outbox_key ON outbox(action, key);`,
	// 6: messages with one key go out in order (see DueIn).
	`CREATE INDEX outbox_key_order ON outbox(key, channel, state, id);`,
	// 7: customers synced from Zendesk organizations, kept so a restart
	// resumes the export from its cursor and still knows them.
	`
CREATE TABLE customers (
	id   TEXT PRIMARY KEY,
	body TEXT NOT NULL
);
`,
	// 8: what the review asks after the incident: each service's requests
	// and errors per bucket while incidents were open (why alerting
	// missed it), and each affected customer's errors per incident (what
	// to tell customers).
	`
CREATE TABLE traffic (
	service  TEXT NOT NULL,
	at       INTEGER NOT NULL,
	step     INTEGER NOT NULL,
	requests REAL NOT NULL,
	errors   REAL NOT NULL,
	PRIMARY KEY (service, at)
);
CREATE INDEX traffic_at ON traffic(at);
CREATE TABLE incident_customers (
	incident_id TEXT NOT NULL,
	customer    TEXT NOT NULL,
	first_at    INTEGER NOT NULL,
	last_at     INTEGER NOT NULL,
	errors      INTEGER NOT NULL,
	PRIMARY KEY (incident_id, customer)
);
`,
	// 9: organizations deleted in Zendesk, so a restart does not bring
	// them back from customers.file, which synced data overrides.
	`
CREATE TABLE customers_removed (
	id TEXT PRIMARY KEY
);
`,
}

// migrate applies the migrations newer than the database's user_version,
// each in its own transaction, so a half-migrated file cannot exist.
func (s *Store) migrate(ctx context.Context) error {
	var v int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&v); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this culprit understands (%d): refusing to touch it", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", i+1))
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to schema %d: %w", i+1, err)
		}
	}
	return nil
}

func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func nullMS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

func fromNullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// Ping checks the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }
