package deployer

import (
	"context"
	"time"

	"deploybot/deployer/gitrepo"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// Request asks for a deploy.
type Request struct {
	// Service is the configured service name.
	Service string
	// Rev is a sha1 of 7 to 40 hex digits, or "" for the upstream head.
	Rev string
	// Message says why (the SAL line of the deploy).
	Message string
	// Who is the operator: an IRC account or a Unix user. Required.
	Who string
	// Nick is the IRC nick the operator used ("" from the shell). It is recorded beside Who (journal, locks,
	// events) so that one person is shown as one name (journal.Person).
	Nick string
	// Source is where the deploy was asked for: "cli", "irc".
	Source string
	// Force redeploys a revision that is already live.
	Force bool
	// Revert deploys an earlier revision: Rev, or when Rev is "" the last
	// revision that finished a successful deploy before the live one.
	// Once the deploy has run (whatever its outcome, unless interrupted)
	// the service is locked "reverted by <Who>" before the deploy lock is
	// let go, so no other deploy slips in between.
	Revert bool

	// stale: see run.stale (set by Resume).
	stale map[string]string
}

// EventType is the kind of an Event.
type EventType string

// Event types.
const (
	EventStarted       EventType = "started"        // Who, From, To, Commits, Backwards, Message, Total
	EventGroupStarted  EventType = "group_started"  // Group, Total
	EventHostStarted   EventType = "host_started"   // Group, Host: the host's deploy begins (it is in flight)
	EventHostDone      EventType = "host_done"      // Group, Host: every stage and check passed
	EventHostFailed    EventType = "host_failed"    // Group, Host, Reason, Checks (the failed ones)
	EventCheckResult   EventType = "check"          // Group, Host, Checks (one)
	EventGroupFinished EventType = "group_finished" // Group, Total, OK, Failed, Outcome, Duration
	EventPrompt        EventType = "prompt"         // Prompt
	EventAnswer        EventType = "answer"         // Prompt, Answer
	EventRollback      EventType = "rollback"       // Group, Total, OK, Failed: one group rolled back
	EventFinished      EventType = "finished"       // Outcome, Reason, Total, OK, Failed, Duration
	EventStopped       EventType = "stopped"        // Group, Host, Message: what a dead deploy left running there was stopped
	EventStage         EventType = "stage"          // Group, Host, Stage, Duration: one stage of a host's deploy session ran
)

// Causes of a host failure (Event.Cause of EventHostFailed) besides the
// remote.Stage* names (the stage that failed: fetch, checkout, promote,
// restart, finalize, rollback) and the remote.Kind* ones (the connection
// failed: unreachable, auth failed, …). A small fixed set, for counting.
const (
	CauseCheck = "check" // a check failed after the restart
	CauseStale = "stale" // what a dead deploy left running could not be stopped
	CauseOther = "other"
)

// Outcome is how a deploy or a group ended: one vocabulary for the
// engine, the journal and every front end.
type Outcome = journal.Outcome

// Outcomes of a deploy (Result.Outcome, Event.Outcome of EventFinished and
// EventGroupFinished).
const (
	OutcomeSuccess     = journal.OutcomeSuccess
	OutcomeNoop        = journal.OutcomeNoop        // the revision was already live everywhere
	OutcomeFailed      = journal.OutcomeFailed      // stopped, and the rollback did not restore every host
	OutcomeAborted     = journal.OutcomeAborted     // a group stopped by Abort
	OutcomeRolledBack  = journal.OutcomeRolledBack  // stopped and rolled back
	OutcomeEnded       = journal.OutcomeEnded       // an interrupted deploy marked ended (Recover)
	OutcomeInterrupted = journal.OutcomeInterrupted // the context ended mid-deploy: recover it later
)

// Event is something observers may report. Only the fields that matter for
// its Type are set.
type Event struct {
	Type     EventType
	Time     time.Time
	Service  string
	DeployID string
	Who      string
	// Nick is the operator's IRC nick beside Who (EventStarted).
	Nick   string
	Source string
	Group  string
	Host   string
	// Counts of hosts: of the group (group events) or the deploy.
	Total, OK, Failed int
	// Reason is why a host failed, or why the deploy did not succeed:
	// one line.
	Reason string
	// Cause is why a host failed (EventHostFailed) in one word from a
	// small fixed set: see CauseCheck.
	Cause string
	// Stage is the remote.Stage* name of an EventStage.
	Stage string
	// Checks are the check results that matter: the failed ones of a
	// failed host, the one of a check event.
	Checks []remote.CheckResult
	// From and To: the revision deployed before and the one deployed.
	From, To string
	Commits  []gitrepo.Commit
	// Backwards is set on EventStarted when To is an ancestor of From (a
	// revert): Commits are then the commits taken away.
	Backwards bool
	// More is set on EventStarted of a first deploy (From "") when the
	// revision's history holds older commits than Commits lists.
	More bool
	// Recovery is set on the events of an interrupted deploy being rolled
	// back (Engine.Recover): From is the revision it was deploying, To the
	// one it restores.
	Recovery bool
	Message  string
	Prompt   *Prompt
	Answer   Answer
	Outcome  Outcome
	Duration time.Duration
}

// Observer receives a deploy's events, in order, from the deploy's
// goroutine(s): Observe must be safe for concurrent use and return quickly.
type Observer interface {
	Observe(Event)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(Event)

// Observe calls f.
func (f ObserverFunc) Observe(ev Event) { f(ev) }

// Answer is the operator's answer to a Prompt.
type Answer string

// Answers.
const (
	Rollback Answer = "rollback"
	Continue Answer = "continue"
)

// Who of an EventAnswer (and of the journal's answer event) when no
// operator answered.
const (
	AnsweredByTimeout  = "timeout"  // the deadline passed: the default was taken
	AnsweredByDefault  = "default"  // the Prompter gave up: the default was taken
	AnsweredByCanceled = "canceled" // the deploy's context ended while asking
	// AnsweredByMissed: the deadline passed while no process ran the
	// deploy (it was interrupted): the default was taken at once.
	AnsweredByMissed = "missed"
)

// Prompt kinds.
const (
	PromptCanaryFailed = "canary_failed"
	PromptGroupFailed  = "group_failed"
	PromptPause        = "pause"
	PromptAborted      = "aborted"
)

// Prompt is a question to the operator.
type Prompt struct {
	Service  string
	DeployID string
	// Kind is one of the Prompt* constants.
	Kind string
	// Group is the group that just finished (or, for a pause, the next
	// one).
	Group string
	Text  string
	// Default is the answer taken when none comes by Deadline.
	Default  Answer
	Deadline time.Time
}

// Prompter asks the operator at a terminal. Ask should return by
// p.Deadline; the engine also stops waiting then and takes p.Default. An
// error means the prompter gives up (nobody at the terminal): the default
// is taken at once. Whichever comes first of the Prompter's answer and
// one given through Engine.Answer counts. A deploy needs no Prompter: the
// bot answers its prompts with Engine.Answer.
type Prompter interface {
	Ask(ctx context.Context, p Prompt) (Answer, error)
}

// HostFailure is a host that failed, and why.
type HostFailure struct {
	Host   string
	Group  string
	Reason string
}

// HostRev is a host and a revision.
type HostRev struct {
	Host string
	Rev  string
}

// Result is how a deploy ended.
type Result struct {
	ID      string
	Service string
	Outcome Outcome
	From    string
	To      string
	// Hosts is the number of hosts of the service; OK how many ended on
	// To (finalized).
	Hosts, OK int
	// Failed are the hosts that failed, with a one-line reason each.
	Failed []HostFailure
	// RolledBack are the hosts rolled back, with the revision restored.
	RolledBack []HostRev
	// Reason says why the deploy did not succeed.
	Reason   string
	Duration time.Duration
	// Stopped counts the hosts where an operation a dead deploy left
	// running was stopped before this one acted there.
	Stopped int
	// Locked is the manual lock a revert took (Request.Revert); nil
	// otherwise, or when taking it failed (LockErr says why).
	Locked  *Holder
	LockErr error
}

// Plan is what a deploy would do.
type Plan struct {
	Service string
	From    string // the revision deployed last ("" if none)
	To      string
	Range   gitrepo.Range
	// Groups in running order, canary first (when the service has one).
	Groups []PlanGroup
}

// PlanGroup is one group of a Plan.
type PlanGroup struct {
	Name         string
	Hosts        []string
	Parallel     int
	FailureLimit int // hosts allowed to fail
	Pause        bool
}
