package journal

import (
	"fmt"
	"os"
	"slices"
	"testing"
	"time"
)

// deployOf writes a finished (or, with outcome "", unfinished) deploy of
// rev started at t and returns its id.
func deployOf(t *testing.T, dir, rev string, at time.Time, outcome Outcome) string {
	t.Helper()
	w, err := Create(dir, "citoid", Meta{Who: "alice", Rev: rev, Started: at, Hosts: testHosts, GroupOrder: []string{"canary", "eqiad"}})
	if err != nil {
		t.Fatal(err)
	}
	if outcome != "" {
		if err := w.Finish(outcome, ""); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	return w.Meta().ID
}

func rev(n int) string { return fmt.Sprintf("%040x", n+1) }

func TestIndexFollowsTheJournals(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	// Several in the same second: the start times order them.
	deployOf(t, dir, rev(1), base, OutcomeSuccess)
	deployOf(t, dir, rev(2), base.Add(time.Millisecond), OutcomeSuccess)
	deployOf(t, dir, rev(3), base.Add(2*time.Millisecond), OutcomeRolledBack)
	last := deployOf(t, dir, rev(2), base.Add(time.Second), OutcomeNoop)
	ix, open, err := ReadIndex(dir, "citoid")
	if err != nil || open != nil {
		t.Fatal(err, open)
	}
	if len(ix.Recent) != 4 || ix.Recent[0].ID != last || ix.Recent[3].Rev != rev(1) {
		t.Fatalf("recent %+v", ix.Recent)
	}
	if ix.LastGood == nil || ix.LastGood.ID != last || ix.PrevGoodRev != rev(1) {
		t.Fatalf("last good %+v, previous good %s", ix.LastGood, ix.PrevGoodRev)
	}
	if len(ix.Groups) != 2 || ix.Groups[0].Revs[0].Rev != rev(2) {
		t.Fatalf("groups %+v", ix.Groups)
	}
	// Rebuilt from the journals, it is the same.
	os.Remove(indexPath(dir, "citoid"))
	re, _, err := ReadIndex(dir, "citoid")
	if err != nil || re.LastGood.ID != last || re.PrevGoodRev != rev(1) || len(re.Recent) != 4 || len(re.Groups) != 2 {
		t.Fatalf("rebuilt %+v %v", re, err)
	}
	// An index that cannot be read is rebuilt too.
	os.WriteFile(indexPath(dir, "citoid"), []byte("{torn"), 0o644)
	if re, _, err = ReadIndex(dir, "citoid"); err != nil || len(re.Recent) != 4 {
		t.Fatalf("after a torn index: %+v %v", re, err)
	}
}

func TestIndexKeepsTheNewest(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour).UTC()
	for i := range IndexRecent + 5 {
		deployOf(t, dir, rev(i%3), base.Add(time.Duration(i)*time.Second), OutcomeSuccess)
	}
	ix, _, err := ReadIndex(dir, "citoid")
	if err != nil || len(ix.Recent) != IndexRecent || ix.Recent[0].Rev != rev((IndexRecent+4)%3) {
		t.Fatalf("index %d entries, newest %+v, %v", len(ix.Recent), ix.Recent[0], err)
	}
}

// A deploy whose process died: unfinished in the index and the journal,
// it is returned read whole; once something finishes its journal, the
// index folds the end in.
func TestIndexAfterCrashes(t *testing.T) {
	dir := t.TempDir()
	base := time.Now().Add(-time.Hour).UTC()
	deployOf(t, dir, rev(1), base, OutcomeSuccess)
	id := deployOf(t, dir, rev(2), base.Add(time.Minute), "")
	ix, open, err := ReadIndex(dir, "citoid")
	if err != nil || open == nil || open.Meta.ID != id || ix.LastGood.Rev != rev(1) {
		t.Fatalf("index %+v, open %v, %v", ix, open, err)
	}
	// Finished behind the index's back (the writer died before telling
	// it): simulate by appending the line by hand.
	p, _ := JournalPath(dir, "citoid", id)
	line, _ := encodeLine(Event{Time: time.Now().UTC(), Type: TypeFinished, Level: LevelInfo, Outcome: OutcomeSuccess})
	f, _ := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	f.Write(line)
	f.Close()
	ix, open, err = ReadIndex(dir, "citoid")
	if err != nil || open != nil || ix.LastGood.ID != id || ix.PrevGoodRev != rev(1) || !ix.Recent[0].Finished {
		t.Fatalf("after the fold: %+v, open %v, %v", ix, open, err)
	}

	// The index names a journal that never came to be (the process died
	// between the two): rebuilt.
	err = updateIndex(dir, "citoid", func(ix *Index) {
		ix.addSummary(Summary{ID: "20991231-235959-citoid-dead", Service: "citoid", Path: dir + "/citoid/20991231-235959-citoid-dead.jsonl", Started: time.Now().Add(time.Hour)}) // scale:fixed: a start time in the data
	})
	if err != nil {
		t.Fatal(err)
	}
	ix, open, err = ReadIndex(dir, "citoid")
	if err != nil || open != nil || ix.Recent[0].ID != id || len(ix.Recent) != 2 {
		t.Fatalf("after a missing journal: %+v, open %v, %v", ix.Recent, open, err)
	}
	// MarkEnded tells the index.
	id3 := deployOf(t, dir, rev(3), base.Add(2*time.Minute), "")
	p3, _ := JournalPath(dir, "citoid", id3)
	if err := MarkEnded(p3, "bob", "gave up"); err != nil {
		t.Fatal(err)
	}
	ix, _ = loadIndex(dir, "citoid")
	if !ix.Recent[0].Finished || ix.Recent[0].Outcome != OutcomeEnded || ix.LastGood.ID != id {
		t.Fatalf("after mark ended: %+v", ix.Recent[0])
	}
	if got := []string{ix.Recent[0].ID, ix.Recent[1].ID}; !slices.Equal(got, []string{id3, id}) {
		t.Fatalf("order %v", got)
	}
}
