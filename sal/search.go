package sal

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Full-text search, as every store implements it.
//
// Query.Search is cleaned as messages are (Clean: formatting codes and
// control characters out) and split at white space into words; at most maxSearchWords
// are kept, each cut to maxSearchWordBytes. Inside a word, every character
// that is not a letter or a digit separates tokens, as it does in the
// indexed text, so "scb1001.eqiad" is the phrase "scb1001 eqiad". A word
// without a letter or digit ("*", "--", `"`) is ignored.
//
// An entry matches when every word matches its message or its nick (AND).
// A word matches the same tokens, whole and in a row: "citoid" finds
// "restarted citoid" but not "citoids". A word ending in "*" whose last
// token has at least minPrefixRunes characters matches that token as a
// prefix: "deploy*" finds "deploying", "scb10*" finds "scb1001". Case and
// diacritics do not count: "WÖRLD" finds "world". Nothing else the user
// types is syntax: quotes, AND, OR, NOT, NEAR, parentheses, colons and
// column names are plain text.
//
// A Search with no word to look for matches nothing.
//
// Cost: a whole word costs about the same however common it is, since the
// newest matches come first and the scan stops at Limit. A prefix reads
// every entry it matches, hence the minimum length.
const (
	maxSearchWords     = 16
	maxSearchWordBytes = 128
	minPrefixRunes     = 3
)

// searchTerm is one word of a Search.
type searchTerm struct {
	text   string   // the word as typed, without its trailing *
	tokens []string // its tokens, normalized (searchTokens)
	prefix bool     // its last token is a prefix
}

// parseSearch returns the terms of a Search (see above).
func parseSearch(search string) []searchTerm {
	var terms []searchTerm
	for _, w := range strings.Fields(Clean(search)) {
		if len(w) > maxSearchWordBytes {
			w = strings.ToValidUTF8(w[:maxSearchWordBytes], "")
		}
		t := searchTerm{text: strings.TrimRight(w, "*")}
		t.tokens = searchTokens(t.text)
		if len(t.tokens) == 0 {
			continue
		}
		t.prefix = len(t.text) < len(w) && utf8.RuneCountInString(t.tokens[len(t.tokens)-1]) >= minPrefixRunes
		terms = append(terms, t)
		if len(terms) == maxSearchWords {
			break
		}
	}
	return terms
}

// isTokenRune reports whether r belongs to a token: letters, digits and
// private-use characters, as SQLite's unicode61 tokenizer has it.
func isTokenRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsNumber(r) || unicode.Is(unicode.Co, r)
}

// searchTokens splits s into the tokens the search sees: lower-cased,
// diacritics removed, split at every character that is not a letter or a
// digit. The PostgreSQL store indexes these tokens; SQLite's FTS5
// tokenizer does the equivalent on its side.
func searchTokens(s string) []string {
	var tokens []string
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			tokens = append(tokens, norm.NFC.String(cur.String()))
			cur.Reset()
		}
	}
	for _, r := range norm.NFD.String(s) {
		switch {
		case unicode.Is(unicode.Mn, r):
			// a diacritic: dropped, the token goes on
		case isTokenRune(r):
			cur.WriteRune(unicode.ToLower(r))
		default:
			flush()
		}
	}
	flush()
	return tokens
}

// searchText is the text the PostgreSQL store indexes for an entry: the
// tokens of its message and nick, separated by spaces.
func searchText(message, nick string) string {
	return strings.Join(append(searchTokens(message), searchTokens(nick)...), " ")
}

// ftsMatch turns search terms and the project and channel filters into an
// SQLite FTS5 MATCH expression (see SQLite for the table): each term a
// quoted phrase, with a * when it is a prefix, looked for in the message
// and nick columns; the project and channel as hex tokens in the tags
// column; everything ANDed. The quotes make every character of the user's
// words plain text, and FTS5's tokenizer splits a phrase exactly as it
// split the indexed text.
func ftsMatch(terms []searchTerm, project, channel string) string {
	var b strings.Builder
	b.WriteString(`{message nick} : (`)
	for i, t := range terms {
		if i > 0 {
			b.WriteString(` AND `)
		}
		b.WriteString(`"`)
		b.WriteString(strings.ReplaceAll(t.text, `"`, `""`))
		b.WriteString(`"`)
		if t.prefix {
			b.WriteString(`*`)
		}
	}
	b.WriteString(`)`)
	if project != "" {
		fmt.Fprintf(&b, ` AND tags : "p%X"`, project)
	}
	if channel != "" {
		fmt.Fprintf(&b, ` AND tags : "c%X"`, channel)
	}
	return b.String()
}
