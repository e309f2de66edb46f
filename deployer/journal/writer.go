package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
	"unicode/utf8"
)

// ErrFinished is returned by Append after a finished event, and by Reopen
// for a finished journal.
var ErrFinished = errors.New("deploy journal is finished")

// fsync makes a journal's writes durable; tests slow it down or make it
// fail.
var fsync = (*os.File).Sync

// ErrClosed is returned by Append after Close.
var ErrClosed = errors.New("deploy journal is closed")

// Writer appends events to one deploy's journal. It is safe for concurrent
// use. Concurrent Appends share fsyncs (group commit): each writes its
// line, then waits for an fsync that started after its write; the first
// to wait runs it, and the lines written meanwhile by the others are
// made durable by the next one, a single fsync for all of them.
type Writer struct {
	// syncMu is held by the one goroutine running fsync; it is taken
	// before mu, never after.
	syncMu sync.Mutex
	synced int64 // lines known durable (under mu)
	syncs  int64 // fsyncs run (under mu), for tests and benchmarks

	mu       sync.Mutex
	f        *os.File
	path     string
	meta     Meta
	size     int64
	written  int64 // lines written since open
	finished bool
	closed   bool
	broken   error
}

// Create creates the journal of a new deploy of service under dir and
// writes its started event. meta.Service is set to service (a different
// non-empty value is an error); meta.ID is made with NewID when empty, and
// must belong to service otherwise; Started, PID and Host are filled in
// when zero. The journal appears atomically, with its first line, and
// Create fails if it exists already.
//
// The caller should hold the deploy lock of service, with Holder.DeployID
// set to meta.ID.
func Create(dir, service string, meta Meta) (*Writer, error) {
	started, err := StartedEvent(service, meta)
	if err != nil {
		return nil, err
	}
	meta = *started.Meta
	path, err := JournalPath(dir, service, meta.ID)
	if err != nil {
		return nil, err
	}
	if err := ensureDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	line, err := encodeLine(started)
	if err != nil {
		return nil, err
	}
	// The index learns of the deploy first: if the process dies before
	// the journal exists, readers find the index names a missing journal
	// and rebuild it.
	err = updateIndex(dir, service, func(ix *Index) {
		ix.refresh()
		ix.addSummary(Summary{ID: meta.ID, Service: service, Path: path, Who: meta.Who, Nick: meta.Nick, Rev: meta.Rev,
			FromRev: meta.FromRev, Message: meta.Message, Started: meta.Started})
	})
	if err != nil {
		return nil, fmt.Errorf("create journal: index: %w", err)
	}
	if err := createFile(path, line); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("create journal: deploy %s already has a journal (%s)", meta.ID, path)
		}
		return nil, fmt.Errorf("create journal: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, fmt.Errorf("create journal: %w", err)
	}
	return &Writer{f: f, path: path, meta: meta, size: int64(len(line))}, nil
}

// Reopen opens the journal of an interrupted deploy for appending, to
// resume it or roll it back, and returns it read. lock must be the held
// deploy lock of the journal's service, taken with Holder.DeployID equal
// to the deploy's id: that is what guarantees a single writer. A torn last
// line (a write that never completed, so was never acknowledged) is cut
// off first; this is the only time a journal is shortened. A finished
// journal is refused with ErrFinished.
func Reopen(path string, lock *DeployLock) (*Writer, *Deploy, error) {
	_, service, id, ok := splitJournalPath(path)
	if !ok {
		return nil, nil, fmt.Errorf("reopen %s: not a journal path (<dir>/<service>/<id>.jsonl)", path)
	}
	if lock == nil || !lock.held() || lock.service != service || lock.holder.DeployID != id {
		return nil, nil, fmt.Errorf("reopen %s: the deploy lock of %s must be held for deploy %s", path, service, id)
	}
	d, err := Read(path)
	if err != nil {
		return nil, nil, err
	}
	if d.Finished {
		return nil, nil, fmt.Errorf("reopen %s: %w (%s)", path, ErrFinished, d.Outcome)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("reopen: %w", err)
	}
	if d.Torn > 0 {
		if err := f.Truncate(d.Size); err == nil {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, nil, fmt.Errorf("reopen %s: cut torn last line: %w", path, err)
		}
	}
	return &Writer{f: f, path: path, meta: d.Meta, size: d.Size}, d, nil
}

// MarkEnded gives up an interrupted deploy: it takes the deploy lock (so
// it is refused with a *LockedError if the deploy is in fact running),
// appends a finished event with Outcome "ended", who and reason, and
// releases the lock.
func MarkEnded(path, who, reason string) error {
	dir, service, id, ok := splitJournalPath(path)
	if !ok {
		return fmt.Errorf("mark ended %s: not a journal path (<dir>/<service>/<id>.jsonl)", path)
	}
	if who == "" {
		return errors.New("mark ended: who is required")
	}
	lock, err := AcquireDeploy(dir, service, Holder{Who: who, Why: "marking deploy " + id + " ended", DeployID: id})
	if err != nil {
		return err
	}
	defer lock.Release()
	w, d, err := Reopen(path, lock)
	if err != nil {
		return err
	}
	ev := Event{Type: TypeFinished, Outcome: OutcomeEnded, Who: who, Message: reason,
		Duration: time.Since(d.Meta.Started).Round(time.Second)}
	if err := w.Append(ev); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// Path returns the journal's path.
func (w *Writer) Path() string { return w.path }

// Meta returns the deploy's Meta as written.
func (w *Writer) Meta() Meta { return w.meta }

// Append writes ev as one line and returns once it is durable (fsynced).
// Time and Level are filled in when empty; long texts are cut (MaxOutput,
// MaxText). Type must be one of the Type constants other than
// TypeStarted; a finished event needs a known Outcome and is the last one
// accepted. If the write fails part way, the partial line is cut off again;
// if fsync fails, the Writer refuses every later event (the state of the
// file is unknown), and so do the Appends whose line that fsync was to
// make durable.
func (w *Writer) Append(ev Event) error {
	if err := normalize(&ev); err != nil {
		return err
	}
	line, err := encodeLine(ev)
	if err != nil {
		return err
	}
	seq, err := w.write(line, ev.Type == TypeFinished)
	if err != nil {
		return err
	}
	if err := w.sync(seq); err != nil {
		return err
	}
	if ev.Type == TypeFinished {
		w.indexEnd()
	}
	return nil
}

// AppendLazy writes ev as Append does but returns once it is written, not
// once it is durable: the next Append's fsync (or Close's) covers it. It is
// for results that no change on a host waits for — a stage's outcome and
// output, a check's — of which a deploy writes several per host. The line
// is in the file at once (readers and followers see it, and it survives
// the process being killed); a crash of the machine before the next fsync
// can lose it, with the lines written after it, so the journal then says
// less — the host's state unknown, which a recovery asks the host about —
// never something false. A finished event is always appended durably.
func (w *Writer) AppendLazy(ev Event) error {
	if ev.Type == TypeFinished {
		return w.Append(ev)
	}
	if err := normalize(&ev); err != nil {
		return err
	}
	line, err := encodeLine(ev)
	if err != nil {
		return err
	}
	_, err = w.write(line, false)
	return err
}

// write appends line to the file and returns its number (the count of
// lines written once it is); finished marks the journal finished.
func (w *Writer) write(line []byte, finished bool) (int64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return 0, ErrClosed
	case w.broken != nil:
		return 0, w.broken
	case w.finished:
		return 0, ErrFinished
	}
	n, err := w.f.Write(line)
	if err != nil {
		if n > 0 {
			if terr := w.f.Truncate(w.size); terr != nil {
				w.broken = fmt.Errorf("journal %s: partial line could not be removed: %v (after: %w)", w.path, terr, err)
				return 0, w.broken
			}
		}
		return 0, fmt.Errorf("journal %s: %w", w.path, err)
	}
	w.size += int64(n)
	w.written++
	w.finished = finished
	return w.written, nil
}

// sync returns once line seq is durable: at once if an fsync that
// started after it was written has succeeded, otherwise after running
// one, which covers every line written so far.
func (w *Writer) sync(seq int64) error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	synced, upto, broken := w.synced, w.written, w.broken
	w.mu.Unlock()
	switch {
	case synced >= seq:
		return nil
	case broken != nil:
		return broken
	}
	err := fsync(w.f)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.syncs++
	if err != nil {
		w.broken = fmt.Errorf("journal %s: fsync: %w", w.path, err)
		return w.broken
	}
	w.synced = upto
	return nil
}

// indexEnd tells the index the deploy ended. A failure is not the
// journal's: a reader folds the end in later (ReadIndex).
func (w *Writer) indexEnd() {
	dir, service, _, ok := splitJournalPath(w.path)
	if !ok {
		return
	}
	if d, err := read(w.path, false); err == nil {
		_ = updateIndex(dir, service, func(ix *Index) { ix.add(d) })
	}
}

// Finish appends the finished event: outcome, an optional error text, and
// the duration since the deploy started.
func (w *Writer) Finish(outcome Outcome, errText string) error {
	return w.Append(Event{Type: TypeFinished, Outcome: outcome, Err: errText,
		Duration: time.Since(w.meta.Started).Round(time.Millisecond)})
}

// Close closes the journal. Events whose Append returned are already
// durable; those still waiting for their fsync get it first.
func (w *Writer) Close() error {
	w.syncMu.Lock()
	defer w.syncMu.Unlock()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil
	}
	w.closed = true
	var err error
	if w.synced < w.written && w.broken == nil {
		w.syncs++
		if err = fsync(w.f); err == nil {
			w.synced = w.written
		} else {
			w.broken = fmt.Errorf("journal %s: fsync: %w", w.path, err)
			err = w.broken
		}
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func normalize(ev *Event) error {
	if !knownTypes[ev.Type] {
		return fmt.Errorf("journal: unknown event type %s", quoteShort(ev.Type))
	}
	if ev.Type == TypeStarted {
		return errors.New("journal: the started event is written by Create")
	}
	if ev.Type == TypeFinished && !knownOutcomes[ev.Outcome] {
		return fmt.Errorf("journal: finished event with outcome %s: want success, noop, failed, aborted, rolled_back or ended", quoteShort(string(ev.Outcome)))
	}
	if ev.Level == "" {
		ev.Level = DefaultLevel(*ev)
	} else if _, ok := levelRank[ev.Level]; !ok {
		return fmt.Errorf("journal: unknown level %s: want debug, info, warn or error", quoteShort(ev.Level))
	}
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	ev.Time = ev.Time.UTC()
	ev.Meta = nil
	ev.Output = tail(ev.Output, MaxOutput)
	for _, s := range []*string{&ev.Command, &ev.Err, &ev.Message, &ev.Prompt, &ev.Answer} {
		*s = head(*s, MaxText)
	}
	if ev.Check != nil {
		c := *ev.Check
		c.Output = tail(c.Output, MaxOutput)
		c.Body = head(c.Body, MaxText)
		c.Err = head(c.Err, MaxText)
		ev.Check = &c
	}
	return nil
}

// encodeLine is ev as one JSON line. encoding/json escapes control
// characters inside strings, so the only newline is the last byte.
func encodeLine(ev Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("journal: encode event: %w", err)
	}
	return append(b, '\n'), nil
}

// tail keeps the last n bytes of s, starting on a character boundary, with
// "…" in front when something was cut.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := len(s) - n
	for i < len(s) && !utf8.RuneStart(s[i]) {
		i++
	}
	return "…" + s[i:]
}

// head keeps the first n bytes of s, ending on a character boundary, with
// "…" after when something was cut.
func head(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}
