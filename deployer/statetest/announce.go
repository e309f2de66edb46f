package statetest

import (
	"errors"
	"testing"

	"deploybot/deployer/journal"
)

// announceOnce: the announcement of an interrupted deploy is claimed by
// one store of those sharing the state (ClaimAnnouncementIn); the claim
// leaves the deploy unfinished and recoverable, and is refused while the
// deploy runs or once it finished.
func (su *suite) announceOnce(t *testing.T) {
	a, b := su.open(t), su.open(t)
	l, w := start(t, a, "citoid", 1, "1111111")
	id := w.Meta().ID
	appendOK(t, w, journal.Event{Type: journal.TypeStageStarted, Group: "canary", Host: "c1", Stage: "deploy"})
	var locked *journal.LockedError
	if ok, err := journal.ClaimAnnouncementIn(b, id, "bot-b on deploy-b"); ok || !errors.As(err, &locked) {
		t.Errorf("claim while the deploy runs = %v, %v; want a *LockedError", ok, err)
	}
	w.Close()
	l.Release() // its process dies
	if ok, err := journal.ClaimAnnouncementIn(b, id, "bot-b on deploy-b"); !ok || err != nil {
		t.Fatalf("first claim = %v, %v; want it made", ok, err)
	}
	if ok, err := journal.ClaimAnnouncementIn(a, id, "bot-a on deploy-a"); ok || err != nil {
		t.Errorf("second claim from another store = %v, %v; want it refused as made already", ok, err)
	}
	u, err := a.Unfinished()
	if err != nil || len(u) != 1 || u[0].Meta.ID != id || !journal.Announced(u[0]) || !u[0].HostState["c1"].InFlight {
		t.Fatalf("Unfinished after the claim = %v, %v; want %s, announced, c1 in flight", u, err, id)
	}
	if err := journal.MarkEndedIn(a, id, "carol", "given up"); err != nil {
		t.Fatal(err)
	}
	if ok, err := journal.ClaimAnnouncementIn(b, id, "bot-b on deploy-b"); ok || !errors.Is(err, journal.ErrFinished) {
		t.Errorf("claim of a finished deploy = %v, %v; want ErrFinished", ok, err)
	}
}
