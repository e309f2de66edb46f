package deployer

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/deployer/fakefleet"
	"deploybot/e2e/scale"
)

// The canary is dialed alone and deployed while the other hosts are still
// being dialed: a dial of group a that never ends until the canary's
// deploy session has started must not hold the canary back, and no other
// host is dialed before the canary has started (EventHostStarted, which
// the engine emits before it opens the canary's deploy session).
func TestCanaryBeforeOtherDials(t *testing.T) {
	f := newFleetFixture(t, twoGroups)
	f.installAll(f.shas[0])
	// A deploy in the journal first: without one, every host is asked
	// whether the revision is live already, which needs them all.
	if res := f.deploy(t, nil, Request{Rev: f.shas[1]}); res.Outcome != OutcomeSuccess {
		t.Fatalf("first deploy: %s", res.Outcome)
	}
	before := len(f.fleet.Calls())
	gate := make(chan struct{})
	for _, h := range []string{"a1", "a2", "b1", "b2"} {
		f.fleet.Set(h, fakefleet.Behavior{DialGate: gate})
	}
	f.fleet.Started = make(chan string, 10)
	go func() {
		if h := <-f.fleet.Started; h == "c1" {
			close(gate)
		}
		for range f.fleet.Started {
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), scale.D(20*time.Second))
	defer cancel()
	// The observer runs in the run's goroutine: its note is ordered before
	// anything the engine does after it. It lingers there a moment, so an
	// engine that dials the other hosts before the canary starts shows it.
	obs := ObserverFunc(func(ev Event) {
		if ev.Type == EventHostStarted && ev.Host == "c1" {
			f.fleet.Note("started c1")
			time.Sleep(scale.D(20 * time.Millisecond))
		}
	})
	res, err := f.eng.Deploy(ctx, Request{Service: "svc", Who: "alice"}, obs, nil)
	close(f.fleet.Started)
	if err != nil || res.Outcome != OutcomeSuccess || res.OK != 5 {
		t.Fatalf("deploy: %v %+v", err, res)
	}
	calls := f.fleet.Calls()[before:]
	// Every host is dialed once: the group's hosts share the dial started
	// ahead of them.
	for _, h := range []string{"c1", "a1", "a2", "b1", "b2"} {
		if n := count(calls, "dial "+h); n != 1 {
			t.Errorf("%s dialed %d times: %v", h, n, calls)
		}
	}
	// The other hosts are dialed only once the canary started: their
	// handshakes never compete with the canary's start.
	first := slices.Index(calls, "started c1")
	if first < 0 || first > slices.Index(calls, "deploy c1") {
		t.Fatalf("no canary start before its deploy session: %v", calls)
	}
	for _, h := range []string{"a1", "a2", "b1", "b2"} {
		if j := slices.Index(calls, "dial "+h); j < first {
			t.Errorf("%s dialed before the canary started: %v", h, calls)
		}
	}
}

// Each host is finalized as soon as it passed: the canary before group a
// deploys, so the final pass holds only what is left; a forced deploy
// keeps the final pass after every group.
func TestFinalizeOrder(t *testing.T) {
	for _, force := range []bool{false, true} {
		t.Run(map[bool]string{false: "new", true: "force"}[force], func(t *testing.T) {
			f := newFleetFixture(t, twoGroups)
			f.installAll(f.shas[0])
			res := f.deploy(t, nil, Request{Force: force})
			if res.Outcome != OutcomeSuccess || res.OK != 5 {
				t.Fatalf("outcome %s (%s), ok %d", res.Outcome, res.Reason, res.OK)
			}
			calls := f.fleet.Calls()
			for _, h := range []string{"c1", "a1", "a2", "b1", "b2"} {
				if n := count(calls, "finalize "+h); n != 1 {
					t.Errorf("%s finalized %d times: %v", h, n, calls)
				}
				if _, done, _ := f.fleet.State(h); done != f.shas[2] {
					t.Errorf("%s done %s", h, short(done))
				}
			}
			fc, da, lastDeploy := slices.Index(calls, "finalize c1"), slices.Index(calls, "deploy a1"), lastIndex(calls, "deploy ")
			if !force && fc > da {
				t.Errorf("canary finalized after group a started: %v", calls)
			}
			if force && fc < lastDeploy {
				t.Errorf("forced deploy finalized before its last group: %v", calls)
			}
		})
	}
}

// A group that fails after earlier hosts were finalized: the rollback
// undoes their done revision (through Target.Undo), so every host is back
// on the old revision, done; a host that failed its finalize is rolled
// back too.
func TestRollbackAfterEarlyFinalize(t *testing.T) {
	f := newFleetFixture(t, `
canary: [c1]
groups:
  - {name: a, hosts: [a1, a2], failure_limit: "0"}
`)
	f.installAll(f.shas[0])
	f.fleet.Set("a2", fakefleet.Behavior{FinalizeFails: true})
	res := f.deploy(t, &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}, Request{})
	if res.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	calls := f.fleet.Calls()
	if i, j := slices.Index(calls, "finalize c1"), slices.Index(calls, "rollback c1"); i < 0 || j < i {
		t.Errorf("c1 not finalized before its rollback: %v", calls)
	}
	for _, h := range []string{"c1", "a1", "a2"} {
		if cur, done, deploying := f.fleet.State(h); cur != f.shas[0] || done != f.shas[0] || deploying != "" {
			t.Errorf("%s: current %s done %s deploying %s", h, short(cur), short(done), short(deploying))
		}
	}
}

func count(calls []string, c string) int {
	n := 0
	for _, x := range calls {
		if x == c {
			n++
		}
	}
	return n
}

func lastIndex(calls []string, prefix string) int {
	i := -1
	for j, c := range calls {
		if strings.HasPrefix(c, prefix) {
			i = j
		}
	}
	return i
}

// Hosts that finalize as soon as they pass finalize in their held deploy
// session; a host whose checks fail has its session released, not
// finalized; no session is left held, whether the deploy succeeds or
// fails.
func TestHeldSessionsEnd(t *testing.T) {
	f := newFleetFixture(t, `
canary: [c1]
groups:
  - {name: a, hosts: [a1, a2], failure_limit: "0"}
`)
	f.installAll(f.shas[0])
	res := f.deploy(t, &answerer{e: f.eng, who: "bob"}, Request{})
	if res.Outcome != OutcomeSuccess {
		t.Fatalf("outcome %s: %s", res.Outcome, res.Reason)
	}
	for _, h := range []string{"c1", "a1", "a2"} {
		if _, done, _ := f.fleet.State(h); done != res.To {
			t.Errorf("%s: done %s, want %s", h, short(done), short(res.To))
		}
	}
	if n := f.fleet.Held(); n != 0 {
		t.Errorf("%d deploy sessions left held after a deploy", n)
	}

	f.installAll(f.shas[0])
	f.fleet.Set("a2", fakefleet.Behavior{FailChecks: []string{"health"}})
	res = f.deploy(t, &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}, Request{Rev: f.shas[1]})
	if res.Outcome == OutcomeSuccess {
		t.Fatalf("outcome %s with a2's checks failing", res.Outcome)
	}
	calls := f.fleet.Calls()
	if count(calls, "finalize a2") != 1 || count(calls, "finalize a1") != 2 || count(calls, "finalize c1") != 2 {
		t.Errorf("a2 finalized after its checks failed, or a1 not: %v", calls)
	}
	if n := f.fleet.Held(); n != 0 {
		t.Errorf("%d deploy sessions left held after a rollback", n)
	}
}
