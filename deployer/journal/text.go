package journal

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
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

func suffix(b *strings.Builder, sep, s string) {
	if s != "" {
		b.WriteString(sep)
		b.WriteString(oneLine(s))
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// checkText describes a check result: `info (http GET /_info): 200 in
// 35ms` or `info (http GET /_info): FAILED 500 in 35ms (body: "db down")`.
func checkText(c *CheckRecord) string {
	var b strings.Builder
	b.WriteString(oneLine(firstNonEmpty(c.Name, c.Kind, "check")))
	if c.Kind != "" || c.Target != "" {
		b.WriteString(" (")
		b.WriteString(oneLine(strings.TrimSpace(c.Kind + " " + c.Target)))
		b.WriteString(")")
	}
	b.WriteString(": ")
	var parts []string
	if !c.OK {
		parts = append(parts, "FAILED")
	}
	if c.Status != 0 {
		parts = append(parts, strconv.Itoa(c.Status))
	}
	if c.ExitCode != nil {
		parts = append(parts, fmt.Sprintf("exit %d", *c.ExitCode))
	}
	if c.OK && len(parts) == 0 {
		parts = append(parts, "ok")
	}
	if c.Latency > 0 {
		parts = append(parts, "in "+fmtDuration(c.Latency))
	}
	b.WriteString(strings.Join(parts, " "))
	if c.Err != "" {
		b.WriteString(": ")
		b.WriteString(oneLine(c.Err))
	}
	if !c.OK && c.Body != "" {
		b.WriteString(" (body: ")
		b.WriteString(strconv.Quote(head(c.Body, 200)))
		b.WriteString(")")
	}
	return b.String()
}

// writeIndented writes a multi-line output, each line indented, trailing
// blank lines dropped.
func writeIndented(b *strings.Builder, out string) {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	out = strings.ReplaceAll(out, "\r", "\n")
	lines := strings.Split(strings.TrimRight(out, "\n \t"), "\n")
	for _, l := range lines {
		b.WriteString("    ")
		b.WriteString(clean(l))
		b.WriteByte('\n')
	}
}

// oneLine escapes control characters (newlines included), so s stays on
// one line and cannot drive a terminal.
func oneLine(s string) string { return clean(strings.ReplaceAll(s, "\t", " ")) }

// clean escapes every character that is not printable (except tab), and
// invalid UTF-8, the way Go quotes strings: \n, \x1b, \u202e.
func clean(s string) string {
	ok := true
	for _, r := range s {
		if r == utf8.RuneError || (!unicode.IsPrint(r) && r != '\t') {
			ok = false
			break
		}
	}
	if ok {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unicode.IsPrint(r) || r == '\t':
			b.WriteString(s[i : i+size])
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

// fmtDuration: 35ms, 1.2s, 1m42s, 1h2m3s.
func fmtDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	default:
		return d.Round(time.Second).String()
	}
}

// shortRev shortens a full hex sha1 to 7 characters.
func shortRev(rev string) string {
	if len(rev) >= 12 && strings.Trim(rev, "0123456789abcdef") == "" {
		return rev[:7]
	}
	return oneLine(rev)
}
