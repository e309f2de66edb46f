// Package deployer is the deployment engine: it updates a service's deploy
// repository, ships the revision to the canary and then to each group of
// targets over SSH, restarts, checks, finalizes or rolls back, and keeps a
// journal of every step.
//
// It knows nothing of IRC or of the Server Admin Log: it reports through
// events (Observer) and asks questions through a small prompt interface
// (Prompter), so the bot answers in a channel and the command line on a
// terminal.
//
// What lives here:
//
//   - Engine.Deploy: the whole deploy of one service. The revision is
//     checked (gitrepo.ValidateRev) before anything runs; then the manual
//     lock and the deploy lock (journal.AcquireDeploy, one deploy per
//     service across every process), the deploy repository is updated and
//     the revision resolved, the repository is served read-only to the
//     targets (Engine.Serve, or the server already running on deploy.serve
//     in another process), the journal is created, and one SSH connection
//     is dialed per host and reused for every step: the first group's
//     hosts first, alone, then the others in the background while the
//     canary deploys, so the time to the canary's first stage does not grow
//     with the fleet. A revision already live and done on every host is a
//     no-op unless Request.Force is set: when the journal says it may be
//     (this revision, or nothing, was deployed last), every host is dialed
//     and asked before the journal is created or the deploy announced, so a
//     no-op leaves no journal and emits only its finished event.
//   - Groups: the canary first, then each configured group in order, at
//     most Group.Parallel hosts at a time. On each host: one deploy session
//     (fetch, checkout, promote, restart), then the port check and every
//     configured check. A failed canary, a group with more failed hosts than
//     its failure_limit allows, an Abort, and a group with pause: true stop
//     and ask (Prompter); no answer within the service's prompt_timeout is
//     Rollback. Rollback covers every host the deploy touched, newest group
//     first, re-checks them, and reports the revision each was restored to.
//     Each host is finalized as soon as it passed (a second session on its
//     connection), so no final pass over the fleet holds the deploy; a
//     rollback undoes that done mark (remote.Target.Undo). A forced deploy,
//     one of the revision deployed last, or keep_revs 1 finalizes every
//     successful host after the last group instead: a host's done
//     revision could then already be the one deployed.
//   - Events (Observer): started, group started/finished with counts, host
//     failed with a one-line reason, check results, prompts and answers,
//     rollback per group, and the outcome with the duration; few enough that
//     a chat front end can post one line per group.
//   - The journal (package journal): every stage, command, check, prompt,
//     answer and outcome. Engine.Unfinished lists the deploys whose process
//     died, with the last known state of every host; Engine.Recover rolls
//     one back or marks it ended.
//   - Engine.Plan: what a deploy would do (revision, commit range, hosts per
//     group) without touching any target.
//
// Timeouts: every dial (ssh.connect_timeout), deploy session, finalize and
// rollback (ssh.command_timeout), check (its timeout, port_timeout) and
// prompt (prompt_timeout) is bounded, so a hung host is a failed host and
// never a hung deploy.
package deployer
