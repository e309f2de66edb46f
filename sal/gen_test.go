package sal

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A synthetic Server Admin Log for benchmarks: entries that look like a real
// one (services, hosts, sha1s, task ids, a Zipf-distributed vocabulary), one
// every ~15 minutes from 2000-01-01 on, so 1,000,000 entries span ~28 years.

var (
	genServices = strings.Fields(`citoid mediawiki parsoid restbase cxserver mathoid graphoid ores
		eventgate kartotherian tilerator zotero changeprop cpjobqueue apertium recommendation-api
		wikifeeds mobileapps proton termbox push-notifications linkrecommendation toolhub
		api-gateway sessionstore echostore thumbor envoy varnish haproxy nginx memcached redis
		mysql elasticsearch kafka zookeeper cassandra etcd puppet icinga prometheus grafana logstash`)
	genVerbs = strings.Fields(`restarted deploying deployed reverted depooling depooled repooling
		repooled rebooting rebooted upgraded downgraded synced scap updated disabled enabled
		started stopped killed reimaging reimaged migrating migrated running ran purged`)
	genSites    = []string{"eqiad", "codfw", "esams", "ulsfo", "eqsin", "drmrs"}
	genHostPfx  = strings.Fields(`mw scb db es ms cp lvs restbase kafka elastic an wtp sessionstore thumbor`)
	genProjects = []string{"production", "production", "production", "production", "releng", "tools", "analytics", "cloud", "search", "traffic"}
	genNicks    []string
	genVocab    []string
)

// genSkew returns an index below n, small ones far more often (the cube of
// a uniform variable), as words are in real text.
func genSkew(r *rand.Rand, n int) int {
	x := r.Float64()
	return int(float64(n)*x*x*x) % n
}

func init() {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 300 {
		genNicks = append(genNicks, fmt.Sprintf("%s%d", []string{"alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"}[i%10], i/10))
	}
	const letters = "abcdefghijklmnopqrstuvwxyz"
	for range 20000 {
		n := 3 + r.IntN(8)
		var b strings.Builder
		for range n {
			b.WriteByte(letters[r.IntN(len(letters))])
		}
		genVocab = append(genVocab, b.String())
	}
}

// genEntry returns entry i of the synthetic log.
func genEntry(r *rand.Rand, i int) Entry {
	svc := genServices[genSkew(r, len(genServices))]
	host := fmt.Sprintf("%s%d.%s.wmnet", genHostPfx[r.IntN(len(genHostPfx))], 1001+r.IntN(300), genSites[r.IntN(len(genSites))])
	var words []string
	for range 2 + r.IntN(8) {
		words = append(words, genVocab[genSkew(r, len(genVocab))])
	}
	free := strings.Join(words, " ")
	var msg string
	switch r.IntN(6) {
	case 0:
		msg = fmt.Sprintf("%s %s on %s", genVerbs[r.IntN(len(genVerbs))], svc, host)
	case 1:
		msg = fmt.Sprintf("deploying %s %040x: %s (T%d)", svc, r.Uint64(), free, 100000+r.IntN(300000))
	case 2:
		msg = fmt.Sprintf("%s %s: %s", genVerbs[r.IntN(len(genVerbs))], svc, free)
	case 3:
		msg = fmt.Sprintf("depooling %s for %s T%d", host, free, 100000+r.IntN(300000))
	default:
		msg = free
	}
	project := genProjects[r.IntN(len(genProjects))]
	if r.IntN(1000) == 0 {
		project = "tools.rare" // one entry in a thousand
	}
	return Entry{
		Time:    time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i)*15*time.Minute + time.Duration(r.IntN(600))*time.Second),
		Nick:    genNicks[genSkew(r, len(genNicks))],
		Channel: "#" + project,
		Project: project,
		Message: msg,
		Source:  SourceIRC,
	}
}

// fillSQLite adds n synthetic entries to s in big transactions, without
// the per-entry fsync of Append.
func fillSQLite(tb testing.TB, s *SQLite, n int) {
	tb.Helper()
	ctx := context.Background()
	conn, err := s.db.Conn(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close()
	// Indexing the rows in one go at the end is several times faster than
	// the trigger's row by row.
	for _, stmt := range []string{`PRAGMA synchronous = OFF`, `PRAGMA cache_size = -200000`, `DROP TRIGGER entries_fts_insert`} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			tb.Fatal(err)
		}
	}
	defer func() {
		for _, stmt := range []string{`PRAGMA synchronous = FULL`, `PRAGMA cache_size = -2000`} {
			conn.ExecContext(ctx, stmt)
		}
	}()
	var from int64
	if err := conn.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM entries`).Scan(&from); err != nil {
		tb.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, 4))
	const batch = 50000
	for start := 0; start < n; start += batch {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			tb.Fatal(err)
		}
		st, err := tx.PrepareContext(ctx, `INSERT INTO entries (time, nick, account, channel, project, message, source) VALUES (?, ?, ?, ?, ?, ?, ?)`)
		if err != nil {
			tb.Fatal(err)
		}
		for i := start; i < min(start+batch, n); i++ {
			e := genEntry(r, i)
			if _, err := st.ExecContext(ctx, e.Time.UnixNano(), e.Nick, e.Account, e.Channel, e.Project, e.Message, string(e.Source)); err != nil {
				tb.Fatal(err)
			}
		}
		st.Close()
		if err := tx.Commit(); err != nil {
			tb.Fatal(err)
		}
	}
	for _, stmt := range []string{
		`INSERT INTO entries_fts(rowid, message, nick, tags) SELECT id, message, nick, ` + sqliteTags("entries") + ` FROM entries WHERE id > ` + fmt.Sprint(from),
		sqliteFTSTrigger,
		`PRAGMA wal_checkpoint(TRUNCATE)`,
	} {
		if _, err := conn.ExecContext(ctx, stmt); err != nil {
			tb.Fatal(err)
		}
	}
}

// bigDB is a 1,000,000-entry SQLite log built once per test process.
var bigDB struct {
	once sync.Once
	dir  string
	path string
	err  error
	took time.Duration
}

const bigDBEntries = 1_000_000

// bigSQLite returns a store on the shared 1,000,000-entry log.
func bigSQLite(tb testing.TB) *SQLite {
	tb.Helper()
	bigDB.once.Do(func() {
		start := time.Now()
		bigDB.dir, bigDB.err = os.MkdirTemp("", "deploybot-sal-bench-")
		if bigDB.err != nil {
			return
		}
		bigDB.path = filepath.Join(bigDB.dir, "sal.db")
		s, err := OpenSQLite(bigDB.path)
		if err != nil {
			bigDB.err = err
			return
		}
		fillSQLite(tb, s, bigDBEntries)
		bigDB.err = s.Close()
		bigDB.took = time.Since(start)
	})
	if bigDB.err != nil {
		tb.Fatal(bigDB.err)
	}
	s, err := OpenSQLite(bigDB.path)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { s.Close() })
	return s
}

func TestMain(m *testing.M) {
	code := m.Run()
	if bigDB.dir != "" {
		os.RemoveAll(bigDB.dir)
	}
	os.Exit(code)
}
