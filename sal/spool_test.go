package sal

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// failingStore refuses appends after the first n.
type failingStore struct {
	Store
	left int
}

func (f *failingStore) Append(ctx context.Context, e *Entry) error {
	if f.left == 0 {
		return errors.New("store down")
	}
	f.left--
	return f.Store.Append(ctx, e)
}

func TestSpoolPutFlush(t *testing.T) {
	ctx := context.Background()
	store, _ := openTemp(t)
	sp, err := OpenSpool(filepath.Join(t.TempDir(), "d", "sal.spool"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two \x02bold\x02", "three"} {
		if err := sp.Put(&Entry{Nick: "alice", Message: m, Source: SourceIRC}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Put(&Entry{Nick: "alice", Message: "  ", Source: SourceIRC}); !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("empty entry spooled: %v", err)
	}
	pending, err := sp.Pending()
	if err != nil || len(pending) != 3 || pending[1].Message != "two bold" || pending[0].Key == "" {
		t.Fatalf("pending = %+v, %v", pending, err)
	}

	// The store takes one, then fails: one moves, two stay, in order.
	n, err := sp.Flush(ctx, &failingStore{Store: store, left: 1})
	if n != 1 || err == nil {
		t.Fatalf("flush moved %d, err %v", n, err)
	}
	if p, _ := sp.Pending(); len(p) != 2 || p[0].Message != "two bold" {
		t.Fatalf("pending after partial flush = %+v", p)
	}
	if n, err := sp.Flush(ctx, store); n != 2 || err != nil {
		t.Fatalf("flush moved %d, err %v", n, err)
	}
	es, _ := store.List(ctx, Query{})
	if len(es) != 3 || es[2].Message != "one" || es[0].Message != "three" {
		t.Fatalf("stored = %+v", es)
	}
	if _, err := os.Stat(sp.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty spool file left behind: %v", err)
	}
}

func TestSpoolIgnoresTornLastLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sal.spool")
	sp, _ := OpenSpool(path)
	sp.Put(&Entry{Nick: "a", Message: "whole", Source: SourceIRC})
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"nick":"a","mess`)
	f.Close()
	p, err := sp.Pending()
	if err != nil || len(p) != 1 || p[0].Message != "whole" {
		t.Fatalf("pending = %+v, %v", p, err)
	}
}
