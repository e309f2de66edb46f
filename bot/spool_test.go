package bot

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"deploybot/sal"
)

// downStore fails every Append while down is set, like a database that is
// unreachable, and otherwise passes through to a real store.
type downStore struct {
	sal.Store
	down     atomic.Bool
	failNext atomic.Int32 // while down is not set, fail this many more
}

func (s *downStore) Append(ctx context.Context, e *sal.Entry) error {
	if s.down.Load() || s.failNext.Add(-1) >= 0 {
		return errors.New("database is unreachable")
	}
	return s.Store.Append(ctx, e)
}

// newSpoolBot is a test bot whose SAL store can be taken down (store, in
// front of real) and whose spool is the file at path.
func newSpoolBot(t *testing.T) (b *Bot, w *fakeWire, real sal.Store, store *downStore, spool *sal.Spool, path string) {
	t.Helper()
	b, w, real = newTestBot(t)
	store = &downStore{Store: real}
	b.store = store
	path = filepath.Join(t.TempDir(), "sal.spool")
	spool, err := sal.OpenSpool(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.spool = spool
	return b, w, real, store, spool, path
}

// The store comes back between the flush of the queued lines (which
// fails) and the new line's own append: the new line still waits behind
// the queued ones, so the log keeps the order they were acknowledged in.
func TestLogQueuedBehindWaitingLines(t *testing.T) {
	b, w, real, store, spool, _ := newSpoolBot(t)
	ctx := context.Background()

	store.down.Store(true)
	if got := b.runLine(t, w, "alice", "alice", "#ops", "!log first"); len(got) != 1 || !strings.Contains(got[0], "It is queued") {
		t.Fatalf("reply = %q", got)
	}
	store.down.Store(false)
	store.failNext.Store(1) // the flush of "first" fails, then the store is back
	if got := b.runLine(t, w, "alice", "alice", "#ops", "!log second"); len(got) != 1 || !strings.Contains(got[0], "It is queued") {
		t.Fatalf("reply = %q, want the line queued behind the waiting one", got)
	}
	if es, _ := real.List(ctx, sal.Query{}); len(es) != 0 {
		t.Fatalf("stored before the waiting line: %+v", es)
	}
	if _, err := spool.Flush(ctx, store); err != nil {
		t.Fatal(err)
	}
	es, _ := real.List(ctx, sal.Query{})
	if len(es) != 2 || es[1].Message != "first" || es[0].Message != "second" {
		t.Fatalf("entries = %+v", es)
	}
}

func TestLogQueuedWhileStoreIsDown(t *testing.T) {
	b, w, real, store, spool, _ := newSpoolBot(t)
	ctx := context.Background()

	store.down.Store(true)
	for _, msg := range []string{"first while down", "second while down"} {
		got := b.runLine(t, w, "alice", "alice", "#ops", "!log "+msg)
		if len(got) != 1 || !strings.Contains(got[0], "alice: Failed to log the message: database is unreachable. It is queued") {
			t.Fatalf("reply = %q", got)
		}
	}
	if p, _ := spool.Pending(); len(p) != 2 {
		t.Fatalf("spool holds %d entries, want 2", len(p))
	}
	if es, _ := real.List(ctx, sal.Query{}); len(es) != 0 {
		t.Fatalf("store has %d entries while down", len(es))
	}

	// The store is back: the next !log flushes the queue first, in order.
	store.down.Store(false)
	got := b.runLine(t, w, "alice", "alice", "#ops", "!log back again")
	if len(got) != 1 || !strings.HasPrefix(got[0], "#ops Logged the message at ") {
		t.Fatalf("reply = %q", got)
	}
	es, _ := real.List(ctx, sal.Query{})
	if len(es) != 3 || es[2].Message != "first while down" || es[1].Message != "second while down" || es[0].Message != "back again" || es[2].Account != "alice" {
		t.Fatalf("entries = %+v", es)
	}
	if p, _ := spool.Pending(); len(p) != 0 {
		t.Fatalf("spool still holds %d entries", len(p))
	}
}

// A line torn by a crash of an earlier run is at the end of the spool: the
// lines queued now are not glued to it, and all of them reach the log once
// the store is back.
func TestLogQueuedAfterTornSpoolLine(t *testing.T) {
	b, w, real, store, spool, path := newSpoolBot(t)
	if err := os.WriteFile(path, []byte(`{"nick":"alice","message":"half a li`), 0o640); err != nil {
		t.Fatal(err)
	}

	store.down.Store(true)
	for _, msg := range []string{"first while down", "second while down"} {
		got := b.runLine(t, w, "alice", "alice", "#ops", "!log "+msg)
		if len(got) != 1 || !strings.Contains(got[0], "It is queued") {
			t.Fatalf("reply = %q", got)
		}
	}
	store.down.Store(false)
	got := b.runLine(t, w, "alice", "alice", "#ops", "!log back again")
	if len(got) != 1 || !strings.HasPrefix(got[0], "#ops Logged the message at ") {
		t.Fatalf("reply = %q", got)
	}
	es, _ := real.List(context.Background(), sal.Query{})
	var msgs []string
	for _, e := range es {
		msgs = append(msgs, e.Message)
	}
	if strings.Join(msgs, "|") != "back again|second while down|first while down" {
		t.Fatalf("logged = %q", msgs)
	}
	if bad, _ := os.ReadFile(spool.BadPath()); !strings.Contains(string(bad), "half a li") {
		t.Fatalf("torn line not kept aside: %q", bad)
	}
}
