// Package pgstate is the deployment state store (journal.Store) in
// PostgreSQL, for sites with more than one deploy host: every bot and
// command-line run configured with the same deploy.state database shares
// the deploy locks, the manual locks, the journals and the index, whatever
// host it runs on. It may be the SAL's database: the tables are prefixed
// deploy_.
//
// Schema (tracked in deploy_migrations, applied under an advisory lock so
// that instances starting together do not race):
//
//   - deploy_journals: one row per deploy: id, service, start time, whether
//     it finished and how, its summary (journal.Summary as JSON) and, once
//     finished, the revision of each group (journal.GroupRevs).
//   - deploy_events: the journal, one row per event (deploy id, sequence
//     number from 1, the event as one JSON line, exactly as a journal file
//     holds it). Rows are only ever inserted.
//   - deploy_locks: the holder (journal.Holder) of each service's deploy
//     lock, with the backend pid of the session that holds it.
//   - deploy_manual_locks: the manual locks.
//
// # Deploy locks
//
// The deploy lock of a service is a session-level advisory lock, taken on
// a connection of its own that the deploy keeps for as long as it runs.
// PostgreSQL releases it when that session ends, however it ends: the
// deploying process killed, its host gone (once TCP notices), the server
// restarted. A deploy_locks row names the holder; it counts only while its
// session holds the advisory lock (pg_locks), so a row left behind by a
// dead session is never taken for a running deploy.
//
// The lease is fenced: a heartbeat checks, every Store.Heartbeat, that the
// session still holds the lock, and every journal event of the deploy is
// written on that same session. When the session is lost the Lease's Lost
// channel is closed and every later Append fails with
// journal.ErrLeaseLost, so nothing more is recorded (nor, as the engine
// writes each event before it acts, done) under a lock another host may
// have taken meanwhile.
//
// # Journals
//
// An event is committed (synchronous_commit on) before Append returns.
// The finished event updates the deploy's row in the same transaction.
// Follow polls for new events (every 200 ms) and, while nothing comes,
// checks that the deploy's lock is still held (every second): a deploy
// whose session ended without a finished event is interrupted, and
// Unfinished offers it for recovery to every host sharing the database.
//
// This package runs no commands and knows nothing of IRC; it only reads
// and writes its tables.
package pgstate
