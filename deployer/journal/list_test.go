package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Unfinished lists a deploy whose process was killed, with the state of
// every host; not while it runs, not a finished one.
func TestUnfinished(t *testing.T) {
	dir := t.TempDir()

	// A finished deploy of the same service.
	w := newWriter(t, dir, "citoid", time.Now().Add(-2*time.Hour))
	w.Finish(OutcomeSuccess, "")
	w.Close()
	// An older deploy of the same service that died long ago, with no
	// lock held: unfinished even while another deploy of citoid runs.
	old := newWriter(t, dir, "citoid", time.Now().Add(-time.Hour))
	old.Append(Event{Type: TypeStageStarted, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StageFetch})
	old.Close()

	id, _ := NewID("citoid", time.Now())
	c := startChild(t, "deploy", dir, "citoid", "JT_WHO=alice", "JT_WHY=deploying 5d6e7f8", "JT_ID="+id)

	un, err := Unfinished(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 1 || un[0].Meta.ID != old.Meta().ID {
		t.Fatalf("while the child runs: Unfinished = %v, want only the old dead deploy", ids(un))
	}
	// Ending the running one is refused: it is running.
	path, _ := JournalPath(dir, "citoid", id)
	if err := MarkEnded(path, "bob", "cleanup"); !errors.Is(err, ErrLocked) {
		t.Errorf("MarkEnded of a running deploy: %v, want ErrLocked", err)
	}

	c.kill()

	un, err = Unfinished(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(un) != 2 || un[0].Meta.ID != id || un[1].Meta.ID != old.Meta().ID {
		t.Fatalf("after the kill: Unfinished = %v, want [%s %s]", ids(un), id, old.Meta().ID)
	}
	d := un[0]
	if d.Finished || d.Meta.Who != "alice" || d.Meta.Rev != revNew || d.Meta.Source != "cli" {
		t.Errorf("meta: %+v", d.Meta)
	}
	want := map[string]HostState{
		"scb1001.eqiad.wmnet": {Group: "canary", Rev: revNew, Stage: StagePromote, OK: true},
		"scb1002.eqiad.wmnet": {Group: "eqiad", Rev: revNew, Stage: StagePromote, OK: true},
		"scb1003.eqiad.wmnet": {Group: "eqiad", Stage: StageFetch, Failed: true, Err: "fetch: exit 128"},
		"scb1004.eqiad.wmnet": {Group: "eqiad", Stage: StagePromote, InFlight: true},
		"scb1005.eqiad.wmnet": {Group: "eqiad"},
	}
	if len(d.HostState) != len(want) {
		t.Errorf("%d host states, want %d", len(d.HostState), len(want))
	}
	for h, w := range want {
		got := d.HostState[h]
		w.Host = h
		got.Updated = time.Time{}
		if got != w {
			t.Errorf("%s:\n got %+v\nwant %+v", h, got, w)
		}
	}
	var buf bytes.Buffer
	FormatState(&buf, d)
	out := buf.String()
	for _, s := range []string{
		"citoid " + id + " by alice: 1a2b3c4..5d6e7f8, unfinished",
		"[canary] scb1001.eqiad.wmnet: done, switched to 5d6e7f8",
		"[eqiad] scb1003.eqiad.wmnet: FAILED at fetch: fetch: exit 128",
		"[eqiad] scb1004.eqiad.wmnet: interrupted during promote",
		"[eqiad] scb1005.eqiad.wmnet: not reached",
	} {
		if !strings.Contains(out, s) {
			t.Errorf("FormatState lacks %q:\n%s", s, out)
		}
	}
	if strings.Index(out, "scb1001") > strings.Index(out, "scb1002") {
		t.Errorf("hosts not in running order:\n%s", out)
	}

	// Give up on both: they are no longer listed.
	for _, dd := range un {
		if err := MarkEnded(dd.Path, "bob", "abandoned after crash"); err != nil {
			t.Fatal(err)
		}
	}
	un, err = Unfinished(dir)
	if err != nil || len(un) != 0 {
		t.Fatalf("after MarkEnded: %v %v", ids(un), err)
	}
	d, _ = Read(path)
	if !d.Finished || d.Outcome != OutcomeEnded || d.Err != "abandoned after crash" {
		t.Errorf("marked ended: %+v", d)
	}
	if r, _ := Running(dir, "citoid"); r != nil {
		t.Errorf("MarkEnded left the lock held: %+v", r)
	}
}

func ids(ds []*Deploy) []string {
	var out []string
	for _, d := range ds {
		out = append(out, d.Meta.ID)
	}
	return out
}

func TestListLatest(t *testing.T) {
	dir := t.TempDir()
	if _, err := Latest(dir, "citoid"); !errors.Is(err, ErrNoDeploys) {
		t.Errorf("Latest on nothing: %v", err)
	}
	base := time.Date(2026, 11, 26, 1, 0, 0, 0, time.UTC)
	mk := func(svc string, at time.Duration, outcome Outcome) string {
		w := newWriter(t, dir, svc, base.Add(at))
		w.Append(Event{Type: TypeHostDone, Group: "canary", Host: "scb1001.eqiad.wmnet"})
		if outcome != "" {
			w.Finish(outcome, "")
		}
		w.Close()
		return w.Meta().ID
	}
	a := mk("citoid", 0, OutcomeSuccess)
	b := mk("mathoid", time.Minute, OutcomeFailed)
	c := mk("citoid", 2*time.Minute, "")
	// Two in the same second: the start time decides.
	d1 := mk("citoid", 3*time.Minute+100*time.Millisecond, OutcomeSuccess)
	d2 := mk("citoid", 3*time.Minute+900*time.Millisecond, OutcomeSuccess)
	// Noise that must be ignored.
	os.WriteFile(filepath.Join(dir, "citoid", "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "citoid", "20261126-010000-mathoid-abcd.jsonl"), []byte("x"), 0o644)

	all, err := List(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := summaryIDs(all), []string{d2, d1, c, b, a}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List all:\n got %v\nwant %v", got, want)
	}
	cit, _ := List(dir, "citoid")
	if got, want := summaryIDs(cit), []string{d2, d1, c, a}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List citoid:\n got %v\nwant %v", got, want)
	}
	top, _ := ListN(dir, "citoid", 1)
	if len(top) != 1 || top[0].ID != d2 {
		t.Errorf("ListN 1 = %v", summaryIDs(top))
	}
	if p, err := Latest(dir, "mathoid"); err != nil || filepath.Base(p) != b+".jsonl" {
		t.Errorf("Latest mathoid = %s %v", p, err)
	}
	if p, err := Latest(dir, ""); err != nil || filepath.Base(p) != d2+".jsonl" {
		t.Errorf("Latest = %s %v", p, err)
	}
	s := cit[2]
	if s.Finished || s.Hosts != 5 || s.Done != 1 || s.Who != "alice" {
		t.Errorf("summary of the unfinished one: %+v", s)
	}
	var buf bytes.Buffer
	FormatSummary(&buf, cit[3])
	if got := buf.String(); !strings.HasPrefix(got, a+" alice 1a2b3c4..5d6e7f8 success 1/5 hosts") {
		t.Errorf("FormatSummary = %q", got)
	}
}

func summaryIDs(ss []Summary) []string {
	var out []string
	for _, s := range ss {
		out = append(out, s.ID)
	}
	return out
}
