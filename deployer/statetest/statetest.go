// Package statetest is the conformance suite of the deployment state
// stores (journal.Store): every implementation must pass Run. It checks
// what the engine and the front ends rely on, across two Stores on the
// same backing (two processes, or two deploy hosts): one deploy per
// service at a time, refusals that name the holder, manual locks, journals
// that another Store reads, follows and lists, and interrupted deploys
// that another Store recovers. It holds tests only; no store lives here.
package statetest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"testing"
	"time"

	"deploybot/deployer/journal"
)

// Run runs the suite. open returns a new Store on the backing of the
// running test: every call within one test (t) shares the state, a new
// test starts empty. The Stores are closed by open's owner when t ends.
func Run(t *testing.T, open func(t *testing.T) journal.Store) {
	su := &suite{open: open}
	tests := []struct {
		name string
		f    func(*testing.T)
	}{
		{"DeployLockIsExclusive", su.deployLockExclusive},
		{"DeployLockRace", su.deployLockRace},
		{"ManualLock", su.manualLock},
		{"JournalSharedAcrossStores", su.journalShared},
		{"FollowFromAnotherStore", su.follow},
		{"InterruptedAndRecovered", su.interrupted},
		{"Index", su.index},
		{"WriterRefusesAfterFinish", su.writerAfterFinish},
		{"AnnouncementClaimedOnce", su.announceOnce},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.f)
	}
}

type suite struct {
	open func(t *testing.T) journal.Store
}

var base = time.Date(2026, 4, 22, 10, 0, 0, 0, time.UTC)

// deployID is the id of the n-th test deploy of service.
func deployID(t *testing.T, service string, n int) string {
	t.Helper()
	id, err := journal.NewID(service, base.Add(time.Duration(n)*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// start takes the lock and creates the journal of deploy n of service.
func start(t *testing.T, st journal.Store, service string, n int, rev string) (journal.Lease, journal.EventWriter) {
	t.Helper()
	id := deployID(t, service, n)
	l, err := st.AcquireDeploy(service, journal.Holder{Who: "alice", Why: "deploying " + rev, DeployID: id})
	if err != nil {
		t.Fatalf("AcquireDeploy(%s): %v", service, err)
	}
	meta := journal.Meta{ID: id, Who: "alice", Rev: rev, Message: fmt.Sprintf("deploy %d", n),
		Started: base.Add(time.Duration(n) * time.Minute), GroupOrder: []string{"canary", "main"},
		Hosts: map[string][]string{"canary": {"c1"}, "main": {"m1", "m2"}}}
	w, err := st.Create(l, meta)
	if err != nil {
		l.Release()
		t.Fatalf("Create: %v", err)
	}
	return l, w
}

func appendOK(t *testing.T, w journal.EventWriter, evs ...journal.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := w.Append(ev); err != nil {
			t.Fatalf("Append(%s): %v", ev.Type, err)
		}
	}
}

// hostDone is the events of a host that went through.
func hostDone(group, host, rev string) []journal.Event {
	return []journal.Event{
		{Type: journal.TypeStageStarted, Group: group, Host: host, Stage: "deploy", Command: "deploy " + rev},
		{Type: journal.TypeStage, Group: group, Host: host, Stage: "promote", Rev: rev, ExitCode: journal.Code(0)},
		{Type: journal.TypeHostDone, Group: group, Host: host, Rev: rev},
	}
}

// deployAll runs deploy n of service to its end with outcome.
func deployAll(t *testing.T, st journal.Store, service string, n int, rev string, outcome journal.Outcome) string {
	t.Helper()
	l, w := start(t, st, service, n, rev)
	defer l.Release()
	for _, h := range [][2]string{{"canary", "c1"}, {"main", "m1"}, {"main", "m2"}} {
		appendOK(t, w, hostDone(h[0], h[1], rev)...)
	}
	appendOK(t, w, journal.Event{Type: journal.TypeFinished, Outcome: outcome, Who: "alice"})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return w.Meta().ID
}

func (su *suite) deployLockExclusive(t *testing.T) {
	a, b := su.open(t), su.open(t)
	id := deployID(t, "citoid", 1)
	l, err := a.AcquireDeploy("citoid", journal.Holder{Who: "alice", Why: "deploying 5d6e7f8", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	h := l.Holder()
	if h.Since.IsZero() || h.Host == "" || h.PID == 0 {
		t.Errorf("holder not filled in: %+v", h)
	}
	_, err = b.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "deploying 1a2b3c4"})
	var le *journal.LockedError
	if !errors.As(err, &le) || le.Manual {
		t.Fatalf("second AcquireDeploy from another store: %v, want a deploy *LockedError", err)
	}
	if le.Holder.Who != "alice" || le.Holder.Why != "deploying 5d6e7f8" || le.Holder.Host != h.Host ||
		!le.Holder.Since.Equal(h.Since) || le.Holder.DeployID != id {
		t.Errorf("refusal names %+v, want the holder %+v", le.Holder, h)
	}
	if got, err := b.Running("citoid"); err != nil || got == nil || got.Who != "alice" || got.DeployID != id {
		t.Errorf("Running from the other store = %+v, %v", got, err)
	}
	if got, err := b.Running("mathoid"); err != nil || got != nil {
		t.Errorf("Running(mathoid) = %+v, %v; want nil", got, err)
	}
	// Another service is not locked by it.
	l2, err := b.AcquireDeploy("mathoid", journal.Holder{Who: "bob", Why: "deploying"})
	if err != nil {
		t.Fatalf("another service refused: %v", err)
	}
	locks, err := b.Locks()
	if err != nil || len(locks) != 2 || locks[0].Service != "citoid" || locks[0].Deploy == nil || locks[1].Service != "mathoid" {
		t.Errorf("Locks = %+v, %v", locks, err)
	}
	l2.Release()
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if err := l.Release(); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if got, err := b.Running("citoid"); err != nil || got != nil {
		t.Errorf("Running after Release = %+v, %v", got, err)
	}
	l3, err := b.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "deploying"})
	if err != nil {
		t.Fatalf("after Release: %v", err)
	}
	l3.Release()
}

func (su *suite) deployLockRace(t *testing.T) {
	stores := []journal.Store{su.open(t), su.open(t), su.open(t), su.open(t)}
	var mu sync.Mutex
	var won []journal.Lease
	var refused int
	var wg sync.WaitGroup
	for i, st := range stores {
		wg.Go(func() {
			l, err := st.AcquireDeploy("citoid", journal.Holder{Who: fmt.Sprintf("op%d", i), Why: "race"})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, l)
			case errors.Is(err, journal.ErrLocked):
				refused++
			default:
				t.Errorf("store %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || refused != len(stores)-1 {
		t.Errorf("%d stores got the lock, %d were refused; want 1 and %d", len(won), refused, len(stores)-1)
	}
	for _, l := range won {
		l.Release()
	}
}

func (su *suite) manualLock(t *testing.T) {
	a, b := su.open(t), su.open(t)
	if err := a.Lock("citoid", journal.Holder{Who: "alice", Why: "db migration"}); err != nil {
		t.Fatal(err)
	}
	err := b.Lock("citoid", journal.Holder{Who: "bob", Why: "mine"})
	var le *journal.LockedError
	if !errors.As(err, &le) || !le.Manual || le.Holder.Who != "alice" || le.Holder.Why != "db migration" || le.Holder.Since.IsZero() {
		t.Fatalf("second Lock: %v, want a manual *LockedError naming alice", err)
	}
	_, err = b.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "deploying"})
	if !errors.As(err, &le) || !le.Manual || le.Holder.Who != "alice" {
		t.Fatalf("AcquireDeploy under a manual lock: %v, want a manual *LockedError", err)
	}
	if h, err := b.Held("citoid"); err != nil || h == nil || h.Who != "alice" {
		t.Errorf("Held = %+v, %v", h, err)
	}
	if locks, err := b.Locks(); err != nil || len(locks) != 1 || locks[0].Manual == nil || locks[0].Deploy != nil {
		t.Errorf("Locks = %+v, %v", locks, err)
	}
	if err := a.Lock("citoid", journal.Holder{Who: "alice"}); err == nil {
		t.Error("Lock without a reason accepted")
	}
	h, err := b.Unlock("citoid", "bob")
	if err != nil || h.Who != "alice" || h.Why != "db migration" {
		t.Fatalf("Unlock = %+v, %v", h, err)
	}
	if _, err := a.Unlock("citoid", "alice"); !errors.Is(err, journal.ErrNotLocked) {
		t.Errorf("second Unlock: %v, want ErrNotLocked", err)
	}
	if h, err := a.Held("citoid"); err != nil || h != nil {
		t.Errorf("Held after Unlock = %+v, %v", h, err)
	}
	// A deploy may take the manual lock before it lets its deploy lock go.
	l, err := a.AcquireDeploy("citoid", journal.Holder{Who: "alice", Why: "reverting"})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Lock("citoid", journal.Holder{Who: "alice", Why: "reverted by alice"}); err != nil {
		t.Errorf("Lock while holding the deploy lock: %v", err)
	}
	l.Release()
}

func (su *suite) journalShared(t *testing.T) {
	a, b := su.open(t), su.open(t)
	if _, err := b.Read(deployID(t, "citoid", 9)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of an unknown deploy: %v, want fs.ErrNotExist", err)
	}
	if _, err := journal.LatestIn(b, "citoid"); !errors.Is(err, journal.ErrNoDeploys) {
		t.Errorf("LatestIn with no deploys: %v, want ErrNoDeploys", err)
	}
	id1 := deployAll(t, a, "citoid", 1, "1111111", journal.OutcomeSuccess)
	id2 := deployAll(t, b, "mathoid", 2, "2222222", journal.OutcomeRolledBack)
	d, err := b.Read(id1)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Finished || d.Outcome != journal.OutcomeSuccess || d.Meta.Who != "alice" || d.Meta.Rev != "1111111" || len(d.Events) != 11 {
		t.Errorf("Read from another store: finished %v %s, meta %+v, %d events", d.Finished, d.Outcome, d.Meta, len(d.Events))
	}
	if hs := d.HostState["m2"]; !hs.OK || hs.Rev != "1111111" || hs.Group != "main" {
		t.Errorf("host state of m2: %+v", hs)
	}
	for _, st := range []journal.Store{a, b} {
		all, err := st.List("", 0)
		if err != nil || len(all) != 2 || all[0].ID != id2 || all[1].ID != id1 {
			t.Fatalf("List(all) = %+v, %v; want %s then %s", all, err, id2, id1)
		}
		if s := all[1]; s.Service != "citoid" || !s.Finished || s.Hosts != 3 || s.Done != 3 || s.Who != "alice" {
			t.Errorf("summary %+v", s)
		}
		if one, err := st.List("citoid", 5); err != nil || len(one) != 1 || one[0].ID != id1 {
			t.Errorf("List(citoid) = %+v, %v", one, err)
		}
		if id, err := journal.LatestIn(st, ""); err != nil || id != id2 {
			t.Errorf("LatestIn = %s, %v; want %s", id, err, id2)
		}
	}
}

func (su *suite) follow(t *testing.T) {
	a, b := su.open(t), su.open(t)
	l, w := start(t, a, "citoid", 1, "1111111")
	defer l.Release()
	id := w.Meta().ID
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	got := make(chan journal.Event, 100)
	errc := make(chan error, 1)
	go func() {
		errc <- b.Follow(ctx, id, func(ev journal.Event) error { got <- ev; return nil })
	}()
	want := append(hostDone("canary", "c1", "1111111"), journal.Event{Type: journal.TypeFinished, Outcome: journal.OutcomeSuccess})
	next := func() journal.Event {
		select {
		case ev := <-got:
			return ev
		case <-ctx.Done():
			t.Fatal("Follow passed nothing on")
		}
		return journal.Event{}
	}
	if ev := next(); ev.Type != journal.TypeStarted || ev.Meta == nil || ev.Meta.ID != id {
		t.Fatalf("first followed event %+v", ev)
	}
	for _, ev := range want {
		appendOK(t, w, ev)
		if g := next(); g.Type != ev.Type || g.Host != ev.Host {
			t.Fatalf("followed %s %s, want %s %s", g.Type, g.Host, ev.Type, ev.Host)
		}
	}
	if err := <-errc; err != nil {
		t.Errorf("Follow after the finished event: %v", err)
	}
}

func (su *suite) interrupted(t *testing.T) {
	a, b := su.open(t), su.open(t)
	finished := deployAll(t, a, "citoid", 1, "1111111", journal.OutcomeSuccess)
	l, w := start(t, a, "citoid", 2, "2222222")
	id := w.Meta().ID
	appendOK(t, w, hostDone("canary", "c1", "2222222")...)
	appendOK(t, w, journal.Event{Type: journal.TypeStageStarted, Group: "main", Host: "m1", Stage: "deploy"})
	if u, err := b.Unfinished(); err != nil || len(u) != 0 {
		t.Fatalf("Unfinished while it runs = %d, %v; want none", len(u), err)
	}
	if _, newest, err := b.ReadIndex("citoid"); err != nil || newest == nil || newest.Meta.ID != id {
		t.Fatalf("ReadIndex while it runs: newest %v, %v", newest, err)
	}
	// Its process dies: the lock goes without a finished event.
	l.Release()
	// A lease that can be lost fences its writer: nothing is recorded
	// once the lock is gone.
	if err := w.Append(journal.Event{Type: journal.TypeNote, Message: "after release"}); l.Lost() != nil && err == nil {
		t.Error("the writer appended after its lease was released")
	}
	u, err := b.Unfinished()
	if err != nil || len(u) != 1 || u[0].Meta.ID != id {
		t.Fatalf("Unfinished after the process died = %v, %v; want %s", u, err, id)
	}
	if hs := u[0].HostState["m1"]; !hs.InFlight {
		t.Errorf("m1 should be in flight: %+v", hs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n := 0
	err = b.Follow(ctx, id, func(journal.Event) error { n++; return nil })
	if !errors.Is(err, journal.ErrInterrupted) || n < 5 {
		t.Errorf("Follow of the dead deploy: %v after %d events, want ErrInterrupted after all of them", err, n)
	}
	// The other store recovers it.
	rl, err := b.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "rolling back " + id, DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := a.Unfinished(); err != nil || len(u) != 0 {
		t.Errorf("Unfinished while being recovered = %d, %v; want none", len(u), err)
	}
	rw, d, err := b.Reopen(rl)
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.ID != id || d.Finished || len(d.Events) < 5 {
		t.Errorf("reopened %s finished=%v with %d events", d.Meta.ID, d.Finished, len(d.Events))
	}
	appendOK(t, rw, journal.Event{Type: journal.TypeResumed, Who: "bob"},
		journal.Event{Type: journal.TypeRolledBackHost, Group: "canary", Host: "c1", Rev: "1111111"},
		journal.Event{Type: journal.TypeFinished, Outcome: journal.OutcomeRolledBack, Who: "bob"})
	rw.Close()
	rl.Release()
	if u, err := a.Unfinished(); err != nil || len(u) != 0 {
		t.Errorf("Unfinished after recovery = %d, %v", len(u), err)
	}
	// A finished journal is not reopened; MarkEndedIn refuses it too.
	fl, err := a.AcquireDeploy("citoid", journal.Holder{Who: "carol", Why: "x", DeployID: finished})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Reopen(fl); !errors.Is(err, journal.ErrFinished) {
		t.Errorf("Reopen of a finished deploy: %v, want ErrFinished", err)
	}
	fl.Release()
	d, err = a.Read(id)
	if err != nil || !d.Finished || d.Outcome != journal.OutcomeRolledBack || d.HostState["c1"].Rev != "1111111" {
		t.Errorf("after recovery: %+v, %v", d, err)
	}
}

func (su *suite) index(t *testing.T) {
	a, b := su.open(t), su.open(t)
	if ix, newest, err := b.ReadIndex("citoid"); err != nil || len(ix.Recent) != 0 || ix.LastGood != nil || newest != nil {
		t.Fatalf("empty index: %+v %v %v", ix, newest, err)
	}
	deployAll(t, a, "citoid", 1, "1111111", journal.OutcomeSuccess)
	deployAll(t, b, "citoid", 2, "2222222", journal.OutcomeSuccess)
	deployAll(t, a, "citoid", 3, "2222222", journal.OutcomeNoop)
	last := deployAll(t, b, "citoid", 4, "3333333", journal.OutcomeRolledBack)
	deployAll(t, a, "mathoid", 5, "9999999", journal.OutcomeSuccess)
	for _, st := range []journal.Store{a, b} {
		ix, newest, err := st.ReadIndex("citoid")
		if err != nil {
			t.Fatal(err)
		}
		if newest != nil || len(ix.Recent) != 4 || ix.Recent[0].ID != last {
			t.Errorf("recent: %d, newest %v", len(ix.Recent), newest)
		}
		if ix.LastGood == nil || ix.LastGood.Rev != "2222222" || ix.LastGood.Outcome != journal.OutcomeNoop || ix.PrevGoodRev != "1111111" {
			t.Errorf("last good %+v, previous good %q; want the no-op of 2222222, then 1111111", ix.LastGood, ix.PrevGoodRev)
		}
		if len(ix.Groups) != 2 || ix.Groups[0].Group != "canary" || ix.Groups[1].Revs[0].Rev != "3333333" {
			t.Errorf("groups %+v", ix.Groups)
		}
	}
	if err := journal.MarkEndedIn(b, last, "bob", "x"); err == nil {
		t.Error("MarkEndedIn of a finished deploy accepted")
	}
	l, w := start(t, a, "citoid", 6, "4444444")
	appendOK(t, w, hostDone("canary", "c1", "4444444")...)
	l.Release()
	id := w.Meta().ID
	if err := journal.MarkEndedIn(b, id, "bob", "given up"); err != nil {
		t.Fatal(err)
	}
	ix, newest, err := a.ReadIndex("citoid")
	if err != nil || newest != nil || ix.Recent[0].ID != id || !ix.Recent[0].Finished || ix.Recent[0].Outcome != journal.OutcomeEnded {
		t.Errorf("after MarkEndedIn: recent[0] %+v, newest %v, %v", ix.Recent[0], newest, err)
	}
}

func (su *suite) writerAfterFinish(t *testing.T) {
	st := su.open(t)
	l, w := start(t, st, "citoid", 1, "1111111")
	defer l.Release()
	if err := w.Append(journal.Event{Type: "bogus"}); err == nil {
		t.Error("an unknown event type was accepted")
	}
	if err := w.Append(journal.Event{Type: journal.TypeFinished, Outcome: "great"}); err == nil {
		t.Error("an unknown outcome was accepted")
	}
	appendOK(t, w, journal.Event{Type: journal.TypeFinished, Outcome: journal.OutcomeSuccess})
	if err := w.Append(journal.Event{Type: journal.TypeNote, Message: "late"}); !errors.Is(err, journal.ErrFinished) {
		t.Errorf("Append after finished: %v, want ErrFinished", err)
	}
	if _, err := st.Create(l, journal.Meta{ID: deployID(t, "citoid", 2), Who: "alice"}); err == nil {
		t.Error("Create under a lease held for another deploy accepted")
	}
}

// Fresh builds Run's open function from two steps: create makes a new,
// empty backing for a test and returns how to reach it (a directory, a
// URL); connect opens a Store on it. create runs once per test, connect
// on every call; the Stores are closed when the test ends.
func Fresh(create func(t *testing.T) string, connect func(t *testing.T, dsn string) (journal.Store, error)) func(t *testing.T) journal.Store {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) journal.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		if !ok {
			dsn = create(t)
			dsns[t] = dsn
		}
		mu.Unlock()
		st, err := connect(t, dsn)
		if err != nil {
			t.Fatalf("opening %s: %v", dsn, err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
}
