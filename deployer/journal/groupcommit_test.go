package journal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// slowSync replaces fsync for a test: each call sleeps delay, then
// records the file size seen when it started as durable, unless fail
// says it fails.
type slowSync struct {
	delay   time.Duration
	fail    func(call int64) bool
	calls   atomic.Int64
	durable atomic.Int64 // bytes known durable
}

func (s *slowSync) install(t *testing.T) {
	old := fsync
	fsync = func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		time.Sleep(s.delay)
		if call := s.calls.Add(1); s.fail != nil && s.fail(call) {
			return errors.New("injected fsync failure")
		}
		for {
			d := s.durable.Load()
			if fi.Size() <= d || s.durable.CompareAndSwap(d, fi.Size()) {
				return nil
			}
		}
	}
	t.Cleanup(func() { fsync = old })
}

// appendAll appends one event per goroutine, n at once, and returns what
// each Append returned and how many bytes were durable when it did.
func appendAll(w *Writer, s *slowSync, n int) (errs []error, durable []int64) {
	errs, durable = make([]error, n), make([]int64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = w.Append(Event{Type: TypeNote, Host: fmt.Sprintf("host%03d", i), Message: fmt.Sprintf("event-%03d;", i)})
			durable[i] = s.durable.Load()
		})
	}
	wg.Wait()
	return errs, durable
}

// lineEnd is the offset just past the line holding marker in the journal.
func lineEnd(t *testing.T, data []byte, marker string) int64 {
	i := bytes.Index(data, []byte(marker))
	if i < 0 {
		t.Fatalf("%s is not in the journal", marker)
	}
	return int64(i + bytes.IndexByte(data[i:], '\n') + 1)
}

// Concurrent appends share fsyncs, and each returns only once an fsync
// that covers its line has succeeded.
func TestGroupCommitSharesFsyncs(t *testing.T) {
	s := &slowSync{delay: 5 * time.Millisecond}
	s.install(t)
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	const n = 60
	errs, durable := appendAll(w, s, n)
	data, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("append %d: %v", i, errs[i])
		}
		if end := lineEnd(t, data, fmt.Sprintf("event-%03d;", i)); durable[i] < end {
			t.Errorf("append %d returned with %d bytes durable; its line ends at %d", i, durable[i], end)
		}
	}
	if c := s.calls.Load(); c >= n/2 || c < 1 {
		t.Errorf("%d fsyncs for %d concurrent appends; want them shared", c, n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// When the fsync covering a line fails, its Append fails, and so does
// every later one; the appends that succeeded were covered by an fsync
// that succeeded.
func TestGroupCommitFsyncFails(t *testing.T) {
	s := &slowSync{delay: 5 * time.Millisecond, fail: func(call int64) bool { return call > 1 }}
	s.install(t)
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	errs, durable := appendAll(w, s, 40)
	data, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			continue
		}
		if end := lineEnd(t, data, fmt.Sprintf("event-%03d;", i)); durable[i] < end {
			t.Errorf("append %d succeeded with %d bytes durable; its line ends at %d", i, durable[i], end)
		}
	}
	if failed == 0 {
		t.Fatal("no append failed although every fsync after the first did")
	}
	if err := w.Append(Event{Type: TypeNote, Message: "after"}); err == nil {
		t.Fatal("append after a failed fsync succeeded")
	}
}

// Close makes the lines still waiting for their fsync durable.
func TestGroupCommitClose(t *testing.T) {
	s := &slowSync{}
	s.install(t)
	w := newWriter(t, t.TempDir(), "citoid", time.Time{})
	seq, err := w.write([]byte("{}\n"), false)
	if err != nil {
		t.Fatal(err)
	}
	before := s.calls.Load()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.sync(seq); err != nil || s.durable.Load() != w.size {
		t.Fatalf("after Close: sync %v, %d of %d bytes durable", err, s.durable.Load(), w.size)
	}
	if s.calls.Load() != before+1 {
		t.Fatalf("Close ran %d fsyncs, want 1", s.calls.Load()-before)
	}
}

// fsyncEach is the journal as it was before group commit, the peer of
// BenchmarkGroupCommit: every event written and fsynced under one lock.
type fsyncEach struct {
	mu sync.Mutex
	f  *os.File
}

func (e *fsyncEach) Append(ev Event) error {
	if err := normalize(&ev); err != nil {
		return err
	}
	line, err := encodeLine(ev)
	if err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, err := e.f.Write(line); err != nil {
		return err
	}
	return e.f.Sync()
}

// BenchmarkGroupCommit appends the events of hosts deployed at once (64
// hosts, 9 events each, as a deploy journals per host) to a journal with
// group commit and, in the same iteration, to one fsyncing every event;
// it reports both per event and their ratio.
func BenchmarkGroupCommit(b *testing.B) {
	const hosts, each = 64, 9
	dir := b.TempDir()
	run := func(app func(Event) error) time.Duration {
		start := time.Now()
		var wg sync.WaitGroup
		for h := range hosts {
			wg.Go(func() {
				for i := range each {
					ev := Event{Type: TypeStage, Group: "all", Host: fmt.Sprintf("host%03d", h), Stage: StageFetch,
						Command: "deploy", ExitCode: Code(0), Output: fmt.Sprintf("stage %d of host %d done", i, h)}
					if err := app(ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		return time.Since(start)
	}
	var group, single time.Duration
	var syncs int64
	n := 0
	for b.Loop() {
		w, err := Create(dir, "bench", Meta{Who: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		f, err := os.OpenFile(fmt.Sprintf("%s/each-%d.jsonl", dir, n), os.O_WRONLY|os.O_CREATE|os.O_APPEND, filePerm)
		if err != nil {
			b.Fatal(err)
		}
		e := &fsyncEach{f: f}
		if n%2 == 0 {
			group += run(w.Append)
			single += run(e.Append)
		} else {
			single += run(e.Append)
			group += run(w.Append)
		}
		syncs += w.syncs
		w.Close()
		f.Close()
		n++
	}
	events := float64(n * hosts * each)
	b.ReportMetric(float64(group.Nanoseconds())/events, "ns/event-group")
	b.ReportMetric(float64(single.Nanoseconds())/events, "ns/event-each")
	b.ReportMetric(float64(group)/float64(single), "group/each")
	b.ReportMetric(float64(syncs)/events, "fsyncs/event")
}

// AppendLazy writes its event at once, where a reader sees it, without an
// fsync of its own; the next Append's fsync makes it durable, and Close
// makes a lazy event left last durable. A finished event is never lazy.
func TestAppendLazy(t *testing.T) {
	s := &slowSync{}
	s.install(t)
	dir := t.TempDir()
	w := newWriter(t, dir, "citoid", time.Time{})
	before := s.calls.Load()
	if err := w.AppendLazy(Event{Type: TypeNote, Message: "lazy-1;"}); err != nil {
		t.Fatal(err)
	}
	if c := s.calls.Load() - before; c != 0 {
		t.Errorf("AppendLazy ran %d fsyncs", c)
	}
	data, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	end := lineEnd(t, data, "lazy-1;")
	if s.durable.Load() >= end {
		t.Errorf("the lazy line is durable before any fsync")
	}
	if err := w.Append(Event{Type: TypeNote, Message: "durable-2;"}); err != nil {
		t.Fatal(err)
	}
	if c := s.calls.Load() - before; c != 1 || s.durable.Load() != w.size {
		t.Errorf("after Append: %d fsyncs, %d of %d bytes durable", c, s.durable.Load(), w.size)
	}
	if err := w.AppendLazy(Event{Type: TypeNote, Message: "lazy-3;"}); err != nil {
		t.Fatal(err)
	}
	if s.durable.Load() == w.size {
		t.Errorf("the second lazy line is durable before any fsync")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if c := s.calls.Load() - before; c != 2 || s.durable.Load() != w.size {
		t.Errorf("after Close: %d fsyncs, %d of %d bytes durable", c, s.durable.Load(), w.size)
	}

	w = newWriter(t, t.TempDir(), "citoid", time.Time{})
	before = s.calls.Load()
	if err := w.AppendLazy(Event{Type: TypeFinished, Outcome: OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	if c := s.calls.Load() - before; c != 1 {
		t.Errorf("a lazy finished event: %d fsyncs, want 1", c)
	}
	w.Close()
}
