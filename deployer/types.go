package deployer

import (
	"context"
	"time"

	"deploybot/deployer/gitrepo"
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
	// Source is where the deploy was asked for: "cli", "irc".
	Source string
	// Force redeploys a revision that is already live.
	Force bool
	// DryRun: Deploy only returns the plan (see Engine.Plan).
	DryRun bool
}

// EventType is the kind of an Event.
type EventType string

// Event types.
const (
	EventStarted       EventType = "started"        // Who, From, To, Commits, Backwards, Message, Total
	EventGroupStarted  EventType = "group_started"  // Group, Total
	EventHostDone      EventType = "host_done"      // Group, Host: every stage and check passed
	EventHostFailed    EventType = "host_failed"    // Group, Host, Reason, Checks (the failed ones)
	EventCheckResult   EventType = "check"          // Group, Host, Checks (one)
	EventGroupFinished EventType = "group_finished" // Group, Total, OK, Failed, Outcome, Duration
	EventPrompt        EventType = "prompt"         // Prompt
	EventAnswer        EventType = "answer"         // Prompt, Answer
	EventRollback      EventType = "rollback"       // Group, Total, OK, Failed: one group rolled back
	EventFinished      EventType = "finished"       // Outcome, Reason, Total, OK, Failed, Duration
)

// Outcomes of a deploy (Result.Outcome, Event.Outcome of EventFinished).
const (
	OutcomeSuccess     = "success"
	OutcomeNoop        = "noop"        // the revision was already live everywhere
	OutcomeFailed      = "failed"      // stopped, and the rollback did not restore every host
	OutcomeAborted     = "aborted"     // stopped by the context (process shutting down)
	OutcomeRolledBack  = "rolled_back" // stopped and rolled back
	OutcomeEnded       = "ended"       // an interrupted deploy marked ended (Recover)
	OutcomeInterrupted = "interrupted" // the context ended mid-deploy: recover it later
)

// Event is something observers may report. Only the fields that matter for
// its Type are set.
type Event struct {
	Type     EventType
	Time     time.Time
	Service  string
	DeployID string
	Who      string
	Source   string
	Group    string
	Host     string
	// Counts of hosts: of the group (group events) or the deploy.
	Total, OK, Failed int
	// Reason is why a host failed, or why the deploy did not succeed:
	// one line.
	Reason string
	// Checks are the check results that matter: the failed ones of a
	// failed host, the one of a check event.
	Checks []remote.CheckResult
	// From and To: the revision deployed before and the one deployed.
	From, To string
	Commits  []gitrepo.Commit
	// Backwards is set on EventStarted when To is an ancestor of From (a
	// revert): Commits are then the commits taken away.
	Backwards bool
	Message   string
	Prompt    *Prompt
	Answer    Answer
	Outcome   string
	Duration  time.Duration
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

// Prompter asks the operator. Ask should return by p.Deadline; the engine
// also stops waiting then and takes p.Default. An error means p.Default.
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
	Outcome string
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
