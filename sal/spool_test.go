package sal

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// failingStore refuses appends after the first n.
type failingStore struct {
	Store
	left int
}

func (f *failingStore) Append(ctx context.Context, e *Entry) error {
	if f.left == 0 {
		return errors.New("store down")
	}
	f.left--
	return f.Store.Append(ctx, e)
}

func TestSpoolPutFlush(t *testing.T) {
	ctx := context.Background()
	store, _ := openTemp(t)
	sp, err := OpenSpool(filepath.Join(t.TempDir(), "d", "sal.spool"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"one", "two \x02bold\x02", "three"} {
		if err := sp.Put(&Entry{Nick: "alice", Message: m, Source: SourceIRC}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sp.Put(&Entry{Nick: "alice", Message: "  ", Source: SourceIRC}); !errors.Is(err, ErrEmptyMessage) {
		t.Fatalf("empty entry spooled: %v", err)
	}
	pending, err := sp.Pending()
	if err != nil || len(pending) != 3 || pending[1].Message != "two bold" || pending[0].Key == "" {
		t.Fatalf("pending = %+v, %v", pending, err)
	}

	// The store takes one, then fails: one moves, two stay, in order.
	n, err := sp.Flush(ctx, &failingStore{Store: store, left: 1})
	if n != 1 || err == nil {
		t.Fatalf("flush moved %d, err %v", n, err)
	}
	if p, _ := sp.Pending(); len(p) != 2 || p[0].Message != "two bold" {
		t.Fatalf("pending after partial flush = %+v", p)
	}
	if n, err := sp.Flush(ctx, store); n != 2 || err != nil {
		t.Fatalf("flush moved %d, err %v", n, err)
	}
	es, _ := store.List(ctx, Query{})
	if len(es) != 3 || es[2].Message != "one" || es[0].Message != "three" {
		t.Fatalf("stored = %+v", es)
	}
	if _, err := os.Stat(sp.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("empty spool file left behind: %v", err)
	}
}

// logBuffer returns a logger writing to a buffer, for tests to read.
func logBuffer() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

// messages are the messages of es, in order.
func messages(es []Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Message)
	}
	return out
}

func wantMessages(t *testing.T, sp *Spool, want ...string) {
	t.Helper()
	p, err := sp.Pending()
	if err != nil {
		t.Fatalf("pending: %v", err)
	}
	if got := messages(p); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("pending = %q, want %q", got, want)
	}
}

func appendRaw(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func put(t *testing.T, sp *Spool, msg string) {
	t.Helper()
	if err := sp.Put(&Entry{Nick: "a", Message: msg, Source: SourceIRC}); err != nil {
		t.Fatalf("put %q: %v", msg, err)
	}
}

// A crash in the middle of Put leaves half a line: the next Put must not
// glue its line to it, and neither line may be lost or stop the spool.
func TestSpoolTornTailIsCutBeforeAppend(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sal.spool")
	logger, logs := logBuffer()
	sp, err := OpenSpool(path, logger)
	if err != nil {
		t.Fatal(err)
	}
	put(t, sp, "whole")
	appendRaw(t, path, `{"nick":"a","mess`)
	put(t, sp, "after the crash")

	// A restart reads the spool as serve would.
	sp, err = OpenSpool(path, logger)
	if err != nil {
		t.Fatalf("spool does not open after a torn write: %v", err)
	}
	wantMessages(t, sp, "whole", "after the crash")
	bad, err := os.ReadFile(sp.BadPath())
	if err != nil || string(bad) != `{"nick":"a","mess`+"\n" {
		t.Fatalf("bad file = %q, %v", bad, err)
	}
	if !strings.Contains(logs.String(), "unreadable line moved aside") {
		t.Fatalf("nothing logged about the torn line:\n%s", logs)
	}
}

// A torn tail longer than the chunk the tail is read in, and one made of
// the zeros a file system can leave after a power loss.
func TestSpoolLongAndZeroTornTails(t *testing.T) {
	for name, tail := range map[string]string{
		"long":  `{"nick":"a","message":"` + strings.Repeat("x", 9000),
		"zeros": strings.Repeat("\x00", 4096),
		"junk":  "}}}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sal.spool")
			sp, _ := OpenSpool(path, nil)
			put(t, sp, strings.Repeat("long line ", 400))
			appendRaw(t, path, tail)
			put(t, sp, "next")
			wantMessages(t, sp, strings.TrimSpace(strings.Repeat("long line ", 400)), "next")
			bad, _ := os.ReadFile(sp.BadPath())
			if string(bad) != strings.TrimSuffix(tail, "\n")+"\n" {
				t.Fatalf("bad file holds %d bytes, want the %d of the tail", len(bad), len(tail))
			}
		})
	}
}

// A line that cannot be read in the middle of the spool (or one an older
// version glued together) is moved aside; the others are kept and the
// spool opens.
func TestSpoolQuarantinesUnreadableLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sal.spool")
	logger, logs := logBuffer()
	sp, _ := OpenSpool(path, logger)
	put(t, sp, "one")
	appendRaw(t, path, `{"nick":"a","mess{"nick":"a","message":"glued","source":"irc","time":"2024-01-01T00:00:00Z","key":"k"}`+"\n")
	appendRaw(t, path, `{"nick":"a","message":"","source":"irc","time":"2024-01-01T00:00:00Z","key":"k2"}`+"\n")
	put(t, sp, "two") // moves the last of them aside: it cannot be read

	sp, err := OpenSpool(path, logger)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	wantMessages(t, sp, "one", "two")
	bad, _ := os.ReadFile(sp.BadPath())
	if n := bytes.Count(bad, []byte("\n")); n != 2 || !bytes.Contains(bad, []byte("glued")) {
		t.Fatalf("bad file = %q", bad)
	}
	if n := strings.Count(logs.String(), "unreadable line moved aside"); n != 2 {
		t.Fatalf("logged %d moved lines, want 2:\n%s", n, logs)
	}
	// The spool itself is clean now: opening again moves nothing more.
	logs.Reset()
	if _, err := OpenSpool(path, logger); err != nil || logs.Len() != 0 {
		t.Fatalf("second open: %v, logged %q", err, logs)
	}
}

// When the side file cannot be written the unreadable lines stay in the
// spool, behind the readable ones, which still flush.
func TestSpoolKeepsUnreadableLinesWhenSideFileFails(t *testing.T) {
	ctx := context.Background()
	store, _ := openTemp(t)
	path := filepath.Join(t.TempDir(), "sal.spool")
	if err := os.Mkdir(path+".bad", 0o750); err != nil { // not a file: cannot append
		t.Fatal(err)
	}
	sp, _ := OpenSpool(path, nil)
	put(t, sp, "one")
	appendRaw(t, path, "garbage\n")
	put(t, sp, "two")
	sp, err := OpenSpool(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := sp.Flush(ctx, store); n != 2 || err != nil {
		t.Fatalf("flush moved %d, %v", n, err)
	}
	data, _ := os.ReadFile(path)
	if string(data) != "garbage\n" {
		t.Fatalf("spool after flush = %q", data)
	}
}

// failingFile is the spool file with writes that fail after left bytes,
// like a disk that fills up in the middle of a line.
type failingFile struct {
	*os.File
	left int
}

func (f *failingFile) Write(p []byte) (int, error) {
	if len(p) <= f.left {
		f.left -= len(p)
		return f.File.Write(p)
	}
	n, _ := f.File.Write(p[:f.left])
	f.left = 0
	return n, syscall.ENOSPC
}

func TestSpoolFailedWriteIsCutBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sal.spool")
	sp, _ := OpenSpool(path, nil)
	put(t, sp, "acknowledged")
	before, _ := os.ReadFile(path)

	sp.open = func(name string) (spoolFile, error) {
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o640)
		if err != nil {
			return nil, err
		}
		return &failingFile{File: f, left: 10}, nil
	}
	if err := sp.Put(&Entry{Nick: "a", Message: "refused", Source: SourceIRC}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put on a full disk: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Fatalf("failed put left %q after %q", after[len(before):], before)
	}

	sp.open = openSpoolFile
	put(t, sp, "next")
	wantMessages(t, sp, "acknowledged", "next")
	if _, err := os.Stat(sp.BadPath()); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a cut-back write left a bad file: %v", err)
	}
}

// The same on a real full disk: a tmpfs of a few pages (needs root).
func TestSpoolFullDisk(t *testing.T) {
	if testing.Short() || os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16k,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	path := filepath.Join(dir, "sal.spool")
	sp, err := OpenSpool(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	put(t, sp, "acknowledged")
	// Fill the rest of the file system.
	filler, _ := os.Create(filepath.Join(dir, "filler"))
	for {
		if _, err := filler.Write(make([]byte, 1024)); err != nil {
			break
		}
	}
	filler.Close()
	big := strings.Repeat("y", MaxMessageBytes-10)
	if err := sp.Put(&Entry{Nick: "a", Message: big, Source: SourceIRC}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("put on a full disk: %v", err)
	}
	os.Remove(filepath.Join(dir, "filler"))
	put(t, sp, "next")
	wantMessages(t, sp, "acknowledged", "next")
}

// Creating the spool file syncs its directory, so the file survives a
// crash with the line Put acknowledged.
func TestSpoolSyncsDirectoryOnCreate(t *testing.T) {
	dir := t.TempDir()
	sp, _ := OpenSpool(filepath.Join(dir, "sal.spool"), nil)
	var synced []string
	sp.syncDir = func(d string) error { synced = append(synced, d); return syncDir(d) }
	put(t, sp, "first")
	if len(synced) != 1 || synced[0] != dir {
		t.Fatalf("directory syncs on create = %q", synced)
	}
	put(t, sp, "second")
	if len(synced) != 1 {
		t.Fatalf("directory synced again on append: %q", synced)
	}
}
