package sal

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// Benchmarks report latency percentiles (µs) of single operations. Each
// takes at least minSamples samples whatever b.N is (`make bench` runs
// -benchtime 1x), and ns/op is the mean.

const minSamples = 1000

func samples(b *testing.B) int { return max(b.N, minSamples) }

// typicalEntry is an entry as the bot logs them.
func typicalEntry(i int) Entry {
	return Entry{
		Nick:    "bd808",
		Account: "BryanDavis",
		Channel: "#wikimedia-operations",
		Project: "production",
		Message: "deploying citoid 5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e to scb1001.eqiad.wmnet (T12345) #" + strconv.Itoa(i),
		Source:  SourceIRC,
	}
}

// entryBytes is the encoded size of a typical entry: its JSON, as a bare
// log file would hold it.
func entryBytes() []byte {
	e := typicalEntry(1000)
	e.ID, e.Time = 123456, time.Now().UTC()
	b, _ := json.Marshal(e)
	return append(b, '\n')
}

type latencies []time.Duration

func (l latencies) pct(p float64) time.Duration {
	s := slices.Clone(l)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*p))]
}

func (l latencies) mean() time.Duration {
	var sum time.Duration
	for _, d := range l {
		sum += d
	}
	return sum / time.Duration(len(l))
}

func (l latencies) report(b *testing.B, prefix string) {
	b.ReportMetric(float64(l.pct(0.50).Nanoseconds())/1e3, prefix+"p50-µs")
	b.ReportMetric(float64(l.pct(0.99).Nanoseconds())/1e3, prefix+"p99-µs")
	b.ReportMetric(float64(l.pct(0.999).Nanoseconds())/1e3, prefix+"p99.9-µs")
}

// appender times durable Appends to a fresh SQLite store in dir.
type appender struct {
	s *SQLite
	i int
}

func newAppender(b *testing.B, dir string) *appender {
	s, err := OpenSQLite(filepath.Join(dir, "sal.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	a := &appender{s: s}
	for range 50 { // warm up: schema, pages, connections
		a.once(b)
	}
	return a
}

func (a *appender) once(b *testing.B) time.Duration {
	a.i++
	e := typicalEntry(a.i)
	start := time.Now()
	if err := a.s.Append(context.Background(), &e); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// syncer times a bare write+fsync of one encoded entry, appended to a
// file in dir: the least a durable log can do.
type syncer struct {
	f    *os.File
	data []byte
}

func newSyncer(b *testing.B, dir string) *syncer {
	f, err := os.OpenFile(filepath.Join(dir, "bare.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.Close() })
	s := &syncer{f: f, data: entryBytes()}
	for range 50 {
		s.once(b)
	}
	return s
}

func (s *syncer) once(b *testing.B) time.Duration {
	start := time.Now()
	if _, err := s.f.Write(s.data); err != nil {
		b.Fatal(err)
	}
	if err := s.f.Sync(); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// BenchmarkAppend: durable appends to SQLite (WAL, synchronous=FULL).
func BenchmarkAppend(b *testing.B) {
	a := newAppender(b, b.TempDir())
	b.ResetTimer()
	var l latencies
	for range samples(b) {
		l = append(l, a.once(b))
	}
	l.report(b, "")
	b.ReportMetric(float64(l.mean().Nanoseconds()), "ns/op")
}

// BenchmarkBareWriteFsync: write+fsync of the same number of bytes as a
// typical entry's encoding, to a file in the same file system.
func BenchmarkBareWriteFsync(b *testing.B) {
	s := newSyncer(b, b.TempDir())
	b.ResetTimer()
	var l latencies
	for range samples(b) {
		l = append(l, s.once(b))
	}
	b.ReportMetric(float64(len(s.data)), "bytes")
	l.report(b, "")
	b.ReportMetric(float64(l.mean().Nanoseconds()), "ns/op")
}

// BenchmarkAppendVsFsync runs both of the above interleaved, so that they
// see the same disk at the same moments, and reports the ratio of their
// p99s (the target: Append's p99 within 2× of the bare fsync's).
func BenchmarkAppendVsFsync(b *testing.B) {
	dir := b.TempDir()
	a, s := newAppender(b, dir), newSyncer(b, dir)
	b.ResetTimer()
	var la, ls latencies
	for range samples(b) {
		la = append(la, a.once(b))
		ls = append(ls, s.once(b))
	}
	la.report(b, "append-")
	ls.report(b, "fsync-")
	b.ReportMetric(float64(la.pct(0.99))/float64(ls.pct(0.99)), "p99-ratio")
	b.ReportMetric(float64(la.pct(0.50))/float64(ls.pct(0.50)), "p50-ratio")
	b.ReportMetric(float64(la.mean().Nanoseconds()), "ns/op")
}

// BenchmarkSearch: a typical search (one word, Limit 100) over 1,000,000
// entries, alone and with the filters the web pages combine it with. The
// log is built once per process (see bigSQLite).
func BenchmarkSearch(b *testing.B) {
	s := bigSQLite(b)
	b.Logf("1,000,000 entries built in %v", bigDB.took.Round(time.Second))
	ctx := context.Background()
	day := time.Date(2013, 7, 4, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name string
		q    Query
	}{
		{"word", Query{Search: "citoid"}},
		{"rare-word", Query{Search: genVocab[5000]}},
		{"two-words", Query{Search: "restarted eqiad"}},
		{"prefix", Query{Search: "depool*"}},
		{"word+project", Query{Search: "citoid", Project: "tools"}},
		{"word+rare-project", Query{Search: "citoid", Project: "tools.rare"}},
		{"word+filters-matching-nothing", Query{Search: "citoid", Project: "cloud", Channel: "#tools"}},
		{"word+day", Query{Search: "citoid", Since: day, Until: day.AddDate(0, 0, 1)}},
		{"word+page-500", Query{Search: "citoid", Before: 500_000}},
		{"word+month", Query{Search: "citoid", Since: day, Until: day.AddDate(0, 1, 0)}},
		{"word+year", Query{Search: "citoid", Since: day, Until: day.AddDate(1, 0, 0)}},
		{"word+since", Query{Search: "citoid", Since: day}},
		{"no-search+day", Query{Since: day, Until: day.AddDate(0, 0, 1)}},
		{"no-search+project", Query{Project: "tools", Before: 300_000}},
	} {
		b.Run(c.name, func(b *testing.B) {
			var l latencies
			n := 0
			for range max(b.N, 200) {
				start := time.Now()
				es, err := s.List(ctx, c.q)
				if err != nil {
					b.Fatal(err)
				}
				l = append(l, time.Since(start))
				n = len(es)
			}
			l.report(b, "")
			b.ReportMetric(float64(n), "results")
			b.ReportMetric(float64(l.mean().Nanoseconds()), "ns/op")
		})
	}
}
