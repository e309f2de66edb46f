// Package sal is the Server Admin Log: the durable record of what operators
// did, one entry per line, never edited in place.
//
// It holds the Entry type, the Store interface and its implementations, and
// the cleaning every message goes through before it is stored. It knows
// nothing of deployments or of how entries reach it (IRC, relay, CLI): the
// callers say so in Entry.Source.
//
// Two stores implement Store and pass one conformance suite (package
// saltest): SQLite, one embedded file, the default; and Postgres, for
// several bot instances sharing one log. Open picks one from the
// configured sal.database. Both list newest first by id, filter by
// project, channel and time, page with Query.Before, and search message
// and nick with the same rules (Query.Search); neither edits an entry in
// place. Spool keeps entries the store could not take until it is back.
package sal

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode"

	"github.com/ergochat/irc-go/ircfmt"
)

// Source says how an entry reached the log.
type Source string

// The sources of entries.
const (
	SourceIRC    Source = "irc"    // a !log in a channel
	SourceRelay  Source = "relay"  // a !log from a relay (logmsgbot, tcpircbot)
	SourceCLI    Source = "cli"    // deploybot sal add
	SourceDeploy Source = "deploy" // written by the deployment engine
)

// Valid reports whether s is one of the known sources.
func (s Source) Valid() bool {
	switch s {
	case SourceIRC, SourceRelay, SourceCLI, SourceDeploy:
		return true
	}
	return false
}

// MaxMessageBytes bounds a stored message; longer ones are refused.
const MaxMessageBytes = 4096

// MaxSenderBytes bounds Entry.Sender; longer ones are refused.
const MaxSenderBytes = 512

// Entry is one line of the Server Admin Log.
type Entry struct {
	// ID is assigned by the store on Append; it grows with every entry.
	ID int64 `json:"id"`
	// Time is when the entry was logged, in UTC, to the microsecond.
	// Append sets it when zero.
	Time time.Time `json:"time"`
	// Nick is who the entry is attributed to: an IRC nick, or user@host
	// for relayed entries.
	Nick string `json:"nick"`
	// Account is the services account of the sender, when known.
	Account string `json:"account,omitempty"`
	// Sender is who really sent a relayed entry, when it differs from
	// Nick: "nick!user@host (account)" for a relay bot on IRC, or the
	// relay listener's peer address. Empty for entries logged directly.
	Sender string `json:"sender,omitempty"`
	// Channel is where the entry was logged, when it came from a channel.
	Channel string `json:"channel,omitempty"`
	// Project groups entries (one per channel, usually).
	Project string `json:"project"`
	// Message is the text, formatting codes and control characters removed.
	Message string `json:"message"`
	// Source says how the entry reached the log.
	Source Source `json:"source"`
	// Key, when set, makes Append idempotent: an entry whose Key is
	// already stored is not stored again (the spool sets it, so a line
	// flushed twice after a crash is logged once). Not shown in views.
	Key string `json:"-"`
}

// Query selects entries, newest first. Zero fields select everything.
type Query struct {
	// Project, when set, keeps only entries of that project.
	Project string
	// Channel, when set, keeps only entries logged in that channel.
	Channel string
	// Since, when non-zero, keeps only entries at or after it.
	Since time.Time
	// Until, when non-zero, keeps only entries before it. A day's entries
	// are Since = the day at 00:00 UTC, Until = the next day.
	Until time.Time
	// Search, when set, keeps only entries whose message or nick match
	// these words (full-text search): every word, as a whole word (the
	// tokens of "scb1001.eqiad" in a row), case and diacritics ignored; a
	// word ending in * (3 characters or more before it) as a prefix.
	// Nothing else is syntax: quotes, AND/OR/NOT, parentheses are text.
	// A Search without a letter or digit matches nothing.
	Search string
	// Before, when non-zero, keeps only entries with an ID below it: the
	// cursor for the next page is the ID of the last entry of this one.
	Before int64
	// Limit is the most entries returned; 0 means 100.
	Limit int
}

// Store keeps entries durably. Append returns only once the entry is
// committed to stable storage.
type Store interface {
	// Append cleans e.Message, sets e.Time (when zero) and e.ID, and
	// commits the entry durably before returning.
	Append(ctx context.Context, e *Entry) error
	// List returns the entries matching q, newest first.
	List(ctx context.Context, q Query) ([]Entry, error)
	// Get returns one entry by id, or ErrNotFound.
	Get(ctx context.Context, id int64) (Entry, error)
	// Close releases the store.
	Close() error
}

// Errors returned by stores.
var (
	ErrNotFound     = errors.New("sal: no such entry")
	ErrEmptyMessage = errors.New("sal: empty message")
	ErrTooLong      = errors.New("sal: message too long")
	ErrNoNick       = errors.New("sal: entry has no nick")
	ErrBadSource    = errors.New("sal: unknown source")
	ErrBadTime      = errors.New("sal: entry time out of range (years 1678 to 2261)")
)

// The times an entry may have: what Unix nanoseconds in an int64 can hold,
// in whole years.
var (
	minTime = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Clean returns msg as it is stored: IRC formatting codes stripped, every
// other control character (CR, LF, NUL, tabs…) turned into a space, invalid
// UTF-8 replaced, runs of spaces folded and the ends trimmed.
func Clean(msg string) string {
	msg = ircfmt.Strip(strings.ToValidUTF8(msg, "\uFFFD"))
	var b strings.Builder
	b.Grow(len(msg))
	space := false
	for _, r := range msg {
		if unicode.IsControl(r) || unicode.IsSpace(r) {
			space = true
			continue
		}
		if space && b.Len() > 0 {
			b.WriteByte(' ')
		}
		space = false
		b.WriteRune(r)
	}
	return b.String()
}

// prepare validates and normalizes e before a store commits it.
func prepare(e *Entry) error {
	e.Message = Clean(e.Message)
	e.Nick = Clean(e.Nick)
	e.Account = Clean(e.Account)
	e.Sender = Clean(e.Sender)
	e.Channel = Clean(e.Channel)
	e.Project = Clean(e.Project)
	switch {
	case e.Message == "":
		return ErrEmptyMessage
	case len(e.Message) > MaxMessageBytes, len(e.Sender) > MaxSenderBytes:
		return ErrTooLong
	case e.Nick == "":
		return ErrNoNick
	case !e.Source.Valid():
		return ErrBadSource
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	// Microseconds: what every store keeps (PostgreSQL's timestamptz).
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	if e.Time.Before(minTime) || !e.Time.Before(maxTime) {
		return ErrBadTime
	}
	return nil
}

func (q Query) limit() int {
	if q.Limit <= 0 {
		return 100
	}
	return q.Limit
}
