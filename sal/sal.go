// Package sal is the Server Admin Log: the durable record of what operators
// did, one entry per line, never edited in place.
//
// It holds the Entry type, the Store interface and its implementations, and
// the cleaning every message goes through before it is stored. It knows
// nothing of deployments or of how entries reach it (IRC, relay, CLI): the
// callers say so in Entry.Source.
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

// Entry is one line of the Server Admin Log.
type Entry struct {
	// ID is assigned by the store on Append; it grows with every entry.
	ID int64 `json:"id"`
	// Time is when the entry was logged, in UTC. Append sets it when zero.
	Time time.Time `json:"time"`
	// Nick is who the entry is attributed to: an IRC nick, or user@host
	// for relayed entries.
	Nick string `json:"nick"`
	// Account is the services account of the sender, when known.
	Account string `json:"account,omitempty"`
	// Channel is where the entry was logged, when it came from a channel.
	Channel string `json:"channel,omitempty"`
	// Project groups entries (one per channel, usually).
	Project string `json:"project"`
	// Message is the text, formatting codes and control characters removed.
	Message string `json:"message"`
	// Source says how the entry reached the log.
	Source Source `json:"source"`
}

// Query selects entries, newest first.
type Query struct {
	// Project, when set, keeps only entries of that project.
	Project string
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
	e.Channel = Clean(e.Channel)
	e.Project = Clean(e.Project)
	switch {
	case e.Message == "":
		return ErrEmptyMessage
	case len(e.Message) > MaxMessageBytes:
		return ErrTooLong
	case e.Nick == "":
		return ErrNoNick
	case !e.Source.Valid():
		return ErrBadSource
	}
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Time = e.Time.UTC()
	return nil
}

func (q Query) limit() int {
	if q.Limit <= 0 {
		return 100
	}
	return q.Limit
}
