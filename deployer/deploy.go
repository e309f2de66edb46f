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
// A no-op (the revision already live and done on every host, not forced)
// is decided before anything is announced: no journal is created, no
// EventStarted is emitted, only EventFinished with Outcome noop, and the
// Result has no ID.
//
// The finished event is emitted after the deploy lock is let go (and,
// for a revert, after the manual lock is taken), so a deploy asked for on
// seeing it is not refused.
func (e *Engine) Deploy(ctx context.Context, req Request, obs Observer, p Prompter) (*Result, error) {
	s, err := e.checkRequest(&req)
	if err != nil {
		return nil, err
	}
	if h, err := e.store.Held(s.Name); err != nil {
		return nil, err
	} else if h != nil {
		return nil, &journal.LockedError{Service: s.Name, Holder: *h, Manual: true}
	}
	id, err := journal.NewID(s.Name, time.Now())
	if err != nil {
		return nil, err
	}
	lock, err := e.store.AcquireDeploy(s.Name, journal.Holder{Who: req.Who, Nick: req.Nick, Why: lockReason(req), DeployID: id})
	if err != nil {
		return nil, err
	}
	release := sync.OnceFunc(func() { lock.Release() })
	defer release()
	ctx, stop := fence(ctx, lock)
	defer stop(nil)

	r, plan, err := e.prepare(ctx, s, id, req, obs, p)
	if err != nil {
		return nil, err
	}
	r.fenced(lock, stop)
	e.register(r)
	defer e.unregister(r)
	defer r.closeConns()

	// A revision already live everywhere is decided before anything is
	// announced or recorded: no start event, no journal.
	noop := r.noop(ctx)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("interrupted before any target was changed: %w", ctx.Err())
	}
	if noop {
		release()
		e.unregister(r)
		r.id = "" // nothing was recorded: no deploy to refer to
		res := r.result(OutcomeNoop, "")
		r.emitFinished(res)
		e.log.Info("deploy is a no-op", "service", s.Name, "who", req.Who, "rev", plan.To)
		return res, nil
	}
	if err := r.begin(lock, req, plan); err != nil {
		return nil, err
	}
	defer r.jw.Close()

	outcome, reason, err := r.deploy(ctx)
	if err != nil {
		err = cause(ctx)
		r.note("interrupted: " + err.Error())
		return r.result(OutcomeInterrupted, err.Error()), err
	}
	res := r.finishJournal(outcome, reason)
	if req.Revert {
		res.Locked, res.LockErr = e.lockAfterRevert(s.Name, req.Who, req.Nick)
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

func (e *Engine) lockAfterRevert(service, who, nick string) (*Holder, error) {
	h := journal.Holder{Who: who, Nick: nick, Why: RevertLockReason(journal.Person(nick, who))}
	if err := e.store.Lock(service, h); err != nil {
		e.log.Error("lock after revert failed", "service", service, "err", err)
		return nil, err
	}
	held, err := e.store.Held(service)
	if err != nil || held == nil {
		return &h, nil
	}
	return held, nil
}

// prepare updates the deploy repository, resolves the revision and
// serves the repository to the targets: everything before the first
// target is touched. The journal is created later, by begin, once the
// deploy is known not to be a no-op.
func (e *Engine) prepare(ctx context.Context, s *config.Service, id string, req Request, obs Observer, p Prompter) (*run, *Plan, error) {
	repo, err := e.openRepo(ctx, s)
	if err != nil {
		return nil, nil, err
	}
	plan, err := e.plan(s, repo, req.Rev)
	if err != nil {
		return nil, nil, err
	}
	s = plan.svc
	subs, err := repo.SubmodulesAt(plan.To)
	if err != nil {
		return nil, nil, fmt.Errorf("submodules of %s: %w", short(plan.To), err)
	}
	if err := repo.UpdateServerInfo(); err != nil {
		return nil, nil, fmt.Errorf("update-server-info: %w", err)
	}
	if err := e.ensureServing(ctx, s.Repo); err != nil {
		return nil, nil, err
	}
	var subNames []string
	for _, sm := range subs {
		subNames = append(subNames, sm.Name)
	}
	r := e.newRun(s, id, req.Who, req.Source, p, obs)
	r.sha, r.from, r.force, r.nick = plan.To, plan.From, req.Force, req.Nick
	r.stale = req.stale
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, subNames)
	r.target.OpID = id
	if len(r.target.Submodules) > 0 {
		// Where each is, and at which commit, as read here: the targets
		// need not read it again.
		for _, sm := range subs {
			r.target.Pins = append(r.target.Pins, remote.SubmodulePin{Path: sm.Path, Commit: sm.Commit})
		}
	}
	if r.target.ConfigFiles, err = renderConfigFiles(s, repo, plan.To); err != nil {
		return nil, nil, err
	}
	if err := r.target.Validate(); err != nil {
		return nil, nil, err
	}
	return r, plan, nil
}

// begin creates the journal of a deploy that will run and announces it
// (EventStarted).
func (r *run) begin(lock journal.Lease, req Request, plan *Plan) error {
	meta := journal.Meta{ID: r.id, Who: req.Who, Nick: req.Nick, Rev: plan.To, FromRev: plan.From, Message: req.Message,
		Hosts: map[string][]string{}, Force: req.Force, Source: req.Source}
	for _, g := range plan.Groups {
		meta.Hosts[g.Name] = g.Hosts
		meta.GroupOrder = append(meta.GroupOrder, g.Name)
	}
	jw, err := r.e.store.Create(lock, meta)
	if err != nil {
		return err
	}
	r.jw = jw
	r.note(fmt.Sprintf("deploy repository at %s; %d commit(s) %s..%s", short(plan.To), len(plan.Range.Commits), short(plan.From), short(plan.To)))
	r.emit(Event{Type: EventStarted, Who: req.Who, Nick: req.Nick, Source: req.Source, From: plan.From, To: plan.To,
		Commits: plan.Range.Commits, Backwards: plan.Range.Backwards, More: plan.Range.More, Message: req.Message,
		Total: len(r.svc.AllHosts()), Model: r.svc})
	if len(plan.Unsupported) > 0 {
		for _, n := range plan.Unsupported {
			r.note("not carried out from scap/: " + n)
		}
		r.emit(Event{Type: EventUnsupported, Notes: plan.Unsupported})
	}
	r.e.log.Info("deploy started", "deploy", r.id, "service", r.svc.Name, "who", req.Who, "rev", plan.To)
	return nil
}

// ValidateRev checks the syntax of a revision asked for: "" (the upstream
// head) or 7 to 40 hex digits. Every front end checks with it.
func ValidateRev(rev string) error { return gitrepo.ValidateRev(rev) }

// deploy runs the groups and finalizes. The error is the context's, when
// it ended the deploy (the journal then stays unfinished).
//
// The first group (the canary) is dialed alone and starts at once; the
// other hosts are dialed once its first deploy session opens (or the
// group ended without one), while it deploys, so the time to the canary's
// first stage does not grow with the fleet. When finalizesEarly, every host is
// finalized as soon as it passes (a session right after its checks), and
// a rollback undoes it; otherwise every host is finalized once all groups
// passed.
func (r *run) deploy(ctx context.Context) (Outcome, string, error) {
	groups := r.svc.Rollout()
	if len(groups) > 0 {
		r.dialHosts(ctx, groups[0].Hosts)
		stop := r.dialAhead(ctx, groups[1:], r.firstSession)
		defer stop()
	}
	if ctx.Err() != nil {
		return OutcomeInterrupted, "", ctx.Err()
	}
	for gi, g := range groups {
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
		if !stop {
			r.started() // the first group opened no session: dial ahead now
		}
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

// finalizesEarly reports whether the run finalizes each host as soon as
// it passes: not for a forced deploy or one of the revision deployed last
// (a host's done revision may then already be r.sha, which a rollback
// could not tell from one this run marked), nor when only one done
// revision is kept (the one before would be pruned).
func (r *run) finalizesEarly() bool {
	keep := r.svc.KeepRevs
	if keep <= 0 {
		keep = config.DefaultKeepRevs
	}
	return !r.force && r.from != r.sha && keep >= 2
}

// dialHosts dials hosts at once and waits for them (errors are met again
// when the host is used).
func (r *run) dialHosts(ctx context.Context, hosts []config.Host) {
	eachBounded(ctx, hosts, 0, nil, func(h config.Host) { _, _ = r.conn(ctx, h.String()) })
}

// dialAhead dials the hosts of groups in the background, in rollout
// order, once after is closed; stop cancels what has not connected yet
// and waits for the rest.
func (r *run) dialAhead(ctx context.Context, groups []config.Group, after <-chan struct{}) (stop func()) {
	var hosts []config.Host
	for _, g := range groups {
		hosts = append(hosts, g.Hosts...)
	}
	dctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-after:
		case <-dctx.Done():
			return
		}
		r.dialHosts(dctx, hosts)
	}()
	return func() { cancel(); <-done }
}

// noop reports whether the deploy has nothing to do: not forced, and
// every host already runs r.sha, done. Only when the journal says this
// revision (or nothing) was deployed last can that be: then every host is
// dialed and asked (one session each). Otherwise nothing is dialed here,
// so the canary is dialed first, alone (see deploy). Every host of a
// no-op counts as OK.
func (r *run) noop(ctx context.Context) bool {
	if r.force || (r.from != r.sha && r.from != "") {
		return false
	}
	r.dialHosts(ctx, r.svc.AllHosts())
	if ctx.Err() != nil || !r.alreadyLive(ctx) {
		return false
	}
	r.mu.Lock()
	for _, h := range r.hosts {
		h.ok = true
	}
	r.mu.Unlock()
	return true
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
