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
	path, err := journal.JournalPath(e.cfg.Deploy.JournalDir, service, id)
	if err != nil {
		return nil, err
	}
	switch action {
	case RecoverMarkEnded:
		return markEnded(path, id, service, who)
	case RecoverRollback:
		return e.recoverRollback(ctx, s, path, id, who, obs)
	}
	return nil, fmt.Errorf("recover: unknown action %d", action)
}

func markEnded(path, id, service, who string) (*Result, error) {
	d, err := journal.Read(path)
	if err != nil {
		return nil, err
	}
	if d.Finished {
		return nil, journal.ErrFinished
	}
	if err := journal.MarkEnded(path, who, "marked ended by "+who); err != nil {
		return nil, err
	}
	return &Result{ID: id, Service: service, Outcome: OutcomeEnded, From: d.Meta.FromRev, To: d.Meta.Rev,
		Hosts: len(d.HostState), Duration: time.Since(d.Meta.Started)}, nil
}

// recoverRollback rolls back every host the interrupted deploy reached.
func (e *Engine) recoverRollback(ctx context.Context, s *config.Service, path, id, who string, obs Observer) (*Result, error) {
	lock, err := journal.AcquireDeploy(e.cfg.Deploy.JournalDir, s.Name, journal.Holder{Who: who, Why: "rolling back " + id, DeployID: id})
	if err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() { lock.Release() })
	defer release()
	jw, d, err := journal.Reopen(path, lock)
	if err != nil {
		return nil, err
	}
	defer jw.Close()
	r := e.newRun(s, id, who, SourceRecover, nil, obs)
	r.jw, r.recovery = jw, true
	r.sha, r.from = d.Meta.Rev, d.Meta.FromRev
	// The target as it was deployed; submodule names do not matter to a
	// rollback.
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, nil)
	if err := r.target.Validate(); err != nil {
		return nil, err
	}
	defer r.closeConns()
	r.journal(journal.Event{Type: journal.TypeResumed, Who: who, Message: "rolling back the interrupted deploy"})
	e.register(r)
	defer e.unregister(r)
	r.emit(Event{Type: EventStarted, Who: who, Source: SourceRecover, From: d.Meta.Rev, To: d.Meta.FromRev,
		Backwards: true, Recovery: true, Total: len(s.AllHosts())})

	allOK := r.rollbackGroups(ctx, d.Meta.Groups(), r.reached(d))
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
	}
	var res *Result
	if !allOK {
		res = r.finishJournal(OutcomeFailed, "rollback after the interruption did not restore every host")
	} else {
		res = r.finishJournal(OutcomeRolledBack, "interrupted deploy rolled back by "+who)
	}
	release()
	e.unregister(r)
	r.emitFinished(res)
	return res, nil
}

// reached marks changed every host the deploy d reached (a stage started
// there: its state may have changed even if no result was recorded) and
// returns them by group.
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
	path, err := journal.JournalPath(e.cfg.Deploy.JournalDir, service, id)
	if err != nil {
		return nil, err
	}
	d, err := journal.Read(path)
	if err != nil {
		return nil, err
	}
	if d.Finished {
		return nil, journal.ErrFinished
	}
	if err := journal.MarkEnded(path, who, "resumed by "+who); err != nil {
		return nil, err
	}
	msg := "resuming " + id
	if d.Meta.Message != "" {
		msg += ": " + d.Meta.Message
	}
	return e.Deploy(ctx, Request{Service: service, Rev: d.Meta.Rev, Message: msg, Who: who, Source: SourceRecover, Force: d.Meta.Force}, obs, p)
}
