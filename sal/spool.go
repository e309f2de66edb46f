package sal

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Spool is a local durable queue for entries the store could not take:
// each is written to a file and fsynced before Put returns, and Flush moves
// them to the store in order once it is back. Every spooled entry carries
// a Key, so an entry flushed twice (a crash between the store's commit and
// the spool's rewrite) is stored once.
//
// The file is one JSON entry per line. A write that fails half-way (disk
// full) is cut back before Put returns; a line torn by a crash (no newline
// at its end) is cut before the next one is appended, so one bad write
// never spoils the next line. A line that cannot be read is never a reason
// to stop: it is moved to the side file BadPath, logged, and the other
// entries are kept.
type Spool struct {
	path string
	log  *slog.Logger
	mu   sync.Mutex // the file: Put, and Flush's reads and rewrites
	// flushing is held by the one Flush at a time (a semaphore, so a
	// Flush waiting for it gives up with its context); mu is never held
	// while the store is called, so a store that hangs never delays a
	// Put.
	flushing chan struct{}

	// AppendTimeout bounds each append Flush makes (a database that stops
	// answering without refusing); 0 means DefaultAppendTimeout.
	AppendTimeout time.Duration

	// open opens the spool file for Put and syncDir makes a directory's
	// entries durable; tests replace them to make writes fail and to see
	// the syncs.
	open    func(name string) (spoolFile, error)
	syncDir func(dir string) error
}

// spoolFile is what Put needs of the spool file.
type spoolFile interface {
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Seeker
	Truncate(size int64) error
	Sync() error
	Close() error
}

// spooled is an entry as the spool file holds it: with its Key, which
// Entry's own JSON form leaves out.
type spooled struct {
	Entry
	Key string `json:"key"`
}

// OpenSpool opens (creating its directory if needed) the spool file at
// path. Lines of it that cannot be read are moved aside at once (see
// BadPath) and reported to logger, which may be nil.
func OpenSpool(path string, logger *slog.Logger) (*Spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sal: spool: %w", err)
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Spool{path: path, log: logger, open: openSpoolFile, syncDir: syncDir, flushing: make(chan struct{}, 1)}
	if _, err := s.Pending(); err != nil {
		return nil, err
	}
	return s, nil
}

func openSpoolFile(name string) (spoolFile, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
}

// Path is the spool's file.
func (s *Spool) Path() string { return s.path }

// BadPath is the side file where lines of the spool that could not be read
// are kept, one per line as they were found, for an operator to look at.
func (s *Spool) BadPath() string { return s.path + ".bad" }

// NewKey returns a random idempotency key for an entry.
func NewKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put appends e durably. It sets e.Key when empty and cleans e as Append
// would, so a bad entry is refused now rather than at flush time. When Put
// fails the spool is as it was: e is not in it.
func (s *Spool) Put(e *Entry) error {
	if err := prepare(e); err != nil {
		return err
	}
	if e.Key == "" {
		e.Key = NewKey()
	}
	line, err := json.Marshal(spooled{*e, e.Key})
	if err != nil {
		return err
	}
	line = append(line, '\n')
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.put(line); err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	return nil
}

func (s *Spool) put(line []byte) error {
	_, statErr := os.Stat(s.path)
	created := errors.Is(statErr, os.ErrNotExist)
	f, err := s.open(s.path)
	if err != nil {
		return err
	}
	defer f.Close()
	if created {
		// The file's name must survive a crash as well as its content.
		if err := s.syncDir(filepath.Dir(s.path)); err != nil {
			return err
		}
	}
	end, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		return err
	}
	if end, err = s.cutTornTail(f, end); err != nil {
		return err
	}
	if _, err := f.Seek(end, io.SeekStart); err != nil {
		return err
	}
	_, werr := f.Write(line)
	if werr == nil {
		werr = f.Sync()
	}
	if werr != nil {
		// Whatever part of the line reached the file goes, so the line
		// is not there when Put says it is not, and the next one starts
		// on a line of its own. If even that fails, the next Put cuts it.
		if err := f.Truncate(end); err == nil {
			f.Sync()
		}
		return werr
	}
	return f.Close()
}

// cutTornTail looks at the last line of f (size bytes long): when it has
// no newline at its end or cannot be read — a write torn by a crash — it
// moves the line to BadPath and cuts f back to where the line started,
// returning the new size. A line that never got its newline was never
// acknowledged by Put.
func (s *Spool) cutTornTail(f spoolFile, size int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	start, line, err := lastLine(f, size)
	if err != nil {
		return size, err
	}
	if bytes.HasSuffix(line, []byte("\n")) {
		if _, ok := decodeLine(line[:len(line)-1]); ok {
			return size, nil
		}
	}
	if err := s.quarantine([][]byte{bytes.TrimSuffix(line, []byte("\n"))}); err != nil {
		// Keep the bad bytes where they are rather than lose them; a
		// newline makes sure they do not spoil the next line.
		if !bytes.HasSuffix(line, []byte("\n")) {
			if _, err := f.WriteAt([]byte("\n"), size); err != nil {
				return size, err
			}
			size++
		}
		return size, nil
	}
	if err := f.Truncate(start); err != nil {
		return size, err
	}
	if err := f.Sync(); err != nil {
		return size, err
	}
	return start, nil
}

// lastLine returns where the last line of f (size > 0 bytes long) starts
// and its bytes, with its newline if it has one. It reads backwards in
// small chunks: the spool can be long, its lines are short.
func lastLine(f io.ReaderAt, size int64) (int64, []byte, error) {
	const chunk = 4096
	start := int64(0)
	// The file's last byte is the line's own newline or part of the line:
	// the line starts after the newline before it.
	for end := size - 1; end > 0; {
		n := min(int64(chunk), end)
		buf := make([]byte, n)
		if _, err := f.ReadAt(buf, end-n); err != nil && !errors.Is(err, io.EOF) {
			return 0, nil, err
		}
		if i := bytes.LastIndexByte(buf, '\n'); i >= 0 {
			start = end - n + int64(i) + 1
			break
		}
		end -= n
	}
	line := make([]byte, size-start)
	if _, err := f.ReadAt(line, start); err != nil && !errors.Is(err, io.EOF) {
		return 0, nil, err
	}
	return start, line, nil
}

// decodeLine reads one spool line (without its newline). It reports false
// for a line that is not an entry Put could have written.
func decodeLine(line []byte) (Entry, bool) {
	var sp spooled
	if err := json.Unmarshal(line, &sp); err != nil {
		return Entry{}, false
	}
	e := sp.Entry
	e.Key = sp.Key
	if e.Time.IsZero() || prepare(&e) != nil {
		return Entry{}, false
	}
	return e, true
}

// Pending returns the spooled entries, oldest first. Lines that cannot be
// read (a torn last line, a damaged one) are moved to BadPath and logged;
// they never make Pending fail.
func (s *Spool) Pending() ([]Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	entries, _, err := s.load()
	return entries, err
}

// load reads the spool. Unreadable lines are moved aside; those that could
// not be (the side file cannot be written) are returned as kept, for a
// rewrite to keep in the spool.
func (s *Spool) load() (entries []Entry, kept [][]byte, err error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("sal: spool: %w", err)
	}
	var bad [][]byte
	for len(data) > 0 {
		line, rest, complete := bytes.Cut(data, []byte("\n"))
		data = rest
		if complete && len(line) == 0 {
			continue
		}
		if e, ok := decodeLine(line); ok && complete {
			entries = append(entries, e)
			continue
		}
		bad = append(bad, line)
	}
	if len(bad) == 0 {
		return entries, nil, nil
	}
	if err := s.quarantine(bad); err != nil {
		return entries, bad, nil
	}
	if err := s.rewrite(entries, nil); err != nil {
		// The side file has a copy; the spool still has them too, and
		// the next load moves them again. Nothing is lost.
		s.log.Error("SAL spool: cannot drop the unreadable lines", "spool", s.path, "err", err)
		return entries, bad, nil
	}
	return entries, nil, nil
}

// quarantine appends lines to BadPath, durably, and logs them.
func (s *Spool) quarantine(lines [][]byte) error {
	bad := s.BadPath()
	_, statErr := os.Stat(bad)
	f, err := os.OpenFile(bad, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		s.log.Error("SAL spool: cannot move unreadable lines aside; they stay in the spool", "spool", s.path, "bad", bad, "err", err)
		return err
	}
	var buf bytes.Buffer
	for _, l := range lines {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	_, werr := f.Write(buf.Bytes())
	serr := f.Sync()
	cerr := f.Close()
	err = errors.Join(werr, serr, cerr)
	if err == nil && errors.Is(statErr, os.ErrNotExist) {
		err = s.syncDir(filepath.Dir(bad))
	}
	if err != nil {
		s.log.Error("SAL spool: cannot move unreadable lines aside; they stay in the spool", "spool", s.path, "bad", bad, "err", err)
		return err
	}
	for _, l := range lines {
		s.log.Warn("SAL spool: unreadable line moved aside", "spool", s.path, "bad", bad, "bytes", len(l), "line", preview(l))
	}
	return nil
}

// preview is the start of a bad line, for the log.
func preview(l []byte) string {
	const most = 200
	if len(l) > most {
		return string(bytes.ToValidUTF8(l[:most], []byte("\uFFFD"))) + "…"
	}
	return string(bytes.ToValidUTF8(l, []byte("\uFFFD")))
}

// DefaultAppendTimeout bounds each append of Flush when
// Spool.AppendTimeout is 0.
const DefaultAppendTimeout = 10 * time.Second

// Flush appends the spooled entries to store, oldest first, each within
// AppendTimeout, and removes those stored from the spool. It stops at the
// first failure and returns how many it moved; while another Flush runs
// it waits for it, or for ctx. The spool's file is not
// locked while the store is called: Put goes on meanwhile, and what it
// adds is kept for the next Flush. Entries carry their keys, so one
// whose commit was not acknowledged in time is stored once however often
// it is tried.
func (s *Spool) Flush(ctx context.Context, store Store) (int, error) {
	return s.flush(ctx, store, false)
}

// TryFlush is Flush, unless another Flush is under way: then it does
// nothing and reports ErrFlushBusy.
func (s *Spool) TryFlush(ctx context.Context, store Store) (int, error) {
	return s.flush(ctx, store, true)
}

// ErrFlushBusy: TryFlush found another Flush under way.
var ErrFlushBusy = errors.New("sal: spool: a flush is under way")

func (s *Spool) flush(ctx context.Context, store Store, try bool) (int, error) {
	if try {
		select {
		case s.flushing <- struct{}{}:
		default:
			return 0, ErrFlushBusy
		}
	} else {
		select {
		case s.flushing <- struct{}{}:
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	defer func() { <-s.flushing }()
	s.mu.Lock()
	pending, _, err := s.load()
	s.mu.Unlock()
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	timeout := s.AppendTimeout
	if timeout <= 0 {
		timeout = DefaultAppendTimeout
	}
	stored := map[string]bool{}
	var ferr error
	for i := range pending {
		actx, cancel := context.WithTimeout(ctx, timeout)
		err := store.Append(actx, &pending[i])
		cancel()
		if err != nil {
			ferr = err
			break
		}
		stored[pending[i].Key] = true
	}
	if len(stored) == 0 {
		return 0, ferr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	now, kept, err := s.load() // with what Put added meanwhile
	if err != nil {
		return len(stored), err
	}
	rest := now[:0]
	for _, e := range now {
		if !stored[e.Key] {
			rest = append(rest, e)
		}
	}
	if err := s.rewrite(rest, kept); err != nil {
		return len(stored), err
	}
	return len(stored), ferr
}

// rewrite replaces the spool with rest and then the raw lines kept,
// atomically.
func (s *Spool) rewrite(rest []Entry, kept [][]byte) error {
	if len(rest) == 0 && len(kept) == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sal: spool: %w", err)
		}
		return s.syncDir(filepath.Dir(s.path))
	}
	var buf bytes.Buffer
	for _, e := range rest {
		line, _ := json.Marshal(spooled{e, e.Key})
		buf.Write(append(line, '\n'))
	}
	for _, l := range kept {
		buf.Write(l)
		buf.WriteByte('\n')
	}
	tmp := s.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	_, werr := f.Write(buf.Bytes())
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sal: spool: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	return s.syncDir(filepath.Dir(s.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
