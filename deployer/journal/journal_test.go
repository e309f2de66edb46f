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
