// Package saltest is the conformance suite every sal.Store implementation
// passes: the same tests, run by each implementation's own tests on a real
// database (sal's tests for SQLite, e2e's for PostgreSQL).
//
// Nothing here is used by the product.
package saltest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/scale"
	"deploybot/sal"
)

// Option adds to what Run checks.
type Option func(*suite)

// Edit gives Run a way to try to change an entry behind the store's back,
// through the raw database (an UPDATE of its message). Run then checks that
// the attempt fails and the entry is unchanged.
func Edit(edit func(t *testing.T, s sal.Store, id int64) error) Option {
	return func(su *suite) { su.edit = edit }
}

type suite struct {
	open func(t *testing.T) sal.Store
	edit func(t *testing.T, s sal.Store, id int64) error
}

// Run runs the conformance suite, each test in a subtest of t.
//
// open returns a Store on the subtest's database: the first call for a
// given t creates a fresh, empty database; later calls with the same t open
// another Store on that same database (the suite uses this to run two
// writers at once, and to reopen). open closes what it opens when t ends;
// the suite may also close a Store itself. Fresh builds such a function.
func Run(t *testing.T, open func(t *testing.T) sal.Store, opts ...Option) {
	su := &suite{open: open}
	for _, o := range opts {
		o(su)
	}
	tests := []struct {
		name string
		f    func(*testing.T)
	}{
		{"AppendSetsIDAndTime", su.appendSetsIDAndTime},
		{"AppendCleans", su.appendCleans},
		{"Sender", su.sender},
		{"AppendRefusesBadEntries", su.appendRefuses},
		{"AppendWithKeyIsIdempotent", su.appendKey},
		{"ListNewestFirst", su.listNewestFirst},
		{"ProjectAndChannel", su.projectAndChannel},
		{"SinceUntil", su.sinceUntil},
		{"Search", su.search},
		{"SearchHostileInput", su.searchHostile},
		{"SearchWithFilters", su.searchWithFilters},
		{"PagingWhileAppending", su.pagingWhileAppending},
		{"Get", su.get},
		{"Immutable", su.immutable},
		{"ConcurrentStores", su.concurrentStores},
		{"Reopen", su.reopen},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.f)
	}
}

// Fresh builds Run's open function from two steps: create makes a new,
// empty database for a test and returns how to reach it (a path, a URL);
// connect opens a Store on it. create runs once per test, connect on every
// call; the Stores are closed when the test ends.
func Fresh(create func(t *testing.T) string, connect func(t *testing.T, dsn string) (sal.Store, error)) func(t *testing.T) sal.Store {
	var mu sync.Mutex
	dsns := map[*testing.T]string{}
	return func(t *testing.T) sal.Store {
		t.Helper()
		mu.Lock()
		dsn, ok := dsns[t]
		mu.Unlock()
		if !ok {
			dsn = create(t)
			mu.Lock()
			dsns[t] = dsn
			mu.Unlock()
			t.Cleanup(func() {
				mu.Lock()
				delete(dsns, t)
				mu.Unlock()
			})
		}
		s, err := connect(t, dsn)
		if err != nil {
			t.Fatalf("opening %s: %v", dsn, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
}

var ctx = context.Background()

// day is the UTC day most test entries are logged on.
var day = time.Date(2026, 4, 22, 0, 0, 0, 0, time.UTC)

func add(t *testing.T, s sal.Store, e sal.Entry) sal.Entry {
	t.Helper()
	if e.Nick == "" {
		e.Nick = "alice"
	}
	if e.Source == "" {
		e.Source = sal.SourceIRC
	}
	if err := s.Append(ctx, &e); err != nil {
		t.Fatalf("Append(%+v): %v", e, err)
	}
	return e
}

func list(t *testing.T, s sal.Store, q sal.Query) []sal.Entry {
	t.Helper()
	es, err := s.List(ctx, q)
	if err != nil {
		t.Fatalf("List(%+v): %v", q, err)
	}
	return es
}

func ids(es []sal.Entry) []int64 {
	out := make([]int64, len(es))
	for i, e := range es {
		out[i] = e.ID
	}
	return out
}

// idsOf returns the ids of es, newest first: what List should return.
func idsOf(es ...sal.Entry) []int64 {
	out := ids(es)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}

func wantIDs(t *testing.T, what string, got []sal.Entry, want []int64) {
	t.Helper()
	if g := ids(got); !slices.Equal(g, want) {
		t.Errorf("%s: got ids %v, want %v", what, g, want)
	}
}

func (su *suite) appendSetsIDAndTime(t *testing.T) {
	s := su.open(t)
	before := time.Now().Add(-time.Second)
	a := add(t, s, sal.Entry{Message: "first"})
	after := time.Now().Add(scale.D(time.Second))
	if a.ID <= 0 {
		t.Errorf("ID = %d, want > 0", a.ID)
	}
	if a.Time.Location() != time.UTC || a.Time.Before(before) || a.Time.After(after) {
		t.Errorf("Time = %v, want now in UTC", a.Time)
	}
	if a.Time.Nanosecond()%1000 != 0 {
		t.Errorf("Time = %v, want whole microseconds", a.Time)
	}
	given := time.Date(2026, 4, 22, 7, 16, 5, 123456789, time.FixedZone("CEST", 2*3600))
	b := add(t, s, sal.Entry{Message: "second", Time: given})
	if b.ID <= a.ID {
		t.Errorf("second ID %d not above first %d", b.ID, a.ID)
	}
	if want := given.UTC().Truncate(time.Microsecond); !b.Time.Equal(want) || b.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v", b.Time, want)
	}
	for _, e := range []sal.Entry{a, b} {
		got, err := s.Get(ctx, e.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got != e {
			t.Errorf("Get(%d) = %+v, want %+v", e.ID, got, e)
		}
	}
}

func (su *suite) appendCleans(t *testing.T) {
	s := su.open(t)
	e := add(t, s, sal.Entry{
		Nick:    " \x02bob\x02 ",
		Account: "bob\r\n",
		Channel: "#ops",
		Project: "ops",
		Message: "\x02restarted\x02 \x0304citoid\x03\r\nPRIVMSG #ops :x\x00y",
		Source:  sal.SourceRelay,
	})
	want := sal.Entry{ID: e.ID, Time: e.Time, Nick: "bob", Account: "bob", Channel: "#ops", Project: "ops",
		Message: "restarted citoid PRIVMSG #ops :x y", Source: sal.SourceRelay}
	if e != want {
		t.Errorf("after Append: %+v, want %+v", e, want)
	}
	got, err := s.Get(ctx, e.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Get = %+v, want %+v", got, want)
	}
	// Text survives byte for byte, multi-byte and all.
	u := add(t, s, sal.Entry{Nick: "zoë", Message: "héllo wörld ☃ 日本語 👍 'quoted' \"double\" \\ % _"})
	if got, _ := s.Get(ctx, u.ID); got != u {
		t.Errorf("Get = %+v, want %+v", got, u)
	}
	// The longest message there may be.
	long := add(t, s, sal.Entry{Message: strings.Repeat("é", sal.MaxMessageBytes/2)})
	if got, _ := s.Get(ctx, long.ID); got != long {
		t.Errorf("the longest message did not round-trip")
	}
}

// sender: Entry.Sender, the real sender of a relayed entry, is cleaned
// and stored, and comes back from Get, List, search and an idempotent
// re-append; entries without one come back without one.
func (su *suite) sender(t *testing.T) {
	s := su.open(t)
	relayed := add(t, s, sal.Entry{
		Nick:    "alice@deploy1001",
		Sender:  "\x02logmsgbot!~lmb@wikimedia/bot/logmsgbot\r\n (logmsgbot)",
		Channel: "#ops",
		Project: "ops",
		Message: "restarted web",
		Source:  sal.SourceRelay,
		Key:     "sender-key",
	})
	wantSender := "logmsgbot!~lmb@wikimedia/bot/logmsgbot (logmsgbot)"
	if relayed.Sender != wantSender {
		t.Errorf("after Append: Sender = %q, want %q", relayed.Sender, wantSender)
	}
	plain := add(t, s, sal.Entry{Nick: "bob", Channel: "#ops", Project: "ops", Message: "direct"})
	if plain.Sender != "" {
		t.Errorf("after Append without Sender: Sender = %q, want empty", plain.Sender)
	}
	got, err := s.Get(ctx, relayed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != relayed {
		t.Errorf("Get = %+v, want %+v", got, relayed)
	}
	if got, err := s.Get(ctx, plain.ID); err != nil || got.Sender != "" {
		t.Errorf("Get(plain) = %+v, %v; want no Sender", got, err)
	}
	for _, q := range []sal.Query{{}, {Project: "ops"}, {Search: "restarted"}} {
		list, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, e := range list {
			if e.ID == relayed.ID {
				found = true
				if e != relayed {
					t.Errorf("List(%+v) has %+v, want %+v", q, e, relayed)
				}
			}
		}
		if !found {
			t.Errorf("List(%+v) lacks entry %d", q, relayed.ID)
		}
	}
	again := sal.Entry{Nick: "alice@deploy1001", Message: "restarted web", Source: sal.SourceRelay, Key: "sender-key"}
	if err := s.Append(ctx, &again); err != nil {
		t.Fatal(err)
	}
	if again != relayed {
		t.Errorf("re-Append with the same key = %+v, want the stored %+v", again, relayed)
	}
}

func (su *suite) appendRefuses(t *testing.T) {
	s := su.open(t)
	cases := []struct {
		e    sal.Entry
		want error
	}{
		{sal.Entry{Nick: "a", Message: "", Source: sal.SourceIRC}, sal.ErrEmptyMessage},
		{sal.Entry{Nick: "a", Message: " \x02\x02 \r\n", Source: sal.SourceIRC}, sal.ErrEmptyMessage},
		{sal.Entry{Nick: "a", Message: strings.Repeat("x", sal.MaxMessageBytes+1), Source: sal.SourceIRC}, sal.ErrTooLong},
		{sal.Entry{Nick: "a", Message: strings.Repeat("é", sal.MaxMessageBytes/2) + "x", Source: sal.SourceIRC}, sal.ErrTooLong},
		{sal.Entry{Nick: "a", Message: "x", Sender: strings.Repeat("s", sal.MaxSenderBytes+1), Source: sal.SourceRelay}, sal.ErrTooLong},
		{sal.Entry{Nick: "", Message: "x", Source: sal.SourceIRC}, sal.ErrNoNick},
		{sal.Entry{Nick: "\x02\x02", Message: "x", Source: sal.SourceIRC}, sal.ErrNoNick},
		{sal.Entry{Nick: "a", Message: "x", Source: ""}, sal.ErrBadSource},
		{sal.Entry{Nick: "a", Message: "x", Source: "web"}, sal.ErrBadSource},
		{sal.Entry{Nick: "a", Message: "x", Source: sal.SourceIRC, Time: time.Date(1500, 1, 1, 0, 0, 0, 0, time.UTC)}, sal.ErrBadTime},
		{sal.Entry{Nick: "a", Message: "x", Source: sal.SourceIRC, Time: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}, sal.ErrBadTime},
	}
	for _, c := range cases {
		e := c.e
		if err := s.Append(ctx, &e); !errors.Is(err, c.want) {
			t.Errorf("Append(%.40q, nick %q, source %q) err = %v, want %v", c.e.Message, c.e.Nick, c.e.Source, err, c.want)
		}
		if e.ID != 0 {
			t.Errorf("refused entry got ID %d", e.ID)
		}
	}
	if got := list(t, s, sal.Query{}); len(got) != 0 {
		t.Fatalf("refused entries were stored: %+v", got)
	}
}

func (su *suite) appendKey(t *testing.T) {
	s := su.open(t)
	first := add(t, s, sal.Entry{Message: "spooled line", Key: "k1", Time: day})
	// The same key again, even with other content: the stored entry.
	again := sal.Entry{Nick: "other", Message: "spooled line, flushed twice", Source: sal.SourceRelay, Key: "k1"}
	if err := s.Append(ctx, &again); err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Errorf("Append of a stored key = %+v, want the stored %+v", again, first)
	}
	other := add(t, s, sal.Entry{Message: "another line", Key: "k2"})
	plain1 := add(t, s, sal.Entry{Message: "no key"})
	plain2 := add(t, s, sal.Entry{Message: "no key"})
	wantIDs(t, "stored once", list(t, s, sal.Query{}), idsOf(first, other, plain1, plain2))
	if got, _ := s.Get(ctx, first.ID); got != first {
		t.Errorf("Get = %+v, want %+v", got, first)
	}
	// Two stores flushing the same keys at once store each once.
	s2 := su.open(t)
	var wg sync.WaitGroup
	for i := range 20 {
		for _, st := range []sal.Store{s, s2} {
			wg.Go(func() {
				e := sal.Entry{Nick: "n", Source: sal.SourceIRC, Message: fmt.Sprintf("raced %d", i), Key: fmt.Sprintf("race-%d", i)}
				if err := st.Append(ctx, &e); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if got := list(t, s, sal.Query{Search: "raced"}); len(got) != 20 {
		t.Errorf("20 keys appended twice each: %d entries stored", len(got))
	}
}

func (su *suite) listNewestFirst(t *testing.T) {
	s := su.open(t)
	if got := list(t, s, sal.Query{}); len(got) != 0 {
		t.Fatalf("empty store lists %d entries", len(got))
	}
	var all []sal.Entry
	for i := range 105 {
		// Times go backwards: the order is by id (log order), not time.
		all = append(all, add(t, s, sal.Entry{Message: fmt.Sprintf("entry %d", i), Time: day.Add(-time.Duration(i) * time.Minute)}))
	}
	want := idsOf(all...)
	wantIDs(t, "default limit", list(t, s, sal.Query{}), want[:100])
	wantIDs(t, "limit 7", list(t, s, sal.Query{Limit: 7}), want[:7])
	wantIDs(t, "limit 1000", list(t, s, sal.Query{Limit: 1000}), want)
	wantIDs(t, "before", list(t, s, sal.Query{Before: want[9], Limit: 3}), want[10:13])
	wantIDs(t, "before the first", list(t, s, sal.Query{Before: want[len(want)-1]}), nil)
	got := list(t, s, sal.Query{Limit: 1})
	if len(got) != 1 || got[0] != all[len(all)-1] {
		t.Errorf("newest = %+v, want %+v", got, all[len(all)-1])
	}
}

func (su *suite) projectAndChannel(t *testing.T) {
	s := su.open(t)
	a := add(t, s, sal.Entry{Project: "production", Channel: "#wikimedia-operations", Message: "a"})
	b := add(t, s, sal.Entry{Project: "releng", Channel: "#wikimedia-releng", Message: "b"})
	c := add(t, s, sal.Entry{Project: "production", Channel: "#wikimedia-releng", Message: "c"})
	d := add(t, s, sal.Entry{Project: "", Channel: "", Source: sal.SourceCLI, Message: "d"})
	e := add(t, s, sal.Entry{Project: "Production", Channel: "#Wikimedia-Operations", Message: "e"})
	wantIDs(t, "project", list(t, s, sal.Query{Project: "production"}), idsOf(a, c))
	wantIDs(t, "project, other case", list(t, s, sal.Query{Project: "Production"}), idsOf(e))
	wantIDs(t, "channel", list(t, s, sal.Query{Channel: "#wikimedia-releng"}), idsOf(b, c))
	wantIDs(t, "both", list(t, s, sal.Query{Project: "production", Channel: "#wikimedia-releng"}), idsOf(c))
	wantIDs(t, "unknown project", list(t, s, sal.Query{Project: "nope"}), nil)
	wantIDs(t, "all", list(t, s, sal.Query{}), idsOf(a, b, c, d, e))
	wantIDs(t, "project and cursor", list(t, s, sal.Query{Project: "production", Before: c.ID}), idsOf(a))
}

func (su *suite) sinceUntil(t *testing.T) {
	s := su.open(t)
	next := day.AddDate(0, 0, 1)
	us := time.Microsecond
	// Appended out of time order on purpose: a backdated entry still
	// belongs to its day.
	late := add(t, s, sal.Entry{Message: "last moment", Time: next.Add(-us)})
	atMidnight := add(t, s, sal.Entry{Message: "at midnight", Time: day})
	before := add(t, s, sal.Entry{Message: "the day before", Time: day.Add(-us)})
	noon := add(t, s, sal.Entry{Message: "noon", Time: day.Add(12 * time.Hour), Project: "ops"})
	nextMidnight := add(t, s, sal.Entry{Message: "next midnight", Time: next})
	old := add(t, s, sal.Entry{Message: "long ago", Time: time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)})
	future := add(t, s, sal.Entry{Message: "far ahead", Time: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)})
	backdated := add(t, s, sal.Entry{Message: "backdated", Time: day.Add(6 * time.Hour), Project: "ops"})

	wantDay := idsOf(late, atMidnight, noon, backdated)
	wantIDs(t, "the day", list(t, s, sal.Query{Since: day, Until: next}), wantDay)
	// The same instants in another zone select the same entries.
	zone := time.FixedZone("PDT", -7*3600)
	wantIDs(t, "the day, other zone", list(t, s, sal.Query{Since: day.In(zone), Until: next.In(zone)}), wantDay)
	wantIDs(t, "since", list(t, s, sal.Query{Since: next}), idsOf(nextMidnight, future))
	wantIDs(t, "until", list(t, s, sal.Query{Until: day}), idsOf(before, old))
	wantIDs(t, "empty window", list(t, s, sal.Query{Since: day.Add(time.Hour), Until: day.Add(2 * time.Hour)}), nil)
	wantIDs(t, "reversed window", list(t, s, sal.Query{Since: next, Until: day}), nil)
	wantIDs(t, "one microsecond", list(t, s, sal.Query{Since: day, Until: day.Add(us)}), idsOf(atMidnight))
	wantIDs(t, "day and project", list(t, s, sal.Query{Since: day, Until: next, Project: "ops"}), idsOf(noon, backdated))
	wantIDs(t, "day and cursor", list(t, s, sal.Query{Since: day, Until: next, Before: noon.ID}), idsOf(late, atMidnight))
	wantIDs(t, "day, limit 2", list(t, s, sal.Query{Since: day, Until: next, Limit: 2}), wantDay[:2])
	wantIDs(t, "far bounds", list(t, s, sal.Query{Since: time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), Until: time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)}),
		idsOf(late, atMidnight, before, noon, nextMidnight, old, future, backdated))
	wantIDs(t, "beyond the end", list(t, s, sal.Query{Since: time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC)}), nil)
	wantIDs(t, "before the start", list(t, s, sal.Query{Until: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC)}), nil)
}

func (su *suite) search(t *testing.T) {
	s := su.open(t)
	citoid := add(t, s, sal.Entry{Nick: "alice", Message: "restarted citoid on scb1001.eqiad.wmnet"})
	parsoid := add(t, s, sal.Entry{Nick: "bob", Message: "Restarted Parsoid on wtp1025"})
	deploy := add(t, s, sal.Entry{Nick: "bd808", Message: "deploying citoid 5d6e7f8 (T12345)"})
	rock := add(t, s, sal.Entry{Nick: "carol", Message: "rock and roll; (not) \"quoted\" it's fine"})
	uni := add(t, s, sal.Entry{Nick: "zoë", Message: "héllo wörld ☃ über"})
	relay := add(t, s, sal.Entry{Nick: "deploy@tin", Source: sal.SourceRelay, Message: "synced wmf-config"})

	cases := []struct {
		search string
		want   []int64
	}{
		{"citoid", idsOf(citoid, deploy)},
		{"CITOID", idsOf(citoid, deploy)},
		{"restarted", idsOf(citoid, parsoid)},
		{"restarted citoid", idsOf(citoid)},
		{"citoid restarted", idsOf(citoid)},
		{"  restarted   \t citoid  ", idsOf(citoid)},
		{"restarted nothing", nil},
		{"bob", idsOf(parsoid)},              // nick
		{"BOB restarted", idsOf(parsoid)},    // nick and message
		{"bd808 citoid", idsOf(deploy)},      // nick and message
		{"deploy", idsOf(relay)},             // nick "deploy@tin"; "deploying" is another word
		{"deploy*", idsOf(deploy, relay)},    // prefix
		{"restart*", idsOf(citoid, parsoid)}, // prefix
		{"scb1001", idsOf(citoid)},           // a token of a host name
		{"eqiad", idsOf(citoid)},
		{"scb1001.eqiad.wmnet", idsOf(citoid)}, // the whole host name
		{"scb1001.eqiad*", idsOf(citoid)},
		{"wtp1025.eqiad", nil}, // tokens in a row only
		{"T12345", idsOf(deploy)},
		{"5d6e7f8", idsOf(deploy)},
		{"wmf-config", idsOf(relay)},
		{"and", idsOf(rock)}, // a plain word, not an operator
		{"AND", idsOf(rock)},
		{"rock AND roll", idsOf(rock)},
		{"rock OR citoid", nil}, // AND of three words
		{"NOT", idsOf(rock)},
		{`"quoted"`, idsOf(rock)},
		{`(not)`, idsOf(rock)},
		{"it's", idsOf(rock)},
		{"wörld", idsOf(uni)},
		{"WÖRLD", idsOf(uni)},
		{"world", idsOf(uni)}, // diacritics do not count
		{"hello uber", idsOf(uni)},
		{"zoe", idsOf(uni)},
		{"☃", nil}, // no letter or digit: no word to look for
		{"*", nil},
		{"citoid *", idsOf(citoid, deploy)}, // the * alone is ignored
		{"ci*", nil},                        // too short a prefix: the word "ci"
		{"citoids", nil},
		{"cito", nil}, // whole words
		{"citoid" + strings.Repeat(" citoid", 40), idsOf(citoid, deploy)},
	}
	for _, c := range cases {
		wantIDs(t, fmt.Sprintf("Search %q", c.search), list(t, s, sal.Query{Search: c.search}), c.want)
	}
}

func (su *suite) searchHostile(t *testing.T) {
	s := su.open(t)
	add(t, s, sal.Entry{Message: `restarted citoid "quoted" 'single' (paren) a*b -x ^y NEAR(a b) message:x {nick}:y ;-- DROP TABLE entries`})
	add(t, s, sal.Entry{Message: "héllo ☃ 日本語 עברית 👍🏽"})
	hostile := []string{
		`"`, `""`, `"""`, `*`, `**`, `***`, `AND`, `OR`, `NOT`, `NEAR`, `NEAR(`, `NEAR(a b, 2)`,
		`(`, `)`, `()`, `(((`, `'`, `''`, `;--`, `'; DROP TABLE entries;--`, `"; DROP TABLE entries;--`,
		`message:`, `message:citoid`, `nick:alice`, `{message nick}:x`, `tags:x`, `-citoid`, `+citoid`, `^citoid`,
		`citoid AND`, `AND citoid`, `citoid OR`, `citoid NOT`, `a:b:c`, `:`, `{`, `}`, `[`, `]`, `\`, `\\`, `%`, `_`, `%_%`,
		`&`, `|`, `!`, `<->`, `<2>`, `:*`, `'a':*`, `a & b`, `a | !b`, `a <-> b`, `$1`, `?`, `@@`,
		"nul\x00byte", "bad\xffutf8", "\xc3", "tab\there", "new\nline", "\u200b", "\u202e", "\ufeff",
		"日本語", "עברית", "👍🏽", "☃", "é", "e\u0301", "ǅ", "İstanbul", "ß", "ﬁ",
		strings.Repeat("a", 10000), strings.Repeat("a ", 5000), strings.Repeat(`" `, 1000), strings.Repeat("(", 1000),
		strings.Repeat("citoid* ", 100), strings.Repeat("x", 127) + "é" + "*",
	}
	for _, h := range hostile {
		for _, q := range []sal.Query{{Search: h}, {Search: h, Project: "p", Channel: "#c", Since: day, Until: day.AddDate(0, 0, 1), Before: 1 << 40}} {
			if _, err := s.List(ctx, q); err != nil {
				t.Errorf("List(Search %.40q): %v", h, err)
			}
		}
	}
	// Filter values no entry can have are not errors either.
	for _, v := range []string{"x\x00y", "\xff\xfe", "'; DROP TABLE entries;--", strings.Repeat("p", 10000)} {
		for _, q := range []sal.Query{{Project: v}, {Channel: v}, {Project: v, Search: "citoid"}, {Channel: v, Search: "citoid", Since: day}} {
			if got, err := s.List(ctx, q); err != nil || len(got) != 0 {
				t.Errorf("List(%.60q) = %d entries, %v; want none, no error", fmt.Sprintf("%+v", q), len(got), err)
			}
		}
	}
	// The quoting works both ways: these find what they say.
	for _, w := range []string{`"quoted"`, `'single'`, `(paren)`, `NEAR(a`, `message:x`, `{nick}:y`, `DROP`, `a*b`, `日本語`, `עברית`} {
		if got := list(t, s, sal.Query{Search: w}); len(got) != 1 {
			t.Errorf("Search %q found %d entries, want 1", w, len(got))
		}
	}
	if got := list(t, s, sal.Query{}); len(got) != 2 {
		t.Errorf("after hostile searches the store holds %d entries, want 2", len(got))
	}
}

func (su *suite) searchWithFilters(t *testing.T) {
	s := su.open(t)
	var restarts []sal.Entry
	for i := range 30 {
		project, channel := "production", "#wikimedia-operations"
		if i%3 == 0 {
			project, channel = "releng", "#wikimedia-releng"
		}
		when := day.Add(time.Duration(i) * time.Hour) // 30 hours: two days
		restarts = append(restarts, add(t, s, sal.Entry{Project: project, Channel: channel, Time: when, Message: fmt.Sprintf("restarted citoid %d", i)}))
		add(t, s, sal.Entry{Project: project, Channel: channel, Time: when, Message: fmt.Sprintf("other thing %d", i)})
	}
	var want []sal.Entry
	for i, e := range restarts {
		if i%3 == 0 && i < 24 {
			want = append(want, e)
		}
	}
	q := sal.Query{Search: "citoid restarted", Project: "releng", Channel: "#wikimedia-releng", Since: day, Until: day.AddDate(0, 0, 1)}
	wantIDs(t, "search, project, channel, day", list(t, s, q), idsOf(want...))
	// Page through it two at a time.
	var got []sal.Entry
	for page := 0; page < 10; page++ {
		q.Limit = 2
		es := list(t, s, q)
		got = append(got, es...)
		if len(es) < 2 {
			break
		}
		q.Before = es[len(es)-1].ID
	}
	wantIDs(t, "paged", got, idsOf(want...))
	wantIDs(t, "search, other channel", list(t, s, sal.Query{Search: "citoid", Channel: "#nowhere"}), nil)
	wantIDs(t, "search, other project", list(t, s, sal.Query{Search: "citoid", Project: "nowhere"}), nil)
}

func (su *suite) pagingWhileAppending(t *testing.T) {
	s := su.open(t)
	var initial []sal.Entry
	for i := range 120 {
		initial = append(initial, add(t, s, sal.Entry{Message: fmt.Sprintf("restarted thing %d", i), Project: "ops"}))
	}
	// Another writer keeps appending while we page: new entries are
	// newer than the cursor and never show up on later pages.
	stop := make(chan struct{})
	done := make(chan error, 1)
	w := su.open(t)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e := sal.Entry{Nick: "writer", Source: sal.SourceCLI, Project: "ops", Message: fmt.Sprintf("restarted late %d", i)}
			if err := w.Append(ctx, &e); err != nil {
				done <- err
				return
			}
		}
	}()
	for _, base := range []sal.Query{{}, {Project: "ops"}, {Search: "restarted"}} {
		first := list(t, s, sal.Query{Limit: 1, Project: base.Project, Search: base.Search})
		if len(first) != 1 {
			t.Fatalf("no newest entry")
		}
		top := first[0].ID
		var seen []int64
		q := base
		q.Before = top + 1
		q.Limit = 17
		for {
			es := list(t, s, q)
			for i := 1; i < len(es); i++ {
				if es[i].ID >= es[i-1].ID {
					t.Fatalf("page not newest first: %v", ids(es))
				}
			}
			seen = append(seen, ids(es)...)
			if len(es) < q.Limit {
				break
			}
			q.Before = es[len(es)-1].ID
		}
		// Exactly the entries up to top, each once.
		all := list(t, s, sal.Query{Project: base.Project, Search: base.Search, Before: top + 1, Limit: 100000})
		if !slices.Equal(seen, ids(all)) {
			t.Errorf("%+v: pages gave %d ids, want the %d up to %d", base, len(seen), len(all), top)
		}
		if len(seen) < len(initial) {
			t.Errorf("%+v: pages gave %d ids, fewer than the %d initial", base, len(seen), len(initial))
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func (su *suite) get(t *testing.T) {
	s := su.open(t)
	e := add(t, s, sal.Entry{Account: "acct", Channel: "#c", Project: "p", Message: "m", Source: sal.SourceDeploy})
	got, err := s.Get(ctx, e.ID)
	if err != nil || got != e {
		t.Errorf("Get(%d) = %+v, %v; want %+v", e.ID, got, err, e)
	}
	for _, id := range []int64{0, -1, e.ID + 1, 1 << 62} {
		if _, err := s.Get(ctx, id); !errors.Is(err, sal.ErrNotFound) {
			t.Errorf("Get(%d) err = %v, want ErrNotFound", id, err)
		}
	}
}

func (su *suite) immutable(t *testing.T) {
	if su.edit == nil {
		t.Skip("no Edit option: the implementation's own tests check this")
	}
	s := su.open(t)
	e := add(t, s, sal.Entry{Message: "original"})
	if err := su.edit(t, s, e.ID); err == nil {
		t.Errorf("editing entry %d behind the store's back succeeded", e.ID)
	}
	if got, _ := s.Get(ctx, e.ID); got != e {
		t.Errorf("entry changed: %+v, want %+v", got, e)
	}
	if got := list(t, s, sal.Query{Search: "original"}); len(got) != 1 {
		t.Errorf("search finds %d entries, want 1", len(got))
	}
}

func (su *suite) concurrentStores(t *testing.T) {
	a, b := su.open(t), su.open(t)
	const each = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	var appended []sal.Entry
	errs := make(chan error, 2*each)
	for i := range each {
		for j, s := range []sal.Store{a, b} {
			wg.Go(func() {
				e := sal.Entry{Nick: fmt.Sprintf("w%d", j), Source: sal.SourceIRC, Message: fmt.Sprintf("from %d #%d", j, i)}
				if err := s.Append(ctx, &e); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				appended = append(appended, e)
				mu.Unlock()
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for _, e := range appended {
		if seen[e.ID] {
			t.Fatalf("id %d given twice", e.ID)
		}
		seen[e.ID] = true
	}
	for _, s := range []sal.Store{a, b} {
		all := list(t, s, sal.Query{Limit: 1000})
		if len(all) != 2*each {
			t.Fatalf("a store lists %d entries, want %d", len(all), 2*each)
		}
		wantIDs(t, "all", all, idsOf(appended...))
		for _, e := range appended {
			if got, err := s.Get(ctx, e.ID); err != nil || got != e {
				t.Fatalf("Get(%d) = %+v, %v; want %+v", e.ID, got, err, e)
			}
		}
	}
}

func (su *suite) reopen(t *testing.T) {
	s := su.open(t)
	a := add(t, s, sal.Entry{Message: "before reopening citoid"})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = su.open(t)
	if got, err := s.Get(ctx, a.ID); err != nil || got != a {
		t.Fatalf("after reopening: Get = %+v, %v; want %+v", got, err, a)
	}
	b := add(t, s, sal.Entry{Message: "after reopening citoid"})
	if b.ID <= a.ID {
		t.Errorf("id after reopening %d not above %d", b.ID, a.ID)
	}
	wantIDs(t, "search after reopening", list(t, s, sal.Query{Search: "reopening citoid"}), idsOf(a, b))
}
