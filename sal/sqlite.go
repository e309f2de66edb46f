package sal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// SQLite is the embedded Store: one database file in WAL mode with
// synchronous=FULL, so an entry survives a crash or power loss once Append
// returns.
type SQLite struct {
	db   *sql.DB
	path string
}

// migrations are applied in order; the schema version is their count.
var migrations = []string{
	`CREATE TABLE entries (
		id      INTEGER PRIMARY KEY AUTOINCREMENT,
		time    INTEGER NOT NULL,  -- unix nanoseconds, UTC
		nick    TEXT NOT NULL,
		account TEXT NOT NULL DEFAULT '',
		channel TEXT NOT NULL DEFAULT '',
		project TEXT NOT NULL DEFAULT '',
		message TEXT NOT NULL,
		source  TEXT NOT NULL
	);
	CREATE INDEX entries_project_id ON entries(project, id);
	CREATE INDEX entries_time ON entries(time);
	-- entries are never edited in place
	CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
		BEGIN SELECT RAISE(ABORT, 'SAL entries are append-only'); END;`,
}

// OpenSQLite opens (creating if needed) the SQLite database at path and
// brings its schema up to date.
func OpenSQLite(path string) (*SQLite, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return nil, fmt.Errorf("sal: %w", err)
		}
	}
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + url.Values{
		"_pragma": {
			"journal_mode(WAL)",
			"synchronous(FULL)",
			"busy_timeout(10000)",
			"foreign_keys(ON)",
		},
		"_txlock": {"immediate"},
	}.Encode()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sal: open %s: %w", path, err)
	}
	s := &SQLite{db: db, path: path}
	if err := s.migrate(context.Background()); err != nil {
		db.Close()
		return nil, fmt.Errorf("sal: %s: %w", path, err)
	}
	return s, nil
}

func (s *SQLite) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var version int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("database schema version %d is newer than this deploybot knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.ExecContext(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return err
	}
	return tx.Commit()
}

// Append implements Store.
func (s *SQLite) Append(ctx context.Context, e *Entry) error {
	if err := prepare(e); err != nil {
		return err
	}
	res, err := s.db.ExecContext(ctx,
		`INSERT INTO entries (time, nick, account, channel, project, message, source) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UnixNano(), e.Nick, e.Account, e.Channel, e.Project, e.Message, string(e.Source))
	if err != nil {
		return fmt.Errorf("sal: append: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sal: append: %w", err)
	}
	e.ID = id
	return nil
}

const entryColumns = `id, time, nick, account, channel, project, message, source`

// List implements Store.
func (s *SQLite) List(ctx context.Context, q Query) ([]Entry, error) {
	query := `SELECT ` + entryColumns + ` FROM entries WHERE 1=1`
	var args []any
	if q.Project != "" {
		query += ` AND project = ?`
		args = append(args, q.Project)
	}
	if q.Before > 0 {
		query += ` AND id < ?`
		args = append(args, q.Before)
	}
	query += ` ORDER BY id DESC LIMIT ?`
	args = append(args, q.limit())
	rows, err := s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sal: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanEntry(rows)
		if err != nil {
			return nil, fmt.Errorf("sal: list: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanEntry(s.db.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("sal: get %d: %w", id, err)
	}
	return e, nil
}

// Close implements Store.
func (s *SQLite) Close() error { return s.db.Close() }

type scanner interface{ Scan(dest ...any) error }

func scanEntry(r scanner) (Entry, error) {
	var e Entry
	var nanos int64
	var source string
	if err := r.Scan(&e.ID, &nanos, &e.Nick, &e.Account, &e.Channel, &e.Project, &e.Message, &source); err != nil {
		return Entry{}, err
	}
	e.Time = time.Unix(0, nanos).UTC()
	e.Source = Source(source)
	return e, nil
}
