package sal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// Spool is a local durable queue for entries the store could not take:
// each is written to a file and fsynced before Put returns, and Flush moves
// them to the store in order once it is back. Every spooled entry carries
// a Key, so an entry flushed twice (a crash between the store's commit and
// the spool's rewrite) is stored once.
type Spool struct {
	path string
	mu   sync.Mutex
}

// spooled is an entry as the spool file holds it: with its Key, which
// Entry's own JSON form leaves out.
type spooled struct {
	Entry
	Key string `json:"key"`
}

// OpenSpool opens (creating its directory if needed) the spool file at
// path.
func OpenSpool(path string) (*Spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("sal: spool: %w", err)
	}
	s := &Spool{path: path}
	if _, err := s.Pending(); err != nil {
		return nil, err
	}
	return s, nil
}

// Path is the spool's file.
func (s *Spool) Path() string { return s.path }

// NewKey returns a random idempotency key for an entry.
func NewKey() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Put appends e durably. It sets e.Key when empty and cleans e as Append
// would, so a bad entry is refused now rather than at flush time.
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
	s.mu.Lock()
	defer s.mu.Unlock()
	f, err := os.OpenFile(s.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	_, werr := f.Write(append(line, '\n'))
	serr := f.Sync()
	cerr := f.Close()
	if err := errors.Join(werr, serr, cerr); err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	return nil
}

// Pending returns the spooled entries, oldest first. A torn last line (a
// crash in the middle of Put, before it returned) is ignored.
func (s *Spool) Pending() ([]Entry, error) {
	data, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sal: spool: %w", err)
	}
	var out []Entry
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for sc.Scan() {
		var e spooled
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			if !bytes.HasSuffix(data, []byte("\n")) || len(sc.Bytes()) == 0 {
				continue // torn last line: never acknowledged
			}
			return nil, fmt.Errorf("sal: spool %s: corrupt line: %w", s.path, err)
		}
		e.Entry.Key = e.Key
		out = append(out, e.Entry)
	}
	return out, sc.Err()
}

// Flush appends the spooled entries to store, oldest first, removing each
// from the spool once stored. It stops at the first failure and returns
// how many it moved.
func (s *Spool) Flush(ctx context.Context, store Store) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pending, err := s.Pending()
	if err != nil || len(pending) == 0 {
		return 0, err
	}
	moved := 0
	var ferr error
	for i := range pending {
		if err := store.Append(ctx, &pending[i]); err != nil {
			ferr = err
			break
		}
		moved++
	}
	if moved > 0 {
		if err := s.rewrite(pending[moved:]); err != nil {
			return moved, err
		}
	}
	return moved, ferr
}

// rewrite replaces the spool with rest, atomically.
func (s *Spool) rewrite(rest []Entry) error {
	if len(rest) == 0 {
		if err := os.Remove(s.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("sal: spool: %w", err)
		}
		return syncDir(filepath.Dir(s.path))
	}
	var buf bytes.Buffer
	for _, e := range rest {
		line, _ := json.Marshal(spooled{e, e.Key})
		buf.Write(append(line, '\n'))
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
		return fmt.Errorf("sal: spool: %w", err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fmt.Errorf("sal: spool: %w", err)
	}
	return syncDir(filepath.Dir(s.path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
