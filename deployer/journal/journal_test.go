package journal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newWriter(t *testing.T, dir, service string, started time.Time) *Writer {
	t.Helper()
	w, err := Create(dir, service, Meta{Who: "alice", Rev: revNew, FromRev: revOld, Started: started,
		Hosts: testHosts, GroupOrder: []string{"canary", "eqiad"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func TestCreate(t *testing.T) {
	dir := t.TempDir()
	started := time.Date(2026, 11, 26, 1, 45, 12, 0, time.UTC)
	w := newWriter(t, dir, "citoid", started)
	m := w.Meta()
	if !strings.HasPrefix(m.ID, "20261126-014512-citoid-") || m.Service != "citoid" || m.PID != os.Getpid() || m.Version != Version {
		t.Errorf("meta = %+v", m)
	}
	if want := filepath.Join(dir, "citoid", m.ID+".jsonl"); w.Path() != want {
		t.Errorf("path %s, want %s", w.Path(), want)
	}
	svc, ts, err := ParseID(m.ID)
	if err != nil || svc != "citoid" || !ts.Equal(started) {
		t.Errorf("ParseID(%s) = %s %v %v", m.ID, svc, ts, err)
	}
	d, err := Read(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if d.Meta.ID != m.ID || len(d.Events) != 1 || d.Events[0].Type != TypeStarted || d.Finished {
		t.Errorf("read back: %+v", d)
	}
	if len(d.HostState) != 5 || d.HostState["scb1005.eqiad.wmnet"].Group != "eqiad" {
		t.Errorf("host states from meta: %+v", d.HostState)
	}
	// The same id cannot be created twice.
	if _, err := Create(dir, "citoid", Meta{ID: m.ID, Who: "bob"}); err == nil {
		t.Error("second Create with the same id accepted")
	}
	if _, err := Create(dir, "citoid", Meta{Service: "mathoid", Who: "bob"}); err == nil {
		t.Error("Create with meta for another service accepted")
	}
}

func TestAppendRules(t *testing.T) {
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	for _, ev := range []Event{
		{Type: "stag"},
		{Type: TypeStarted},
		{Type: TypeFinished},
		{Type: TypeFinished, Outcome: "great"},
		{Type: TypeNote, Level: "loud"},
	} {
		if err := w.Append(ev); err == nil {
			t.Errorf("Append(%+v) accepted", ev)
		}
	}
	big := strings.Repeat("x", MaxOutput) + "ünd the end"
	if err := w.Append(Event{Type: TypeStage, Host: "h", Stage: StageFetch, ExitCode: Code(1), Output: big, Command: strings.Repeat("c", 2*MaxText)}); err != nil {
		t.Fatal(err)
	}
	if err := w.Finish(OutcomeFailed, "canary failed"); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(Event{Type: TypeNote, Message: "late"}); !errors.Is(err, ErrFinished) {
		t.Errorf("Append after finished: %v", err)
	}
	w.Close()
	if err := w.Append(Event{Type: TypeNote}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close: %v", err)
	}
	d, err := Read(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	ev := d.Events[1]
	if len(ev.Output) > MaxOutput+len("…") || !strings.HasSuffix(ev.Output, "ünd the end") || !strings.HasPrefix(ev.Output, "…") {
		t.Errorf("output tail: %d bytes, ends %q", len(ev.Output), ev.Output[len(ev.Output)-20:])
	}
	if len(ev.Command) > MaxText+len("…") {
		t.Errorf("command not cut: %d bytes", len(ev.Command))
	}
	if ev.Level != LevelError || ev.Time.IsZero() || ev.Time.Location() != time.UTC {
		t.Errorf("level/time not filled: %+v", ev)
	}
	if !d.Finished || d.Outcome != OutcomeFailed || d.Err != "canary failed" || d.Events[2].Duration <= 0 {
		t.Errorf("finished: %+v", d)
	}
}

// 50 goroutines append at once: every line is whole and parseable, every
// event is there exactly once.
func TestConcurrentAppend(t *testing.T) {
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	const goroutines, each = 50, 8
	var wg sync.WaitGroup
	errs := make(chan error, goroutines*each)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				// Outputs of a few KiB, so that lines are bigger than
				// what a torn interleaving could hide.
				out := strings.Repeat(fmt.Sprintf("g%d-i%d ", g, i), 300+g*7)
				errs <- w.Append(Event{Type: TypeStage, Host: fmt.Sprintf("host%02d", g), Stage: StageFetch,
					Command: fmt.Sprintf("%d/%d", g, i), ExitCode: Code(0), Output: out})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasSuffix(data, []byte("\n")) {
		t.Fatal("journal does not end with a newline")
	}
	seen := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	lines := 0
	for sc.Scan() {
		lines++
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %d is not whole JSON: %v", lines, err)
		}
		if ev.Type == TypeStarted {
			continue
		}
		var g, i int
		fmt.Sscanf(ev.Command, "%d/%d", &g, &i)
		if want := strings.Repeat(fmt.Sprintf("g%d-i%d ", g, i), 300+g*7); ev.Output != tail(want, MaxOutput) {
			t.Fatalf("line %d: output of %s mangled", lines, ev.Command)
		}
		if seen[ev.Command] {
			t.Fatalf("event %s twice", ev.Command)
		}
		seen[ev.Command] = true
	}
	if lines != 1+goroutines*each || len(seen) != goroutines*each {
		t.Fatalf("%d lines, %d distinct events; want %d", lines, len(seen), goroutines*each)
	}
	d, err := Read(w.Path())
	if err != nil || d.Torn != 0 || len(d.BadLines) != 0 || d.Size != int64(len(data)) {
		t.Fatalf("Read: torn %d bad %v size %d/%d err %v", d.Torn, d.BadLines, d.Size, len(data), err)
	}
}

// A crash in the middle of a write leaves a torn last line: Read skips and
// reports it, Follow never passes it on, Reopen cuts it before appending.
func TestTornLastLine(t *testing.T) {
	dir := t.TempDir()
	w := newWriter(t, dir, "citoid", time.Time{})
	w.Append(Event{Type: TypeStage, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StageFetch, ExitCode: Code(0)})
	w.Append(Event{Type: TypeStage, Group: "canary", Host: "scb1001.eqiad.wmnet", Stage: StagePromote, ExitCode: Code(0), Rev: revNew})
	id := w.Meta().ID
	w.Close()
	good, _ := os.ReadFile(w.Path())
	torn := []byte(`{"time":"2026-11-26T01:45:13Z","type":"host_done","host":"scb10`)
	f, _ := os.OpenFile(w.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.Write(torn)
	f.Close()

	d, err := Read(w.Path())
	if err != nil {
		t.Fatalf("Read of a torn journal: %v", err)
	}
	if d.Torn != int64(len(torn)) || d.Size != int64(len(good)) || len(d.Events) != 3 || len(d.BadLines) != 0 {
		t.Errorf("torn %d (want %d), size %d (want %d), %d events", d.Torn, len(torn), d.Size, len(good), len(d.Events))
	}
	if hs := d.HostState["scb1001.eqiad.wmnet"]; hs.Rev != revNew || hs.OK {
		t.Errorf("host state: %+v", hs)
	}
	ls, err := List(dir, "citoid")
	if err != nil || len(ls) != 1 || !ls[0].Torn || ls[0].ReadErr != "" {
		t.Errorf("List: %+v %v", ls, err)
	}
	var buf bytes.Buffer
	FormatState(&buf, d)
	if !strings.Contains(buf.String(), "torn last line") {
		t.Errorf("FormatState does not mention the torn line:\n%s", buf.String())
	}

	// Reopen needs the deploy lock for this very deploy.
	if _, _, err := Reopen(w.Path(), nil); err == nil {
		t.Error("Reopen without the lock accepted")
	}
	other, _ := AcquireDeploy(dir, "citoid", Holder{Who: "bob", DeployID: "20261126-000000-citoid-0000"})
	if _, _, err := Reopen(w.Path(), other); err == nil {
		t.Error("Reopen with another deploy's lock accepted")
	}
	other.Release()
	lock, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob", Why: "resuming", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	w2, d2, err := Reopen(w.Path(), lock)
	if err != nil {
		t.Fatal(err)
	}
	if d2.Torn == 0 {
		t.Error("Reopen did not report the torn line")
	}
	if err := w2.Append(Event{Type: TypeResumed, Who: "bob"}); err != nil {
		t.Fatal(err)
	}
	if err := w2.Finish(OutcomeSuccess, ""); err != nil {
		t.Fatal(err)
	}
	w2.Close()
	d3, err := Read(w.Path())
	if err != nil || d3.Torn != 0 || len(d3.BadLines) != 0 || len(d3.Events) != 5 || !d3.Finished {
		t.Fatalf("after Reopen: %+v, %v", d3, err)
	}
	if _, _, err := Reopen(w.Path(), lock); !errors.Is(err, ErrFinished) {
		t.Errorf("Reopen of a finished journal: %v", err)
	}
}

// A complete line that is not an event (disk corruption, a stray edit) is
// skipped and reported, not fatal.
func TestBadLineSkipped(t *testing.T) {
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	w.Append(Event{Type: TypeNote, Message: "one"})
	f, _ := os.OpenFile(w.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString("not json\n")
	f.Close()
	w.Append(Event{Type: TypeNote, Message: "two"})
	d, err := Read(w.Path())
	if err != nil || len(d.Events) != 3 || len(d.BadLines) != 1 || d.BadLines[0] != 3 {
		t.Fatalf("%v %+v", err, d)
	}
	os.WriteFile(w.Path()+"x", []byte("{\"type\":\"note\"}\n"), 0o644)
	if _, err := Read(w.Path() + "x"); err == nil {
		t.Error("a journal without a started first line was accepted")
	}
}

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
