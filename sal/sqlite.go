package sal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go
)

// SQLite is the embedded Store: one database file in WAL mode with
// synchronous=FULL (the WAL is fsynced at every commit), so an entry
// survives a crash or power loss once Append returns. Several SQLite
// stores, in several processes even, may share one file; SQLite
// serializes their writes, so ids become visible in order.
//
// Schema (PRAGMA user_version counts the migrations applied):
//
//   - entries: the log, id INTEGER PRIMARY KEY AUTOINCREMENT (ids are never
//     reused), time in Unix nanoseconds UTC; indexes on (project, id),
//     (channel, id) and (time). A BEFORE UPDATE trigger refuses every
//     update: entries are never edited in place.
//   - entries_fts: a contentless FTS5 table (unicode61 tokenizer, diacritics
//     removed) over message and nick, plus a tags column holding the
//     project and channel as hex tokens ("p<hex>", "c<hex>") so that a
//     search within a project or channel is an intersection inside the
//     index. AFTER INSERT/DELETE triggers keep it in step with entries.
//   - entries.key: Entry.Key, NULL when empty, unique.
//   - entries.sender: Entry.Sender, the empty string when none (migration 3).
//   - entries_backdated: the id and time of every entry whose time is
//     before that of an earlier entry (a trigger adds them), so that the
//     other entries' times grow with their ids; List uses this to turn a
//     Since/Until window into a range of ids cheaply.
type SQLite struct {
	db     *sql.DB
	path   string
	insert *sql.Stmt
}

// sqliteFTSTrigger keeps the full-text index up to date.
var sqliteFTSTrigger = `CREATE TRIGGER entries_fts_insert AFTER INSERT ON entries BEGIN
		INSERT INTO entries_fts(rowid, message, nick, tags)
		VALUES (new.id, new.message, new.nick, ` + sqliteTags("new") + `);
	END`

// sqliteTags is the SQL expression of the tags column for the entries row
// named row: 'p' and 'c' followed by the hex of the project and channel.
func sqliteTags(row string) string {
	return `'p' || hex(` + row + `.project) || ' c' || hex(` + row + `.channel)`
}

// migrations are applied in order; the schema version is their count.
var migrations = []string{
	// 1: the log.
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

	// 2: full-text search over message and nick; the channel filter.
	`CREATE VIRTUAL TABLE entries_fts USING fts5(
		message, nick, tags,
		content = '', contentless_delete = 1,
		tokenize = 'unicode61 remove_diacritics 2'
	);
	` + sqliteFTSTrigger + `;
	CREATE TRIGGER entries_fts_delete AFTER DELETE ON entries BEGIN
		DELETE FROM entries_fts WHERE rowid = old.id;
	END;
	INSERT INTO entries_fts(rowid, message, nick, tags)
		SELECT id, message, nick, ` + sqliteTags("entries") + ` FROM entries;
	CREATE INDEX entries_channel_id ON entries(channel, id);

	-- Entry.Key: an entry whose key is stored is not stored again.
	ALTER TABLE entries ADD COLUMN key TEXT;
	CREATE UNIQUE INDEX entries_key ON entries(key) WHERE key IS NOT NULL;

	-- Entries logged with a time before that of an earlier entry (see List).
	CREATE TABLE entries_backdated (
		id   INTEGER PRIMARY KEY REFERENCES entries(id) ON DELETE CASCADE,
		time INTEGER NOT NULL
	);
	CREATE INDEX entries_backdated_time ON entries_backdated(time);
	CREATE TRIGGER entries_backdated_insert AFTER INSERT ON entries
		WHEN new.time < (SELECT max(time) FROM entries)
		BEGIN INSERT INTO entries_backdated(id, time) VALUES (new.id, new.time); END;
	INSERT INTO entries_backdated(id, time)
		SELECT id, time FROM (
			SELECT id, time, max(time) OVER (ORDER BY id ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
			FROM entries
		) WHERE time < before;`,

	// 3: Entry.Sender, the real sender of a relayed entry.
	`ALTER TABLE entries ADD COLUMN sender TEXT NOT NULL DEFAULT '';`,
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
			// A checkpoint (copying the WAL into the database, one more
			// fsync) runs inside the Append that crosses this many WAL
			// pages. An append writes ~12 pages, so that is one append in
			// ~330 instead of SQLite's default one in ~85: out of the p99.
			"wal_autocheckpoint(4000)",
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
	// Prepared once: parsing the statement is a good part of an append's
	// CPU time.
	s.insert, err = db.Prepare(`INSERT INTO entries (time, nick, account, sender, channel, project, message, source, key)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING`)
	if err != nil {
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
	if version == len(migrations) {
		return nil
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
	res, err := s.insert.ExecContext(ctx, e.Time.UnixNano(), e.Nick, e.Account, e.Sender, e.Channel, e.Project, e.Message, string(e.Source), nullKey(e.Key))
	if err != nil {
		return fmt.Errorf("sal: append: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		// Its key is stored: that entry is this one.
		stored, err := scanEntry(s.db.QueryRowContext(ctx, `SELECT `+entryColumns+` FROM entries WHERE key = ?`, e.Key))
		if err != nil {
			return fmt.Errorf("sal: append: entry with key %q: %w", e.Key, err)
		}
		*e = stored
		return nil
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("sal: append: %w", err)
	}
	e.ID = id
	return nil
}

const entryColumns = `entries.id, entries.time, entries.nick, entries.account, entries.sender, entries.channel, entries.project, entries.message, entries.source, coalesce(entries.key, '')`

// nullKey is how Entry.Key is stored: NULL when empty.
func nullKey(key string) any {
	if key == "" {
		return nil
	}
	return key
}

// List implements Store.
//
// How it stays fast over millions of entries: every plan walks ids
// downwards and stops at Limit.
//   - Without Search: the rowid, or the (project, id) or (channel, id)
//     index, from min(Before, the window's last id) down.
//   - With Search: the FTS5 index, newest match first, the project and
//     channel intersected inside it (their tags), the same id bounds
//     passed to FTS5 as a rowid range.
//   - Since/Until: entries not in entries_backdated have times that grow
//     with their ids, so the first and last of them in the window (two
//     lookups in the time index) bound the ids of all of them; the
//     backdated entries in the window widen the bounds. Time itself is
//     then checked row by row, within the bounds.
func (s *SQLite) List(ctx context.Context, q Query) ([]Entry, error) {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64) // ids in [lo, hi)
	if q.Before > 0 {
		hi = q.Before
	}
	since, until, ok := timeRange(q.Since, q.Until)
	if !ok {
		return nil, nil
	}
	if since != math.MinInt64 || until != math.MaxInt64 {
		first, last, err := s.window(ctx, since, until)
		if err != nil {
			return nil, fmt.Errorf("sal: list: %w", err)
		}
		if first == 0 {
			return nil, nil // nothing in the window
		}
		lo, hi = max(lo, first), min(hi, last+1)
	}
	if lo >= hi {
		return nil, nil
	}

	var query string
	var args []any
	if q.Search != "" {
		terms := parseSearch(q.Search)
		if len(terms) == 0 {
			return nil, nil
		}
		// CROSS JOIN keeps FTS5 in the lead: SQLite's planner would
		// otherwise sometimes walk entries and ask FTS5 about each row.
		query = `SELECT ` + entryColumns + ` FROM entries_fts CROSS JOIN entries ON entries.id = entries_fts.rowid
			WHERE entries_fts MATCH ? AND entries_fts.rowid >= ? AND entries_fts.rowid < ?`
		args = append(args, ftsMatch(terms, q.Project, q.Channel), lo, hi)
	} else {
		query = `SELECT ` + entryColumns + ` FROM entries WHERE id >= ? AND id < ?`
		args = append(args, lo, hi)
	}
	if q.Project != "" {
		query += ` AND entries.project = ?`
		args = append(args, q.Project)
	}
	if q.Channel != "" {
		query += ` AND entries.channel = ?`
		args = append(args, q.Channel)
	}
	// The unary + keeps SQLite from walking the time index, which would
	// need a sort; the id bounds above do that job.
	if since != math.MinInt64 {
		query += ` AND +entries.time >= ?`
		args = append(args, since)
	}
	if until != math.MaxInt64 {
		query += ` AND +entries.time < ?`
		args = append(args, until)
	}
	if q.Search != "" {
		query += ` ORDER BY entries_fts.rowid DESC LIMIT ?` // FTS5's own order
	} else {
		query += ` ORDER BY entries.id DESC LIMIT ?`
	}
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
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sal: list: %w", err)
	}
	return out, nil
}

// window returns the smallest and largest id an entry in the time window
// [since, until) may have (Unix nanoseconds; math.MinInt64/MaxInt64 for no
// bound), or 0, 0 when the window holds no entry. See List.
func (s *SQLite) window(ctx context.Context, since, until int64) (first, last int64, err error) {
	var inFirst, inLast, bdFirst, bdLast sql.NullInt64
	err = s.db.QueryRowContext(ctx, `SELECT
		(SELECT id FROM entries INDEXED BY entries_time
			WHERE time >= ?1 AND time < ?2 AND id NOT IN (SELECT id FROM entries_backdated WHERE time >= ?1 AND time < ?2)
			ORDER BY time, id LIMIT 1),
		(SELECT id FROM entries INDEXED BY entries_time
			WHERE time >= ?1 AND time < ?2 AND id NOT IN (SELECT id FROM entries_backdated WHERE time >= ?1 AND time < ?2)
			ORDER BY time DESC, id DESC LIMIT 1),
		(SELECT min(id) FROM entries_backdated WHERE time >= ?1 AND time < ?2),
		(SELECT max(id) FROM entries_backdated WHERE time >= ?1 AND time < ?2)`,
		since, until).Scan(&inFirst, &inLast, &bdFirst, &bdLast)
	if err != nil {
		return 0, 0, err
	}
	first, last = math.MaxInt64, 0
	for _, v := range []sql.NullInt64{inFirst, inLast, bdFirst, bdLast} {
		if v.Valid {
			first, last = min(first, v.Int64), max(last, v.Int64)
		}
	}
	if last == 0 {
		return 0, 0, nil
	}
	return first, last, nil
}

// timeRange turns Since and Until into Unix nanoseconds [since, until),
// math.MinInt64/MaxInt64 for no bound; ok is false when nothing can match.
func timeRange(sinceT, untilT time.Time) (since, until int64, ok bool) {
	since, until = math.MinInt64, math.MaxInt64
	if !sinceT.IsZero() {
		switch {
		case !sinceT.Before(maxTime):
			return 0, 0, false
		case sinceT.After(minTime):
			since = sinceT.UnixNano()
		}
	}
	if !untilT.IsZero() {
		switch {
		case !untilT.After(minTime):
			return 0, 0, false
		case untilT.Before(maxTime):
			until = untilT.UnixNano()
		}
	}
	return since, until, since < until
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

// Close implements Store. Closing twice is harmless.
func (s *SQLite) Close() error {
	s.insert.Close()
	return s.db.Close()
}

// Path is the database file.
func (s *SQLite) Path() string { return s.path }

type scanner interface{ Scan(dest ...any) error }

func scanEntry(r scanner) (Entry, error) {
	var e Entry
	var nanos int64
	var source string
	if err := r.Scan(&e.ID, &nanos, &e.Nick, &e.Account, &e.Sender, &e.Channel, &e.Project, &e.Message, &source, &e.Key); err != nil {
		return Entry{}, err
	}
	e.Time = time.Unix(0, nanos).UTC()
	e.Source = Source(source)
	return e, nil
}
