package e2e

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"deploybot/e2e/pgsql"
	"deploybot/sal"
	"deploybot/sal/saltest"
)

// TestPostgresConformance runs the Store conformance suite against a real
// PostgreSQL server, a fresh database per test: once as configured, once
// with searches turning to the GIN index after the 3 newest ids (the step
// that otherwise only a big log reaches).
func TestPostgresConformance(t *testing.T) {
	srv := pgsql.StartT(t)
	for _, recent := range []int64{0, 3} {
		t.Run(fmt.Sprintf("RecentIDs=%d", recent), func(t *testing.T) {
			saltest.Run(t, saltest.Fresh(
				func(t *testing.T) string { return srv.DatabaseT(t) },
				func(t *testing.T, url string) (sal.Store, error) {
					s, err := sal.Open(url)
					if err == nil {
						s.(*sal.Postgres).RecentIDs = recent
					}
					return s, err
				},
			), saltest.Edit(func(t *testing.T, s sal.Store, id int64) error {
				_, err := s.(*sal.Postgres).Pool().Exec(context.Background(), `UPDATE sal_entries SET message = 'edited' WHERE id = $1`, id)
				return err
			}))
		})
	}
}

// TestPostgresInstancesStartTogether: several bot instances opening a new
// database at once migrate it once, without errors.
func TestPostgresInstancesStartTogether(t *testing.T) {
	srv := pgsql.StartT(t)
	url := srv.DatabaseT(t)
	const n = 6
	stores := make([]sal.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = sal.Open(url) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	// Every migration applied exactly once, however many instances raced.
	var rows, distinct, latest int
	pool := stores[0].(*sal.Postgres).Pool()
	if err := pool.QueryRow(context.Background(), `SELECT count(*), count(DISTINCT version), coalesce(max(version), 0) FROM sal_migrations`).Scan(&rows, &distinct, &latest); err != nil {
		t.Fatal(err)
	}
	if rows != distinct || rows != latest || latest < 2 {
		t.Fatalf("sal_migrations holds %d rows, %d versions, the latest %d; want each of versions 1 to the latest (2 or more) once", rows, distinct, latest)
	}
	e := sal.Entry{Nick: "alice", Message: "hello from one instance", Source: sal.SourceIRC}
	if err := stores[0].Append(context.Background(), &e); err != nil {
		t.Fatal(err)
	}
	if got, err := stores[n-1].Get(context.Background(), e.ID); err != nil || got != e {
		t.Fatalf("another instance reads %+v, %v; want %+v", got, err, e)
	}
}

// BenchmarkPostgresSearch: searches over 1,000,000 entries in PostgreSQL,
// as BenchmarkSearch does for SQLite (the synthetic log is made by the
// server here, with a smaller vocabulary). Reports p50/p99 in µs.
func BenchmarkPostgresSearch(b *testing.B) {
	srv := pgsql.StartT(b)
	st, err := sal.OpenPostgres(srv.DatabaseT(b))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	start := time.Now()
	// The GIN index is built after the rows: much faster than row by row.
	for _, stmt := range []string{
		`DROP INDEX sal_entries_search`,
		`INSERT INTO sal_entries (time, nick, channel, project, message, source, search)
		SELECT time, nick, '#' || project, project, message, 'irc', to_tsvector('simple', lower(message) || ' ' || nick)
		FROM (
			SELECT timestamptz '2000-01-01 00:00:00+00' + i * interval '15 minutes' AS time,
				'nick' || (i % 300) AS nick,
				(array['production','production','production','production','releng','tools','analytics','cloud','search','traffic'])[1 + ((i::bigint * 7919) % 10)::int] AS project,
				w[1 + floor(power(random(), 3) * 32)::int] || ' ' || w[1 + floor(power(random(), 3) * 32)::int] || ' ' ||
				w[1 + floor(random() * 32)::int] || ' ' || w[1 + floor(random() * 32)::int] || ' T' || (i % 99991) AS message
			FROM generate_series(1, 1000000) AS i,
				(SELECT array['citoid','mediawiki','parsoid','restbase','cxserver','mathoid','ores','eventgate','restarted','deploying',
					'depooling','repooled','synced','eqiad','codfw','esams','scb1001','mw1234','foo','bar','baz','qux','quux','lorem',
					'ipsum','dolor','sit','amet','alpha','beta','gamma','delta'] AS w) AS words
		) AS g`,
		`CREATE INDEX sal_entries_search ON sal_entries USING gin (search) WITH (fastupdate = off)`,
		`VACUUM ANALYZE sal_entries`,
	} {
		if _, err := st.Pool().Exec(ctx, stmt); err != nil {
			b.Fatalf("%.40s…: %v", stmt, err)
		}
	}
	b.Logf("1,000,000 entries built in %v", time.Since(start).Round(time.Second))
	day := time.Date(2013, 7, 4, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		q    sal.Query
	}{
		{"word", sal.Query{Search: "citoid"}},
		{"rare-word", sal.Query{Search: "T12345"}},
		{"two-words", sal.Query{Search: "restarted eqiad"}},
		{"prefix", sal.Query{Search: "depool*"}},
		{"word+project", sal.Query{Search: "citoid", Project: "tools"}},
		{"word+filters-matching-nothing", sal.Query{Search: "citoid", Project: "cloud", Channel: "#tools"}},
		{"word+day", sal.Query{Search: "citoid", Since: day, Until: day.AddDate(0, 0, 1)}},
		{"word+year", sal.Query{Search: "citoid", Since: day, Until: day.AddDate(1, 0, 0)}},
		{"word+page-500", sal.Query{Search: "citoid", Before: 500_000}},
		{"no-search+day", sal.Query{Since: day, Until: day.AddDate(0, 0, 1)}},
		{"no-search+project", sal.Query{Project: "tools", Before: 300_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var l []time.Duration
			n := 0
			for range max(b.N, 100) {
				t0 := time.Now()
				es, err := st.List(ctx, c.q)
				if err != nil {
					b.Fatal(err)
				}
				l = append(l, time.Since(t0))
				n = len(es)
			}
			var sum time.Duration
			for _, d := range l {
				sum += d
			}
			b.ReportMetric(float64(sum.Nanoseconds()/int64(len(l))), "ns/op")
			slices.Sort(l)
			b.ReportMetric(float64(l[len(l)/2].Nanoseconds())/1e3, "p50-µs")
			b.ReportMetric(float64(l[len(l)*99/100].Nanoseconds())/1e3, "p99-µs")
			b.ReportMetric(float64(n), "results")
		})
	}
}
