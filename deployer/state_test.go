package deployer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"deploybot/config"
	"deploybot/deployer/fakefleet"
	"deploybot/deployer/journal"
	"deploybot/deployer/remote"
	"deploybot/e2e/scale"
)

// crashed writes the journal of a deploy of svc from shas[0] to shas[2]
// whose process died while group a ran: c1 switched, a1 in flight, a2 not
// reached. The hosts are left as such a crash leaves them.
func (f *fleetFixture) crashed(t *testing.T) string {
	t.Helper()
	return f.crashedAt(t, f.shas[0], f.shas[2])
}

// crashedAt is crashed for a deploy from revision from to rev.
func (f *fleetFixture) crashedAt(t *testing.T, from, rev string) string {
	t.Helper()
	f.fleet.Install("c1", from)
	f.fleet.Install("a1", from)
	f.fleet.Install("a2", from)
	// What the dead deploy did on the hosts.
	for _, h := range []string{"c1", "a1"} {
		c, _ := f.fleet.Dial(context.Background(), mustHost(t, h))
		c.Deploy(context.Background(), remoteTarget(), rev, false, scale.D(time.Second))
	}
	id, _ := journal.NewID("svc", time.Now().Add(-time.Minute))
	jw, err := journal.Create(f.cfg.Deploy.JournalDir, "svc", journal.Meta{ID: id, Who: "erin", Rev: rev, FromRev: from,
		Hosts: map[string][]string{"canary": {"c1"}, "a": {"a1", "a2"}}, GroupOrder: []string{"canary", "a"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range []journal.Event{
		{Type: journal.TypeGroupStarted, Group: "canary"},
		{Type: journal.TypeStageStarted, Group: "canary", Host: "c1", Stage: stageDeploy},
		{Type: journal.TypeStage, Group: "canary", Host: "c1", Stage: journal.StagePromote, ExitCode: journal.Code(0), Rev: rev},
		{Type: journal.TypeHostDone, Group: "canary", Host: "c1", Rev: rev},
		{Type: journal.TypeGroupStarted, Group: "a"},
		{Type: journal.TypeStageStarted, Group: "a", Host: "a1", Stage: stageDeploy},
	} {
		if err := jw.Append(ev); err != nil {
			t.Fatal(err)
		}
	}
	jw.Close()
	// a1's deploy session still runs there: its process died, not it.
	f.fleet.Leave("a1", id)
	return id
}

// After a crash mid-group, the status never states a revision for a host
// whose state is unknown, and the interrupted deploy is offered.
func TestStatusAfterCrash(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
	id := f.crashed(t)
	st, err := f.eng.Status("svc")
	if err != nil {
		t.Fatal(err)
	}
	if !st.Interrupted || st.Running != nil || st.DeployLock != nil {
		t.Fatalf("status %+v", st)
	}
	want := []GroupRevs{
		{Group: "canary", Revs: []RevCount{{Rev: f.shas[2], Hosts: 1}}},
		{Group: "a", Revs: []RevCount{{Rev: f.shas[0], Hosts: 1}, {Rev: RevUnknown, Hosts: 1}}},
	}
	if !slices.EqualFunc(st.Groups, want, func(a, b GroupRevs) bool { return a.Group == b.Group && slices.Equal(a.Revs, b.Revs) }) {
		t.Errorf("groups %+v, want %+v", st.Groups, want)
	}
	d, err := f.eng.Interrupted("svc")
	if err != nil || d == nil || d.Meta.ID != id {
		t.Fatalf("interrupted %v %v", d, err)
	}
	if got, want := HostsByState(d), "canary: 1 on "+short(f.shas[2])+"; a: 1 in flight (state unknown), 1 not reached"; got != want {
		t.Errorf("hosts %q, want %q", got, want)
	}
}

// Recover rolls the interrupted deploy back, announcing its own start and
// end; the deploy is then no longer offered.
func TestRecoverRollback(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
	id := f.crashed(t)
	var events []Event
	res, err := f.eng.Recover(context.Background(), id, RecoverRollback, "bob", ObserverFunc(func(ev Event) { events = append(events, ev) }))
	if err != nil || res.Outcome != OutcomeRolledBack {
		t.Fatalf("recover: %+v %v", res, err)
	}
	if first, last := events[0], events[len(events)-1]; first.Type != EventStarted || !first.Recovery || first.To != f.shas[0] ||
		last.Type != EventFinished || !last.Recovery || last.Outcome != OutcomeRolledBack {
		t.Fatalf("events: first %+v, last %+v", first, last)
	}
	for _, h := range []string{"c1", "a1"} {
		if cur, _, _ := f.fleet.State(h); cur != f.shas[0] {
			t.Errorf("%s on %s", h, short(cur))
		}
	}
	if slices.Contains(f.fleet.Calls(), "rollback a2") {
		t.Error("a host the deploy never reached was rolled back")
	}
	// What the dead deploy left running on a1 was stopped first.
	calls := f.fleet.Calls()
	if i, j := slices.Index(calls, "stop a1"), slices.Index(calls, "rollback a1"); i < 0 || j < i || res.Stopped != 1 || f.fleet.Left("a1") != "" {
		t.Errorf("stop before rollback: calls %v, stopped %d", calls, res.Stopped)
	}
	if !slices.ContainsFunc(events, func(ev Event) bool { return ev.Type == EventStopped && ev.Host == "a1" }) {
		t.Error("no stopped event")
	}
	if d, _ := f.eng.Interrupted("svc"); d != nil {
		t.Errorf("still interrupted: %s", d.Meta.ID)
	}
	if _, err := f.eng.Recover(context.Background(), id, RecoverRollback, "bob", nil); !errors.Is(err, ErrFinished) {
		t.Errorf("second recover: %v", err)
	}
}

// Resume finishes the interrupted deploy with a new deploy of its
// revision; MarkEnded gives up on it.
func TestResumeAndMarkEnded(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
	id := f.crashed(t)
	res, err := f.eng.Resume(context.Background(), id, "bob", nil, nil)
	if err != nil || res.Outcome != OutcomeSuccess || res.To != f.shas[2] || res.ID == id {
		t.Fatalf("resume: %+v %v", res, err)
	}
	for _, h := range []string{"c1", "a1", "a2"} {
		if cur, done, _ := f.fleet.State(h); cur != f.shas[2] || done != f.shas[2] {
			t.Errorf("%s on %s (done %s)", h, short(cur), short(done))
		}
	}
	if res.Stopped != 1 || f.fleet.Left("a1") != "" {
		t.Errorf("resume stopped %d, left %q", res.Stopped, f.fleet.Left("a1"))
	}
	id2 := f.crashed(t)
	res, err = f.eng.Recover(context.Background(), id2, RecoverMarkEnded, "bob", nil)
	if err != nil || res.Outcome != OutcomeEnded || res.Stopped != 1 || f.fleet.Left("a1") != "" {
		t.Fatalf("mark ended: %+v %v", res, err)
	}
	if _, err := f.eng.Resume(context.Background(), id2, "bob", nil, nil); !errors.Is(err, ErrFinished) {
		t.Errorf("resume of an ended deploy: %v", err)
	}
}

// Status of a deploy running here, of one run by another process (read
// from its journal), and the lock, history and live revision.
func TestStatus(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2], parallel: 1}]")
	st, err := f.eng.Status("svc")
	if err != nil || st.Running != nil || st.Interrupted || st.LastGood != nil || len(st.Groups) != 0 {
		t.Fatalf("idle status %+v %v", st, err)
	}
	if _, err := f.eng.Status("nosuch"); err == nil {
		t.Error("status of an unknown service")
	}
	f.deploy(t, nil, Request{Rev: f.shas[0]})

	gate := make(chan struct{})
	f.fleet.Set("a1", fakefleet.Behavior{Gate: gate})
	f.fleet.Started = make(chan string, 10)
	done := make(chan struct{})
	go func() {
		f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "alice", Message: "T1"}, nil, nil)
		close(done)
	}()
	for h := range f.fleet.Started {
		if h == "a1" {
			break
		}
	}
	st, _ = f.eng.Status("svc")
	if !st.Here || st.Running == nil || st.Running.Stage != StageDeploying || st.Running.Group != "a" || st.Running.InFlight != 1 ||
		st.DeployLock == nil || st.DeployLock.Who != "alice" || !strings.Contains(st.DeployLock.Why, "T1") {
		t.Fatalf("running status %+v (running %+v)", st, st.Running)
	}
	// Another engine on the same journal sees the same deploy, from its
	// journal.
	other := NewWithDialer(f.cfg, nil, DialerFunc(nil))
	ost, _ := other.Status("svc")
	if ost.Here || ost.Running == nil || ost.Running.ID != st.Running.ID || ost.Running.Group != "a" || ost.Running.InFlight != 1 {
		t.Fatalf("status from another engine %+v (running %+v)", ost, ost.Running)
	}
	if err := other.Answer("svc", Rollback, "bob"); !errors.Is(err, ErrNotRunning) {
		t.Errorf("answer from another engine: %v", err)
	}
	close(gate)
	<-done

	st, _ = f.eng.Status("svc")
	if st.Running != nil || st.LastGood == nil || st.LastGood.Rev != f.shas[2] || len(st.Groups) != 2 || st.Groups[1].Revs[0] != (RevCount{Rev: f.shas[2], Hosts: 2}) {
		t.Fatalf("status after %+v", st)
	}
	hist, err := f.eng.History("svc", 0)
	if err != nil || len(hist) != 2 || hist[0].Rev != f.shas[2] {
		t.Fatalf("history %+v %v", hist, err)
	}
	var sb strings.Builder
	FormatSummary(&sb, hist[0])
	if !strings.Contains(sb.String(), "success") {
		t.Errorf("summary %q", sb.String())
	}

	if err := f.eng.Lock("svc", Holder{Who: "bob", Why: "db migration"}); err != nil {
		t.Fatal(err)
	}
	var le *LockedError
	if _, err := f.eng.Deploy(context.Background(), Request{Service: "svc", Who: "alice"}, nil, nil); !errors.As(err, &le) || le.Holder.Who != "bob" {
		t.Fatalf("deploy while locked: %v", err)
	}
	locks, err := f.eng.Locks()
	if err != nil || len(locks) != 1 || locks[0].Manual == nil || locks[0].Manual.Why != "db migration" {
		t.Fatalf("locks %+v %v", locks, err)
	}
	if st, _ := f.eng.Status("svc"); st.Lock == nil || st.Lock.Who != "bob" {
		t.Errorf("lock in status: %+v", st.Lock)
	}
	if h, err := f.eng.Unlock("svc", "carol"); err != nil || h.Who != "bob" {
		t.Fatalf("unlock %+v %v", h, err)
	}
	if _, err := f.eng.Unlock("svc", "carol"); !errors.Is(err, ErrNotLocked) {
		t.Errorf("second unlock: %v", err)
	}
	if err := f.eng.Lock("nosuch", Holder{Who: "bob", Why: "x"}); err == nil {
		t.Error("lock of an unknown service")
	}
}

// Plan says what a deploy would do without touching a target.
func TestPlanGroups(t *testing.T) {
	f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2], parallel: 1, failure_limit: 1, pause: true}]")
	p, err := f.eng.Plan(context.Background(), Request{Service: "svc", Rev: f.shas[1]})
	if err != nil {
		t.Fatal(err)
	}
	if p.To != f.shas[1] || len(p.Groups) != 2 || p.Groups[1].Parallel != 1 || p.Groups[1].FailureLimit != 1 || !p.Groups[1].Pause || len(f.fleet.Calls()) != 0 {
		t.Fatalf("plan %+v, calls %v", p, f.fleet.Calls())
	}
	if _, err := f.eng.Plan(context.Background(), Request{Service: "svc", Rev: "zz"}); err == nil {
		t.Error("plan of a bad revision")
	}
}

func mustHost(t *testing.T, s string) config.Host {
	h, err := config.ParseHost(s)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func remoteTarget() remote.Target {
	return remote.Target{Service: "svc", Dir: "/srv/deployment/svc/deploy"}
}

// A new deploy (not a recovery) on a host where a dead deploy's operation
// still runs is refused there, naming it; the others go on.
func TestDeployRefusedWhereAnOperationRuns(t *testing.T) {
	f := newFleetFixture(t, "groups: [{name: a, hosts: [a1, a2], failure_limit: 1}]")
	f.installAll(f.shas[0])
	f.fleet.Leave("a1", "20261205-000000-svc-dead")
	res := f.deploy(t, nil, Request{})
	if res.Outcome != OutcomeSuccess || len(res.Failed) != 1 || res.Failed[0].Host != "a1" ||
		!strings.Contains(res.Failed[0].Reason, "20261205-000000-svc-dead") {
		t.Fatalf("result %+v", res)
	}
	if cur, _, _ := f.fleet.State("a1"); cur != f.shas[0] {
		t.Errorf("a1 changed to %s", short(cur))
	}
}

// A host whose deploy session refused to start (another operation runs
// there) was not changed: a rollback of the deploy leaves it alone and
// restores the others.
func TestRollbackSkipsHostNeverChanged(t *testing.T) {
	f := newFleetFixture(t, "groups: [{name: a, hosts: [a1, a2]}]")
	f.installAll(f.shas[0])
	f.fleet.Leave("a1", "20261205-000000-svc-dead")
	obs := &answerer{e: f.eng, who: "bob", answers: []Answer{Rollback}}
	res := f.deploy(t, obs, Request{Rev: f.shas[2]})
	if res.Outcome != OutcomeRolledBack {
		t.Fatalf("outcome %s (%s), failed %+v", res.Outcome, res.Reason, res.Failed)
	}
	if slices.Contains(f.fleet.Calls(), "rollback a1") {
		t.Errorf("the host never changed was rolled back: %v", f.fleet.Calls())
	}
	for _, h := range []string{"a1", "a2"} {
		if cur, _, _ := f.fleet.State(h); cur != f.shas[0] {
			t.Errorf("%s on %s", h, short(cur))
		}
	}
}
