package sal

import (
	"context"
	"database/sql"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// A database made by the first version of the schema (user_version 1, no
// full-text index) is migrated on open, its existing entries indexed.
func TestSQLiteMigratesVersion1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sal.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	when := time.Date(2016, 4, 22, 5, 16, 0, 0, time.UTC).UnixNano()
	for _, stmt := range []string{
		migrations[0],
		`INSERT INTO entries (time, nick, channel, project, message, source) VALUES
			(` + strconv.FormatInt(when, 10) + `, 'bd808', '#wikimedia-operations', 'production', 'deploying citoid 5d6e7f8', 'irc'),
			(` + strconv.FormatInt(when+1000, 10) + `, 'alice', '#wikimedia-releng', 'releng', 'restarted zuul', 'irc'),
			(` + strconv.FormatInt(when-int64(24*time.Hour), 10) + `, 'carol', '', '', 'logged late for the day before', 'cli')`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var version int
	if err := s.db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("user_version = %d, %v; want %d", version, err, len(migrations))
	}
	check := func(what string, q Query, want ...string) {
		t.Helper()
		got, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var msgs []string
		for _, e := range got {
			msgs = append(msgs, e.Message)
		}
		if len(msgs) != len(want) || (len(want) > 0 && msgs[0] != want[0]) {
			t.Errorf("%s: got %q, want %q", what, msgs, want)
		}
	}
	check("old entry by word", Query{Search: "citoid"}, "deploying citoid 5d6e7f8")
	check("old entry by nick", Query{Search: "alice"}, "restarted zuul")
	check("old entry by channel", Query{Channel: "#wikimedia-releng"}, "restarted zuul")
	check("old entry by search and project", Query{Search: "zuul", Project: "releng"}, "restarted zuul")
	dayBefore := time.Date(2016, 4, 21, 0, 0, 0, 0, time.UTC)
	check("old backdated entry by day", Query{Since: dayBefore, Until: dayBefore.AddDate(0, 0, 1)}, "logged late for the day before")
	check("old entries by day", Query{Since: dayBefore.AddDate(0, 0, 1), Until: dayBefore.AddDate(0, 0, 2)}, "restarted zuul", "deploying citoid 5d6e7f8")
	if err := s.Append(ctx, &Entry{Nick: "carol", Project: "releng", Message: "restarted zuul again", Source: SourceIRC}); err != nil {
		t.Fatal(err)
	}
	check("old and new", Query{Search: "zuul"}, "restarted zuul again", "restarted zuul")

	// Opening again changes nothing.
	s.Close()
	s, err = OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	check("reopened", Query{Search: "zuul restarted"}, "restarted zuul again", "restarted zuul")
}

// A database from a newer deploybot is refused, not damaged.
func TestSQLiteRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sal.db")
	s, err := OpenSQLite(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`PRAGMA user_version = 99`); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := OpenSQLite(path); err == nil {
		t.Fatal("a schema newer than this build was accepted")
	}
}
