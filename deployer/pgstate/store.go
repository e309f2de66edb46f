package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sort"
	"strings"
	"time"

	"deploybot/deployer/journal"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store is the journal.Store in a PostgreSQL database.
type Store struct {
	pool *pgxpool.Pool
	conn *pgx.ConnConfig // for the lease sessions
	// Heartbeat is how often a held deploy lock checks its session; 0
	// means DefaultHeartbeat. Set it before taking locks.
	Heartbeat time.Duration
	// Poll is how often Follow looks for new events; 0 means 200 ms.
	Poll time.Duration
}

// DefaultHeartbeat is how often a held deploy lock checks, by default,
// that its session still holds it.
const DefaultHeartbeat = 2 * time.Second

// opTimeout bounds each statement of the store.
const opTimeout = 30 * time.Second

// Advisory lock keys: migrations, and the high half of the deploy locks'
// keys (the low half is a hash of the service name). "DPM", "DPL".
const (
	migrateLock = 0x44504d
	deployClass = 0x44504c
)

var _ journal.Store = (*Store)(nil)

var migrations = []string{
	// 1: journals, events, locks.
	`CREATE TABLE deploy_journals (
		id       text PRIMARY KEY,
		service  text NOT NULL,
		started  timestamptz NOT NULL,
		finished boolean NOT NULL DEFAULT false,
		outcome  text NOT NULL DEFAULT '',
		rev      text NOT NULL DEFAULT '',
		summary  jsonb NOT NULL,
		groups   jsonb
	);
	CREATE INDEX deploy_journals_service ON deploy_journals (service, started DESC, id DESC);
	CREATE INDEX deploy_journals_started ON deploy_journals (started DESC, id DESC);
	CREATE INDEX deploy_journals_unfinished ON deploy_journals (started) WHERE NOT finished;
	CREATE TABLE deploy_events (
		deploy_id text NOT NULL REFERENCES deploy_journals (id),
		seq       int NOT NULL,
		line      text NOT NULL,
		PRIMARY KEY (deploy_id, seq)
	);
	CREATE TABLE deploy_locks (
		service     text PRIMARY KEY,
		holder      jsonb NOT NULL,
		deploy_id   text NOT NULL DEFAULT '',
		backend_pid int NOT NULL
	);
	CREATE TABLE deploy_manual_locks (
		service text PRIMARY KEY,
		holder  jsonb NOT NULL
	);`,
}

// Open connects to the PostgreSQL database at url (postgres://… or
// postgresql://…) and brings its schema up to date.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("deploy.state: %w", err)
	}
	rp := cfg.ConnConfig.RuntimeParams
	rp["synchronous_commit"] = "on"
	rp["timezone"] = "UTC"
	if rp["application_name"] == "" {
		rp["application_name"] = "deploybot"
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("deploy.state: %w", err)
	}
	s := &Store{pool: pool, conn: cfg.ConnConfig}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("deploy.state: PostgreSQL %s@%s:%d/%s: %w", cfg.ConnConfig.User, cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database, err)
	}
	return s, nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLock); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS deploy_migrations (
		version int PRIMARY KEY,
		applied timestamptz NOT NULL DEFAULT now()
	)`); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM deploy_migrations`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return fmt.Errorf("deploy state schema version %d is newer than this deploybot knows (%d)", version, len(migrations))
	}
	for i := version; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deploy_migrations (version) VALUES ($1)`, i+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// Close implements journal.Store.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

func opCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), opTimeout)
}

// lockKey is the low half of the advisory lock key of service.
func lockKey(service string) int64 {
	h := fnv.New32a()
	h.Write([]byte(service))
	return int64(h.Sum32())
}

// heldBy is an SQL condition, true when the session of backend pid
// pidExpr holds the deploy lock whose low key is keyExpr.
func heldBy(pidExpr, keyExpr string) string {
	return fmt.Sprintf(`EXISTS (SELECT 1 FROM pg_locks p WHERE p.locktype = 'advisory' AND p.granted
	AND p.pid = %s AND p.classid::bigint = %d AND p.objid::bigint = %s AND p.objsubid = 1
	AND p.database = (SELECT oid FROM pg_database WHERE datname = current_database()))`, pidExpr, deployClass, keyExpr)
}

// advisoryKey is the advisory lock key of the deploy lock of service.
func advisoryKey(service string) int64 { return deployClass<<32 | lockKey(service) }

// fill completes a holder as journal.AcquireDeploy does.
func fill(h *journal.Holder, withPID bool) {
	if h.Since.IsZero() {
		h.Since = time.Now()
	}
	h.Since = h.Since.UTC()
	if withPID && h.PID == 0 {
		h.PID = os.Getpid()
	}
	if h.Host == "" {
		h.Host, _ = os.Hostname()
	}
}

// Running implements journal.Store.
func (s *Store) Running(service string) (*journal.Holder, error) {
	if err := journal.ValidService(service); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	h, err := s.running(ctx, service)
	if err != nil {
		return nil, fmt.Errorf("deploy lock of %s: %w", service, err)
	}
	return h, nil
}

func (s *Store) running(ctx context.Context, service string) (*journal.Holder, error) {
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT l.holder FROM deploy_locks l
		WHERE l.service = $1 AND `+heldBy("l.backend_pid", "$2"), service, lockKey(service)).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h journal.Holder
	if json.Unmarshal(raw, &h) != nil {
		return &journal.Holder{}, nil
	}
	return &h, nil
}

// Lock implements journal.Store (see journal.Lock).
func (s *Store) Lock(service string, h journal.Holder) error {
	if err := journal.ValidService(service); err != nil {
		return err
	}
	if h.Who == "" || strings.TrimSpace(h.Why) == "" {
		return errors.New("lock: who and a reason are required")
	}
	fill(&h, false)
	raw, err := json.Marshal(h)
	if err != nil {
		return err
	}
	ctx, cancel := opCtx()
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO deploy_manual_locks (service, holder) VALUES ($1, $2) ON CONFLICT (service) DO NOTHING`, service, raw)
	if err != nil {
		return fmt.Errorf("lock %s: %w", service, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	cur, err := s.Held(service)
	if err != nil {
		return err
	}
	if cur == nil {
		return fmt.Errorf("lock %s: the lock changed meanwhile; try again", service)
	}
	return &journal.LockedError{Service: service, Holder: *cur, Manual: true}
}

// Unlock implements journal.Store (see journal.Unlock).
func (s *Store) Unlock(service, who string) (journal.Holder, error) {
	if err := journal.ValidService(service); err != nil {
		return journal.Holder{}, err
	}
	if strings.TrimSpace(who) == "" {
		return journal.Holder{}, errors.New("unlock: who is required")
	}
	ctx, cancel := opCtx()
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, `DELETE FROM deploy_manual_locks WHERE service = $1 RETURNING holder`, service).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return journal.Holder{}, fmt.Errorf("%w: %s has no manual lock", journal.ErrNotLocked, service)
	}
	if err != nil {
		return journal.Holder{}, fmt.Errorf("unlock %s: %w", service, err)
	}
	return decodeHolder(raw), nil
}

func decodeHolder(raw []byte) journal.Holder {
	var h journal.Holder
	if json.Unmarshal(raw, &h) != nil || h.Who == "" {
		return journal.Holder{Who: "unknown", Why: "unreadable lock record"}
	}
	return h
}

// Held implements journal.Store.
func (s *Store) Held(service string) (*journal.Holder, error) {
	if err := journal.ValidService(service); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	var raw []byte
	err := s.pool.QueryRow(ctx, `SELECT holder FROM deploy_manual_locks WHERE service = $1`, service).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lock of %s: %w", service, err)
	}
	h := decodeHolder(raw)
	return &h, nil
}

// Locks implements journal.Store.
func (s *Store) Locks() ([]journal.ServiceLock, error) {
	ctx, cancel := opCtx()
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT service FROM deploy_manual_locks UNION SELECT service FROM deploy_locks`)
	if err != nil {
		return nil, err
	}
	services, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	sort.Strings(services)
	var out []journal.ServiceLock
	for _, svc := range services {
		d, err := s.running(ctx, svc)
		if err != nil {
			return nil, err
		}
		m, err := s.Held(svc)
		if err != nil {
			return nil, err
		}
		if d != nil || m != nil {
			out = append(out, journal.ServiceLock{Service: svc, Deploy: d, Manual: m})
		}
	}
	return out, nil
}
