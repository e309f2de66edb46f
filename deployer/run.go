package deployer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"deploybot/config"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// run is one deploy (or recovery) in progress: the engine's whole record
// of it. Front ends see it through Engine.Active and act on it through
// Engine.Answer and Engine.Abort.
type run struct {
	e      *Engine
	svc    *config.Service
	id     string
	who    string
	nick   string // beside who, when known
	source string
	sha    string // the revision being deployed
	from   string // the revision deployed before
	force  bool
	// recovery: the run rolls back a deploy whose process died.
	recovery bool
	target   remote.Target
	jw       journal.EventWriter
	obs      Observer
	p        Prompter
	start    time.Time

	// stop ends the run's context when its lock is fenced (see fenced).
	stop context.CancelCauseFunc

	// firstSession is closed (once, by started) when the first deploy
	// session is about to open, or the first group ended without one:
	// the other hosts are dialed from then on (dialAhead), so their
	// handshakes do not compete with the canary's start for the CPU.
	firstSession chan struct{}
	startedOnce  sync.Once

	mu     sync.Mutex
	hosts  map[string]*hostRun // every host of the service
	order  []string            // groups started so far, in order
	failed []HostFailure
	rolled []HostRev
	stage  string // Stage* of Live
	group  string // the group in progress
	prompt *openPrompt
	abort  chan struct{} // closed by Abort; renewed when the operator continues
	// stale: hosts where a deploy whose process died may have left an
	// operation running (it was in flight there), with that deploy's id:
	// it is stopped before anything else runs on the host.
	stale   map[string]string
	stopped int // hosts where such an operation was found and stopped

	gcHeld int // hosts counted in flight for the collector (gcHosts), until closeConns
}

// started closes firstSession, the first time only.
func (r *run) started() { r.startedOnce.Do(func() { close(r.firstSession) }) }

// hostRun is what the run knows of one host.
type hostRun struct {
	cfg   config.Host
	group string
	conn  Host
	// dialing is closed when the dial in progress ends (nil: none);
	// dialErr is why the last dial failed.
	dialing chan struct{}
	dialErr error
	// changed: a deploy session started on the host, so a rollback must
	// cover it. ok: it passed every stage and check and was not rolled
	// back since. failed: it counts as failed. inFlight: a stage runs.
	// finalized: the revision was marked done there. marking: a finalize
	// of the revision began there (this run's or, in a recovery, the
	// interrupted deploy's), so the host's done mark may be this deploy's.
	changed, ok, failed, inFlight, finalized, marking bool
}

func (e *Engine) newRun(s *config.Service, id, who, source string, p Prompter, obs Observer) *run {
	r := &run{e: e, svc: s, id: id, who: who, source: source, p: p, obs: obs, start: time.Now(),
		abort: make(chan struct{}), hosts: map[string]*hostRun{}, stage: StagePreparing, firstSession: make(chan struct{})}
	for _, g := range s.Rollout() {
		for _, h := range g.Hosts {
			r.hosts[h.String()] = &hostRun{cfg: h, group: g.Name}
		}
	}
	return r
}

// host returns the record of name (one is made for a host no longer
// configured, e.g. one recovered from an old journal).
func (r *run) host(name string) *hostRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[name]
	if h == nil {
		h = &hostRun{}
		if hc, err := config.ParseHost(name); err == nil {
			h.cfg = hc
		}
		r.hosts[name] = h
	}
	return h
}

// update changes the record of host under the run's lock.
func (r *run) update(host string, fn func(h *hostRun)) {
	h := r.host(host)
	r.mu.Lock()
	fn(h)
	r.mu.Unlock()
}

func (r *run) setStage(stage, group string) {
	r.mu.Lock()
	r.stage, r.group = stage, group
	r.mu.Unlock()
}

func (r *run) emit(ev Event) {
	ev.Time = time.Now().UTC()
	ev.Service = r.svc.Name
	ev.DeployID = r.id
	if r.obs != nil {
		r.obs.Observe(ev)
	}
	if w := r.e.observer(); w != nil {
		w.Observe(ev)
	}
}

func (r *run) journal(ev journal.Event) {
	if r.jw == nil {
		return
	}
	if err := r.jw.Append(ev); err != nil {
		r.e.log.Error("journal append failed", "deploy", r.id, "err", err)
		if r.stop != nil {
			r.stop(fmt.Errorf("journal: %w", err))
		}
	}
}

// journalResult journals ev, a result that no change on a host waits for
// (a stage's, a check's), without waiting for it to be durable when the
// journal can (journal.LazyAppender): the next event that must be durable
// — the host done or failed, the next stage started — makes it so, and
// hosts deploying at once share fewer fsyncs.
func (r *run) journalResult(ev journal.Event) {
	la, ok := r.jw.(journal.LazyAppender)
	if !ok {
		r.journal(ev)
		return
	}
	if err := la.AppendLazy(ev); err != nil {
		r.e.log.Error("journal append failed", "deploy", r.id, "err", err)
		if r.stop != nil {
			r.stop(fmt.Errorf("journal: %w", err))
		}
	}
}

func (r *run) note(msg string) { r.journal(journal.Event{Type: journal.TypeNote, Message: msg}) }

func (r *run) closeConns() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gcHeld > 0 {
		gcHosts(-r.gcHeld)
		r.gcHeld = 0
	}
	for _, h := range r.hosts {
		if h.conn != nil {
			h.conn.Close()
		}
	}
}

// conn returns the connection to host, dialing it (again) when there is
// none or it was lost. Callers asking while a dial of the host is in
// progress share it, and its error.
func (r *run) conn(ctx context.Context, host string) (Host, error) {
	h := r.host(host)
	r.mu.Lock()
	for {
		if h.conn != nil && h.conn.Err() == nil {
			c := h.conn
			r.mu.Unlock()
			return c, nil
		}
		wait := h.dialing
		if wait == nil {
			break
		}
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		r.mu.Lock()
		if h.dialing == nil && h.dialErr != nil && (h.conn == nil || h.conn.Err() != nil) {
			err := h.dialErr
			r.mu.Unlock()
			return nil, err
		}
	}
	done := make(chan struct{})
	h.dialing, h.dialErr = done, nil
	hc := h.cfg
	r.mu.Unlock()
	c, err := r.dial(ctx, hc)
	r.mu.Lock()
	h.dialing, h.dialErr = nil, err
	if err == nil {
		h.conn = c
	}
	r.mu.Unlock()
	close(done)
	return c, err
}

// dial connects to hc within the engine's bound on dials in flight.
func (r *run) dial(ctx context.Context, hc config.Host) (Host, error) {
	r.mu.Lock()
	if r.gcHeld == 0 {
		// From the first dial to closeConns, the run's hosts count for
		// the garbage collector's target (gc.go).
		r.gcHeld = len(r.hosts)
		gcHosts(r.gcHeld)
	}
	r.mu.Unlock()
	if slots := r.e.dialSlots; slots != nil {
		select {
		case slots <- struct{}{}:
			defer func() { <-slots }()
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return r.e.dialer.Dial(ctx, hc)
}

// result is the run's Result as it stands.
func (r *run) result(outcome Outcome, reason string) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := &Result{ID: r.id, Service: r.svc.Name, Outcome: outcome, From: r.from, To: r.sha,
		Hosts: len(r.svc.AllHosts()), Reason: reason, Duration: time.Since(r.start)}
	for _, h := range r.hosts {
		if h.ok {
			res.OK++
		}
	}
	res.Failed = append(res.Failed, r.failed...)
	res.RolledBack = append(res.RolledBack, r.rolled...)
	res.Stopped = r.stopped
	return res
}

// finishJournal writes the outcome to the journal; the finished event goes
// to the observers later (emitFinished), once the locks are let go, so
// that a command typed on seeing it is not refused.
func (r *run) finishJournal(outcome Outcome, reason string) *Result {
	res := r.result(outcome, reason)
	msg := ""
	if outcome == OutcomeNoop {
		msg = "no-op: the revision was already live on every host"
	}
	r.journal(journal.Event{Type: journal.TypeFinished, Outcome: outcome, Err: reason,
		Who: r.who, Duration: res.Duration, Message: msg})
	r.e.log.Info("deploy finished", "deploy", r.id, "service", r.svc.Name, "outcome", outcome, "reason", reason)
	return res
}

func (r *run) emitFinished(res *Result) {
	r.emit(Event{Type: EventFinished, Outcome: res.Outcome, Reason: res.Reason, From: r.from, To: r.sha,
		Total: res.Hosts, OK: res.OK, Failed: len(res.Failed), Duration: res.Duration, Recovery: r.recovery})
}

// stopGrace is how long the operation a dead deploy left on a host gets
// to end after TERM before it is killed.
const stopGrace = 5 * time.Second

// stopStale makes sure the operation a dead deploy left on host is gone
// before anything else runs there (see run.stale); the journal records
// what was found and done. An error means the host must not be touched.
func (r *run) stopStale(ctx context.Context, c Host, group, host string) error {
	r.mu.Lock()
	op := r.stale[host]
	r.mu.Unlock()
	if op == "" {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, r.e.commandTimeout())
	res, err := c.Stop(cctx, r.target, op, stopGrace)
	cancel()
	if err != nil {
		r.journal(journal.Event{Type: journal.TypeNote, Group: group, Host: host, Err: oneLine(err.Error()),
			Message: "could not stop what deploy " + op + " left running"})
		return fmt.Errorf("could not stop what deploy %s left running: %v", op, err)
	}
	r.mu.Lock()
	delete(r.stale, host)
	if res.Found {
		r.stopped++
	}
	r.mu.Unlock()
	msg := "nothing of deploy " + op + " left running"
	if res.Found {
		msg = fmt.Sprintf("stopped the %s of deploy %s left running (process group %d) with %s, gone after %s",
			res.Kind, op, res.PGID, res.Signal, res.Waited.Round(10*time.Millisecond))
		r.emit(Event{Type: EventStopped, Group: group, Host: host, Message: msg})
	}
	r.journal(journal.Event{Type: journal.TypeNote, Group: group, Host: host, Message: msg})
	return nil
}

// staleHosts are the hosts where deploy d was in flight when its process
// died, each with d's id.
func staleHosts(d *Deploy) map[string]string {
	out := map[string]string{}
	for h, hs := range d.HostState {
		if hs.InFlight {
			out[h] = d.Meta.ID
		}
	}
	return out
}

// register makes r the running deploy of its service in this engine.
func (e *Engine) register(r *run) {
	e.mu.Lock()
	e.running[r.svc.Name] = r
	e.mu.Unlock()
}

func (e *Engine) unregister(r *run) {
	e.mu.Lock()
	if e.running[r.svc.Name] == r {
		delete(e.running, r.svc.Name)
	}
	e.mu.Unlock()
}

func (e *Engine) commandTimeout() time.Duration { return e.cfg.Deploy.SSH.CommandTimeout.D() }
