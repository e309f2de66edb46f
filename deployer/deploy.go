package deployer

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// Sources of a deploy (Request.Source), as the journal records them.
const (
	SourceIRC     = "irc"
	SourceCLI     = "cli"
	SourceRecover = "recover"
)

// stageDeploy is the journal stage of the one session that fetches,
// checks out, promotes and restarts on a host.
const stageDeploy = "deploy"

// Deploy runs the deploy req asks for. Observer and Prompter may be nil: a
// prompt is then answered through Answer, or takes its default at its
// deadline. The error is for a deploy refused or that could not start
// (bad revision, unknown service, locked, repository or server trouble):
// nothing ran on any target then and Result is nil. Once started, a deploy
// returns a Result whatever its outcome, and an error only when ctx ended
// it (Outcome interrupted: the journal is left unfinished, for Recover).
//
// The finished event is emitted after the deploy lock is let go (and,
// for a revert, after the manual lock is taken), so a deploy asked for on
// seeing it is not refused.
func (e *Engine) Deploy(ctx context.Context, req Request, obs Observer, p Prompter) (*Result, error) {
	s, err := e.checkRequest(&req)
	if err != nil {
		return nil, err
	}
	dir := e.cfg.Deploy.JournalDir
	if h, err := journal.Held(dir, s.Name); err != nil {
		return nil, err
	} else if h != nil {
		return nil, &journal.LockedError{Service: s.Name, Holder: *h, Manual: true}
	}
	id, err := journal.NewID(s.Name, time.Now())
	if err != nil {
		return nil, err
	}
	lock, err := journal.AcquireDeploy(dir, s.Name, journal.Holder{Who: req.Who, Why: lockReason(req), DeployID: id})
	if err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() { lock.Release() })
	defer release()

	r, err := e.prepare(ctx, s, id, req, obs, p)
	if err != nil {
		return nil, err
	}
	defer r.jw.Close()
	e.register(r)
	defer e.unregister(r)
	defer r.closeConns()

	outcome, reason, err := r.deploy(ctx)
	if err != nil {
		r.note("interrupted: " + err.Error())
		return r.result(OutcomeInterrupted, err.Error()), err
	}
	res := r.finishJournal(outcome, reason)
	if req.Revert {
		res.Locked, res.LockErr = e.lockAfterRevert(s.Name, req.Who)
	}
	release()
	e.unregister(r)
	r.emitFinished(res)
	return res, nil
}

// Revert deploys an earlier revision of req.Service (req.Rev, or the last
// one deployed successfully before the live one) and locks the service
// afterwards; see Request.Revert.
func (e *Engine) Revert(ctx context.Context, req Request, obs Observer, p Prompter) (*Result, error) {
	req.Revert = true
	return e.Deploy(ctx, req, obs, p)
}

// checkRequest validates req before anything runs and fills in what a
// revert takes from the history.
func (e *Engine) checkRequest(req *Request) (*config.Service, error) {
	s, err := e.service(req.Service)
	if err != nil {
		return nil, err
	}
	if err := ValidateRev(req.Rev); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Who) == "" {
		return nil, errors.New("deploy: who is required")
	}
	if strings.ContainsAny(req.Message, "\x00\r\n") {
		return nil, errors.New("deploy: the message must be one line")
	}
	if !req.Revert {
		return s, nil
	}
	if req.Rev == "" {
		cur, prev, err := e.previousGood(s.Name)
		if err != nil {
			return nil, fmt.Errorf("%s: %w; name the revision to revert to", s.Name, err)
		}
		req.Rev = prev
		if req.Message == "" {
			req.Message = fmt.Sprintf("revert %s to %s", short(cur), short(prev))
		}
	} else if req.Message == "" {
		req.Message = "revert to " + short(req.Rev)
	}
	return s, nil
}

// lockReason is what the deploy lock says while the deploy runs.
func lockReason(req Request) string {
	why := "deploying"
	if req.Rev != "" {
		why += " " + req.Rev
	}
	if req.Message != "" {
		why += ": " + req.Message
	}
	return why
}

// RevertLockReason is the manual lock a revert leaves: "reverted by who".
func RevertLockReason(who string) string { return "reverted by " + who }

func (e *Engine) lockAfterRevert(service, who string) (*Holder, error) {
	h := journal.Holder{Who: who, Why: RevertLockReason(who)}
	if err := journal.Lock(e.cfg.Deploy.JournalDir, service, h); err != nil {
		e.log.Error("lock after revert failed", "service", service, "err", err)
		return nil, err
	}
	held, err := journal.Held(e.cfg.Deploy.JournalDir, service)
	if err != nil || held == nil {
		return &h, nil
	}
	return held, nil
}

// prepare updates the deploy repository, resolves the revision, serves
// the repository to the targets and creates the journal: everything
// before the first target is touched.
func (e *Engine) prepare(ctx context.Context, s *config.Service, id string, req Request, obs Observer, p Prompter) (*run, error) {
	repo, err := e.openRepo(ctx, s)
	if err != nil {
		return nil, err
	}
	plan, err := e.plan(s, repo, req.Rev)
	if err != nil {
		return nil, err
	}
	s = plan.svc
	subs, err := repo.SubmodulesAt(plan.To)
	if err != nil {
		return nil, fmt.Errorf("submodules of %s: %w", short(plan.To), err)
	}
	if err := repo.UpdateServerInfo(); err != nil {
		return nil, fmt.Errorf("update-server-info: %w", err)
	}
	if err := e.ensureServing(ctx, s.Repo); err != nil {
		return nil, err
	}
	var subNames []string
	for _, sm := range subs {
		subNames = append(subNames, sm.Name)
	}
	r := e.newRun(s, id, req.Who, req.Source, p, obs)
	r.sha, r.from, r.force = plan.To, plan.From, req.Force
	r.stale = req.stale
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, subNames)
	r.target.OpID = id
	if r.target.ConfigFiles, err = renderConfigFiles(s, repo, plan.To); err != nil {
		return nil, err
	}
	if err := r.target.Validate(); err != nil {
		return nil, err
	}
	meta := journal.Meta{ID: id, Who: req.Who, Rev: plan.To, FromRev: plan.From, Message: req.Message,
		Hosts: map[string][]string{}, Force: req.Force, Source: req.Source}
	for _, g := range plan.Groups {
		meta.Hosts[g.Name] = g.Hosts
		meta.GroupOrder = append(meta.GroupOrder, g.Name)
	}
	jw, err := journal.Create(e.cfg.Deploy.JournalDir, s.Name, meta)
	if err != nil {
		return nil, err
	}
	r.jw = jw
	r.note(fmt.Sprintf("deploy repository at %s; %d commit(s) %s..%s", short(plan.To), len(plan.Range.Commits), short(plan.From), short(plan.To)))
	r.emit(Event{Type: EventStarted, Who: req.Who, Source: req.Source, From: plan.From, To: plan.To,
		Commits: plan.Range.Commits, Backwards: plan.Range.Backwards, Message: req.Message, Total: len(s.AllHosts()), Model: s})
	if len(plan.Unsupported) > 0 {
		for _, n := range plan.Unsupported {
			r.note("not carried out from scap/: " + n)
		}
		r.emit(Event{Type: EventUnsupported, Notes: plan.Unsupported})
	}
	e.log.Info("deploy started", "deploy", id, "service", s.Name, "who", req.Who, "rev", plan.To)
	return r, nil
}

// ValidateRev checks the syntax of a revision asked for: "" (the upstream
// head) or 7 to 40 hex digits. Every front end checks with it.
func ValidateRev(rev string) error { return gitrepo.ValidateRev(rev) }

// deploy runs the groups and finalizes. The error is the context's, when
// it ended the deploy (the journal then stays unfinished).
func (r *run) deploy(ctx context.Context) (Outcome, string, error) {
	r.dialAll(ctx)
	if ctx.Err() != nil {
		return OutcomeInterrupted, "", ctx.Err()
	}
	// Only when the journal says this revision (or nothing) was deployed
	// last can every host already run it: then ask them (one session each).
	if !r.force && (r.from == r.sha || r.from == "") && r.alreadyLive(ctx) {
		r.mu.Lock()
		for _, h := range r.hosts {
			h.ok = true
		}
		r.mu.Unlock()
		return OutcomeNoop, "", nil
	}
	for gi, g := range r.svc.Rollout() {
		if gi > 0 && g.Pause {
			ans := r.ask(ctx, PromptPause, g.Name, fmt.Sprintf("paused before group %s (%d hosts): continue or rollback?", g.Name, len(g.Hosts)))
			if ctx.Err() != nil {
				return OutcomeInterrupted, "", ctx.Err()
			}
			if ans == Rollback {
				return r.rollbackAll(ctx, "rolled back at the pause before "+g.Name)
			}
		}
		stop, reason := r.runGroup(ctx, gi == 0 && g.Name == config.CanaryGroup, g)
		if ctx.Err() != nil {
			return OutcomeInterrupted, "", ctx.Err()
		}
		if stop {
			return r.rollbackAll(ctx, reason)
		}
	}
	r.finalizeAll(ctx)
	if ctx.Err() != nil {
		return OutcomeInterrupted, "", ctx.Err()
	}
	reason := ""
	if n := len(r.result("", "").Failed); n > 0 {
		reason = fmt.Sprintf("%d host(s) failed within the failure limit", n)
	}
	return OutcomeSuccess, reason, nil
}

// dialAll dials every host of the service at once.
func (r *run) dialAll(ctx context.Context) {
	eachBounded(ctx, r.svc.AllHosts(), 0, nil, func(h config.Host) { _, _ = r.conn(ctx, h.String()) })
}

// alreadyLive reports whether every host runs r.sha, done.
func (r *run) alreadyLive(ctx context.Context) bool {
	hosts := r.svc.AllHosts()
	live := make([]bool, len(hosts))
	idx := make([]int, len(hosts))
	for i := range idx {
		idx[i] = i
	}
	eachBounded(ctx, idx, 0, nil, func(i int) {
		c, err := r.conn(ctx, hosts[i].String())
		if err != nil {
			return
		}
		cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
		defer cancel()
		st, err := c.Status(cctx, r.target)
		live[i] = err == nil && st.Current == r.sha && st.Done == r.sha && st.Deploying == ""
	})
	for _, ok := range live {
		if !ok {
			return false
		}
	}
	return true
}
