package web

import (
	"bufio"
	"cmp"
	"io"
	"slices"
	"strings"
	"time"

	"deploybot/sal"
)

// Wikitext writes entries in the wikitech Server Admin Log format: grouped
// by UTC day, newest day first and newest entry first within a day, one
// heading per day and one list item per entry:
//
//	== 2016-04-22 ==
//	* 05:16 bd808: deploying citoid 5d6e7f8
//	* 05:02 alice: restarted citoid on scb1001
//
// Entries need not be sorted. Nicks and messages go through sal.Clean (so
// neither can hold a newline and start a heading or a new list item) and
// then escaped (see wikiEscape), so that a message reads on the wiki exactly as it was
// logged and cannot open a template, table, link, tag or signature.
// Nothing is written for no entries.
func Wikitext(w io.Writer, entries []sal.Entry) error {
	bw := bufio.NewWriter(w)
	day := ""
	for _, e := range sortedNewestFirst(entries) {
		t := e.Time.UTC()
		if d := t.Format(time.DateOnly); d != day {
			day = d
			bw.WriteString("== " + d + " ==\n")
		}
		bw.WriteString("* " + t.Format("15:04") + " " + wikiEscape(sal.Clean(e.Nick)) + ": " + wikiEscape(sal.Clean(e.Message)) + "\n")
	}
	return bw.Flush()
}

// sortedNewestFirst returns a copy of entries sorted by time, newest first
// (ties: higher id first).
func sortedNewestFirst(entries []sal.Entry) []sal.Entry {
	out := slices.Clone(entries)
	slices.SortStableFunc(out, func(a, b sal.Entry) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.ID, a.ID)
	})
	return out
}

// wikiEscape makes one line of text render literally in MediaWiki when it
// sits after "* HH:MM nick: ". It replaces with HTML character references,
// which MediaWiki shows as the character and never parses as markup:
//
//   - { } | : templates, parser functions, tables, -{ }- conversions;
//   - [ ] : internal and bracketed external links;
//   - < > : tags (<nowiki>, <ref>, <pre>, <!-- …), so nothing can end or
//     open a tag-delimited region;
//   - every ~ in a run of three or more: signatures (~~~, ~~~~, ~~~~~);
//   - every ' in a run of two or more: bold and italics;
//   - every _ in a run of two or more: behaviour switches (__NOTOC__);
//   - & when it starts something that looks like a character reference,
//     so "&#123;" in a message shows as typed.
//
// Headings (= at the start of a line), list markers and horizontal rules
// only act at the start of a line, and wikiEscape's caller starts every
// line itself. Bare URLs stay plain text, which MediaWiki links.
func wikiEscape(s string) string {
	if !strings.ContainsAny(s, "{}|[]<>~'_&") {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '{':
			b.WriteString("&#123;")
		case '}':
			b.WriteString("&#125;")
		case '|':
			b.WriteString("&#124;")
		case '[':
			b.WriteString("&#91;")
		case ']':
			b.WriteString("&#93;")
		case '<':
			b.WriteString("&lt;")
		case '>':
			b.WriteString("&gt;")
		case '~', '\'', '_':
			n := runLen(s[i:], c)
			least := 2
			if c == '~' {
				least = 3
			}
			if n < least {
				b.WriteString(s[i : i+n])
			} else {
				ref := "&#126;"
				switch c {
				case '\'':
					ref = "&#39;"
				case '_':
					ref = "&#95;"
				}
				b.WriteString(strings.Repeat(ref, n))
			}
			i += n - 1
		case '&':
			if looksLikeCharRef(s[i+1:]) {
				b.WriteString("&amp;")
			} else {
				b.WriteByte('&')
			}
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// runLen is how many times c repeats at the start of s.
func runLen(s string, c byte) int {
	n := 0
	for n < len(s) && s[n] == c {
		n++
	}
	return n
}

// looksLikeCharRef reports whether s (what follows an &) is the rest of a
// character reference: a name or #digits or #xhex, then ;.
func looksLikeCharRef(s string) bool {
	s = strings.TrimPrefix(s, "#")
	n := 0
	for n < len(s) && n < 32 && isAlnum(s[n]) {
		n++
	}
	return n > 0 && n < len(s) && s[n] == ';'
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
