package deployer

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer/fakefleet"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
)

// fleetFixture is an engine whose targets are an in-memory fleet, on a
// real deploy repository (the fixture's upstream, three commits).
type fleetFixture struct {
	*fixture
	fleet *fakefleet.Fleet
	eng   *Engine
}

// newFleetFixture configures service "svc" with the given YAML (the keys
// under services.svc besides repo, upstream and target_dir).
func newFleetFixture(t *testing.T, svcYAML string) *fleetFixture {
	t.Helper()
	f := newFixture(t)
	conf := fmt.Sprintf(`irc: {server: "127.0.0.1:1", nick: bot, channels: ["#ops"]}
sal: {database: %[1]s/sal.db}
deploy:
  deploy_dir: %[1]s/deployment
  journal_dir: %[1]s/deploys
  serve: %[2]s
  ssh: {user: deploy, key_file: %[1]s/id, known_hosts: %[1]s/known_hosts, command_timeout: 1s}
services:
  svc:
    repo: svc/deploy
    upstream: %[3]s
    target_dir: /srv/deployment/svc/deploy
    checks:
      - {name: health, http: "http://127.0.0.1:8080/health"}
%[4]s
`, f.dir, f.cfg.Deploy.Serve, f.upstream, indentYAML(svcYAML, "    "))
	p := filepath.Join(f.dir, "fleet.yaml")
	if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	fl := fakefleet.New()
	eng := NewWithDialer(cfg, nil, DialerFunc(func(ctx context.Context, h config.Host) (Host, error) {
		c, err := fl.Dial(ctx, h)
		if err != nil {
			return nil, err
		}
		return c, nil
	}))
	t.Cleanup(func() { eng.Close() })
	return &fleetFixture{fixture: f, fleet: fl, eng: eng}
}

func indentYAML(s, ind string) string {
	lines := strings.Split(strings.Trim(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = ind + l
	}
	return strings.Join(lines, "\n")
}

// installAll puts every host of svc on rev, done.
func (f *fleetFixture) installAll(rev string) {
	s, _ := f.cfg.Service("svc")
	for _, h := range s.AllHosts() {
		f.fleet.Install(h.String(), rev)
	}
}

// answerer answers every prompt of svc through Engine.Answer as who, the
// moment it is announced, with the answers in turn (the last repeats).
type answerer struct {
	e       *Engine
	who     string
	answers []Answer

	mu      sync.Mutex
	n       int
	prompts []Prompt
	events  []Event
	errs    []error
}

func (a *answerer) Observe(ev Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.events = append(a.events, ev)
	if ev.Type != EventPrompt || len(a.answers) == 0 {
		return
	}
	a.prompts = append(a.prompts, *ev.Prompt)
	ans := a.answers[min(a.n, len(a.answers)-1)]
	a.n++
	if err := a.e.Answer(ev.Service, ans, a.who); err != nil {
		a.errs = append(a.errs, err)
	}
}

func (a *answerer) kinds() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, p := range a.prompts {
		out = append(out, p.Kind)
	}
	return out
}

func (f *fleetFixture) deploy(t *testing.T, obs Observer, req Request) *Result {
	t.Helper()
	if req.Service == "" {
		req.Service = "svc"
	}
	if req.Who == "" {
		req.Who = "alice"
	}
	res, err := f.eng.Deploy(context.Background(), req, obs, nil)
	if err != nil {
		t.Fatalf("deploy: %v", err)
	}
	return res
}

// readJournal reads the journal of deploy id.
func (f *fleetFixture) readJournal(t *testing.T, id string) *journal.Deploy {
	t.Helper()
	p, err := journal.JournalPath(f.cfg.Deploy.JournalDir, "svc", id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := journal.Read(p)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func answersIn(d *journal.Deploy) []string {
	var out []string
	for _, ev := range d.Events {
		if ev.Type == journal.TypeAnswer {
			out = append(out, ev.Answer+" by "+ev.Who)
		}
	}
	return out
}

const twoGroups = `
canary: [c1]
groups:
  - {name: a, hosts: [a1, a2]}
  - {name: b, hosts: [b1, b2]}
`

// A failed canary asks; the answer decides between rollback and going
// on, and the journal names who answered.
func TestCanaryFailure(t *testing.T) {
	for _, c := range []struct {
		name    string
		answer  Answer
		outcome Outcome
		// revisions of c1 and a1 afterwards: "old" or "new"
		c1, a1 string
	}{
		{"rollback", Rollback, OutcomeRolledBack, "old", ""},
		{"continue", Continue, OutcomeSuccess, "new", "new"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFleetFixture(t, twoGroups)
			f.installAll(f.shas[0])
			if c.answer == Rollback {
				f.fleet.BadRevision(f.shas[2]) // healthy again once rolled back
			} else {
				f.fleet.Set("c1", fakefleet.Behavior{FailChecks: []string{"health"}})
			}
			a := &answerer{e: f.eng, who: "bob", answers: []Answer{c.answer}}
			res := f.deploy(t, a, Request{})
			if res.Outcome != c.outcome {
				t.Fatalf("outcome %s (%s), want %s", res.Outcome, res.Reason, c.outcome)
			}
			if got := a.kinds(); !slices.Equal(got, []string{PromptCanaryFailed}) {
				t.Errorf("prompts %v", got)
			}
			want := map[string]string{"old": f.shas[0], "new": f.shas[2], "": f.shas[0]}
			if cur, _, _ := f.fleet.State("c1"); cur != want[c.c1] {
				t.Errorf("c1 on %s, want %s", short(cur), c.c1)
			}
			if cur, _, _ := f.fleet.State("a1"); cur != want[c.a1] {
				t.Errorf("a1 on %s, want %s", short(cur), c.a1)
			}
			if got := answersIn(f.readJournal(t, res.ID)); !slices.Equal(got, []string{string(c.answer) + " by bob"}) {
				t.Errorf("journal answers %v", got)
			}
			if c.answer == Rollback && slices.Contains(f.fleet.Calls(), "deploy a1") {
				t.Error("group a deployed after a canary rolled back")
			}
		})
	}
}

// failure_limit as a count and as a percentage (rounded down) decides
// whether a group fails; unreachable and timed-out hosts count.
func TestFailureLimit(t *testing.T) {
	for _, c := range []struct {
		limit   string
		failing map[string]fakefleet.Behavior
		ask     bool
	}{
		{"1", map[string]fakefleet.Behavior{"g1": {DeployFails: true}}, false},
		{"1", map[string]fakefleet.Behavior{"g1": {DeployFails: true}, "g2": {FailChecks: []string{"health"}}}, true},
		{"50%", map[string]fakefleet.Behavior{"g1": {DeployFails: true}, "g2": {DeployFails: true}}, false},
		{"74%", map[string]fakefleet.Behavior{"g1": {DeployFails: true}, "g2": {DeployFails: true}, "g3": {DeployFails: true}}, true}, // 74% of 4 = 2
		{"2", map[string]fakefleet.Behavior{"g1": {DialErr: &remote.HostError{Host: "g1", Kind: remote.KindUnreachable, Err: errors.New("connection refused")}}, "g2": {Hang: true}}, false},
		{"1", map[string]fakefleet.Behavior{"g1": {DialErr: &remote.HostError{Host: "g1", Kind: remote.KindUnreachable, Err: errors.New("connection refused")}}, "g2": {Hang: true}}, true},
		{"0", nil, false},
	} {
		name := fmt.Sprintf("limit-%s-failing-%d", strings.TrimSuffix(c.limit, "%"), len(c.failing))
		t.Run(name, func(t *testing.T) {
			f := newFleetFixture(t, fmt.Sprintf(`
groups:
  - {name: g, hosts: [g1, g2, g3, g4], failure_limit: %q}
`, c.limit))
			f.installAll(f.shas[0])
			for h, b := range c.failing {
				f.fleet.Set(h, b)
			}
			a := &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}
			res := f.deploy(t, a, Request{})
			asked := len(a.kinds()) > 0
			if asked != c.ask {
				t.Fatalf("asked %v (%v), want %v; outcome %s", asked, a.kinds(), c.ask, res.Outcome)
			}
			wantOutcome := OutcomeSuccess
			if c.ask {
				wantOutcome = OutcomeRolledBack
				if a.kinds()[0] != PromptGroupFailed {
					t.Errorf("prompt %v", a.kinds())
				}
			}
			// A hung host that is rolled back has nothing restored from a
			// failed deploy session; the rest must be.
			if res.Outcome != wantOutcome && !(c.ask && res.Outcome == OutcomeFailed) {
				t.Fatalf("outcome %s (%s), want %s", res.Outcome, res.Reason, wantOutcome)
			}
			if len(res.Failed) < len(c.failing) {
				t.Errorf("failed hosts %v, want at least %d", res.Failed, len(c.failing))
			}
			for _, hf := range res.Failed {
				if b, ok := c.failing[hf.Host]; ok && b.DialErr != nil && !strings.Contains(hf.Reason, "unreachable") {
					t.Errorf("%s failed for %q, want unreachable", hf.Host, hf.Reason)
				}
				if b, ok := c.failing[hf.Host]; ok && b.Hang && !strings.Contains(hf.Reason, "timed out") {
					t.Errorf("%s failed for %q, want a timeout", hf.Host, hf.Reason)
				}
			}
		})
	}
}

// A pause: group asks before it starts.
func TestPause(t *testing.T) {
	for _, ans := range []Answer{Continue, Rollback} {
		t.Run(string(ans), func(t *testing.T) {
			f := newFleetFixture(t, `
canary: [c1]
groups:
  - {name: a, hosts: [a1]}
  - {name: b, hosts: [b1], pause: true}
`)
			f.installAll(f.shas[0])
			a := &answerer{e: f.eng, who: "carol", answers: []Answer{ans}}
			res := f.deploy(t, a, Request{})
			if got := a.kinds(); !slices.Equal(got, []string{PromptPause}) || a.prompts[0].Group != "b" {
				t.Fatalf("prompts %v", a.prompts)
			}
			deployedB := slices.Contains(f.fleet.Calls(), "deploy b1")
			switch ans {
			case Continue:
				if res.Outcome != OutcomeSuccess || !deployedB {
					t.Fatalf("outcome %s, b deployed %v", res.Outcome, deployedB)
				}
			case Rollback:
				if res.Outcome != OutcomeRolledBack || deployedB {
					t.Fatalf("outcome %s, b deployed %v", res.Outcome, deployedB)
				}
				for _, h := range []string{"c1", "a1"} {
					if cur, _, _ := f.fleet.State(h); cur != f.shas[0] {
						t.Errorf("%s on %s after rollback", h, short(cur))
					}
				}
			}
		})
	}
}

// Abort mid-group: the host in flight finishes, no new one starts, and
// the operator is asked; continue finishes the group, rollback restores
// every host touched, newest group first.
func TestAbort(t *testing.T) {
	for _, ans := range []Answer{Continue, Rollback} {
		t.Run(string(ans), func(t *testing.T) {
			f := newFleetFixture(t, `
canary: [c1]
groups:
  - {name: a, hosts: [a1, a2, a3], parallel: 1}
`)
			f.installAll(f.shas[0])
			gate := make(chan struct{})
			f.fleet.Set("a1", fakefleet.Behavior{Gate: gate})
			f.fleet.Started = make(chan string, 10)
			a := &answerer{e: f.eng, who: "bob", answers: []Answer{ans}}
			done := make(chan *Result, 1)
			go func() {
				res, _ := f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "alice"}, a, nil)
				done <- res
			}()
			for h := range f.fleet.Started {
				if h == "a1" {
					break
				}
			}
			if err := f.eng.Abort("svc"); err != nil {
				t.Fatalf("abort: %v", err)
			}
			if l, ok := f.eng.Active("svc"); !ok || l.Stage != StageDeploying || l.Group != "a" || l.InFlight != 1 || l.Done != 1 {
				t.Errorf("active %+v", l)
			}
			close(gate)
			res := <-done
			if got := a.kinds(); !slices.Equal(got, []string{PromptAborted}) {
				t.Fatalf("prompts %v", got)
			}
			calls := f.fleet.Calls()
			switch ans {
			case Continue:
				if res.Outcome != OutcomeSuccess || !slices.Contains(calls, "deploy a3") {
					t.Fatalf("outcome %s, calls %v", res.Outcome, calls)
				}
			case Rollback:
				if res.Outcome != OutcomeRolledBack || slices.Contains(calls, "deploy a2") {
					t.Fatalf("outcome %s, calls %v", res.Outcome, calls)
				}
				if i, j := slices.Index(calls, "rollback a1"), slices.Index(calls, "rollback c1"); i < 0 || j < i {
					t.Errorf("rollback order: %v", calls)
				}
			}
		})
	}
}

// A rollback covers every host changed, newest group first, and checks
// each host again.
func TestRollbackOrderAndRecheck(t *testing.T) {
	f := newFleetFixture(t, `
canary: [c1]
groups:
  - {name: a, hosts: [a1, a2]}
  - {name: b, hosts: [b1, b2], failure_limit: "0"}
`)
	f.installAll(f.shas[0])
	f.fleet.Set("b2", fakefleet.Behavior{DeployFails: true})
	a := &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}
	var rolled []string
	obs := ObserverFunc(func(ev Event) {
		a.Observe(ev)
		if ev.Type == EventRollback {
			rolled = append(rolled, fmt.Sprintf("%s %d/%d", ev.Group, ev.OK, ev.Total))
		}
	})
	res := f.deploy(t, obs, Request{})
	if res.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	if want := []string{"b 2/2", "a 2/2", "canary 1/1"}; !slices.Equal(rolled, want) {
		t.Errorf("rollback events %v, want %v", rolled, want)
	}
	calls := f.fleet.Calls()
	last := func(call string) int {
		i := -1
		for j, c := range calls {
			if c == call {
				i = j
			}
		}
		return i
	}
	if !(last("rollback b2") < last("rollback a1") && last("rollback a2") < last("rollback c1")) {
		t.Errorf("rollback order: %v", calls)
	}
	if last("check c1 health") < last("rollback c1") {
		t.Errorf("c1 not checked after its rollback: %v", calls)
	}
	for _, h := range []string{"c1", "a1", "a2", "b1", "b2"} {
		if cur, _, _ := f.fleet.State(h); cur != f.shas[0] {
			t.Errorf("%s on %s", h, short(cur))
		}
	}
	if len(res.RolledBack) != 5 {
		t.Errorf("rolled back %v", res.RolledBack)
	}
}

// A rollback that cannot restore a host ends the deploy failed.
func TestRollbackFailure(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
	f.installAll(f.shas[0])
	f.fleet.Set("c1", fakefleet.Behavior{FailChecks: []string{"health"}, RollbackFails: true})
	res := f.deploy(t, &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}, Request{})
	if res.Outcome != OutcomeFailed || !strings.Contains(res.Reason, "did not restore every host") {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
}

// A host whose finalize fails counts as failed; the deploy still ends.
func TestFinalizeFailure(t *testing.T) {
	f := newFleetFixture(t, "groups: [{name: a, hosts: [a1, a2], failure_limit: 1}]")
	f.installAll(f.shas[0])
	f.fleet.Set("a2", fakefleet.Behavior{FinalizeFails: true})
	res := f.deploy(t, nil, Request{})
	if res.Outcome != OutcomeSuccess || res.OK != 1 || len(res.Failed) != 1 || res.Failed[0].Host != "a2" || !strings.HasPrefix(res.Failed[0].Reason, "finalize: ") {
		t.Fatalf("result %+v", res)
	}
	if _, done, _ := f.fleet.State("a1"); done != f.shas[2] {
		t.Errorf("a1 done %s", short(done))
	}
	d := f.readJournal(t, res.ID)
	if hs := d.HostState["a2"]; !hs.Failed {
		t.Errorf("journal state of a2: %+v", hs)
	}
}

// A revision live and done on every host is a no-op, unless forced.
func TestNoopUnlessForced(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
	f.installAll(f.shas[2])
	res := f.deploy(t, nil, Request{})
	if res.Outcome != OutcomeNoop || slices.Contains(f.fleet.Calls(), "deploy c1") {
		t.Fatalf("outcome %s, calls %v", res.Outcome, f.fleet.Calls())
	}
	res = f.deploy(t, nil, Request{Force: true})
	if res.Outcome != OutcomeSuccess || !slices.Contains(f.fleet.Calls(), "deploy c1") {
		t.Fatalf("forced: outcome %s, calls %v", res.Outcome, f.fleet.Calls())
	}
}

// No answer by the deadline takes the default, and the journal says so.
func TestPromptTimeoutTakesDefault(t *testing.T) {
	f := newFleetFixture(t, "prompt_timeout: 200ms\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
	f.installAll(f.shas[0])
	f.fleet.BadRevision(f.shas[2])
	var prompt *Prompt
	res := f.deploy(t, ObserverFunc(func(ev Event) {
		if ev.Type == EventPrompt {
			prompt = ev.Prompt
		}
	}), Request{})
	if res.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s", res.Outcome)
	}
	if prompt == nil || prompt.Default != Rollback || time.Until(prompt.Deadline) > 0 {
		t.Fatalf("prompt %+v", prompt)
	}
	d := f.readJournal(t, res.ID)
	if got := answersIn(d); !slices.Equal(got, []string{"rollback by " + AnsweredByTimeout}) {
		t.Errorf("answers %v", got)
	}
	for _, ev := range d.Events {
		if ev.Type == journal.TypePrompt && !ev.Deadline.Equal(prompt.Deadline.UTC()) {
			t.Errorf("journaled deadline %v, announced %v", ev.Deadline, prompt.Deadline)
		}
	}
}

// An answer given the moment the prompt is announced (here: from inside
// the observer, before the engine waits) is honoured; the first answer
// wins and names who gave it; Active shows the open prompt meanwhile.
func TestAnswerAtOnceBySecondDeployer(t *testing.T) {
	f := newFleetFixture(t, "prompt_timeout: 1m\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
	f.installAll(f.shas[0])
	f.fleet.Set("c1", fakefleet.Behavior{FailChecks: []string{"health"}})
	var errs []error
	var live *Live
	start := time.Now()
	res := f.deploy(t, ObserverFunc(func(ev Event) {
		if ev.Type != EventPrompt {
			return
		}
		live, _ = f.eng.Active("svc")
		errs = append(errs, f.eng.Answer("svc", Continue, "bob"))
		errs = append(errs, f.eng.Answer("svc", Rollback, "carol"))
	}), Request{Who: "alice"})
	if time.Since(start) > 30*time.Second {
		t.Fatalf("the answer was not taken at once")
	}
	if res.Outcome != OutcomeSuccess {
		t.Fatalf("outcome %s", res.Outcome)
	}
	if errs[0] != nil || !errors.Is(errs[1], ErrAnswered) {
		t.Fatalf("answer errors %v", errs)
	}
	if live == nil || live.Stage != StageWaiting || live.Prompt == nil || live.Prompt.Kind != PromptCanaryFailed || live.Who != "alice" || live.Failed != 1 {
		t.Fatalf("active during the prompt: %+v", live)
	}
	if got := answersIn(f.readJournal(t, res.ID)); !slices.Equal(got, []string{"continue by bob"}) {
		t.Errorf("journal answers %v", got)
	}
	if err := f.eng.Answer("svc", Continue, "bob"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("answer after the deploy: %v", err)
	}
	if err := f.eng.Answer("svc", "maybe", "bob"); !errors.Is(err, ErrBadAnswer) {
		t.Errorf("bad answer: %v", err)
	}
}

// A terminal Prompter and Engine.Answer both reach the prompt; a prompter
// that gives up (no terminal) takes the default at once.
type fixedPrompter struct {
	ans Answer
	err error
}

func (p fixedPrompter) Ask(ctx context.Context, _ Prompt) (Answer, error) { return p.ans, p.err }

func TestPrompter(t *testing.T) {
	for _, c := range []struct {
		p   fixedPrompter
		out Outcome
		who string
	}{
		{fixedPrompter{ans: Continue}, OutcomeSuccess, "alice"},
		{fixedPrompter{err: errors.New("no terminal")}, OutcomeRolledBack, AnsweredByDefault},
	} {
		f := newFleetFixture(t, "prompt_timeout: 1m\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
		f.installAll(f.shas[0])
		f.fleet.Set("c1", fakefleet.Behavior{FailChecks: []string{"health"}})
		if c.out == OutcomeRolledBack {
			f.fleet.Set("c1", fakefleet.Behavior{})
			f.fleet.BadRevision(f.shas[2])
		}
		res, err := f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "alice"}, nil, c.p)
		if err != nil || res.Outcome != c.out {
			t.Fatalf("%+v: %v %v", c.p, res, err)
		}
		if got := answersIn(f.readJournal(t, res.ID)); len(got) != 1 || !strings.HasSuffix(got[0], " by "+c.who) {
			t.Errorf("answers %v, want by %s", got, c.who)
		}
	}
}

// Revert picks the last good revision before the live one, and locks the
// service before the deploy lock is let go: a deploy asked for on seeing
// the finish is refused by the manual lock, never run.
func TestRevert(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
	if _, err := f.eng.Revert(context.Background(), Request{Service: "svc", Who: "carol"}, nil, nil); err == nil || !strings.Contains(err.Error(), "no successful deploy recorded") {
		t.Fatalf("revert with no history: %v", err)
	}
	for _, sha := range f.shas[:2] {
		if res := f.deploy(t, nil, Request{Rev: sha}); res.Outcome != OutcomeSuccess {
			t.Fatalf("deploy %s: %s", short(sha), res.Outcome)
		}
	}
	var afterFinish error
	res, err := f.eng.Revert(context.Background(), Request{Service: "svc", Who: "carol"}, ObserverFunc(func(ev Event) {
		if ev.Type == EventFinished {
			_, afterFinish = f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "dave"}, nil, nil)
		}
	}), nil)
	if err != nil || res.Outcome != OutcomeSuccess || res.To != f.shas[0] {
		t.Fatalf("revert: %+v %v", res, err)
	}
	var le *LockedError
	if !errors.As(afterFinish, &le) || !le.Manual || le.Holder.Why != "reverted by carol" {
		t.Fatalf("deploy right after the revert: %v", afterFinish)
	}
	if res.Locked == nil || res.Locked.Who != "carol" {
		t.Fatalf("locked %+v", res.Locked)
	}
	d := f.readJournal(t, res.ID)
	if d.Meta.Message != fmt.Sprintf("revert %s to %s", short(f.shas[1]), short(f.shas[0])) {
		t.Errorf("message %q", d.Meta.Message)
	}
	if _, err := f.eng.Unlock("svc", "carol"); err != nil {
		t.Fatal(err)
	}
	if cur, _, _ := f.fleet.State("a1"); cur != f.shas[0] {
		t.Errorf("a1 on %s", short(cur))
	}
}

// The finished event comes after the locks are let go: a deploy started
// on seeing it runs.
func TestDeployRightAfterFinish(t *testing.T) {
	f := newFleetFixture(t, "groups: [{name: a, hosts: [a1]}]")
	next := make(chan error, 1)
	f.deploy(t, ObserverFunc(func(ev Event) {
		if ev.Type == EventFinished {
			go func() {
				_, err := f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "bob", Rev: f.shas[1]}, nil, nil)
				next <- err
			}()
		}
	}), Request{})
	if err := <-next; err != nil {
		t.Fatalf("deploy right after the finish: %v", err)
	}
}
