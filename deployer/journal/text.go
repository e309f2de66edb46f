package journal

import (
	"strings"
	"unicode/utf8"
)

// The small text helpers every front end shares, so that a revision or a
// reason reads the same in the channel, the terminal and the journal.

// ShortRev is the 7-character form of a revision ("" stays "").
func ShortRev(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// OneLine puts s on one line: runs of white space (newlines included)
// become one space, and the ends are trimmed.
func OneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// Clip cuts s to at most n bytes, never inside a UTF-8 character, and
// marks a cut with "…".
func Clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
