package deployer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// RecoverAction is what Recover does with an interrupted deploy.
type RecoverAction int

// Recover actions.
const (
	// RecoverRollback rolls back every host the deploy reached (newest
	// group first), re-checks them and finishes the journal rolled_back.
	RecoverRollback RecoverAction = iota + 1
	// RecoverMarkEnded gives up: the journal is finished "ended", the hosts
	// are left as they are.
	RecoverMarkEnded
)

// Recover acts on the interrupted deploy id (see Unfinished). who is the
// operator. It is refused with a *LockedError while a deploy of the
// service runs, and with ErrFinished for a deploy that finished. A
// rollback emits its own started and finished events (Event.Recovery).
func (e *Engine) Recover(ctx context.Context, id string, action RecoverAction, who string, obs Observer) (*Result, error) {
	service, _, err := journal.ParseID(id)
	if err != nil {
		return nil, err
	}
	if who == "" {
		return nil, errors.New("recover: who is required")
	}
	s, err := e.service(service)
	if err != nil {
		return nil, err
	}
	switch action {
	case RecoverMarkEnded:
		return e.markEnded(ctx, s, id, who)
	case RecoverRollback:
		return e.recoverRollback(ctx, s, id, who, obs)
	}
	return nil, fmt.Errorf("recover: unknown action %d", action)
}

// markEnded gives up on the interrupted deploy id, leaving its hosts as
// they are, once what it left running on them is stopped.
func (e *Engine) markEnded(ctx context.Context, s *config.Service, id, who string) (*Result, error) {
	d, err := e.store.Read(id)
	if err != nil {
		return nil, err
	}
	if d.Finished {
		return nil, journal.ErrFinished
	}
	if s, err = e.serviceAt(ctx, s, d.Meta.Rev); err != nil {
		return nil, err
	}
	r := e.newRun(s, id, who, SourceRecover, nil, nil)
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, nil)
	r.target.OpID = id
	r.stale = staleHosts(d)
	defer r.closeConns()
	var errs []error
	for h := range staleHosts(d) {
		c, err := r.conn(ctx, h)
		if err == nil {
			err = r.stopStale(ctx, c, r.host(h).group, h)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", h, err))
		}
	}
	reason := "marked ended by " + who
	if r.stopped > 0 {
		reason += fmt.Sprintf("; stopped what it left running on %d host(s)", r.stopped)
	}
	// Giving up must stay possible with a host down: say what could not
	// be checked.
	if err := errors.Join(errs...); err != nil {
		reason += "; could not check or stop what it left running: " + oneLine(err.Error())
	}
	if err := journal.MarkEndedIn(e.store, id, who, reason); err != nil {
		return nil, err
	}
	return &Result{ID: id, Service: s.Name, Outcome: OutcomeEnded, From: d.Meta.FromRev, To: d.Meta.Rev,
		Hosts: len(d.HostState), Duration: time.Since(d.Meta.Started), Stopped: r.stopped, Reason: reason}, nil
}

// reopen takes the deploy lock for the interrupted deploy id and reopens
// its journal: a recovery run, registered as the service's running
// deploy. done releases everything, in order; the run's finished event
// is for the caller to emit after it.
func (e *Engine) reopen(ctx context.Context, s *config.Service, id, who, why string, obs Observer, p Prompter) (r *run, d *Deploy, lock journal.Lease, done func(), err error) {
	lock, err = e.store.AcquireDeploy(s.Name, journal.Holder{Who: who, Why: why, DeployID: id})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	jw, d, err := e.store.Reopen(lock)
	if err != nil {
		lock.Release()
		return nil, nil, nil, nil, err
	}
	if s, err = e.serviceAt(ctx, s, d.Meta.Rev); err != nil {
		jw.Close()
		lock.Release()
		return nil, nil, nil, nil, err
	}
	r = e.newRun(s, id, who, SourceRecover, p, obs)
	r.jw, r.recovery = jw, true
	r.sha, r.from, r.force = d.Meta.Rev, d.Meta.FromRev, d.Meta.Force
	// The target as it was deployed; submodule names do not matter to a
	// rollback.
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, nil)
	r.target.OpID = id
	r.stale = staleHosts(d)
	if err := r.target.Validate(); err != nil {
		jw.Close()
		lock.Release()
		return nil, nil, nil, nil, err
	}
	e.register(r)
	done = sync.OnceFunc(func() {
		r.closeConns()
		jw.Close()
		lock.Release()
		e.unregister(r)
	})
	return r, d, lock, done, nil
}

// recoverRollback rolls back every host the interrupted deploy reached.
func (e *Engine) recoverRollback(ctx context.Context, s *config.Service, id, who string, obs Observer) (*Result, error) {
	r, d, lock, done, err := e.reopen(ctx, s, id, who, "rolling back "+id, obs, nil)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, stop := fence(ctx, lock)
	defer stop(nil)
	r.fenced(lock, stop)
	r.journal(journal.Event{Type: journal.TypeResumed, Who: who, Message: "rolling back the interrupted deploy"})
	return r.rollbackReached(ctx, d, done, "interrupted deploy rolled back by "+who)
}

// rollbackReached rolls back the hosts the interrupted deploy d reached,
// announcing its own start and end.
func (r *run) rollbackReached(ctx context.Context, d *Deploy, done func(), reason string) (*Result, error) {
	r.emit(Event{Type: EventStarted, Who: r.who, Source: SourceRecover, From: d.Meta.Rev, To: d.Meta.FromRev,
		Backwards: true, Recovery: true, Total: len(r.svc.AllHosts())})
	allOK := r.rollbackGroups(ctx, d.Meta.Groups(), r.reached(d))
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, cause(ctx).Error()), cause(ctx)
	}
	var res *Result
	if !allOK {
		res = r.finishJournal(OutcomeFailed, "rollback after the interruption did not restore every host")
	} else {
		res = r.finishJournal(OutcomeRolledBack, reason)
	}
	done()
	r.emitFinished(res)
	return res, nil
}

// PendingPrompt is the question the interrupted deploy d was asking when
// its process died, with the deadline it was announced with; nil when it
// was asking nothing (or its journal has no deadline).
func PendingPrompt(d *Deploy) *Prompt {
	op := d.OpenPrompt
	if op == nil || op.Deadline.IsZero() || d.Finished {
		return nil
	}
	return &Prompt{Service: d.Meta.Service, DeployID: d.Meta.ID, Kind: op.Message, Group: op.Group, Text: op.Prompt,
		Default: Rollback, Deadline: op.Deadline}
}

// ErrNoPendingPrompt: AwaitPrompt of a deploy that was asking nothing.
var ErrNoPendingPrompt = errors.New("the deploy was not waiting for an answer")

// AwaitPrompt takes up the question the interrupted deploy id was asking
// when its process died (PendingPrompt): the announced deadline holds.
// Until it, the question is open again (Answer, or p); a deadline that
// passed while no process ran the deploy takes the default at once. Then
// rollback rolls back the hosts the deploy reached, and continue finishes
// the deploy as Resume does. who is who takes it up (the bot, a Unix
// user).
func (e *Engine) AwaitPrompt(ctx context.Context, id, who string, obs Observer, p Prompter) (*Result, error) {
	service, _, err := journal.ParseID(id)
	if err != nil {
		return nil, err
	}
	s, err := e.service(service)
	if err != nil {
		return nil, err
	}
	r, d, lock, done, err := e.reopen(ctx, s, id, who, "waiting for the answer to the question of "+id, obs, p)
	if err != nil {
		return nil, err
	}
	defer done()
	ctx, stop := fence(ctx, lock)
	defer stop(nil)
	r.fenced(lock, stop)
	pp := PendingPrompt(d)
	if pp == nil {
		return nil, ErrNoPendingPrompt
	}
	r.journal(journal.Event{Type: journal.TypeResumed, Who: who, Message: "taking up the question asked before the interruption"})
	ans, by := r.askPrompt(ctx, *pp)
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
	}
	if ans == Rollback {
		reason := "interrupted deploy rolled back by " + by
		if by == AnsweredByMissed || by == AnsweredByTimeout {
			reason = "no answer before " + pp.Deadline.UTC().Format("15:04:05 UTC") + ": interrupted deploy rolled back"
		}
		return r.rollbackReached(ctx, d, done, reason)
	}
	r.finishJournal(OutcomeEnded, "resumed: continue answered by "+by)
	done()
	msg := "resuming " + id
	if d.Meta.Message != "" {
		msg += ": " + d.Meta.Message
	}
	return e.Deploy(ctx, Request{Service: service, Rev: d.Meta.Rev, Message: msg, Who: d.Meta.Who, Source: SourceRecover, Force: d.Meta.Force, stale: staleHosts(d)}, obs, p)
}

// reached marks changed every host the deploy d reached (a stage started
// there: its state may have changed even if no result was recorded), and
// marking those where its finalize began, and returns them by group.
func (r *run) reached(d *Deploy) map[string][]string {
	byGroup := map[string][]string{}
	for _, hs := range d.Hosts() {
		if hs.Stage == "" {
			continue
		}
		h := r.host(hs.Host)
		r.mu.Lock()
		if hs.Group != "" {
			h.group = hs.Group
		}
		h.changed = true
		byGroup[h.group] = append(byGroup[h.group], hs.Host)
		r.mu.Unlock()
	}
	for _, ev := range d.Events {
		if ev.Stage == journal.StageFinalize && ev.Host != "" {
			r.update(ev.Host, func(h *hostRun) { h.marking = true })
		}
	}
	return byGroup
}

// Resume finishes the interrupted deploy id: it marks that journal ended
// ("resumed by who") and runs a new deploy of the same revision with the
// same message, which takes every host to it (hosts already there are
// redeployed from their cache in a moment) and finalizes the fleet. The
// new deploy's Result is returned; it prompts through p as any deploy does.
func (e *Engine) Resume(ctx context.Context, id, who string, obs Observer, p Prompter) (*Result, error) {
	service, _, err := journal.ParseID(id)
	if err != nil {
		return nil, err
	}
	if who == "" {
		return nil, errors.New("resume: who is required")
	}
	d, err := e.store.Read(id)
	if err != nil {
		return nil, err
	}
	if d.Finished {
		return nil, journal.ErrFinished
	}
	if err := journal.MarkEndedIn(e.store, id, who, "resumed by "+who); err != nil {
		return nil, err
	}
	msg := "resuming " + id
	if d.Meta.Message != "" {
		msg += ": " + d.Meta.Message
	}
	return e.Deploy(ctx, Request{Service: service, Rev: d.Meta.Rev, Message: msg, Who: who, Source: SourceRecover, Force: d.Meta.Force, stale: staleHosts(d)}, obs, p)
}
