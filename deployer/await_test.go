package deployer

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"deploybot/deployer/journal"
	"deploybot/e2e/scale"
)

// crashedAsking is crashed, with the canary's failure question open when
// the process died, due at deadline.
func (f *fleetFixture) crashedAsking(t *testing.T, deadline time.Time) string {
	t.Helper()
	id := f.crashed(t)
	p, _ := journal.JournalPath(f.cfg.Deploy.JournalDir, "svc", id)
	// The crashed deploy's lock is gone; append as its writer would have.
	lock, err := journal.AcquireDeploy(f.cfg.Deploy.JournalDir, "svc", journal.Holder{Who: "t", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	jw, _, err := journal.Reopen(p, lock)
	if err != nil {
		t.Fatal(err)
	}
	jw.Append(journal.Event{Type: journal.TypePrompt, Group: "canary", Prompt: "canary failed", Message: PromptCanaryFailed, Deadline: deadline.UTC()})
	jw.Close()
	lock.Release()
	return id
}

func eventWho(evs []Event, typ EventType) []string {
	var out []string
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev.Who)
		}
	}
	return out
}

// The question an interrupted deploy was asking keeps its deadline across
// the crash: passed, the default is taken at once; ahead, it is asked
// again until then; answered, the answer counts.
func TestAwaitPrompt(t *testing.T) {
	t.Run("deadline passed while down", func(t *testing.T) {
		f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
		id := f.crashedAsking(t, time.Now().Add(-time.Minute))
		d, _ := f.eng.Interrupted("svc")
		if pp := PendingPrompt(d); pp == nil || pp.Kind != PromptCanaryFailed {
			t.Fatalf("pending prompt %+v", pp)
		}
		start := time.Now()
		res, err := f.eng.AwaitPrompt(context.Background(), id, "deploybot", nil, nil)
		if err != nil || res.Outcome != OutcomeRolledBack || time.Since(start) > scale.D(10*time.Second) {
			t.Fatalf("await: %+v %v", res, err)
		}
		if got := answersIn(f.readJournal(t, id)); !slices.Equal(got, []string{"rollback by " + AnsweredByMissed}) {
			t.Errorf("answers %v", got)
		}
		if cur, _, _ := f.fleet.State("c1"); cur != f.shas[0] {
			t.Errorf("c1 on %s", short(cur))
		}
	})
	t.Run("deadline ahead, no answer", func(t *testing.T) {
		f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
		deadline := time.Now().Add(scale.D(500 * time.Millisecond))
		id := f.crashedAsking(t, deadline)
		var evs []Event
		var live *Live
		res, err := f.eng.AwaitPrompt(context.Background(), id, "deploybot", ObserverFunc(func(ev Event) {
			evs = append(evs, ev)
			if ev.Type == EventPrompt {
				live, _ = f.eng.Active("svc")
			}
		}), nil)
		if err != nil || res.Outcome != OutcomeRolledBack {
			t.Fatalf("await: %+v %v", res, err)
		}
		if time.Now().Before(deadline) {
			t.Fatal("the default was taken before the deadline")
		}
		if live == nil || live.Stage != StageWaiting || live.Prompt == nil || live.Prompt.Deadline.Sub(deadline).Abs() > time.Millisecond {
			t.Fatalf("active while waiting: %+v", live)
		}
		if got := eventWho(evs, EventAnswer); !slices.Equal(got, []string{AnsweredByTimeout}) {
			t.Errorf("answers %v", got)
		}
		if evs[0].Type != EventPrompt || !evs[0].Recovery {
			t.Errorf("first event %+v", evs[0])
		}
	})
	t.Run("answered continue", func(t *testing.T) {
		f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
		id := f.crashedAsking(t, time.Now().Add(scale.D(time.Minute)))
		res, err := f.eng.AwaitPrompt(context.Background(), id, "deploybot", ObserverFunc(func(ev Event) {
			if ev.Type == EventPrompt {
				if err := f.eng.Answer("svc", Continue, "bob"); err != nil {
					t.Errorf("answer: %v", err)
				}
			}
		}), nil)
		if err != nil || res.Outcome != OutcomeSuccess || res.ID == id {
			t.Fatalf("await: %+v %v", res, err)
		}
		for _, h := range []string{"c1", "a1", "a2"} {
			if cur, _, _ := f.fleet.State(h); cur != f.shas[2] {
				t.Errorf("%s on %s", h, short(cur))
			}
		}
		if got := answersIn(f.readJournal(t, id)); !slices.Equal(got, []string{"continue by bob"}) {
			t.Errorf("answers %v", got)
		}
	})
	t.Run("nothing asked", func(t *testing.T) {
		f := newFleetFixture(t, "canary: [c1]\ngroups: [{name: a, hosts: [a1, a2]}]")
		id := f.crashed(t)
		if _, err := f.eng.AwaitPrompt(context.Background(), id, "deploybot", nil, nil); !errors.Is(err, ErrNoPendingPrompt) {
			t.Fatalf("await: %v", err)
		}
		if d, _ := f.eng.Interrupted("svc"); d == nil {
			t.Fatal("no longer interrupted")
		}
	})
}
