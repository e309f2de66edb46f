package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
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

// ErrFinished is returned by Append after a finished event, and by Reopen
// for a finished journal.
var ErrFinished = errors.New("deploy journal is finished")

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("deploy journal is closed")

// Writer appends events to one deploy's journal. It is safe for concurrent
// use.
type Writer struct {
	mu       sync.Mutex
	f        *os.File
	path     string
	meta     Meta
	size     int64
	finished bool
	closed   bool
	broken   error
}

// Create creates the journal of a new deploy of service under dir and
// writes its started event. meta.Service is set to service (a different
// non-empty value is an error); meta.ID is made with NewID when empty, and
// must belong to service otherwise; Started, PID and Host are filled in
// when zero. The journal appears atomically, with its first line, and
// Create fails if it exists already.
//
// The caller should hold the deploy lock of service, with Holder.DeployID
// set to meta.ID.
func Create(dir, service string, meta Meta) (*Writer, error) {
	if err := ValidService(service); err != nil {
		return nil, err
	}
	if meta.Service != "" && meta.Service != service {
		return nil, fmt.Errorf("create journal: meta is for service %s, not %s", quoteShort(meta.Service), service)
	}
	meta.Service = service
	if meta.Who == "" {
		return nil, errors.New("create journal: meta.Who is required")
	}
	if meta.Started.IsZero() {
		meta.Started = time.Now()
	}
	meta.Started = meta.Started.UTC()
	if meta.ID == "" {
		id, err := NewID(service, meta.Started)
		if err != nil {
			return nil, err
		}
		meta.ID = id
	}
	path, err := JournalPath(dir, service, meta.ID)
	if err != nil {
		return nil, err
	}
	meta.Version = Version
	if meta.PID == 0 {
		meta.PID = os.Getpid()
	}
	if meta.Host == "" {
		meta.Host = hostname()
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	m := meta
	line, err := encodeLine(Event{Time: meta.Started, Type: TypeStarted, Level: LevelInfo, Meta: &m})
	if err != nil {
		return nil, err
	}
	if err := createFile(path, line); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create journal: deploy %s already has a journal (%s)", meta.ID, path)
		}
		return nil, fmt.Errorf("create journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	return &Writer{f: f, path: path, meta: meta, size: int64(len(line))}, nil
}

// Reopen opens the journal of an interrupted deploy for appending, to
// resume it or roll it back, and returns it read. lock must be the held
// deploy lock of the journal's service, taken with Holder.DeployID equal
// to the deploy's id: that is what guarantees a single writer. A torn last
// line (a write that never completed, so was never acknowledged) is cut
// off first; this is the only time a journal is shortened. A finished
// journal is refused with ErrFinished.
func Reopen(path string, lock *DeployLock) (*Writer, *Deploy, error) {
	_, service, id, ok := splitJournalPath(path)
	if !ok {
		return nil, nil, fmt.Errorf("reopen %s: not a journal path (<dir>/<service>/<id>.jsonl)", path)
	}
	if lock == nil || !lock.held() || lock.service != service || lock.holder.DeployID != id {
		return nil, nil, fmt.Errorf("reopen %s: the deploy lock of %s must be held for deploy %s", path, service, id)
	}
	d, err := Read(path)
	if err != nil {
		return nil, nil, err
	}
	if d.Finished {
		return nil, nil, fmt.Errorf("reopen %s: %w (%s)", path, ErrFinished, d.Outcome)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reopen: %w", err)
	}
	if d.Torn > 0 {
		if err := f.Truncate(d.Size); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reopen %s: cut torn last line: %w", path, err)
		}
	}
	return &Writer{f: f, path: path, meta: d.Meta, size: d.Size}, d, nil
}

// MarkEnded gives up an interrupted deploy: it takes the deploy lock (so
// it is refused with a *LockedError if the deploy is in fact running),
// appends a finished event with Outcome "ended", who and reason, and
// releases the lock.
func MarkEnded(path, who, reason string) error {
	dir, service, id, ok := splitJournalPath(path)
	if !ok {
		return fmt.Errorf("mark ended %s: not a journal path (<dir>/<service>/<id>.jsonl)", path)
	}
	if who == "" {
		return errors.New("mark ended: who is required")
	}
	lock, err := AcquireDeploy(dir, service, Holder{Who: who, Why: "marking deploy " + id + " ended", DeployID: id})
	if err != nil {
		return err
	}
	defer lock.Release()
	w, d, err := Reopen(path, lock)
	if err != nil {
		return err
	}
	ev := Event{Type: TypeFinished, Outcome: OutcomeEnded, Who: who, Message: reason,
		Duration: time.Since(d.Meta.Started).Round(time.Second)}
	if err := w.Append(ev); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Path returns the journal's path.
func (w *Writer) Path() string { return w.path }

// Meta returns the deploy's Meta as written.
func (w *Writer) Meta() Meta { return w.meta }

// Append writes ev as one line and fsyncs the journal before returning.
// Time and Level are filled in when empty; long texts are cut (MaxOutput,
// MaxText). Type must be one of the Type constants other than
// TypeStarted; a finished event needs a known Outcome and is the last one
// accepted. If the write fails part way, the partial line is cut off again;
// if fsync fails, the Writer refuses every later event (the state of the
// file is unknown).
func (w *Writer) Append(ev Event) error {
	if err := normalize(&ev); err != nil {
		return err
	}
	line, err := encodeLine(ev)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return ErrClosed
	case w.broken != nil:
		return w.broken
	case w.finished:
		return ErrFinished
	}
	n, err := w.f.Write(line)
	if err != nil {
		if n > 0 {
			if terr := w.f.Truncate(w.size); terr != nil {
				w.broken = fmt.Errorf("journal %s: partial line could not be removed: %v (after: %w)", w.path, terr, err)
				return w.broken
			}
		}
		return fmt.Errorf("journal %s: %w", w.path, err)
	}
	if err := w.f.Sync(); err != nil {
		w.broken = fmt.Errorf("journal %s: fsync: %w", w.path, err)
		return w.broken
	}
	w.size += int64(n)
	if ev.Type == TypeFinished {
		w.finished = true
	}
	return nil
}

// Finish appends the finished event: outcome, an optional error text, and
// the duration since the deploy started.
func (w *Writer) Finish(outcome Outcome, errText string) error {
	return w.Append(Event{Type: TypeFinished, Outcome: outcome, Err: errText,
		Duration: time.Since(w.meta.Started).Round(time.Millisecond)})
}

// Close closes the journal. Events appended so far are already durable.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	return w.f.Close()
}

func normalize(ev *Event) error {
	if !knownTypes[ev.Type] {
		return fmt.Errorf("journal: unknown event type %s", quoteShort(ev.Type))
	}
	if ev.Type == TypeStarted {
		return errors.New("journal: the started event is written by Create")
	}
	if ev.Type == TypeFinished && !knownOutcomes[ev.Outcome] {
		return fmt.Errorf("journal: finished event with outcome %s: want success, noop, failed, aborted, rolled_back or ended", quoteShort(string(ev.Outcome)))
	}
	if ev.Level == "" {
		ev.Level = DefaultLevel(*ev)
	} else if _, ok := levelRank[ev.Level]; !ok {
		return fmt.Errorf("journal: unknown level %s: want debug, info, warn or error", quoteShort(ev.Level))
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	ev.Meta = nil
	ev.Output = tail(ev.Output, MaxOutput)
	for _, s := range []*string{&ev.Command, &ev.Err, &ev.Message, &ev.Prompt, &ev.Answer} {
		*s = head(*s, MaxText)
	}
	if ev.Check != nil {
		c := *ev.Check
		c.Output = tail(c.Output, MaxOutput)
		c.Body = head(c.Body, MaxText)
		c.Err = head(c.Err, MaxText)
		ev.Check = &c
	}
	return nil
}

// encodeLine is ev as one JSON line. encoding/json escapes control
// characters inside strings, so the only newline is the last byte.
func encodeLine(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("journal: encode event: %w", err)
	}
	return append(b, '\n'), nil
}

// tail keeps the last n bytes of s, starting on a character boundary, with
// "…" in front when something was cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}

// head keeps the first n bytes of s, ending on a character boundary, with
// "…" after when something was cut.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
