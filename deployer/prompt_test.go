package deployer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/fakefleet"
	"deploybot/deployer/journal"
	"deploybot/e2e/scale"
)

// No answer by the deadline takes the default, and the journal says so.
func TestPromptTimeoutTakesDefault(t *testing.T) {
	f := newFleetFixture(t, "prompt_timeout: "+yamlDuration(200*time.Millisecond)+"\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
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
	f := newFleetFixture(t, "prompt_timeout: "+yamlDuration(time.Minute)+"\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
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
	if time.Since(start) > scale.D(30*time.Second) {
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
		f := newFleetFixture(t, "prompt_timeout: "+yamlDuration(time.Minute)+"\ncanary: [c1]\ngroups: [{name: a, hosts: [a1]}]")
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
