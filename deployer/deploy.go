package deployer

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer/gitrepo"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// stageDeploy is the journal stage of the one session that fetches,
// checks out, promotes and restarts on a host.
const stageDeploy = "deploy"

// run is one deploy (or recovery) in progress.
type run struct {
	e      *Engine
	svc    *config.Service
	id     string
	who    string
	source string
	sha    string
	from   string
	force  bool
	target remote.Target
	jw     *journal.Writer
	obs    Observer
	p      Prompter
	start  time.Time

	abort   chan struct{} // closed by Abort (guarded by mu)
	aborted bool

	mu      sync.Mutex
	conns   map[string]*remote.Conn // host → connection
	dialErr map[string]error
	changed map[string]bool // hosts a deploy session ran on
	okHosts map[string]bool
	failed  []HostFailure
	rolled  []HostRev
	hostCfg map[string]config.Host
	hostGrp map[string]string
	order   []string // groups run so far
}

func (r *run) emit(ev Event) {
	ev.Time = time.Now().UTC()
	ev.Service = r.svc.Name
	ev.DeployID = r.id
	if r.obs != nil {
		r.obs.Observe(ev)
	}
}

func (r *run) journal(ev journal.Event) {
	if r.jw == nil {
		return
	}
	if err := r.jw.Append(ev); err != nil {
		r.e.log.Error("journal append failed", "deploy", r.id, "err", err)
	}
}

func (r *run) note(msg string) { r.journal(journal.Event{Type: journal.TypeNote, Message: msg}) }

// Deploy runs the deploy req asks for. Observer and Prompter may be nil (no
// events; every prompt takes its default, Rollback). The error is for a
// deploy refused or that could not start (bad revision, unknown service,
// locked, repository or server trouble): nothing ran on any target then and
// Result is nil. Once started, a deploy returns a Result whatever its
// outcome, and an error only when ctx ended it (Outcome "interrupted": the
// journal is left unfinished, for Recover).
func (e *Engine) Deploy(ctx context.Context, req Request, obs Observer, p Prompter) (*Result, error) {
	s, err := e.service(req.Service)
	if err != nil {
		return nil, err
	}
	if err := gitrepo.ValidateRev(req.Rev); err != nil {
		return nil, err
	}
	if strings.TrimSpace(req.Who) == "" {
		return nil, errors.New("deploy: who is required")
	}
	if strings.ContainsAny(req.Message, "\x00\r\n") {
		return nil, errors.New("deploy: the message must be one line")
	}
	if req.DryRun {
		return nil, errors.New("deploy: use Plan for a dry run")
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
	why := "deploying"
	if req.Rev != "" {
		why += " " + req.Rev
	}
	if req.Message != "" {
		why += ": " + req.Message
	}
	lock, err := journal.AcquireDeploy(dir, s.Name, journal.Holder{Who: req.Who, Why: why, DeployID: id})
	if err != nil {
		return nil, err
	}
	defer lock.Release()

	repo, err := e.openRepo(ctx, s)
	if err != nil {
		return nil, err
	}
	plan, err := e.plan(s, repo, req.Rev)
	if err != nil {
		return nil, err
	}
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
	r.target = remote.NewTarget(s.Name, s, e.cfg.Deploy.ServeURL, subNames)
	if err := r.target.Validate(); err != nil {
		return nil, err
	}

	meta := journal.Meta{ID: id, Who: req.Who, Rev: plan.To, FromRev: plan.From, Message: req.Message,
		Hosts: map[string][]string{}, Force: req.Force, Source: req.Source}
	for _, g := range plan.Groups {
		meta.Hosts[g.Name] = g.Hosts
		meta.GroupOrder = append(meta.GroupOrder, g.Name)
	}
	jw, err := journal.Create(dir, s.Name, meta)
	if err != nil {
		return nil, err
	}
	defer jw.Close()
	r.jw = jw

	e.mu.Lock()
	e.running[s.Name] = r
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.running, s.Name)
		e.mu.Unlock()
	}()
	defer r.closeConns()

	r.note(fmt.Sprintf("deploy repository at %s; %d commit(s) %s..%s", short(plan.To), len(plan.Range.Commits), short(plan.From), short(plan.To)))
	r.emit(Event{Type: EventStarted, Who: req.Who, Source: req.Source, From: plan.From, To: plan.To,
		Commits: plan.Range.Commits, Backwards: plan.Range.Backwards, Message: req.Message, Total: len(s.AllHosts())})
	e.log.Info("deploy started", "deploy", id, "service", s.Name, "who", req.Who, "rev", plan.To)

	res, err := r.deploy(ctx)
	if err != nil {
		r.note("interrupted: " + err.Error())
		return res, err
	}
	return res, nil
}

func (e *Engine) newRun(s *config.Service, id, who, source string, p Prompter, obs Observer) *run {
	r := &run{e: e, svc: s, id: id, who: who, source: source, p: p, obs: obs, start: time.Now(),
		abort: make(chan struct{}), conns: map[string]*remote.Conn{}, dialErr: map[string]error{},
		changed: map[string]bool{}, okHosts: map[string]bool{}, hostCfg: map[string]config.Host{}, hostGrp: map[string]string{}}
	for _, g := range groups(s) {
		for _, h := range g.Hosts {
			r.hostCfg[h.String()] = h
			r.hostGrp[h.String()] = g.Name
		}
	}
	return r
}

func (r *run) closeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		c.Close()
	}
}

// conn returns the connection to host, dialing it (again) when there is
// none or it was lost.
func (r *run) conn(ctx context.Context, host string) (*remote.Conn, error) {
	r.mu.Lock()
	c := r.conns[host]
	r.mu.Unlock()
	if c != nil && c.Err() == nil {
		return c, nil
	}
	h, ok := r.hostCfg[host]
	if !ok {
		var err error
		if h, err = config.ParseHost(host); err != nil {
			return nil, err
		}
	}
	if slots := r.e.dialSlots; slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c, err := r.e.dialer.Dial(ctx, h)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.dialErr[host] = err
		return nil, err
	}
	r.conns[host] = c
	return c, nil
}

// dialAll dials every host of the service at once.
func (r *run) dialAll(ctx context.Context) {
	var wg sync.WaitGroup
	for _, h := range r.svc.AllHosts() {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			_, _ = r.conn(ctx, name)
		}(h.String())
	}
	wg.Wait()
}

// alreadyLive reports whether every host runs r.sha, done.
func (r *run) alreadyLive(ctx context.Context) bool {
	hosts := r.svc.AllHosts()
	var live = make([]bool, len(hosts))
	var wg sync.WaitGroup
	for i, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := r.conn(ctx, h.String())
			if err != nil {
				return
			}
			cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
			defer cancel()
			st, err := c.Status(cctx, r.target)
			live[i] = err == nil && st.Current == r.sha && st.Done == r.sha && st.Deploying == ""
		}()
	}
	wg.Wait()
	for _, ok := range live {
		if !ok {
			return false
		}
	}
	return true
}

func (e *Engine) commandTimeout() time.Duration {
	if d := e.cfg.Deploy.SSH.CommandTimeout.D(); d > 0 {
		return d
	}
	return remote.DefaultCommandTimeout
}

func (r *run) result(outcome, reason string) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{ID: r.id, Service: r.svc.Name, Outcome: outcome, From: r.from, To: r.sha,
		Hosts: len(r.svc.AllHosts()), Reason: reason, Duration: time.Since(r.start)}
	for h := range r.okHosts {
		if r.okHosts[h] {
			res.OK++
		}
	}
	res.Failed = append(res.Failed, r.failed...)
	res.RolledBack = append(res.RolledBack, r.rolled...)
	return res
}

// finish writes the outcome to the journal and tells the observers.
func (r *run) finish(outcome, reason string) *Result {
	res := r.result(outcome, reason)
	jout := outcome
	if outcome == OutcomeNoop {
		jout = journal.OutcomeSuccess
	}
	if err := r.jw.Append(journal.Event{Type: journal.TypeFinished, Outcome: jout, Err: reason,
		Who: r.who, Duration: res.Duration, Message: outcomeMessage(outcome)}); err != nil {
		r.e.log.Error("journal finish failed", "deploy", r.id, "err", err)
	}
	r.emit(Event{Type: EventFinished, Outcome: outcome, Reason: reason, From: r.from, To: r.sha,
		Total: res.Hosts, OK: res.OK, Failed: len(res.Failed), Duration: res.Duration})
	r.e.log.Info("deploy finished", "deploy", r.id, "service", r.svc.Name, "outcome", outcome, "reason", reason)
	return res
}

func outcomeMessage(outcome string) string {
	if outcome == OutcomeNoop {
		return "no-op: the revision was already live on every host"
	}
	return ""
}

// deploy runs the groups. The error is the context's, when it ended the
// deploy (the journal then stays unfinished).
func (r *run) deploy(ctx context.Context) (*Result, error) {
	r.dialAll(ctx)
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
	}
	// Only when the journal says this revision (or nothing) was deployed
	// last can every host already run it: then ask them (one session each).
	if !r.force && (r.from == r.sha || r.from == "") && r.alreadyLive(ctx) {
		for h := range r.hostCfg {
			r.okHosts[h] = true
		}
		return r.finish(OutcomeNoop, ""), nil
	}
	gs := groups(r.svc)
	for gi, g := range gs {
		if gi > 0 && g.Pause {
			ans := r.ask(ctx, PromptPause, g.Name, fmt.Sprintf("paused before group %s (%d hosts): continue or rollback?", g.Name, len(g.Hosts)))
			if ctx.Err() != nil {
				return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
			}
			if ans == Rollback {
				return r.rollbackAll(ctx, "rolled back at the pause before "+g.Name)
			}
		}
		stop, reason := r.runGroup(ctx, gi == 0 && g.Name == "canary" && len(r.svc.Canary) > 0, g)
		if ctx.Err() != nil {
			return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
		}
		if stop {
			return r.rollbackAll(ctx, reason)
		}
	}
	r.finalizeAll(ctx)
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
	}
	reason := ""
	if len(r.failed) > 0 {
		reason = fmt.Sprintf("%d host(s) failed within the failure limit", len(r.failed))
	}
	return r.finish(OutcomeSuccess, reason), nil
}

// runGroup deploys one group and decides, asking when needed, whether the
// deploy stops (and is rolled back).
func (r *run) runGroup(ctx context.Context, canary bool, g config.Group) (stop bool, reason string) {
	start := time.Now()
	r.mu.Lock()
	r.order = append(r.order, g.Name)
	r.mu.Unlock()
	r.journal(journal.Event{Type: journal.TypeGroupStarted, Group: g.Name, Message: fmt.Sprintf("%d hosts, %d at a time", len(g.Hosts), g.Parallel)})
	r.emit(Event{Type: EventGroupStarted, Group: g.Name, Total: len(g.Hosts)})

	pending := make([]string, 0, len(g.Hosts))
	for _, h := range g.Hosts {
		pending = append(pending, h.String())
	}
	var failed, ok int
	for len(pending) > 0 {
		var rest []string
		f, o, aborted := r.runHosts(ctx, g, pending, &rest)
		failed += f
		ok += o
		pending = rest
		if ctx.Err() != nil {
			return true, ctx.Err().Error()
		}
		if aborted && ctx.Err() == nil {
			ans := r.ask(ctx, PromptAborted, g.Name, fmt.Sprintf("deploy aborted during group %s (%d ok, %d failed, %d not started): continue or rollback?", g.Name, ok, failed, len(pending)))
			if ans == Rollback {
				r.groupFinished(g, ok, failed, journal.OutcomeAborted, start)
				return true, "aborted by the operator during group " + g.Name
			}
			r.mu.Lock()
			r.abort = make(chan struct{})
			r.aborted = false
			r.mu.Unlock()
		}
	}
	allowed := g.FailureLimit.Allowed(len(g.Hosts))
	if canary {
		allowed = 0
	}
	if failed <= allowed {
		r.groupFinished(g, ok, failed, journal.OutcomeSuccess, start)
		return false, ""
	}
	r.groupFinished(g, ok, failed, journal.OutcomeFailed, start)
	kind, text := PromptGroupFailed, fmt.Sprintf("group %s failed: %d of %d hosts failed (limit %d): continue or rollback?", g.Name, failed, len(g.Hosts), allowed)
	if canary {
		kind, text = PromptCanaryFailed, fmt.Sprintf("canary failed: %d of %d hosts failed: continue or rollback?", failed, len(g.Hosts))
	}
	if r.ask(ctx, kind, g.Name, text) == Continue {
		return false, ""
	}
	if canary {
		return true, "canary failed"
	}
	return true, fmt.Sprintf("group %s failed: %d of %d hosts", g.Name, failed, len(g.Hosts))
}

func (r *run) groupFinished(g config.Group, ok, failed int, outcome string, start time.Time) {
	r.journal(journal.Event{Type: journal.TypeGroupFinished, Group: g.Name, Outcome: outcome,
		Message: fmt.Sprintf("%d/%d ok, %d failed", ok, len(g.Hosts), failed), Duration: time.Since(start)})
	r.emit(Event{Type: EventGroupFinished, Group: g.Name, Total: len(g.Hosts), OK: ok, Failed: failed, Outcome: outcome, Duration: time.Since(start)})
}

// runHosts deploys hosts, g.Parallel at a time, until they are done or an
// abort stops new ones from starting (they are put in *rest).
func (r *run) runHosts(ctx context.Context, g config.Group, hosts []string, rest *[]string) (failed, ok int, aborted bool) {
	par := max(g.Parallel, 1)
	if m := r.e.cfg.Deploy.SSH.MaxConnections; m > 0 {
		par = min(par, m)
	}
	sem := make(chan struct{}, par)
	var wg sync.WaitGroup
	var mu sync.Mutex
	r.mu.Lock()
	abort := r.abort
	r.mu.Unlock()
	for i, h := range hosts {
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-abort:
		case <-ctx.Done():
		}
		release := func() {
			if acquired {
				<-sem
			}
		}
		if ctx.Err() != nil {
			release()
			break
		}
		select {
		case <-abort:
			aborted = true
		default:
		}
		if aborted {
			*rest = append(*rest, hosts[i:]...)
			release()
			break
		}
		wg.Add(1)
		go func(host string) {
			defer wg.Done()
			defer func() { <-sem }()
			good := r.deployHost(ctx, g.Name, host)
			mu.Lock()
			if good {
				ok++
			} else {
				failed++
			}
			mu.Unlock()
		}(h)
	}
	wg.Wait()
	if !aborted {
		select {
		case <-abort: // during the last hosts: ask before the next group
			aborted = true
		default:
		}
	}
	return failed, ok, aborted
}

// deployHost deploys and checks one host; it reports whether it passed.
func (r *run) deployHost(ctx context.Context, group, host string) bool {
	fail := func(reason string, checks []remote.CheckResult) bool {
		reason = oneLine(reason)
		r.mu.Lock()
		r.failed = append(r.failed, HostFailure{Host: host, Group: group, Reason: reason})
		r.mu.Unlock()
		r.journal(journal.Event{Type: journal.TypeHostFailed, Group: group, Host: host, Err: reason})
		r.emit(Event{Type: EventHostFailed, Group: group, Host: host, Reason: reason, Checks: checks})
		return false
	}
	c, err := r.conn(ctx, host)
	if err != nil {
		return fail(hostReason(err), nil)
	}
	// One session runs fetch, checkout, promote and restart; their results
	// are journaled when it ends. A deploy interrupted meanwhile shows the
	// host "interrupted during deploy": its state is unknown.
	r.journal(journal.Event{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: stageDeploy,
		Command: fmt.Sprintf("deploy %s (fetch, checkout, promote, restart)", r.sha)})
	r.mu.Lock()
	r.changed[host] = true
	r.mu.Unlock()
	stages, err := c.Deploy(ctx, r.target, r.sha, r.force, r.e.commandTimeout())
	for _, st := range stages {
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
		r.journal(ev)
	}
	if err != nil {
		return fail(stageReason(err), nil)
	}
	// Checks.
	var checks []remote.CheckResult
	if r.svc.Port > 0 {
		checks = append(checks, c.CheckPort(ctx, r.svc.Port, r.svc.PortTimeout.D()))
	}
	if len(checks) == 0 || checks[0].OK {
		for _, chk := range r.svc.Checks {
			res := c.Check(ctx, r.target, chk)
			checks = append(checks, res)
			if !res.OK {
				break
			}
		}
	}
	var bad []remote.CheckResult
	for _, cr := range checks {
		r.journal(journal.Event{Type: journal.TypeCheck, Group: group, Host: host, Stage: journal.StageCheck, Check: checkRecord(cr, r.svc)})
		r.emit(Event{Type: EventCheckResult, Group: group, Host: host, Checks: []remote.CheckResult{cr}})
		if !cr.OK {
			bad = append(bad, cr)
		}
	}
	if len(bad) > 0 {
		return fail(checkReason(bad[0]), bad)
	}
	r.mu.Lock()
	r.okHosts[host] = true
	r.mu.Unlock()
	r.journal(journal.Event{Type: journal.TypeHostDone, Group: group, Host: host, Rev: r.sha})
	r.emit(Event{Type: EventHostDone, Group: group, Host: host})
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

// ask puts a question to the operator, with the service's prompt timeout;
// no answer, or an error, is the default (Rollback).
func (r *run) ask(ctx context.Context, kind, group, text string) Answer {
	pt := r.svc.PromptTimeout.D()
	if pt <= 0 {
		pt = 10 * time.Minute
	}
	p := Prompt{Service: r.svc.Name, DeployID: r.id, Kind: kind, Group: group, Text: text, Default: Rollback, Deadline: time.Now().Add(pt)}
	r.journal(journal.Event{Type: journal.TypePrompt, Group: group, Prompt: text, Message: kind})
	r.emit(Event{Type: EventPrompt, Group: group, Prompt: &p})
	ans, who := Rollback, "timeout"
	if r.p != nil {
		actx, cancel := context.WithDeadline(ctx, p.Deadline)
		ch := make(chan Answer, 1)
		go func() {
			a, err := r.p.Ask(actx, p)
			if err != nil || (a != Rollback && a != Continue) {
				a = ""
			}
			ch <- a
		}()
		select {
		case a := <-ch:
			if a != "" {
				ans, who = a, r.who
			} else {
				who = "default"
			}
		case <-actx.Done():
			if ctx.Err() != nil {
				who = "canceled"
			}
		}
		cancel()
	}
	r.journal(journal.Event{Type: journal.TypeAnswer, Group: group, Answer: string(ans), Who: who})
	r.emit(Event{Type: EventAnswer, Group: group, Prompt: &p, Answer: ans, Who: who})
	return ans
}

// rollbackAll rolls back every host the deploy touched, newest group
// first, and finishes the deploy.
func (r *run) rollbackAll(ctx context.Context, reason string) (*Result, error) {
	r.note("rolling back: " + reason)
	byGroup := map[string][]string{}
	r.mu.Lock()
	for h := range r.changed {
		byGroup[r.hostGrp[h]] = append(byGroup[r.hostGrp[h]], h)
	}
	order := append([]string(nil), r.order...)
	r.mu.Unlock()
	par := map[string]int{}
	for _, g := range groups(r.svc) {
		par[g.Name] = g.Parallel
	}
	allOK := r.rollbackGroups(ctx, order, byGroup, par)
	if ctx.Err() != nil {
		return r.result(OutcomeInterrupted, ctx.Err().Error()), ctx.Err()
	}
	if !allOK {
		return r.finish(OutcomeFailed, reason+"; the rollback did not restore every host"), nil
	}
	return r.finish(OutcomeRolledBack, reason), nil
}

// rollbackGroups rolls back the hosts of each group, groups in reverse
// order; it reports whether every host was restored and passed its checks.
func (r *run) rollbackGroups(ctx context.Context, order []string, byGroup map[string][]string, par map[string]int) bool {
	allOK := true
	for i := len(order) - 1; i >= 0; i-- {
		g := order[i]
		hosts := byGroup[g]
		if len(hosts) == 0 {
			continue
		}
		sort.Strings(hosts)
		p := par[g]
		if p <= 0 {
			p = len(hosts)
		}
		sem := make(chan struct{}, p)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, failed := 0, 0
		for _, h := range hosts {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				good := r.rollbackHost(ctx, g, h)
				mu.Lock()
				if good {
					ok++
				} else {
					failed++
				}
				mu.Unlock()
			}()
		}
		wg.Wait()
		if failed > 0 {
			allOK = false
		}
		r.emit(Event{Type: EventRollback, Group: g, Total: len(hosts), OK: ok, Failed: failed})
	}
	return allOK
}

func (r *run) rollbackHost(ctx context.Context, group, host string) bool {
	fail := func(reason string) bool {
		reason = "rollback: " + oneLine(reason)
		r.mu.Lock()
		r.failed = append(r.failed, HostFailure{Host: host, Group: group, Reason: reason})
		r.mu.Unlock()
		r.journal(journal.Event{Type: journal.TypeHostFailed, Group: group, Host: host, Stage: journal.StageRollback, Err: reason})
		r.emit(Event{Type: EventHostFailed, Group: group, Host: host, Reason: reason})
		return false
	}
	c, err := r.conn(ctx, host)
	if err != nil {
		return fail(hostReason(err))
	}
	r.journal(journal.Event{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: journal.StageRollback, Command: "rollback to the last done revision"})
	cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
	st, rev, err := c.Rollback(cctx, r.target)
	cancel()
	ev := journal.Event{Type: journal.TypeStage, Group: group, Host: host, Stage: journal.StageRollback,
		Command: st.Command, Duration: st.Duration, Output: st.Output, Rev: rev}
	if st.ExitCode >= 0 {
		ev.ExitCode = journal.Code(st.ExitCode)
	}
	if err != nil {
		ev.Err = oneLine(err.Error())
		ev.Rev = ""
	}
	r.journal(ev)
	if err != nil {
		if errors.Is(err, remote.ErrNothingToRollBack) {
			return fail(err.Error())
		}
		return fail(stageReason(err))
	}
	// Re-check.
	var bad []remote.CheckResult
	if r.svc.Port > 0 {
		cr := c.CheckPort(ctx, r.svc.Port, r.svc.PortTimeout.D())
		r.journal(journal.Event{Type: journal.TypeCheck, Group: group, Host: host, Stage: journal.StageCheck, Check: checkRecord(cr, r.svc)})
		if !cr.OK {
			bad = append(bad, cr)
		}
	}
	if len(bad) == 0 {
		for _, chk := range r.svc.Checks {
			cr := c.Check(ctx, r.target, chk)
			r.journal(journal.Event{Type: journal.TypeCheck, Group: group, Host: host, Stage: journal.StageCheck, Check: checkRecord(cr, r.svc)})
			if !cr.OK {
				bad = append(bad, cr)
				break
			}
		}
	}
	r.journal(journal.Event{Type: journal.TypeRolledBackHost, Group: group, Host: host, Rev: rev})
	r.mu.Lock()
	r.rolled = append(r.rolled, HostRev{Host: host, Rev: rev})
	delete(r.okHosts, host)
	r.mu.Unlock()
	if len(bad) > 0 {
		return fail(fmt.Sprintf("restored %s but %s", short(rev), checkReason(bad[0])))
	}
	return true
}

// finalizeAll finalizes every host that passed, all at once (a Finalize is
// short: mark done, prune).
func (r *run) finalizeAll(ctx context.Context) {
	r.mu.Lock()
	var hosts []string
	for h, ok := range r.okHosts {
		if ok {
			hosts = append(hosts, h)
		}
	}
	r.mu.Unlock()
	sort.Strings(hosts)
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g := r.hostGrp[h]
			c, err := r.conn(ctx, h)
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
				var st remote.StageResult
				st, err = c.Finalize(cctx, r.target, r.sha)
				cancel()
				ev := journal.Event{Type: journal.TypeStage, Group: g, Host: h, Stage: journal.StageFinalize,
					Command: st.Command, Duration: st.Duration, Output: st.Output}
				if st.ExitCode >= 0 {
					ev.ExitCode = journal.Code(st.ExitCode)
				}
				if err != nil {
					ev.Err = oneLine(err.Error())
				}
				r.journal(ev)
			}
			if err != nil {
				reason := "finalize: " + oneLine(stageReason(err))
				r.mu.Lock()
				r.failed = append(r.failed, HostFailure{Host: h, Group: g, Reason: reason})
				r.okHosts[h] = false
				r.mu.Unlock()
				r.journal(journal.Event{Type: journal.TypeHostFailed, Group: g, Host: h, Stage: journal.StageFinalize, Err: reason})
				r.emit(Event{Type: EventHostFailed, Group: g, Host: h, Reason: reason})
			}
		}()
	}
	wg.Wait()
}
