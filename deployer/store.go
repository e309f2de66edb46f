package deployer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"deploybot/config"
	"deploybot/deployer/journal"
	"deploybot/deployer/pgstate"
)

// OpenStore opens the state store deploy.state names: the journal
// directory (the default), or a PostgreSQL database shared by several
// deploy hosts.
func OpenStore(ctx context.Context, cfg *config.Config) (journal.Store, error) {
	if cfg.Deploy.State == "" {
		return journal.NewFiles(cfg.Deploy.JournalDir), nil
	}
	return pgstate.Open(ctx, cfg.Deploy.State)
}

// openStore is OpenStore with a bound on the time it takes.
func openStore(cfg *config.Config) (journal.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return OpenStore(ctx, cfg)
}

// Open returns an engine for cfg that reaches no target: for the commands
// that only read or lock (deploy-log, lock, unlock, the web pages). It
// opens the state store deploy.state names.
func Open(cfg *config.Config, logger *slog.Logger) (*Engine, error) {
	st, err := openStore(cfg)
	if err != nil {
		return nil, err
	}
	return NewWithStore(cfg, logger, nil, st), nil
}

// ReadDeploy reads the journal of deploy id.
func (e *Engine) ReadDeploy(id string) (*Deploy, error) { return e.store.Read(id) }

// LatestDeploy returns the id of the newest deploy of service ("" = of
// any service), or an error wrapping journal.ErrNoDeploys.
func (e *Engine) LatestDeploy(service string) (string, error) {
	return journal.LatestIn(e.store, service)
}

// Follow passes every event of deploy id to fn, then the new ones as they
// are written, wherever the deploy runs, until it finishes (nil), stops
// without finishing (journal.ErrInterrupted), fn fails or ctx ends.
func (e *Engine) Follow(ctx context.Context, id string, fn func(journal.Event) error) error {
	return e.store.Follow(ctx, id, fn)
}

// Running returns who holds the deploy lock of service, on whichever
// host, or nil.
func (e *Engine) Running(service string) (*Holder, error) { return e.store.Running(service) }

// LogHandler serves the deploy journals read-only under prefix (see
// journal.HandlerFor).
func (e *Engine) LogHandler(prefix string) http.Handler { return journal.HandlerFor(e.store, prefix) }

// errLockLost ends a deploy whose lock the state store lost.
var errLockLost = errors.New("the deploy lock was lost (state store unreachable): no new host is started")

// fence returns ctx ended when lease l is lost, and the function that
// ends it with a cause (the run's stop) and must be called when done.
func fence(ctx context.Context, l journal.Lease) (context.Context, context.CancelCauseFunc) {
	ctx, cancel := context.WithCancelCause(ctx)
	if lost := l.Lost(); lost != nil {
		go func() {
			select {
			case <-lost:
				cancel(errLockLost)
			case <-ctx.Done():
			}
		}()
	}
	return ctx, cancel
}

// cause is why ctx ended, for the journal and the operator.
func cause(ctx context.Context) error {
	if err := context.Cause(ctx); err != nil {
		return err
	}
	return fmt.Errorf("deploy: %w", ctx.Err())
}

// fenced makes a journal append that fails stop the run, when its lock is
// one the store can lose (a database session): an event that was not
// recorded must not be acted upon, and no new host starts. A deploy lock
// that cannot be lost (a flock) keeps the old behaviour: the failure is
// logged.
func (r *run) fenced(l journal.Lease, stop context.CancelCauseFunc) {
	if l.Lost() != nil {
		r.stop = stop
	}
}

// Deploys returns up to n recorded deploys of service ("" = of every
// service, configured or not), newest first (n <= 0: all), from every
// host sharing the state.
func (e *Engine) Deploys(service string, n int) ([]Summary, error) { return e.store.List(service, n) }
