package deployer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"deploybot/deployer/fakefleet"
	"deploybot/deployer/remote"
)

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
		// Hosts finalized before group b failed are done on the old
		// revision again.
		if cur, done, _ := f.fleet.State(h); cur != f.shas[0] || done != f.shas[0] {
			t.Errorf("%s on %s, done %s", h, short(cur), short(done))
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
