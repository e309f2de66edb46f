package sal

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestClean(t *testing.T) {
	cases := []struct{ in, want string }{
		{"restarted citoid", "restarted citoid"},
		{"\x02bold\x02 \x0304red\x03 \x1ditalic\x1d \x0freset", "bold red italic reset"},
		{"line1\r\nPRIVMSG #ops :injected", "line1 PRIVMSG #ops :injected"},
		{"nul\x00byte", "nul byte"},
		{"  tabs\tand   spaces  ", "tabs and spaces"},
		{"bad \xff utf8", "bad \uFFFD utf8"},
		{"héllo wörld ☃", "héllo wörld ☃"},
		{"\x03", ""},
	}
	for _, c := range cases {
		if got := Clean(c.in); got != c.want {
			t.Errorf("Clean(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "sub", "sal.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestSQLiteAppendListGet(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	when := time.Date(2026, 4, 22, 5, 16, 0, 0, time.FixedZone("x", 3600))
	e := &Entry{Time: when, Nick: "alice", Account: "alice", Channel: "#ops", Project: "ops", Message: "\x02restarted\x02 citoid\r\n", Source: SourceIRC}
	if err := s.Append(ctx, e); err != nil {
		t.Fatal(err)
	}
	if e.ID <= 0 || e.Message != "restarted citoid" || e.Time.Location() != time.UTC {
		t.Fatalf("after Append: %+v", e)
	}
	for i := 0; i < 5; i++ {
		project := "ops"
		if i%2 == 1 {
			project = "releng"
		}
		if err := s.Append(ctx, &Entry{Nick: "bob", Project: project, Message: "msg " + string(rune('a'+i)), Source: SourceCLI}); err != nil {
			t.Fatal(err)
		}
	}
	all, err := s.List(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 6 || all[0].Message != "msg e" || all[5].ID != e.ID {
		t.Fatalf("List = %+v", all)
	}
	ops, _ := s.List(ctx, Query{Project: "ops"})
	if len(ops) != 4 {
		t.Fatalf("project filter: got %d entries", len(ops))
	}
	page1, _ := s.List(ctx, Query{Limit: 4})
	page2, _ := s.List(ctx, Query{Limit: 4, Before: page1[len(page1)-1].ID})
	if len(page1) != 4 || len(page2) != 2 || page2[0].ID >= page1[3].ID {
		t.Fatalf("paging: %d then %d", len(page1), len(page2))
	}
	got, err := s.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != *e {
		t.Fatalf("Get = %+v, want %+v", got, *e)
	}
	if _, err := s.Get(ctx, 9999); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get(missing) err = %v", err)
	}

	// Reopen: everything is still there.
	s.Close()
	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	again, _ := s2.List(ctx, Query{})
	if len(again) != 6 {
		t.Fatalf("after reopen: %d entries", len(again))
	}
}

func TestSQLiteRefusesBadEntries(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	cases := []struct {
		e    Entry
		want error
	}{
		{Entry{Nick: "a", Message: " \x02\x02 ", Source: SourceIRC}, ErrEmptyMessage},
		{Entry{Nick: "", Message: "x", Source: SourceIRC}, ErrNoNick},
		{Entry{Nick: "a", Message: "x", Source: "web"}, ErrBadSource},
		{Entry{Nick: "a", Message: strings.Repeat("x", MaxMessageBytes+1), Source: SourceIRC}, ErrTooLong},
	}
	for _, c := range cases {
		e := c.e
		if err := s.Append(ctx, &e); !errors.Is(err, c.want) {
			t.Errorf("Append(%q) err = %v, want %v", c.e.Message, err, c.want)
		}
	}
	if n, _ := s.List(ctx, Query{}); len(n) != 0 {
		t.Fatalf("bad entries were stored: %+v", n)
	}
}

func TestSQLiteIsAppendOnly(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if err := s.Append(ctx, &Entry{Nick: "a", Message: "x", Source: SourceIRC}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE entries SET message = 'edited'`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Fatalf("UPDATE err = %v, want append-only refusal", err)
	}
}

func TestSQLiteConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s1, path := openTemp(t)
	s2, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for i := 0; i < 50; i++ {
		for _, s := range []*SQLite{s1, s2} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs <- s.Append(ctx, &Entry{Nick: "n", Message: "m", Source: SourceIRC})
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	all, _ := s1.List(ctx, Query{Limit: 1000})
	if len(all) != 100 {
		t.Fatalf("got %d entries, want 100", len(all))
	}
}

func TestPermalink(t *testing.T) {
	if got := Permalink("https://sal.example.org/", 42); got != "https://sal.example.org/log/42" {
		t.Fatal(got)
	}
}
