package bot

import (
	"strings"
	"testing"
	"time"

	"deploybot/deployer/journal"
)

// With a shared state, a deploy whose process died on another host while
// the bot runs is announced once, with the state of its hosts; one the
// bot announced already is not announced again.
func TestWatchUnfinishedAnnouncesOnce(t *testing.T) {
	b, w, f := newEngineBot(t)
	meta := func(id string) journal.Meta {
		return journal.Meta{ID: id, Service: "citoid", Who: "bob", Rev: revB, FromRev: revA, Started: time.Now(),
			Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}}
	}
	f.unfinished = []*journal.Deploy{
		{Meta: meta("citoid-NEW"), HostState: map[string]journal.HostState{"scb1001": {Host: "scb1001", Group: "canary", Stage: "deploy", InFlight: true}}},
		{Meta: meta("citoid-OLD"), HostState: map[string]journal.HostState{}},
	}
	seen := map[string]bool{"citoid-OLD": true}
	b.postNewUnfinished(seen)
	got := collect(t, b, w, "citoid-NEW")
	b.postNewUnfinished(seen) // another round: nothing more is posted
	b.out.drainTo(w)
	got = append(got, w.take()...)
	var posted []string
	for _, l := range got {
		if strings.Contains(l, "was interrupted") {
			posted = append(posted, l)
		}
	}
	if len(posted) != 1 || !strings.Contains(posted[0], "citoid-NEW") || !strings.Contains(posted[0], "canary: 1 in flight (state unknown)") {
		t.Fatalf("posted %q, want citoid-NEW once with its hosts", posted)
	}
}

// Two bots with nicks of their own (two deploy hosts) watch one shared
// deploy state: a deploy whose process died is announced by one of them,
// once, and its journal records who announced it.
func TestWatchUnfinishedSharedStateAnnouncesOnceForAllBots(t *testing.T) {
	b1, w1 := newDeployBot(t)
	b2, w2 := newDeployBot(t)
	b2.SetDeployer(b1.dep.eng) // the state b1's engine keeps, shared
	b2.cfg.IRC.Nick = "deploybot-b"
	for _, b := range []*Bot{b1, b2} {
		b.cfg.Deploy.State = "postgres://db.invalid/deploybot"
	}
	st := journal.NewFiles(b1.cfg.Deploy.JournalDir)
	id, err := journal.NewID("citoid", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.AcquireDeploy("citoid", journal.Holder{Who: "bob", Why: "deploying", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	jw, err := st.Create(l, journal.Meta{ID: id, Who: "bob", Rev: revB, FromRev: revA,
		Hosts: map[string][]string{"canary": {"scb1001"}}, GroupOrder: []string{"canary"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := jw.Append(journal.Event{Type: journal.TypeStageStarted, Group: "canary", Host: "scb1001", Stage: "deploy"}); err != nil {
		t.Fatal(err)
	}
	jw.Close()
	l.Release() // the deploying process died

	seen1, seen2 := map[string]bool{}, map[string]bool{}
	for range 2 {
		b1.postNewUnfinished(seen1)
		b2.postNewUnfinished(seen2)
	}
	var posted []string
	for _, bw := range []struct {
		b *Bot
		w *fakeWire
	}{{b1, w1}, {b2, w2}} {
		bw.b.out.drainTo(bw.w)
		for _, l := range bw.w.take() {
			if strings.Contains(l, "was interrupted") {
				posted = append(posted, l)
			}
		}
	}
	if len(posted) != 1 || !strings.Contains(posted[0], id) || !strings.Contains(posted[0], "canary: 1 in flight (state unknown)") {
		t.Fatalf("posted %q, want %s once with its hosts", posted, id)
	}
	d, err := st.Read(id)
	if err != nil || !journal.Announced(d) || d.Finished {
		t.Fatalf("the journal after the announcement: announced %v, finished %v, %v", d != nil && journal.Announced(d), d != nil && d.Finished, err)
	}
	if !seen1[id] || !seen2[id] {
		t.Errorf("a bot will look at the deploy again: seen %v %v", seen1, seen2)
	}
}
