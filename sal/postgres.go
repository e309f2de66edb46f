package sal

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Postgres is the Store for several bot instances sharing one log: a
// PostgreSQL database reached through a pool of connections
// (github.com/jackc/pgx/v5). Every session runs with synchronous_commit=on,
// so Append returns only once the server has flushed the entry's commit to
// its WAL.
//
// Schema (tracked in sal_migrations, applied under an advisory lock so that
// instances starting together do not race):
//
//   - sal_entries: the log, id bigserial assigned by the database, time
//     timestamptz; indexes on (project, id), (channel, id) and (time, id). A
//     BEFORE UPDATE trigger refuses every update: entries are never edited
//     in place.
//   - sal_entries.search: a tsvector of the search tokens of message and
//     nick (searchTokens: lower-cased, diacritics removed, split at
//     everything but letters and digits, done here rather than by the
//     server so that search does not depend on the database's locale),
//     under the 'simple' configuration, with a GIN index.
//   - sal_entries.key: Entry.Key, NULL when empty, unique.
//   - sal_entries.sender: Entry.Sender, the empty string when none (migration 2).
//   - sal_backdated: entries whose time is before that of an earlier entry
//     (a trigger adds them); see window.
//
// Appends take a transaction-scoped advisory lock, so ids become visible in
// the order they are assigned: a reader paging down with Query.Before never
// misses an entry that commits later with a smaller id. The price is one
// append at a time across all instances, plenty for a log written by
// people.
type Postgres struct {
	pool *pgxpool.Pool

	// RecentIDs is how many of the newest ids a search looks through
	// before it turns to the GIN index (see List); 0 means pgRecent.
	// Tests set it low to exercise both steps on little data.
	RecentIDs int64
}

// Advisory lock keys (pg_advisory_xact_lock): "SAL" and "SAM" in ASCII.
const (
	pgAppendLock  = 0x53414c
	pgMigrateLock = 0x53414d
)

// pgMigrations are applied in order; sal_migrations lists those applied.
var pgMigrations = []string{
	// 1: the log and its search index.
	`CREATE TABLE sal_entries (
		id      bigserial PRIMARY KEY,
		time    timestamptz NOT NULL,
		nick    text NOT NULL,
		account text NOT NULL DEFAULT '',
		channel text NOT NULL DEFAULT '',
		project text NOT NULL DEFAULT '',
		message text NOT NULL,
		source  text NOT NULL,
		search  tsvector NOT NULL,
		key     text UNIQUE -- Entry.Key; NULL when empty
	);
	CREATE INDEX sal_entries_project_id ON sal_entries (project, id);
	CREATE INDEX sal_entries_channel_id ON sal_entries (channel, id);
	CREATE INDEX sal_entries_time_id ON sal_entries (time, id);
	-- fastupdate off: no pending list for every search to read through.
	CREATE INDEX sal_entries_search ON sal_entries USING gin (search) WITH (fastupdate = off);
	-- Entries logged with a time before that of an earlier entry (see
	-- window). BEFORE INSERT, so that max(time) covers exactly the rows
	-- inserted before this one, earlier rows of the same statement
	-- included. No foreign key: the row is not there yet; a row left by a
	-- deleted entry only widens the bounds.
	CREATE TABLE sal_backdated (
		id   bigint PRIMARY KEY,
		time timestamptz NOT NULL
	);
	CREATE INDEX sal_backdated_time ON sal_backdated (time);
	CREATE FUNCTION sal_entries_note_backdated() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		IF NEW.time < (SELECT max(time) FROM sal_entries) THEN
			INSERT INTO sal_backdated (id, time) VALUES (NEW.id, NEW.time);
		END IF;
		RETURN NEW;
	END
	$$;
	CREATE TRIGGER sal_entries_backdated BEFORE INSERT ON sal_entries
		FOR EACH ROW EXECUTE FUNCTION sal_entries_note_backdated();
	CREATE FUNCTION sal_entries_refuse_update() RETURNS trigger LANGUAGE plpgsql AS $$
	BEGIN
		RAISE EXCEPTION 'SAL entries are append-only';
	END
	$$;
	CREATE TRIGGER sal_entries_no_update BEFORE UPDATE ON sal_entries
		FOR EACH ROW EXECUTE FUNCTION sal_entries_refuse_update();`,

	// 2: Entry.Sender, the real sender of a relayed entry.
	`ALTER TABLE sal_entries ADD COLUMN sender text NOT NULL DEFAULT '';`,
}

// OpenPostgres connects to the PostgreSQL database at url (postgres://… or
// postgresql://…, libpq's syntax) and brings its schema up to date.
func OpenPostgres(url string) (*Postgres, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("sal: %w", err)
	}
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	cfg.ConnConfig.RuntimeParams["timezone"] = "UTC"
	// pgx prepares and caches statements; after five runs PostgreSQL would
	// plan them once for any parameters, blind to how common the words of
	// a search are, and pick plans that read the whole table for rare ones.
	cfg.ConnConfig.RuntimeParams["plan_cache_mode"] = "force_custom_plan"
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "deploybot"
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("sal: %w", err)
	}
	p := &Postgres{pool: pool}
	if err := p.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("sal: PostgreSQL %s@%s:%d/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return p, nil
}

func (p *Postgres) migrate(ctx context.Context) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, pgMigrateLock); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS sal_migrations (
		version int PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM sal_migrations`).Scan(&version); err != nil {
		return err
	}
	if version > len(pgMigrations) {
		return fmt.Errorf("database schema version %d is newer than this deploybot knows (%d)", version, len(pgMigrations))
	}
	for i := version; i < len(pgMigrations); i++ {
		if _, err := tx.Exec(ctx, pgMigrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sal_migrations (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Append implements Store.
func (p *Postgres) Append(ctx context.Context, e *Entry) error {
	if err := prepare(e); err != nil {
		return err
	}
	// One statement, so one transaction: the lock is taken before nextval
	// and released after the commit is visible.
	err := p.pool.QueryRow(ctx, `INSERT INTO sal_entries (time, nick, account, channel, project, message, source, search, key, sender)
		SELECT $1, $2, $3, $4, $5, $6, $7, to_tsvector('simple', $8), $10, $11
		FROM (SELECT pg_advisory_xact_lock($9)) AS serialize
		ON CONFLICT (key) DO NOTHING
		RETURNING id`,
		e.Time, e.Nick, e.Account, e.Channel, e.Project, e.Message, string(e.Source),
		searchText(e.Message, e.Nick), pgAppendLock, nullKey(e.Key), e.Sender).Scan(&e.ID)
	if errors.Is(err, pgx.ErrNoRows) {
		// Its key is stored: that entry is this one.
		stored, err := scanPgEntry(p.pool.QueryRow(ctx, `SELECT `+pgEntryColumns+` FROM sal_entries WHERE key = $1`, e.Key))
		if err != nil {
			return fmt.Errorf("sal: append: entry with key %q: %w", e.Key, err)
		}
		*e = stored
		return nil
	}
	if err != nil {
		return fmt.Errorf("sal: append: %w", err)
	}
	return nil
}

const pgEntryColumns = `id, time, nick, account, sender, channel, project, message, source, coalesce(key, '')`

// pgRecent is how many of the newest ids a search looks through first,
// letting PostgreSQL's planner walk the primary key down (fast for common
// words); the rest of the range is searched through the GIN index.
const pgRecent = 20000

// List implements Store.
//
// PostgreSQL's planner, asked for the newest matches of a search, walks the
// primary key down and checks each row when it believes matches are
// common, which reads the whole table when they are in fact rare or old
// (a ticket number, filters that exclude each other). So a search runs in
// two steps: first over the newest pgRecent ids only, where any plan is
// cheap; then, if that did not fill the page, over the older ids with
// plans restricted to bitmap scans (the GIN index, intersected with the
// project and channel indexes), whose cost follows the number of matches.
// Since/Until become a range of ids first, as in SQLite.List.
func (p *Postgres) List(ctx context.Context, q Query) ([]Entry, error) {
	var cond []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if q.Search != "" {
		terms := parseSearch(q.Search)
		if len(terms) == 0 {
			return nil, nil
		}
		cond = append(cond, `search @@ to_tsquery('simple', `+arg(tsquery(terms))+`)`)
	}
	for _, f := range []struct{ column, value string }{{"project", q.Project}, {"channel", q.Channel}} {
		if f.value == "" {
			continue
		}
		if strings.IndexByte(f.value, 0) >= 0 || !utf8.ValidString(f.value) {
			return nil, nil // PostgreSQL text cannot hold it, so no entry has it
		}
		cond = append(cond, f.column+` = `+arg(f.value))
	}
	since, until, ok := timeRange(q.Since, q.Until)
	if !ok {
		return nil, nil
	}
	lo, hi := int64(0), int64(math.MaxInt64) // ids in [lo, hi)
	if q.Before > 0 {
		hi = q.Before
	}
	if since != math.MinInt64 || until != math.MaxInt64 {
		first, last, err := p.window(ctx, since, until)
		if err != nil {
			return nil, fmt.Errorf("sal: list: %w", err)
		}
		if first == 0 {
			return nil, nil
		}
		lo, hi = max(lo, first), min(hi, last+1)
		// Entries are whole microseconds, so rounding a bound up to the
		// microsecond selects the same ones.
		if since != math.MinInt64 {
			cond = append(cond, `time >= `+arg(ceilMicro(since)))
		}
		if until != math.MaxInt64 {
			cond = append(cond, `time < `+arg(ceilMicro(until)))
		}
	}
	if lo >= hi {
		return nil, nil
	}
	limit := q.limit()
	if q.Search == "" {
		return p.list(ctx, nil, cond, args, lo, hi, limit)
	}
	// Step 1: the newest pgRecent ids.
	if hi == math.MaxInt64 {
		var top int64
		if err := p.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM sal_entries`).Scan(&top); err != nil {
			return nil, fmt.Errorf("sal: list: %w", err)
		}
		hi = top + 1
	}
	recent := int64(pgRecent)
	if p.RecentIDs > 0 {
		recent = p.RecentIDs
	}
	mid := max(lo, hi-recent)
	out, err := p.list(ctx, nil, cond, args, mid, hi, limit)
	if err != nil || len(out) == limit || mid == lo {
		return out, err
	}
	// Step 2: the older ids, through bitmap scans only.
	tx, err := p.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, fmt.Errorf("sal: list: %w", err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT set_config('enable_seqscan', 'off', true),
		set_config('enable_indexscan', 'off', true), set_config('enable_indexonlyscan', 'off', true)`); err != nil {
		return nil, fmt.Errorf("sal: list: %w", err)
	}
	older, err := p.list(ctx, tx, cond, args, lo, mid, limit-len(out))
	if err != nil {
		return nil, err
	}
	return append(out, older...), tx.Commit(ctx)
}

// list runs the query of List for ids in [lo, hi), on tx when not nil.
func (p *Postgres) list(ctx context.Context, tx pgx.Tx, cond []string, args []any, lo, hi int64, limit int) ([]Entry, error) {
	n := len(args)
	query := `SELECT ` + pgEntryColumns + ` FROM sal_entries WHERE ` +
		strings.Join(append(slices.Clip(cond), fmt.Sprintf(`id >= $%d AND id < $%d`, n+1, n+2)), ` AND `) +
		fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, n+3)
	args = append(slices.Clip(args), lo, hi, limit)
	var rows pgx.Rows
	var err error
	if tx != nil {
		rows, err = tx.Query(ctx, query, args...)
	} else {
		rows, err = p.pool.Query(ctx, query, args...)
	}
	if err != nil {
		return nil, fmt.Errorf("sal: list: %w", err)
	}
	defer rows.Close()
	var out []Entry
	for rows.Next() {
		e, err := scanPgEntry(rows)
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
// bound), or 0, 0 when the window holds no entry. Entries not in
// sal_backdated have times that grow with their ids, so the first and
// last of them in the window bound the ids of all of them; the backdated
// entries in the window widen the bounds.
func (p *Postgres) window(ctx context.Context, since, until int64) (first, last int64, err error) {
	var conds []string
	var args []any
	if since != math.MinInt64 {
		args = append(args, ceilMicro(since))
		conds = append(conds, fmt.Sprintf(`time >= $%d`, len(args)))
	}
	if until != math.MaxInt64 {
		args = append(args, ceilMicro(until))
		conds = append(conds, fmt.Sprintf(`time < $%d`, len(args)))
	}
	in := strings.Join(conds, ` AND `)
	inOrder := in + ` AND id NOT IN (SELECT id FROM sal_backdated WHERE ` + in + `)`
	var inFirst, inLast, bdFirst, bdLast *int64
	err = p.pool.QueryRow(ctx, `SELECT
		(SELECT id FROM sal_entries WHERE `+inOrder+` ORDER BY time, id LIMIT 1),
		(SELECT id FROM sal_entries WHERE `+inOrder+` ORDER BY time DESC, id DESC LIMIT 1),
		(SELECT min(id) FROM sal_backdated WHERE `+in+`),
		(SELECT max(id) FROM sal_backdated WHERE `+in+`)`, args...).Scan(&inFirst, &inLast, &bdFirst, &bdLast)
	if err != nil {
		return 0, 0, err
	}
	first, last = math.MaxInt64, 0
	for _, v := range []*int64{inFirst, inLast, bdFirst, bdLast} {
		if v != nil {
			first, last = min(first, *v), max(last, *v)
		}
	}
	if last == 0 {
		return 0, 0, nil
	}
	return first, last, nil
}

// ceilMicro returns Unix nanoseconds ns as a time rounded up to the
// microsecond.
func ceilMicro(ns int64) time.Time {
	t := time.Unix(0, ns).UTC()
	if r := t.Truncate(time.Microsecond); !r.Equal(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

// tsquery turns search terms into a to_tsquery('simple', …) argument: each
// term its tokens as a phrase (<->), the last one a prefix (:*) when asked,
// the terms ANDed (&). Every token is quoted, so nothing in it is syntax.
func tsquery(terms []searchTerm) string {
	var b strings.Builder
	for i, t := range terms {
		if i > 0 {
			b.WriteString(" & ")
		}
		b.WriteString("(")
		for j, tok := range t.tokens {
			if j > 0 {
				b.WriteString(" <-> ")
			}
			b.WriteString("'")
			b.WriteString(strings.NewReplacer(`'`, `''`, `\`, `\\`).Replace(tok))
			b.WriteString("'")
		}
		if t.prefix {
			b.WriteString(":*")
		}
		b.WriteString(")")
	}
	return b.String()
}

// Get implements Store.
func (p *Postgres) Get(ctx context.Context, id int64) (Entry, error) {
	e, err := scanPgEntry(p.pool.QueryRow(ctx, `SELECT `+pgEntryColumns+` FROM sal_entries WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return Entry{}, ErrNotFound
	}
	if err != nil {
		return Entry{}, fmt.Errorf("sal: get %d: %w", id, err)
	}
	return e, nil
}

// Close implements Store. Closing twice is harmless.
func (p *Postgres) Close() error {
	p.pool.Close()
	return nil
}

// Pool is the connection pool, for tests and maintenance.
func (p *Postgres) Pool() *pgxpool.Pool { return p.pool }

func scanPgEntry(r pgx.Row) (Entry, error) {
	var e Entry
	var source string
	if err := r.Scan(&e.ID, &e.Time, &e.Nick, &e.Account, &e.Sender, &e.Channel, &e.Project, &e.Message, &source, &e.Key); err != nil {
		return Entry{}, err
	}
	e.Time = e.Time.UTC()
	e.Source = Source(source)
	return e, nil
}
