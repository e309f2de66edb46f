package bot

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer"
	"deploybot/deployer/journal"
	"deploybot/e2e/scale"
)

// fakeEngine stands in for the deployment engine in fast tests of the
// commands: it records requests and plays a script of events. Locks,
// status and history are a real engine's, on the test's journal
// directory.
type fakeEngine struct {
	*deployer.Engine
	mu       sync.Mutex
	reqs     []deployer.Request
	answers  []deployer.Answer
	who      []string // who answered
	aborts   []string
	recovers []string
	resumes  []string
	// prompt: Deploy asks a canary-failed question and waits.
	prompt     bool
	promptWait time.Duration
	open       chan deployer.Answer // the open question's answer
	refuse     error
	delay      time.Duration // before anything happens
	running    map[string]bool
	unfinished []*journal.Deploy
	done       chan struct{}
}

func (f *fakeEngine) Deploy(ctx context.Context, req deployer.Request, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error) {
	defer func() { f.done <- struct{}{} }()
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	f.mu.Unlock()
	time.Sleep(f.delay)
	if f.refuse != nil {
		return nil, f.refuse
	}
	ev := func(e deployer.Event) {
		e.Service, e.DeployID = req.Service, "D1"
		obs.Observe(e)
	}
	ev(deployer.Event{Type: deployer.EventStarted, Who: req.Who, From: revA, To: revB, Total: 3})
	outcome := deployer.OutcomeSuccess
	if f.prompt {
		pr := deployer.Prompt{Service: req.Service, DeployID: "D1", Kind: deployer.PromptCanaryFailed, Group: "canary", Default: deployer.Rollback, Deadline: time.Now().Add(f.promptWait)}
		ch := make(chan deployer.Answer, 1)
		f.mu.Lock()
		f.open = ch
		f.mu.Unlock()
		ev(deployer.Event{Type: deployer.EventPrompt, Group: "canary", Prompt: &pr})
		ans, who := pr.Default, deployer.AnsweredByTimeout
		select {
		case ans = <-ch:
			f.mu.Lock()
			who = f.who[len(f.who)-1]
			f.mu.Unlock()
		case <-time.After(f.promptWait):
		}
		f.mu.Lock()
		f.open = nil
		f.answers = append(f.answers, ans)
		f.mu.Unlock()
		ev(deployer.Event{Type: deployer.EventAnswer, Group: "canary", Prompt: &pr, Answer: ans, Who: who})
		if ans == deployer.Rollback {
			outcome = deployer.OutcomeRolledBack
		}
	}
	res := &deployer.Result{ID: "D1", Service: req.Service, Outcome: outcome}
	if req.Revert {
		if err := f.Engine.Lock(req.Service, deployer.Holder{Who: req.Who, Nick: req.Nick, Why: deployer.RevertLockReason(req.Who)}); err != nil {
			res.LockErr = err
		} else {
			res.Locked = &deployer.Holder{Who: req.Who, Why: deployer.RevertLockReason(req.Who)}
		}
	}
	ev(deployer.Event{Type: deployer.EventFinished, Outcome: outcome, From: revA, To: revB, Reason: "canary failed", Duration: time.Second})
	return res, nil
}

func (f *fakeEngine) Answer(service string, ans deployer.Answer, who string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.open == nil {
		if f.running[service] {
			return deployer.ErrNoPrompt
		}
		return deployer.ErrNotRunning
	}
	select {
	case f.open <- ans:
		f.who = append(f.who, who)
		return nil
	default:
		return deployer.ErrAnswered
	}
}

func (f *fakeEngine) Abort(service string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aborts = append(f.aborts, service)
	if f.running[service] {
		return nil
	}
	return deployer.ErrNotRunning
}

func (f *fakeEngine) Unfinished() ([]*journal.Deploy, error) { return f.unfinished, nil }

func (f *fakeEngine) Interrupted(service string) (*journal.Deploy, error) {
	for _, d := range f.unfinished {
		if d.Meta.Service == service {
			return d, nil
		}
	}
	return nil, nil
}

func (f *fakeEngine) Recover(ctx context.Context, id string, action deployer.RecoverAction, who string, obs deployer.Observer) (*deployer.Result, error) {
	defer func() { f.done <- struct{}{} }()
	f.mu.Lock()
	f.recovers = append(f.recovers, id+" "+who)
	f.mu.Unlock()
	obs.Observe(deployer.Event{Type: deployer.EventStarted, Service: "citoid", DeployID: id, Who: who, From: revB, To: revA, Backwards: true, Recovery: true, Total: 3})
	obs.Observe(deployer.Event{Type: deployer.EventFinished, Service: "citoid", DeployID: id, Outcome: deployer.OutcomeRolledBack, From: revA, To: revB, Reason: "interrupted deploy rolled back by " + who, Recovery: true})
	return &deployer.Result{ID: id, Outcome: deployer.OutcomeRolledBack}, nil
}

func (f *fakeEngine) AwaitPrompt(ctx context.Context, id, who string, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error) {
	return nil, deployer.ErrNoPendingPrompt
}

func (f *fakeEngine) Resume(ctx context.Context, id, who string, obs deployer.Observer, p deployer.Prompter) (*deployer.Result, error) {
	defer func() { f.done <- struct{}{} }()
	f.mu.Lock()
	f.resumes = append(f.resumes, id+" "+who)
	f.mu.Unlock()
	return &deployer.Result{ID: id, Outcome: deployer.OutcomeSuccess}, nil
}

// noHosts is the dialer of engines whose targets are never reached.
var noHosts = deployer.DialerFunc(func(ctx context.Context, h config.Host) (deployer.Host, error) {
	return nil, errors.New("no hosts in this test")
})

// realEngine is an engine on b's configuration that reaches no host.
func realEngine(t *testing.T, b *Bot) *deployer.Engine {
	e := deployer.NewWithDialer(b.cfg, nil, noHosts)
	t.Cleanup(func() { e.Close() })
	return e
}

func newEngineBot(t *testing.T) (*Bot, *fakeWire, *fakeEngine) {
	t.Helper()
	b, w := newDeployBot(t)
	f := &fakeEngine{Engine: realEngine(t, b), running: map[string]bool{}, done: make(chan struct{}, 10), promptWait: scale.D(time.Minute)}
	b.SetDeployer(f)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); b.dep.wg.Wait() })
	b.dep.ctx = ctx
	return b, w, f
}

// collect gathers what the bot sends until a line contains want (or one
// of before, lines taken already, does).
func collect(t *testing.T, b *Bot, w *fakeWire, want string, before ...string) []string {
	t.Helper()
	all := before
	deadline := time.Now().Add(scale.D(30 * time.Second))
	for time.Now().Before(deadline) {
		b.out.drainTo(w)
		all = append(all, w.take()...)
		for _, l := range all {
			if strings.Contains(l, want) {
				return all
			}
		}
		time.Sleep(scale.D(5 * time.Millisecond))
	}
	t.Fatalf("no line containing %q; got %q", want, all)
	return nil
}

// wait waits until the engine returned.
func (f *fakeEngine) wait(t *testing.T, b *Bot) {
	t.Helper()
	select {
	case <-f.done:
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("the engine was not called to the end")
	}
}

func TestDeployCommandArguments(t *testing.T) {
	for _, c := range []struct {
		line, rev, msg string
	}{
		{"!deploy citoid", "", ""},
		{"!deploy citoid 5d6e7f8", "5d6e7f8", ""},
		{"!deploy citoid 5d6e7f8 Fix   T1 timeout", "5d6e7f8", "Fix   T1 timeout"},
		{"!deploy citoid add a timeout", "", "add a timeout"},
	} {
		b, w, f := newEngineBot(t)
		got := b.runAs(t, w, "alice", "u", "h", "alice", c.line)
		f.wait(t, b)
		collect(t, b, w, "Finished deploy", got...)
		f.mu.Lock()
		req := f.reqs[0]
		f.mu.Unlock()
		if req.Service != "citoid" || req.Rev != c.rev || req.Message != c.msg || req.Who != "alice" || req.Source != "irc" {
			t.Errorf("%s: request = %+v", c.line, req)
		}
	}
	b, w, f := newEngineBot(t)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid 12ab"), `revision "12ab": too short, want a commit sha1: 7 to 40 hex digits. Usage: !deploy`)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!deploy nosuch"), `unknown service "nosuch"`)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!deploy"), "missing argument. Usage: !deploy <service> [<sha1>] [<message…>]")
	one(t, b.runAs(t, w, "mallory", "u", "h", "mallory", "!deploy citoid"), "you are not a deployer of citoid")
	one(t, b.runAs(t, w, "alice", "u", "h", "", "!deploy citoid"), "you are not a deployer of citoid")
	if len(f.reqs) != 0 {
		t.Fatalf("refused commands reached the engine: %+v", f.reqs)
	}
}

func TestDeployRefusedByEngine(t *testing.T) {
	b, w, f := newEngineBot(t)
	f.refuse = &deployer.LockedError{Service: "citoid", Holder: journal.Holder{Who: "bob", Why: "db migration", Since: time.Now()}, Manual: true}
	got := b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid")
	f.wait(t, b)
	got = collect(t, b, w, "citoid not deployed", got...)
	if len(got) != 1 || !strings.Contains(got[0], "#ops alice: citoid not deployed: ") || !strings.Contains(got[0], "bob") || !strings.Contains(got[0], "db migration") {
		t.Fatalf("reply = %q", got)
	}
}

func TestPromptAnsweredInChannel(t *testing.T) {
	b, w, f := newEngineBot(t)
	f.prompt = true
	collect(t, b, w, "!rollback citoid / !continue citoid", b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid")...)
	// A nick without the account cannot answer; a deployer can.
	one(t, b.runAs(t, w, "alice", "u", "h", "", "!continue citoid"), "you are not a deployer of citoid")
	got := b.runAs(t, w, "alice2", "u", "h", "alice", "!rollback citoid")
	f.wait(t, b)
	got = collect(t, b, w, "Rolled back citoid to 1a2b3c4", got...)
	if !strings.Contains(strings.Join(got, "\n"), "citoid: rolling back") {
		t.Fatalf("lines = %q", got)
	}
	if len(f.answers) != 1 || f.answers[0] != deployer.Rollback || f.who[0] != "alice" {
		t.Fatalf("answers = %v by %v", f.answers, f.who)
	}
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!rollback citoid"), "nothing to answer for citoid")
}

func TestPromptTimeoutTakesDefault(t *testing.T) {
	b, w, f := newEngineBot(t)
	f.prompt, f.promptWait = true, time.Second
	collect(t, b, w, "rolling back in 1s without an answer", b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid")...)
	f.wait(t, b)
	if len(f.answers) != 1 || f.answers[0] != deployer.Rollback {
		t.Fatalf("answers = %v", f.answers)
	}
}

// !revert asks the engine for a revert (which picks the revision) and
// says the service is locked afterwards.
func TestRevertLocks(t *testing.T) {
	b, w, f := newEngineBot(t)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!revert citoid 12"), `revision "12": too short`)
	got := b.runAs(t, w, "alice", "u", "h", "alice", "!revert citoid")
	f.wait(t, b)
	collect(t, b, w, "is locked (reverted by alice) until !unlock citoid", got...)
	if req := f.reqs[0]; !req.Revert || req.Rev != "" || req.Who != "alice" {
		t.Fatalf("request = %+v", req)
	}
	h := held(t, b, "citoid")
	if h == nil || h.Why != "reverted by alice" || h.Who != "alice" {
		t.Fatalf("lock = %+v", h)
	}
	got = b.runAs(t, w, "alice", "u", "h", "alice", "!revert citoid 1a2b3c4d")
	f.wait(t, b)
	collect(t, b, w, "could not lock citoid after the revert", got...)
	if req := f.reqs[1]; !req.Revert || req.Rev != "1a2b3c4d" {
		t.Fatalf("request = %+v", req)
	}
}

func TestAbortCommand(t *testing.T) {
	b, w, f := newEngineBot(t)
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!abort citoid"), "no deploy of citoid is running.")
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!abort citoid now"), "too many arguments. Usage: !abort <service>")
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!rollback citoid x"), "too many arguments. Usage: !rollback <service>")
	f.running["citoid"] = true
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!abort citoid"), "aborting citoid: no new host starts")
	one(t, b.runAs(t, w, "mallory", "u", "h", "mallory", "!abort citoid"), "you are not a deployer of citoid")
	if len(f.aborts) != 2 {
		t.Fatalf("aborts = %v", f.aborts)
	}
}

func TestRollbackOfInterruptedDeploy(t *testing.T) {
	b, w, f := newEngineBot(t)
	d := &journal.Deploy{Meta: journal.Meta{ID: "citoid-D0", Service: "citoid", Who: "bob", Rev: revB, FromRev: revA,
		Started: time.Now(), Hosts: map[string][]string{"canary": {"scb1001"}, "eqiad": {"scb1002", "scb1003"}}, GroupOrder: []string{"canary", "eqiad"}},
		HostState: map[string]journal.HostState{
			"scb1001": {Host: "scb1001", Group: "canary", Stage: "deploy", OK: true, Rev: revB},
			"scb1002": {Host: "scb1002", Group: "eqiad", Stage: "deploy", InFlight: true},
		}}
	f.unfinished = []*journal.Deploy{d}
	b.postUnfinished()
	got := collect(t, b, w, "was interrupted")
	want := "canary: 1 on 5d6e7f8; eqiad: 1 in flight (state unknown), 1 not reached. !rollback citoid puts them back on 1a2b3c4; !continue citoid finishes the deploy of 5d6e7f8."
	if len(got) != 1 || !strings.Contains(got[0], want) {
		t.Fatalf("posted %q, want it to contain %q", got, want)
	}
	got = b.runAs(t, w, "alice", "u", "h", "alice", "!rollback citoid")
	f.wait(t, b)
	collect(t, b, w, "Rolled back citoid to 1a2b3c4", got...)
	if len(f.recovers) != 1 || f.recovers[0] != "citoid-D0 alice" {
		t.Fatalf("recovers = %v", f.recovers)
	}
}

func TestDeployCommandsWithoutEngine(t *testing.T) {
	b, w, _ := newTestBot(t)
	b.accountTags = true
	one(t, b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid"), "deploys are not enabled")
}

// A deploy slow to start (a slow upstream) is acknowledged, once.
func TestSlowStartAcknowledged(t *testing.T) {
	b, w, f := newEngineBot(t)
	old := slowStart
	slowStart = 20 * time.Millisecond
	defer func() { slowStart = old }()
	f.refuse = errors.New("upstream unreachable")
	f.delay = 100 * time.Millisecond
	got := b.runAs(t, w, "alice", "u", "h", "alice", "!deploy citoid")
	f.wait(t, b)
	got = collect(t, b, w, "citoid not deployed: upstream unreachable", got...)
	if len(got) != 2 || got[0] != "#ops alice: updating the citoid deploy repository…" {
		t.Fatalf("lines = %q", got)
	}
}
