package web

import (
	"html"
	"html/template"
	"net/url"
	"regexp"
	"strings"
)

// tokenRE finds the candidates for links, leftmost first: an http(s) URL,
// a task id (T + 3 or more digits) or a 7–40 character lowercase hex run.
// A URL is matched as a whole before anything inside it can be, so a task
// id or a sha1 inside a URL never becomes a link of its own.
var tokenRE = regexp.MustCompile(`(?i:https?)://[^\s<>"]+|\bT[0-9]{3,}\b|\b[0-9a-f]{7,40}\b`)

// Linkify returns text as HTML: every character HTML-escaped, and these
// turned into links:
//
//   - http:// and https:// URLs link to themselves (rel="nofollow"). The
//     URL ends at whitespace, <, > or "; trailing punctuation (.,;:!?'*)
//     and an unbalanced ) or ] are left out of it. Other schemes
//     (javascript:, data:, …) are never linked. The href is
//     attribute-escaped, so " ' < > & cannot leave the attribute.
//   - T12345 (T and 3 or more digits, as a whole word) links to taskURL
//     with the id in place of its %s (appended when there is no %s); no
//     task links when taskURL is "" or is not an http(s) or root-relative
//     URL.
//   - sha1s: a whole word of 7–40 lowercase hex characters holding at least
//     one digit and at least one letter a–f links to a search of the SAL
//     for it (/?q=<sha1>). Requiring both keeps English words made of a–f
//     ("defaced", "deadbeef" as a word is the price) and plain numbers
//     (timestamps, counts, dates like 20160422) from becoming links. Two
//     places hold a sha1 whatever its characters: the revision of a
//     deploy tag, [citoid@5d6e7f8] or [citoid@1234567], and a whole
//     40-character sha1.
//
// Nothing inside a URL is linked separately, and a task id or sha1 that is
// part of a path-like word (right after / - = @ # & ? % ~ or +, as in
// gerrit/r/c/abc1234 or uuid-like runs) is left as text.
func Linkify(text, taskURL string) template.HTML {
	return newLinker(taskURL, "/").linkify(text)
}

// linker is Linkify with its settings checked once.
type linker struct {
	task   string // task URL template, "" for none
	search string // path of the SAL root, ending in /
}

func newLinker(taskURL, root string) linker {
	l := linker{search: root}
	if safeTaskURL(taskURL) {
		l.task = taskURL
	}
	return l
}

// safeTaskURL reports whether a configured task URL may become an href.
func safeTaskURL(s string) bool {
	if s == "" {
		return false
	}
	if strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//") {
		return true
	}
	u, err := url.Parse(strings.Replace(s, "%s", "T1", 1))
	if err != nil {
		return false
	}
	return (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

func (l linker) taskHref(id string) string {
	if strings.Contains(l.task, "%s") {
		return strings.Replace(l.task, "%s", id, 1)
	}
	return l.task + id
}

func (l linker) linkify(text string) template.HTML {
	var b strings.Builder
	b.Grow(len(text) + len(text)/4)
	last := 0
	for _, m := range tokenRE.FindAllStringIndex(text, -1) {
		start, end := m[0], m[1]
		tok := text[start:end]
		var href, rel string
		switch {
		case tok[0] == 'T' && len(tok) > 1 && tok[1] >= '0' && tok[1] <= '9':
			if l.task == "" || pathLike(text, start) {
				continue
			}
			href = l.taskHref(tok)
		case tok[0] == 'h' || tok[0] == 'H': // http:// or https:// (hex has no h)
			end = start + urlEnd(tok)
			tok = text[start:end]
			if !linkableURL(tok) {
				continue
			}
			href, rel = tok, "nofollow"
		default: // hex run
			if !deployTag(text, start, end) && (!sha1Like(tok) || pathLike(text, start)) {
				continue
			}
			href = l.search + "?q=" + tok
		}
		b.WriteString(html.EscapeString(text[last:start]))
		b.WriteString(`<a href="`)
		b.WriteString(html.EscapeString(href))
		if rel != "" {
			b.WriteString(`" rel="`)
			b.WriteString(rel)
		}
		b.WriteString(`">`)
		b.WriteString(html.EscapeString(tok))
		b.WriteString(`</a>`)
		last = end
	}
	b.WriteString(html.EscapeString(text[last:]))
	return template.HTML(b.String())
}

// pathLike reports whether the token at start is glued to what precedes
// it the way a path or identifier part is.
func pathLike(text string, start int) bool {
	if start == 0 {
		return false
	}
	return strings.IndexByte("/-=@#&?%~+", text[start-1]) >= 0
}

// sha1Like reports whether a hex run has both a digit and a letter, or
// is a whole sha1 (40 digits).
func sha1Like(s string) bool {
	return len(s) == 40 || strings.ContainsAny(s, "0123456789") && strings.ContainsAny(s, "abcdef")
}

// deployTag reports whether the hex run text[start:end] is the revision of
// a deploy tag, "[citoid@5d6e7f8]": right after "[<service>@" and right
// before "]". There it is a sha1 whatever its digits.
func deployTag(text string, start, end int) bool {
	if end >= len(text) || text[end] != ']' || start < 3 || text[start-1] != '@' {
		return false
	}
	i := start - 2
	for i >= 0 && serviceByte(text[i]) {
		i--
	}
	return i >= 0 && i < start-2 && text[i] == '['
}

// serviceByte reports whether c may be part of a service name.
func serviceByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
}

// urlEnd returns the length of the URL at the start of s once trailing
// punctuation that belongs to the sentence, not the URL, is dropped.
func urlEnd(s string) int {
	for len(s) > 0 {
		c := s[len(s)-1]
		switch {
		case strings.IndexByte(".,;:!?'*", c) >= 0:
		case c == ')' && strings.Count(s, ")") > strings.Count(s, "("):
		case c == ']' && strings.Count(s, "]") > strings.Count(s, "["):
		default:
			return len(s)
		}
		s = s[:len(s)-1]
	}
	return 0
}

// linkableURL reports whether s is an absolute http(s) URL with a host.
func linkableURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	scheme := strings.ToLower(u.Scheme)
	return (scheme == "http" || scheme == "https") && u.Host != "" && !strings.HasPrefix(u.Host, ":")
}
