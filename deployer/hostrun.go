package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"deploybot/config"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// failHost counts host as failed, journals and reports it; it returns
// false, for the callers' convenience. cause is Event.Cause: the stage
// when one is given, else what the caller names.
func (r *run) failHost(group, host, stage, cause, reason string, checks []remote.CheckResult) bool {
	if stage != "" {
		cause = stage
	}
	reason = oneLine(reason)
	r.mu.Lock()
	r.failed = append(r.failed, HostFailure{Host: host, Group: group, Reason: reason})
	if h := r.hosts[host]; h != nil {
		h.failed, h.ok, h.inFlight = true, false, false
	}
	r.mu.Unlock()
	r.journal(journal.Event{Type: journal.TypeHostFailed, Group: group, Host: host, Stage: stage, Err: reason})
	r.emit(Event{Type: EventHostFailed, Group: group, Host: host, Reason: reason, Cause: cause, Checks: checks})
	return false
}

// deployHost deploys and checks one host; it reports whether it passed.
func (r *run) deployHost(ctx context.Context, group, host string) bool {
	r.emit(Event{Type: EventHostStarted, Group: group, Host: host})
	c, err := r.conn(ctx, host)
	if err != nil {
		return r.failHost(group, host, "", failureCause(err), hostReason(err), nil)
	}
	if err := r.stopStale(ctx, c, group, host); err != nil {
		return r.failHost(group, host, "", CauseStale, err.Error(), nil)
	}
	// One session runs fetch, checkout, promote and restart; their results
	// are journaled when it ends. A deploy interrupted meanwhile shows the
	// host "interrupted during deploy": its state is unknown.
	r.journal(journal.Event{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: stageDeploy,
		Command: fmt.Sprintf("deploy %s (fetch, checkout, promote, restart)", r.sha)})
	r.update(host, func(h *hostRun) { h.changed, h.inFlight = true, true })
	r.started()
	// A host that finalizes as soon as it passes keeps its deploy session
	// open for that (remote.Held): one session per host, not two. A
	// deploybot killed during a held finalize leaves the script running;
	// the recovery's Stop stops the script's process group, which the
	// service the restart started is not in (remote: "Process groups"),
	// and a !continue then finds the revision live (e2e/faults
	// TestBotKilledMidDeploy).
	var stages []remote.StageResult
	var held remote.Held
	if hh, ok := c.(holdingHost); ok && r.finalizesEarly() {
		stages, held, err = hh.DeployHeld(ctx, r.target, r.sha, r.force, r.e.commandTimeout())
	} else {
		stages, err = c.Deploy(ctx, r.target, r.sha, r.force, r.e.commandTimeout())
	}
	r.update(host, func(h *hostRun) { h.inFlight = false })
	for _, st := range stages {
		r.journalResult(r.stageEvent(group, host, st))
		r.emit(Event{Type: EventStage, Group: group, Host: host, Stage: st.Stage, Duration: st.Duration})
	}
	if err != nil {
		if len(stages) == 0 && untouched(err) {
			r.update(host, func(h *hostRun) { h.changed = false }) // nothing to roll back
		}
		return r.failHost(group, host, "", failureCause(err), stageReason(err), nil)
	}
	if bad := r.check(ctx, c, group, host, true); bad != nil {
		if held != nil {
			held.Release()
		}
		return r.failHost(group, host, "", CauseCheck, checkReason(*bad), []remote.CheckResult{*bad})
	}
	r.update(host, func(h *hostRun) { h.ok = true })
	r.journal(journal.Event{Type: journal.TypeHostDone, Group: group, Host: host, Rev: r.sha})
	r.emit(Event{Type: EventHostDone, Group: group, Host: host})
	if r.finalizesEarly() {
		return r.finalizeHost(ctx, host, held)
	}
	if held != nil {
		held.Release()
	}
	return true
}

// holdingHost is a Host whose deploy session can stay open after its
// stages, for the finalize stage once the host has passed its checks
// (*remote.Conn; see remote.Conn.DeployHeld). The Held is nil when the
// session ended (an error, a no-op).
type holdingHost interface {
	DeployHeld(ctx context.Context, t remote.Target, sha string, force bool, timeout time.Duration) ([]remote.StageResult, remote.Held, error)
}

// untouched reports whether a deploy session that ran no stage and failed
// with err ended before changing anything on its host: the script refused
// to start (another operation runs there) or stopped by itself before its
// first stage (e.g. it could not record the operation on a full file
// system). A lost connection or a timeout is not: the script may have
// gone on.
func untouched(err error) bool {
	var be *remote.BusyError
	var se *remote.StageError
	return errors.As(err, &be) || (errors.As(err, &se) && se.Stage == "script")
}

// stageEvent is the journal event of one stage of a deploy session.
func (r *run) stageEvent(group, host string, st remote.StageResult) journal.Event {
	ev := journal.Event{Type: journal.TypeStage, Group: group, Host: host, Stage: st.Stage, Command: st.Command,
		Duration: st.Duration, Output: st.Output}
	if st.ExitCode >= 0 {
		ev.ExitCode = journal.Code(st.ExitCode)
	}
	if st.TimedOut {
		ev.Err = "timed out"
	} else if st.ExitCode != 0 && st.Stage != remote.StageNoop {
		ev.Err = fmt.Sprintf("exit %d", st.ExitCode)
	}
	if (st.Stage == remote.StagePromote && st.ExitCode == 0) || st.Stage == remote.StageNoop {
		ev.Rev = r.sha
		if st.Stage == remote.StageNoop {
			ev.Message = "already live and done"
		}
	}
	return ev
}

// check runs the port check, then every configured check until one
// fails; each result is journaled (and, when report is set, emitted). It
// returns the first failed result, or nil.
func (r *run) check(ctx context.Context, c Host, group, host string, report bool) *remote.CheckResult {
	var results []remote.CheckResult
	if r.svc.Port > 0 {
		results = append(results, c.CheckPort(ctx, r.svc.Port, r.svc.PortTimeout.D()))
	}
	if len(results) == 0 || results[0].OK {
		for _, chk := range r.svc.Checks {
			res := c.Check(ctx, r.target, chk)
			results = append(results, res)
			if !res.OK {
				break
			}
		}
	}
	var bad *remote.CheckResult
	for _, cr := range results {
		r.journalResult(journal.Event{Type: journal.TypeCheck, Group: group, Host: host, Stage: journal.StageCheck, Check: checkRecord(cr, r.svc)})
		if report {
			r.emit(Event{Type: EventCheckResult, Group: group, Host: host, Checks: []remote.CheckResult{cr}})
		}
		if !cr.OK && bad == nil {
			bad = &cr
		}
	}
	return bad
}

// finalizeHost marks the revision done on host and prunes old ones, in
// held (the host's deploy session, held open) when it is not nil, else in
// a session of its own; a failure counts the host as failed. It reports
// whether it succeeded.
func (r *run) finalizeHost(ctx context.Context, host string, held remote.Held) bool {
	group := r.host(host).group
	var c Host
	var err error
	if held == nil {
		c, err = r.conn(ctx, host)
	}
	if err == nil {
		// Journaled as started, like every session that changes a host: a
		// process that dies meanwhile leaves the host in flight, so the
		// recovery stops the finalize still running there first.
		r.journal(journal.Event{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: journal.StageFinalize,
			Command: "finalize " + r.sha + " (mark done, prune)"})
		r.update(host, func(h *hostRun) { h.inFlight, h.marking = true, true })
		cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
		var st remote.StageResult
		if held != nil {
			st, err = held.Finalize(cctx, r.e.commandTimeout())
		} else {
			st, err = c.Finalize(cctx, r.target, r.sha)
		}
		cancel()
		r.update(host, func(h *hostRun) { h.inFlight = false })
		ev := journal.Event{Type: journal.TypeStage, Group: group, Host: host, Stage: journal.StageFinalize,
			Command: st.Command, Duration: st.Duration, Output: st.Output}
		if st.ExitCode >= 0 {
			ev.ExitCode = journal.Code(st.ExitCode)
		}
		if err != nil {
			ev.Err = oneLine(err.Error())
		}
		r.journalResult(ev)
	}
	if err != nil {
		return r.failHost(group, host, journal.StageFinalize, "", "finalize: "+stageReason(err), nil)
	}
	r.update(host, func(h *hostRun) { h.finalized = true })
	return true
}

func checkRecord(cr remote.CheckResult, s *config.Service) *journal.CheckRecord {
	rec := &journal.CheckRecord{Name: cr.Name, Kind: cr.Kind, OK: cr.OK, Status: cr.Status, Latency: cr.Latency,
		Body: cr.Body, Output: cr.Output, Err: cr.Err}
	switch cr.Kind {
	case remote.CheckKindPort:
		rec.Target = fmt.Sprintf("127.0.0.1:%d", s.Port)
	case remote.CheckKindCommand:
		rec.ExitCode = journal.Code(cr.ExitCode)
	}
	for _, c := range s.Checks {
		if c.Name == cr.Name {
			if c.HTTP != "" {
				rec.Target = "GET " + c.HTTP
			} else {
				rec.Target = c.Command
			}
		}
	}
	return rec
}

// hostReason is the one-line reason of a dial or transport error.
func hostReason(err error) string {
	var he *remote.HostError
	if errors.As(err, &he) {
		return fmt.Sprintf("%s: %v", he.Kind, he.Err)
	}
	return err.Error()
}

// failureCause is Event.Cause for err: the stage that failed, or the kind
// of connection failure.
func failureCause(err error) string {
	var se *remote.StageError
	var he *remote.HostError
	switch {
	case errors.As(err, &se):
		return se.Stage
	case errors.As(err, &he):
		return he.Kind
	}
	return CauseOther
}

func stageReason(err error) string {
	var se *remote.StageError
	if errors.As(err, &se) {
		out := strings.TrimSpace(se.Output)
		if i := strings.LastIndexByte(out, '\n'); i >= 0 {
			out = out[i+1:]
		}
		return fmt.Sprintf("%s failed with exit %d: %s", se.Stage, se.ExitCode, out)
	}
	return hostReason(err)
}

func checkReason(cr remote.CheckResult) string {
	why := cr.Err
	if why == "" && cr.Status != 0 {
		why = fmt.Sprintf("status %d", cr.Status)
	}
	return fmt.Sprintf("check %s failed: %s", cr.Name, why)
}
