package pgstate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"time"

	"deploybot/deployer/journal"

	"github.com/jackc/pgx/v5"
)

// writer appends the events of one deploy on its lease's session.
type writer struct {
	l    *lease
	id   string
	meta journal.Meta

	mu       sync.Mutex
	seq      int // of the next event
	finished bool
	closed   bool
}

// leaseFor checks that l is a lease of this store held for deploy id.
func (s *Store) leaseFor(l journal.Lease, id string) (*lease, error) {
	pl, ok := l.(*lease)
	if !ok || pl.s != s || pl.holder.DeployID != id || id == "" {
		return nil, fmt.Errorf("journal %s: the deploy lock must be held for it in this state store", id)
	}
	return pl, nil
}

// Create implements journal.Store: the deploy's row and its started
// event are committed together.
func (s *Store) Create(l journal.Lease, meta journal.Meta) (journal.EventWriter, error) {
	pl, err := s.leaseFor(l, meta.ID)
	if err != nil {
		return nil, err
	}
	started, err := journal.StartedEvent(pl.service, meta)
	if err != nil {
		return nil, err
	}
	meta = *started.Meta
	line, err := journal.EncodeEvent(started)
	if err != nil {
		return nil, err
	}
	sum, err := json.Marshal(journal.Summary{ID: meta.ID, Service: meta.Service, Who: meta.Who, Rev: meta.Rev,
		FromRev: meta.FromRev, Message: meta.Message, Started: meta.Started})
	if err != nil {
		return nil, err
	}
	err = pl.use(func(ctx context.Context, c *pgx.Conn) error {
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `INSERT INTO deploy_journals (id, service, started, rev, summary) VALUES ($1, $2, $3, $4, $5)`,
				meta.ID, meta.Service, meta.Started, meta.Rev, sum); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO deploy_events (deploy_id, seq, line) VALUES ($1, 1, $2)`, meta.ID, string(line))
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("create journal %s: %w", meta.ID, err)
	}
	return &writer{l: pl, id: meta.ID, meta: meta, seq: 2}, nil
}

// Reopen implements journal.Store.
func (s *Store) Reopen(l journal.Lease) (journal.EventWriter, *journal.Deploy, error) {
	id := l.Holder().DeployID
	pl, err := s.leaseFor(l, id)
	if err != nil {
		return nil, nil, err
	}
	var lines [][]byte
	err = pl.use(func(ctx context.Context, c *pgx.Conn) error {
		lines, err = readLines(ctx, c, id, 0)
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reopen %s: %w", id, err)
	}
	d, err := build(id, lines)
	if err != nil {
		return nil, nil, err
	}
	if d.Meta.Service != pl.service {
		return nil, nil, fmt.Errorf("reopen %s: it is a deploy of %s, not %s", id, d.Meta.Service, pl.service)
	}
	if d.Finished {
		return nil, nil, fmt.Errorf("reopen %s: %w (%s)", id, journal.ErrFinished, d.Outcome)
	}
	return &writer{l: pl, id: id, meta: d.Meta, seq: len(lines) + 1}, d, nil
}

func (w *writer) Meta() journal.Meta { return w.meta }

// Close implements journal.EventWriter; the lease stays held.
func (w *writer) Close() error {
	w.mu.Lock()
	w.closed = true
	w.mu.Unlock()
	return nil
}

// Append implements journal.EventWriter: the event is committed before
// it returns. A finished event also finishes the deploy's row, in the
// same transaction.
func (w *writer) Append(ev journal.Event) error {
	if err := journal.PrepareEvent(&ev); err != nil {
		return err
	}
	line, err := journal.EncodeEvent(ev)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return journal.ErrClosed
	case w.finished:
		return journal.ErrFinished
	}
	err = w.l.use(func(ctx context.Context, c *pgx.Conn) error {
		if ev.Type != journal.TypeFinished {
			_, err := c.Exec(ctx, `INSERT INTO deploy_events (deploy_id, seq, line) VALUES ($1, $2, $3)`, w.id, w.seq, string(line))
			return err
		}
		return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error { return finish(ctx, tx, w.id, w.seq, line) })
	})
	if err != nil {
		return fmt.Errorf("journal %s: %w", w.id, err)
	}
	w.seq++
	if ev.Type == journal.TypeFinished {
		w.finished = true
	}
	return nil
}

// finish writes the finished event of deploy id and updates its row.
func finish(ctx context.Context, tx pgx.Tx, id string, seq int, line []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO deploy_events (deploy_id, seq, line) VALUES ($1, $2, $3)`, id, seq, string(line)); err != nil {
		return err
	}
	lines, err := readLines(ctx, tx, id, 0)
	if err != nil {
		return err
	}
	d, err := build(id, lines)
	if err != nil {
		return err
	}
	sum, err := json.Marshal(d.Summary())
	if err != nil {
		return err
	}
	groups, err := json.Marshal(d.GroupRevs())
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE deploy_journals SET finished = true, outcome = $2, summary = $3, groups = $4 WHERE id = $1`,
		id, string(d.Outcome), sum, groups)
	return err
}

// querier is a connection, a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// readLines reads the events of deploy id after sequence number after.
func readLines(ctx context.Context, q querier, id string, after int) ([][]byte, error) {
	rows, err := q.Query(ctx, `SELECT line FROM deploy_events WHERE deploy_id = $1 AND seq > $2 ORDER BY seq`, id, after)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]byte, error) {
		var s string
		err := r.Scan(&s)
		return []byte(s), err
	})
}

func build(id string, lines [][]byte) (*journal.Deploy, error) {
	if len(lines) == 0 {
		return nil, fmt.Errorf("deploy %s: %w", id, fs.ErrNotExist)
	}
	d, err := journal.Build(id, lines)
	if err != nil {
		return nil, err
	}
	d.Path = ""
	return d, nil
}

// Read implements journal.Store.
func (s *Store) Read(id string) (*journal.Deploy, error) {
	if _, _, err := journal.ParseID(id); err != nil {
		return nil, err
	}
	ctx, cancel := opCtx()
	defer cancel()
	lines, err := readLines(ctx, s.pool, id, 0)
	if err != nil {
		return nil, fmt.Errorf("read deploy %s: %w", id, err)
	}
	return build(id, lines)
}

// Follow implements journal.Store, by polling.
func (s *Store) Follow(ctx context.Context, id string, fn func(journal.Event) error) error {
	service, _, err := journal.ParseID(id)
	if err != nil {
		return err
	}
	poll := s.Poll
	if poll <= 0 {
		poll = 200 * time.Millisecond
	}
	seen := 0
	var lastNews time.Time
	t := time.NewTicker(poll)
	defer t.Stop()
	for {
		done, grew, err := s.drain(ctx, id, &seen, fn)
		if done || err != nil {
			return err
		}
		switch {
		case grew:
			lastNews = time.Now()
		case time.Since(lastNews) >= time.Second:
			lastNews = time.Now()
			running, err := s.deployRunning(ctx, service, id)
			if err != nil {
				return fmt.Errorf("follow %s: %w", id, err)
			}
			if !running {
				// What was written before the lock went is committed.
				if done, _, err := s.drain(ctx, id, &seen, fn); done || err != nil {
					return err
				}
				return journal.ErrInterrupted
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// drain passes on the events of id after *seen.
func (s *Store) drain(ctx context.Context, id string, seen *int, fn func(journal.Event) error) (done, grew bool, err error) {
	qctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	lines, err := readLines(qctx, s.pool, id, *seen)
	if err != nil {
		return false, false, fmt.Errorf("follow %s: %w", id, err)
	}
	if *seen == 0 && len(lines) == 0 {
		return false, false, fmt.Errorf("follow %s: %w", id, fs.ErrNotExist)
	}
	for _, line := range lines {
		*seen++
		var ev journal.Event
		if json.Unmarshal(line, &ev) != nil || ev.Type == "" {
			continue
		}
		if err := fn(ev); err != nil {
			return false, true, err
		}
		if ev.Type == journal.TypeFinished {
			return true, true, nil
		}
	}
	return false, len(lines) > 0, nil
}

// deployRunning reports whether the deploy lock of service is held for
// deploy id (or for no deploy named, taken as running to be safe).
func (s *Store) deployRunning(ctx context.Context, service, id string) (bool, error) {
	qctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	h, err := s.running(qctx, service)
	if err != nil || h == nil {
		return false, err
	}
	return h.DeployID == "" || h.DeployID == id, nil
}

var errNoRows = pgx.ErrNoRows

func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
