package remote

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Kinds of operation, as recorded in the operation file.
const (
	OpDeploy   = "deploy"
	OpFinalize = "finalize"
	OpRollback = "rollback"
)

// ExitBusy is the exit status of a deploy, finalize or rollback script
// that refused to start because the operation file names an operation
// whose process group is alive — another script's, whatever its op-id
// (EX_TEMPFAIL); Deploy, Finalize and Rollback report it as a *BusyError,
// as does Stop when the file names another live operation than the one
// to stop.
const ExitBusy = 75

// OpFile is the name of the operation file in <target_dir>-cache.
const OpFile = ".deploybot-op"

// stopKillWait is how long the stop script waits for a process group to
// be gone after KILL (scripts/stop.sh: 50 tenths of a second).
const stopKillWait = 5 * time.Second

// BusyError is a script that refused to start, or a Stop that refused to
// stop anything, because another deploybot operation still runs on the
// service there (its process group is alive): the fields are that
// operation's, as its operation file records it.
type BusyError struct {
	Host  string
	OpID  string
	PGID  int
	Kind  string    // OpDeploy, OpFinalize or OpRollback
	Since time.Time // when it started (second resolution)
}

func (e *BusyError) Error() string {
	msg := fmt.Sprintf("%s: another deploybot operation is running on this host: %s %s (process group %d)", e.Host, e.Kind, e.OpID, e.PGID)
	if !e.Since.IsZero() {
		msg += " since " + sinceString(e.Since, time.Now())
	}
	return msg
}

// sinceString formats t in UTC: the time of day, with the date when t is
// not within the last 20 hours.
func sinceString(t, now time.Time) string {
	t = t.UTC()
	if d := now.Sub(t); d > 20*time.Hour || d < -time.Hour {
		return t.Format("2006-01-02 15:04:05 UTC")
	}
	return t.Format("15:04:05 UTC")
}

// OpState is what the operation file of a service on a target says (Op).
type OpState struct {
	// Found is set when the file exists and names an operation; the
	// other fields are then its.
	Found bool
	OpID  string
	PGID  int
	Kind  string
	Since time.Time
	// Alive is set when the operation's process group is alive (and its
	// leader, if alive, still runs that operation's script: a group
	// number reused by an unrelated process is not the operation's).
	// Found and not Alive: a stale file, which the next operation
	// replaces.
	Alive bool
}

// StopResult is what Stop found and did.
type StopResult struct {
	// Found is set when the operation file named the operation to stop
	// (any, for an empty opID) and its process group was alive: Stop
	// stopped it.
	Found bool
	// OpID, PGID, Kind and Since are what the operation file named, if
	// anything: also a stale record (which Stop removed), or the other
	// live operation of a *BusyError.
	OpID  string
	PGID  int
	Kind  string
	Since time.Time
	// Signal is the last signal sent to the process group: "" (none),
	// "TERM" or "KILL".
	Signal string
	// Waited is how long Stop waited for the group to be gone after the
	// first signal, measured on the target (10 ms resolution).
	Waited time.Duration
}

// OpScript returns the script Op runs (scripts/opstate.sh).
func (t Target) OpScript() (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	return prelude(shellVar{"DEPLOY_DIR", t.Dir}) + commonSh + opSh + opstateSh, nil
}

// Op reads the operation file of t's service on the target and whether
// the process group it names is alive, changing nothing; one session.
func (c *Conn) Op(ctx context.Context, t Target) (OpState, error) {
	script, err := t.OpScript()
	if err != nil {
		return OpState{}, err
	}
	res, p, err := c.run(ctx, script, 0, newParser())
	if err != nil {
		return OpState{}, err
	}
	if res.ExitCode != 0 {
		return OpState{}, &StageError{Host: c.host.String(), Stage: "op", ExitCode: res.ExitCode, Output: res.Output}
	}
	_, _, marks, _ := p.result()
	st, ok := parseOpMarker(marks)
	if !ok {
		return OpState{}, fmt.Errorf("%s: no operation marker in the output: %s", c.host, lastLine(res.Output))
	}
	return st, nil
}

// StopScript returns the script Stop runs (scripts/stop.sh).
func (t Target) StopScript(opID string, grace time.Duration) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	if opID != "" && !opIDRe.MatchString(opID) {
		return "", fmt.Errorf("invalid operation id %q: want 1 to 80 letters, digits and ._-", clip(opID, 100))
	}
	return prelude(
		shellVar{"DEPLOY_DIR", t.Dir},
		shellVar{"DEPLOY_STOP_OP", opID},
		shellVar{"DEPLOY_STOP_GRACE", strconv.FormatInt(max(grace, 0).Milliseconds(), 10)},
	) + commonSh + opSh + stopSh, nil
}

// Stop stops the operation recorded for t's service on the target, if it
// is opID (or any, for opID ""): when the operation file names it and its
// process group is alive, the group gets TERM, then, if it is not gone
// within grace, KILL; Stop returns when it is gone (kill -0 fails), with
// the file removed. A stale file (its group is dead) is removed. One
// session; it runs at most grace + 15 s.
//
// The error is a *BusyError when the file names another live operation
// (nothing is signalled), a *StageError of stage "stop" when the group is
// still alive 5 s after KILL (the file is kept), or a *HostError.
func (c *Conn) Stop(ctx context.Context, t Target, opID string, grace time.Duration) (StopResult, error) {
	script, err := t.StopScript(opID, grace)
	if err != nil {
		return StopResult{}, err
	}
	res, p, err := c.run(ctx, script, max(grace, 0)+stopKillWait+10*time.Second, newParser())
	_, _, marks, _ := p.result()
	st, _ := parseOpMarker(marks)
	sr := StopResult{OpID: st.OpID, PGID: st.PGID, Kind: st.Kind, Since: st.Since}
	sig, waited, gone, stopOK := parseStopMarker(marks["stop"])
	if stopOK {
		sr.Signal, sr.Waited = sig, waited
		sr.Found = sig != ""
	}
	if err != nil {
		return sr, err
	}
	if be := c.busyError(res, marks); be != nil {
		return sr, be
	}
	if res.ExitCode != 0 || !stopOK || !gone {
		code := res.ExitCode
		if code == 0 {
			code = -1
		}
		return sr, &StageError{Host: c.host.String(), Stage: "stop", ExitCode: code, Output: res.Output}
	}
	return sr, nil
}

// busyError returns the *BusyError of a script that ended with ExitBusy
// after printing the busy marker; nil otherwise.
func (c *Conn) busyError(res Result, marks map[string]string) *BusyError {
	v, ok := marks["busy"]
	if !ok || res.ExitCode != ExitBusy {
		return nil
	}
	id, pg, kind, since, ok := parseOpFields(strings.Fields(v))
	if !ok {
		return nil
	}
	return &BusyError{Host: c.host.String(), OpID: id, PGID: pg, Kind: kind, Since: since}
}

// parseOpFields parses "<op-id> <pgid> <kind> <unix-time>", with the
// checks op.sh makes.
func parseOpFields(f []string) (id string, pgid int, kind string, since time.Time, ok bool) {
	if len(f) != 4 || !opIDRe.MatchString(f[0]) {
		return "", 0, "", time.Time{}, false
	}
	pgid, err := strconv.Atoi(f[1])
	if err != nil || pgid < 2 || strings.HasPrefix(f[1], "0") || strings.HasPrefix(f[1], "+") {
		return "", 0, "", time.Time{}, false
	}
	if f[2] == "" || strings.Trim(f[2], "abcdefghijklmnopqrstuvwxyz") != "" {
		return "", 0, "", time.Time{}, false
	}
	secs, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil || secs < 0 || strings.HasPrefix(f[3], "+") {
		return "", 0, "", time.Time{}, false
	}
	return f[0], pgid, f[2], time.Unix(secs, 0), true
}

// parseOpMarker parses the "op" marker: "none", or the operation's four
// fields and "alive" or "dead".
func parseOpMarker(marks map[string]string) (OpState, bool) {
	v, ok := marks["op"]
	if !ok {
		return OpState{}, false
	}
	f := strings.Fields(v)
	if len(f) == 1 && f[0] == "none" {
		return OpState{}, true
	}
	if len(f) != 5 || (f[4] != "alive" && f[4] != "dead") {
		return OpState{}, false
	}
	id, pg, kind, since, ok := parseOpFields(f[:4])
	if !ok {
		return OpState{}, false
	}
	return OpState{Found: true, OpID: id, PGID: pg, Kind: kind, Since: since, Alive: f[4] == "alive"}, true
}

// parseStopMarker parses the "stop" marker: "<none|TERM|KILL>
// <milliseconds> <gone|alive>". The signal "none" is returned as "".
func parseStopMarker(v string) (signal string, waited time.Duration, gone, ok bool) {
	f := strings.Fields(v)
	if len(f) != 3 || (f[2] != "gone" && f[2] != "alive") {
		return "", 0, false, false
	}
	switch f[0] {
	case "none":
	case "TERM", "KILL":
		signal = f[0]
	default:
		return "", 0, false, false
	}
	ms, err := strconv.ParseInt(f[1], 10, 64)
	if err != nil || ms < 0 {
		return "", 0, false, false
	}
	return signal, time.Duration(ms) * time.Millisecond, f[2] == "gone", true
}
