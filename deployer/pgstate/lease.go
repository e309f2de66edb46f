package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"deploybot/deployer/journal"

	"github.com/jackc/pgx/v5"
)

// lease is a held deploy lock: the session that holds the advisory lock,
// on which every event of the deploy is written.
type lease struct {
	s       *Store
	service string
	holder  journal.Holder

	mu       sync.Mutex // serializes the session's statements
	conn     *pgx.Conn
	released bool
	err      error // why the lease was lost

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{}
	done     chan struct{}
}

// AcquireDeploy implements journal.Store: the advisory lock and the
// holder record are taken by one statement, on a session of the lease's
// own.
func (s *Store) AcquireDeploy(service string, h journal.Holder) (journal.Lease, error) {
	if err := journal.ValidService(service); err != nil {
		return nil, err
	}
	if h.Who == "" {
		return nil, errors.New("deploy lock: the holder needs a Who")
	}
	fill(&h, true)
	raw, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, s.conn)
	if err != nil {
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	var got bool
	err = conn.QueryRow(ctx, `WITH l AS (SELECT pg_try_advisory_lock($1) AS ok),
		ins AS (INSERT INTO deploy_locks (service, holder, deploy_id, backend_pid)
			SELECT $2, $3, $4, pg_backend_pid() FROM l WHERE l.ok
			ON CONFLICT (service) DO UPDATE SET holder = EXCLUDED.holder, deploy_id = EXCLUDED.deploy_id, backend_pid = EXCLUDED.backend_pid
			RETURNING 1)
		SELECT ok FROM l`, advisoryKey(service), service, raw, h.DeployID).Scan(&got)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("deploy lock: %w", err)
	}
	if !got {
		conn.Close(ctx)
		return nil, s.refusal(ctx, service)
	}
	l := &lease{s: s, service: service, holder: h, conn: conn,
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	// The manual lock is checked while holding the deploy lock, so a
	// deploy that gets this far was not locked when it started.
	m, err := s.Held(service)
	if err == nil && m != nil {
		err = &journal.LockedError{Service: service, Holder: *m, Manual: true}
	}
	if err != nil {
		close(l.done)
		l.Release()
		return nil, err
	}
	go l.heartbeat()
	return l, nil
}

// refusal is the *LockedError of a busy deploy lock. The holder record is
// written with the lock, so it is there; a session that just ended may
// have released it meanwhile, and the holder is then unknown.
func (s *Store) refusal(ctx context.Context, service string) error {
	e := &journal.LockedError{Service: service}
	if h, err := s.running(ctx, service); err == nil && h != nil {
		e.Holder = *h
	}
	return e
}

func (l *lease) Service() string        { return l.service }
func (l *lease) Holder() journal.Holder { return l.holder }
func (l *lease) Lost() <-chan struct{}  { return l.lost }

// markLost records why the lease was lost and closes Lost.
func (l *lease) markLost(err error) {
	l.lostOnce.Do(func() {
		l.err = err
		close(l.lost)
	})
}

// heartbeat checks the session every Store.Heartbeat until Release.
func (l *lease) heartbeat() {
	defer close(l.done)
	every := l.s.Heartbeat
	if every <= 0 {
		every = DefaultHeartbeat
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if err := l.check(every); err != nil {
			l.markLost(err)
			return
		}
	}
}

// check asks the lease's session whether it still holds the lock.
func (l *lease) check(timeout time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.released {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(timeout, time.Second))
	defer cancel()
	var held bool
	err := l.conn.QueryRow(ctx, `SELECT `+heldBy("pg_backend_pid()", "$1"), lockKey(l.service)).Scan(&held)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", journal.ErrLeaseLost, err)
	case !held:
		return journal.ErrLeaseLost
	}
	return nil
}

// use runs fn on the lease's session, refused once the lease is lost or
// released; an error of the session itself loses the lease.
func (l *lease) use(fn func(ctx context.Context, c *pgx.Conn) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	select {
	case <-l.lost:
		return l.err
	default:
	}
	if l.released {
		return errors.New("the deploy lock was released")
	}
	ctx, cancel := opCtx()
	defer cancel()
	err := fn(ctx, l.conn)
	if err != nil && l.conn.IsClosed() {
		l.markLost(fmt.Errorf("%w: %v", journal.ErrLeaseLost, err))
	}
	return err
}

// Release implements journal.Lease: the holder record is removed and the
// session closed, which lets the advisory lock go.
func (l *lease) Release() error {
	l.mu.Lock()
	if l.released {
		l.mu.Unlock()
		return nil
	}
	l.released = true
	ctx, cancel := opCtx()
	defer cancel()
	var err error
	if !l.conn.IsClosed() {
		// Unlocked here, not by the end of the session, which the server
		// sees some time after Close: the next deploy is not refused.
		_, err = l.conn.Exec(ctx, `DELETE FROM deploy_locks WHERE service = $1 AND backend_pid = pg_backend_pid()`, l.service)
		if err == nil {
			_, err = l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, advisoryKey(l.service))
		}
	}
	l.conn.Close(ctx)
	l.mu.Unlock()
	select {
	case <-l.done:
	default:
		close(l.stop)
		<-l.done
	}
	if err != nil {
		return fmt.Errorf("release deploy lock of %s: %w", l.service, err)
	}
	return nil
}
