package journal

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event types. A journal starts with TypeStarted (written by Create) and, if
// the deploy ended, ends with TypeFinished.
const (
	TypeStarted        = "started"          // the deploy began; carries Meta
	TypeGroupStarted   = "group_started"    // Group begins (Message: free text, e.g. "10 hosts")
	TypeStageStarted   = "stage_started"    // Host begins Stage (Command)
	TypeStage          = "stage"            // Host finished Stage: Command, ExitCode, Duration, Output, Err; Rev for promote/rollback
	TypeCheck          = "check"            // a port or health check result on Host (Check)
	TypeHostFailed     = "host_failed"      // Host counts as failed (Err)
	TypeHostDone       = "host_done"        // Host finished every stage of the group (Rev)
	TypeGroupFinished  = "group_finished"   // Group ended (Outcome, Message e.g. "10/10 ok")
	TypePrompt         = "prompt"           // a question to the operator (Prompt)
	TypeAnswer         = "answer"           // its answer (Answer, Who: the operator who answered, or AnsweredBy*)
	TypeRolledBackHost = "rolled_back_host" // Host was rolled back to Rev
	TypeNote           = "note"             // free text (Message), e.g. "pulled deploy repo"
	TypeResumed        = "resumed"          // an interrupted deploy was taken up again (Who, Message)
	TypeFinished       = "finished"         // the deploy ended (Outcome, Err, Duration, Who)
)

var knownTypes = map[string]bool{
	TypeStarted: true, TypeGroupStarted: true, TypeStageStarted: true, TypeStage: true,
	TypeCheck: true, TypeHostFailed: true, TypeHostDone: true, TypeGroupFinished: true,
	TypePrompt: true, TypeAnswer: true, TypeRolledBackHost: true, TypeNote: true,
	TypeResumed: true, TypeFinished: true,
}

// Outcome is how a deploy, or one group of it, ended. It is the one
// vocabulary of outcomes: the engine's results, the journal's finished
// events and the announcements all use these values.
type Outcome string

// Outcomes of a finished deploy (Event.Outcome of TypeFinished; also used
// by TypeGroupFinished).
const (
	OutcomeSuccess    Outcome = "success"
	OutcomeNoop       Outcome = "noop" // the revision was already live on every host
	OutcomeFailed     Outcome = "failed"
	OutcomeAborted    Outcome = "aborted"
	OutcomeRolledBack Outcome = "rolled_back"
	OutcomeEnded      Outcome = "ended" // marked ended after a crash (MarkEnded)
	// OutcomeInterrupted is never written: it is the engine's result for a
	// deploy its context ended, whose journal stays unfinished.
	OutcomeInterrupted Outcome = "interrupted"
)

var knownOutcomes = map[Outcome]bool{
	OutcomeSuccess: true, OutcomeNoop: true, OutcomeFailed: true, OutcomeAborted: true,
	OutcomeRolledBack: true, OutcomeEnded: true,
}

// Good reports whether the deploy left every host on its revision: a
// success or a no-op.
func (o Outcome) Good() bool { return o == OutcomeSuccess || o == OutcomeNoop }

// Levels, lowest first.
const (
	LevelDebug = "debug"
	LevelInfo  = "info"
	LevelWarn  = "warn"
	LevelError = "error"
)

// Stage names of the engine (SPEC §4). The journal gives meaning to
// StagePromote and StageRollback (they move a host's revision); any other
// stage name is recorded as given.
const (
	StageFetch    = "fetch"
	StageConfig   = "config"
	StagePromote  = "promote"
	StageCheck    = "check"
	StageFinalize = "finalize"
	StageRollback = "rollback"
)

// Size limits applied by Append, so that a line stays small: outputs keep
// their tail, other texts their head.
const (
	MaxOutput = 8 << 10 // Output, Check.Output: last bytes kept
	MaxText   = 4 << 10 // Command, Err, Message, Prompt, Answer, Check.Body, Check.Err: first bytes kept
)

// Version is the journal format version written in Meta.Version.
const Version = 1

// Meta describes a deploy. It is the payload of the first event.
type Meta struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Service string `json:"service"`
	// Who started the deploy (IRC account or Unix user).
	Who string `json:"who"`
	// Nick is the IRC nick Who used ("" from the shell); see Person.
	Nick string `json:"nick,omitempty"`
	// Rev is the revision being deployed; FromRev the one deployed before.
	Rev     string `json:"rev"`
	FromRev string `json:"from_rev,omitempty"`
	Message string `json:"message,omitempty"`
	// Started is filled in (UTC) when zero.
	Started time.Time `json:"started"`
	// Hosts maps each group ("canary", "eqiad", …) to its hosts.
	Hosts map[string][]string `json:"hosts,omitempty"`
	// GroupOrder is the order the groups run in, canary first. Readers
	// fall back to sorted group names when it is empty.
	GroupOrder []string `json:"group_order,omitempty"`
	Force      bool     `json:"force,omitempty"`
	// Source is where the deploy was started: "irc", "cli", …
	Source string `json:"source,omitempty"`
	// PID and Host of the deploying process, filled in when zero.
	PID  int    `json:"pid,omitempty"`
	Host string `json:"host,omitempty"`
}

// Groups returns the group names in running order: GroupOrder, then any
// other group of Hosts in name order.
func (m Meta) Groups() []string {
	var out []string
	seen := map[string]bool{}
	for _, g := range m.GroupOrder {
		if !seen[g] {
			seen[g] = true
			out = append(out, g)
		}
	}
	var rest []string
	for g := range m.Hosts {
		if !seen[g] {
			rest = append(rest, g)
		}
	}
	slices.Sort(rest)
	return append(out, rest...)
}

// CheckRecord is the result of one port or health check.
type CheckRecord struct {
	Name string `json:"name"`
	// Kind is "port", "http" or "command".
	Kind string `json:"kind,omitempty"`
	// Target is what was checked: a port, "GET /_info", a command.
	Target   string        `json:"target,omitempty"`
	OK       bool          `json:"ok"`
	Status   int           `json:"status,omitempty"`  // HTTP status
	Latency  time.Duration `json:"latency,omitempty"` // nanoseconds in JSON
	Body     string        `json:"body,omitempty"`    // start of the HTTP body
	ExitCode *int          `json:"exit_code,omitempty"`
	Output   string        `json:"output,omitempty"` // tail of a command's output
	Err      string        `json:"err,omitempty"`
}

// Event is one line of a journal. Only the fields that matter for its Type
// are set.
type Event struct {
	// Time is filled in (UTC) by Append when zero.
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Level is "debug", "info", "warn" or "error"; Append fills it in
	// from DefaultLevel when empty.
	Level   string `json:"level,omitempty"`
	Group   string `json:"group,omitempty"`
	Host    string `json:"host,omitempty"`
	Stage   string `json:"stage,omitempty"`
	Command string `json:"command,omitempty"`
	// ExitCode of Command; nil when it did not run to completion (see Err).
	ExitCode *int `json:"exit_code,omitempty"`
	// Duration of the stage, check or deploy; nanoseconds in JSON.
	Duration time.Duration `json:"duration,omitempty"`
	// Output is the tail of the command's combined output.
	Output string       `json:"output,omitempty"`
	Check  *CheckRecord `json:"check,omitempty"`
	Prompt string       `json:"prompt,omitempty"`
	// Deadline of a prompt: when its default is taken without an answer.
	Deadline time.Time `json:"deadline,omitzero"`
	Answer   string    `json:"answer,omitempty"`
	Who      string    `json:"who,omitempty"`
	Rev      string    `json:"rev,omitempty"`
	Outcome  Outcome   `json:"outcome,omitempty"`
	Message  string    `json:"message,omitempty"`
	Err      string    `json:"err,omitempty"`
	// Meta is set on the TypeStarted event only.
	Meta *Meta `json:"meta,omitempty"`
}

// Code returns a pointer to n, for Event.ExitCode and CheckRecord.ExitCode.
func Code(n int) *int { return &n }

// Failed reports whether the event records a failure: a non-zero exit
// code, an error, a failed check, a failed host or group, or a deploy that
// did not succeed.
func (ev Event) Failed() bool {
	switch {
	case ev.ExitCode != nil && *ev.ExitCode != 0, ev.Err != "":
		return true
	case ev.Check != nil && !ev.Check.OK:
		return true
	case ev.Type == TypeHostFailed:
		return true
	case (ev.Type == TypeFinished || ev.Type == TypeGroupFinished) && ev.Outcome != "" && ev.Outcome != OutcomeSuccess:
		return true
	}
	return false
}

// DefaultLevel is the level of an event that does not set one.
func DefaultLevel(ev Event) string {
	switch ev.Type {
	case TypeStageStarted:
		return LevelDebug
	case TypeStage, TypeCheck:
		// A command or check that passed is detail: the summary and the
		// host's done line say it; a failed one is an error.
		if !ev.Failed() {
			return LevelDebug
		}
		return LevelError
	case TypeHostFailed:
		return LevelError
	case TypePrompt, TypeRolledBackHost, TypeResumed:
		return LevelWarn
	case TypeFinished, TypeGroupFinished:
		switch ev.Outcome {
		case "", OutcomeSuccess:
			if ev.Err != "" {
				return LevelError
			}
			return LevelInfo
		case OutcomeFailed:
			return LevelError
		default:
			return LevelWarn
		}
	}
	if ev.Failed() {
		return LevelError
	}
	return LevelInfo
}

var levelRank = map[string]int{LevelDebug: 0, LevelInfo: 1, LevelWarn: 2, LevelError: 3}

// ParseLevel checks a level name ("warning" is accepted for "warn"; ""
// means info).
func ParseLevel(s string) (string, error) {
	switch s = strings.ToLower(strings.TrimSpace(s)); s {
	case "":
		return LevelInfo, nil
	case "warning":
		return LevelWarn, nil
	}
	if _, ok := levelRank[s]; !ok {
		return "", fmt.Errorf("unknown level %s: want debug, info, warn or error", quoteShort(s))
	}
	return s, nil
}
