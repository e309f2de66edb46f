// Package journal holds the deployment engine's shared on-disk state: the
// locks that allow one deploy per service at a time, and the per-deploy
// journal that records every step so a deploy can be followed live, read
// afterwards, and recovered after a crash.
//
// Everything lives under one directory, the configured deploy.journal_dir,
// shared by every deploybot process on the deployment host (the bot and
// any number of command-line runs):
//
//	<dir>/locks/<service>.lock     flock(2) target of the deploy lock; never removed
//	<dir>/locks/<service>.holder   who holds the deploy lock (JSON Holder)
//	<dir>/locks/<service>.held     the manual lock (!lock / deploybot lock), JSON Holder
//	<dir>/<service>/<id>.jsonl     one journal per deploy, one JSON Event per line
//
// The directory must be on a local file system (flock(2) and hard links are
// relied upon). Every process that deploys needs write access to it;
// directories are created 0775 and files 0664, less the umask, so a shared
// group works.
//
// # Locks
//
// The deploy lock ([AcquireDeploy]) is held for as long as a deploy runs.
// It is an exclusive flock(2) on <service>.lock, so the kernel releases it
// when the holding process dies, however it dies: a crash never leaves a
// service locked. The holder's [Holder] is written next to it so that a
// refused caller gets a [*LockedError] naming who, since when and why.
//
// The manual lock ([Lock], [Unlock], [Held]) is a file that persists until
// it is explicitly removed; it survives restarts on purpose. A deploy is
// refused while a manual lock is held, whoever asks: there is no force
// option, the lock must be released with [Unlock] first. [Lock] does not
// look at the deploy lock, so a deploy may take a manual lock before it
// releases its deploy lock (as !revert does: "reverted by <nick>"), leaving
// no window in which another deploy could start.
//
// Service names are checked by [ValidService] before they are used in a
// path; deploy ids by [ParseID].
//
// # Journal
//
// A deploy has an id such as 20261126-014512-citoid-3f9a ([NewID]: UTC
// time, service, random suffix; ids sort by time). Its journal is created
// by [Create] with a first "started" event carrying the deploy's [Meta],
// and appears atomically with that first line. Each [Writer.Append] writes
// one whole line with a single write(2) on an O_APPEND descriptor and
// returns only once an fsync begun after that write has succeeded, so an
// event that was acknowledged survives a crash; Appends from concurrent
// hosts share fsyncs (group commit: one fsync makes every line written
// before it durable). The file is never rewritten. After a "finished" event nothing more
// is appended.
//
// The engine is expected to:
//
//  1. make an id with [NewID];
//  2. take the deploy lock with [AcquireDeploy], Holder.DeployID set to
//     that id (liveness checks rely on it);
//  3. [Create] the journal, [Writer.Append] events, end with a
//     [TypeFinished] event, [Writer.Close];
//  4. release the lock.
//
// After a crash, [Unfinished] lists the deploys that have no finished event
// and whose process is gone (the deploy lock is not held for them), each
// with the last known state of every host ([HostState]). The engine then
// either takes the deploy lock again with the same DeployID and continues
// with [Reopen] (to resume or roll back), or gives up with [MarkEnded].
//
// [Read], [List], [ListN] and [Latest] read journals; [Follow] tails one
// until it finishes; [Format], [FormatSummary] and [FormatState] render
// them for people (deploybot deploy-log). A journal whose last line was
// torn by a crash mid-write is still readable: the torn bytes are reported
// and ignored (they were never acknowledged).
//
// This package runs no commands: no SSH, no git, no IRC. It only reads and
// writes files under the journal directory.
package journal
