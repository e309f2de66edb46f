package journal

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"deploybot/e2e/scale"
)

func collect(ctx context.Context, path string, from int64) (<-chan Event, <-chan error) {
	evs := make(chan Event, 100)
	done := make(chan error, 1)
	go func() {
		done <- Follow(ctx, path, from, func(ev Event) error { evs <- ev; return nil })
		close(evs)
	}()
	return evs, done
}

func next(t *testing.T, evs <-chan Event) Event {
	t.Helper()
	select {
	case ev, ok := <-evs:
		if !ok {
			t.Fatal("Follow stopped early")
		}
		return ev
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("no event from Follow")
	}
	return Event{}
}

// Follow passes the existing events, then those appended after it
// started, and stops at the finished event.
func TestFollow(t *testing.T) {
	dir := t.TempDir()
	id, _ := NewID("citoid", time.Now())
	lock, err := AcquireDeploy(dir, "citoid", Holder{Who: "alice", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	w, err := Create(dir, "citoid", Meta{ID: id, Who: "alice", Rev: revNew})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Append(Event{Type: TypeNote, Message: "before"})

	evs, done := collect(context.Background(), w.Path(), 0)
	if ev := next(t, evs); ev.Type != TypeStarted || ev.Meta == nil || ev.Meta.ID != id {
		t.Fatalf("first event %+v", ev)
	}
	if ev := next(t, evs); ev.Message != "before" {
		t.Fatalf("second event %+v", ev)
	}
	// Longer than Follow's read buffer, and written while it waits.
	big := make([]byte, 0, 200<<10)
	for len(big) < cap(big) {
		big = append(big, "all work and no play "...)
	}
	time.Sleep(2 * followPoll)
	w.Append(Event{Type: TypeNote, Message: "after"})
	w.Append(Event{Type: TypeStage, Host: "h1", Stage: StageFetch, ExitCode: Code(0), Output: string(big)})
	if ev := next(t, evs); ev.Message != "after" {
		t.Fatalf("third event %+v", ev)
	}
	if ev := next(t, evs); ev.Type != TypeStage || len(ev.Output) < MaxOutput {
		t.Fatalf("fourth event %+v", ev.Type)
	}
	time.Sleep(2 * followPoll)
	w.Finish(OutcomeSuccess, "")
	if ev := next(t, evs); ev.Type != TypeFinished {
		t.Fatalf("last event %+v", ev)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Follow: %v", err)
		}
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("Follow did not stop at the finished event")
	}
}

// From an offset: only later events; from inside a line: from the next one.
func TestFollowFrom(t *testing.T) {
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	w.Append(Event{Type: TypeNote, Message: "one"})
	d, _ := Read(w.Path())
	w.Append(Event{Type: TypeNote, Message: "two"})
	w.Append(Event{Type: TypeNote, Message: "three"})
	w.Finish(OutcomeSuccess, "")

	var got []string
	err := Follow(context.Background(), w.Path(), d.Size, func(ev Event) error { got = append(got, ev.Message); return nil })
	if err != nil || len(got) != 3 || got[0] != "two" {
		t.Errorf("from Size: %q %v", got, err)
	}
	got = nil
	err = Follow(context.Background(), w.Path(), d.Size+3, func(ev Event) error { got = append(got, ev.Message); return nil })
	if err != nil || len(got) != 2 || got[0] != "three" {
		t.Errorf("from inside a line: %q %v", got, err)
	}
	stop := errors.New("stop")
	if err := Follow(context.Background(), w.Path(), 0, func(Event) error { return stop }); err != stop {
		t.Errorf("fn error not returned: %v", err)
	}
}

// Follow returns ErrInterrupted when the deploy's process is gone without
// a finished event, and ctx.Err() when cancelled.
func TestFollowInterruptedAndCancelled(t *testing.T) {
	defer func(p, l time.Duration) { followPoll, followLiveness = p, l }(followPoll, followLiveness)
	followPoll, followLiveness = 20*time.Millisecond, 100*time.Millisecond

	dir := t.TempDir()
	id, _ := NewID("citoid", time.Now())
	lock, err := AcquireDeploy(dir, "citoid", Holder{Who: "alice", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	w, err := Create(dir, "citoid", Meta{ID: id, Who: "alice", Rev: revNew})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	evs, done := collect(ctx, w.Path(), 0)
	next(t, evs)
	// While the lock is held Follow keeps waiting.
	select {
	case err := <-done:
		t.Fatalf("Follow returned while the deploy runs: %v", err)
	case <-time.After(scale.D(500 * time.Millisecond)):
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Follow: %v", err)
	}

	// The "process dies": an event is written, the lock goes, no
	// finished event. Follow passes the event, then reports.
	evs, done = collect(context.Background(), w.Path(), 0)
	next(t, evs)
	w.Append(Event{Type: TypeStageStarted, Host: "h1", Stage: StagePromote})
	w.Close()
	lock.Release()
	if ev := next(t, evs); ev.Type != TypeStageStarted {
		t.Errorf("last event %+v", ev)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrInterrupted) {
			t.Errorf("Follow of a dead deploy: %v, want ErrInterrupted", err)
		}
	case <-time.After(scale.D(30 * time.Second)):
		t.Fatal("Follow of a dead deploy did not return")
	}
}

// A torn line at the end is not passed on; when a resumed deploy cuts it
// and appends again, Follow picks up the new lines.
func TestFollowAcrossTornLine(t *testing.T) {
	defer func(p time.Duration) { followPoll = p }(followPoll)
	followPoll = 20 * time.Millisecond
	dir := t.TempDir()
	w := newWriter(t, dir, "citoid", time.Time{})
	id := w.Meta().ID
	w.Close()
	f, _ := os.OpenFile(w.Path(), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"type":"note","message":"torn`)
	f.Close()

	lock, err := AcquireDeploy(dir, "citoid", Holder{Who: "bob", DeployID: id})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	evs, done := collect(context.Background(), w.Path(), 0)
	next(t, evs) // started
	time.Sleep(scale.D(100 * time.Millisecond))
	w2, _, err := Reopen(w.Path(), lock)
	if err != nil {
		t.Fatal(err)
	}
	w2.Append(Event{Type: TypeResumed, Who: "bob"})
	w2.Finish(OutcomeRolledBack, "")
	w2.Close()
	if ev := next(t, evs); ev.Type != TypeResumed {
		t.Errorf("after the torn line: %+v", ev)
	}
	if ev := next(t, evs); ev.Type != TypeFinished {
		t.Errorf("then: %+v", ev)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}
